from dataclasses import FrozenInstanceError

import pytest

from providers import gpu_catalog
from providers.gpu_catalog import (
    ARCHITECTURES,
    CATALOG,
    GIB,
    INTERCONNECTS,
    TIERS,
    canonical_architecture,
    canonical_compute_capability,
    canonical_model,
    lookup,
    split_model_name,
)
from providers.traits import GpuTraits

REQUIRED = [
    "nvidia-h200", "nvidia-h100", "nvidia-a100", "nvidia-l40s", "nvidia-l4", "nvidia-a10", "nvidia-rtx-a6000",
    "nvidia-rtx-4090", "nvidia-rtx-4080", "nvidia-rtx-3090", "nvidia-v100", "nvidia-t4", "amd-mi300x",
    "amd-mi250x", "amd-rx-7900xtx",
]


def test_every_required_model_is_catalogued():
    assert set(REQUIRED) <= set(CATALOG)


@pytest.mark.parametrize("model_id", REQUIRED)
def test_entries_are_complete_and_consistent(model_id):
    model = CATALOG[model_id]
    assert model.id == model_id
    assert model.vendor in ("nvidia", "amd")
    assert model_id.startswith(f"{model.vendor}-")
    assert model.architecture in ARCHITECTURES
    assert model.tier in TIERS
    assert model.interconnect in INTERCONNECTS
    assert model.memory_bytes % GIB == 0 and model.memory_bytes >= 16 * GIB
    assert model.cores > 0 and model.boost_clock_hz > 500_000_000 and model.power_watts > 0
    assert model.interconnect_bandwidth_gbps > 0
    if model.vendor == "nvidia":
        assert model.compute_capability == canonical_compute_capability(model.compute_capability)
    else:
        assert model.compute_capability == ""
    for score in (model.training_score, model.inference_score, model.hpc_score, model.graphics_score):
        assert 0.05 <= score <= 1.0
    assert model.memory_bytes in [size for size, _ in model.memory_variants]


@pytest.mark.parametrize("model_id", REQUIRED)
def test_fp32_matches_cores_times_clock(model_id):
    # Peak FP32 = cores × 2 (FMA) × boost clock; RDNA 3 issues two FP32 ops per lane (dual issue).
    model = CATALOG[model_id]
    factor = 4 if model.architecture == "rdna3" else 2
    assert model.cores * factor * model.boost_clock_hz / 1e12 == pytest.approx(model.fp32_tflops, rel=0.02)


@pytest.mark.parametrize(
    "model_id, architecture, tier, memory_gib, cores, capability",
    [
        ("nvidia-h200", "hopper", "premium", 141, 16896, "9.0"),
        ("nvidia-h100", "hopper", "premium", 80, 16896, "9.0"),
        ("nvidia-a100", "ampere", "premium", 80, 6912, "8.0"),
        ("nvidia-l40s", "ada-lovelace", "standard", 48, 18176, "8.9"),
        ("nvidia-l4", "ada-lovelace", "inference", 24, 7424, "8.9"),
        ("nvidia-a10", "ampere", "standard", 24, 9216, "8.6"),
        ("nvidia-rtx-a6000", "ampere", "standard", 48, 10752, "8.6"),
        ("nvidia-rtx-4090", "ada-lovelace", "gaming", 24, 16384, "8.9"),
        ("nvidia-rtx-4080", "ada-lovelace", "gaming", 16, 9728, "8.9"),
        ("nvidia-rtx-3090", "ampere", "gaming", 24, 10496, "8.6"),
        ("nvidia-v100", "volta", "budget", 16, 5120, "7.0"),
        ("nvidia-t4", "turing", "inference", 16, 2560, "7.5"),
        ("amd-mi300x", "cdna3", "premium", 192, 19456, ""),
        ("amd-mi250x", "cdna2", "premium", 128, 14080, ""),
        ("amd-rx-7900xtx", "rdna3", "gaming", 24, 6144, ""),
    ],
)
def test_vendor_specifications(model_id, architecture, tier, memory_gib, cores, capability):
    model = CATALOG[model_id]
    assert (model.architecture, model.tier, model.memory_bytes, model.cores, model.compute_capability) == (
        architecture, tier, memory_gib * GIB, cores, capability,
    )


def test_spot_values_from_data_sheets():
    h100 = CATALOG["nvidia-h100"]
    assert (h100.fp32_tflops, h100.boost_clock_hz, h100.interconnect, h100.interconnect_bandwidth_gbps) == (
        67.0, 1_980_000_000, "nvlink", 7200.0,
    )
    assert h100.power_watts == 700 and h100.mig_capable
    assert CATALOG["amd-mi300x"].interconnect == "infinity-fabric"
    assert CATALOG["nvidia-t4"].interconnect_bandwidth_gbps == 256.0   # PCIe 3.0 x16
    assert CATALOG["nvidia-l4"].power_watts == 72
    assert CATALOG["nvidia-a100"].memory_gi == "80Gi"


def test_scores_rank_gpus_the_way_their_specifications_do():
    c = CATALOG
    assert c["nvidia-h200"].training_score > c["nvidia-h100"].training_score > c["nvidia-a100"].training_score
    assert c["nvidia-a100"].training_score > c["nvidia-rtx-4090"].training_score > c["nvidia-t4"].training_score
    assert c["nvidia-l4"].inference_score > c["nvidia-t4"].inference_score
    assert c["nvidia-h100"].hpc_score > c["nvidia-rtx-4090"].hpc_score   # FP64
    assert c["amd-mi250x"].hpc_score > c["nvidia-a100"].hpc_score
    # Compute-only parts have no graphics pipeline.
    assert c["nvidia-rtx-4090"].graphics_score > c["nvidia-h100"].graphics_score
    assert c["nvidia-l40s"].graphics_score > c["nvidia-a100"].graphics_score
    best = {name: max(getattr(m, name) for m in c.values())
            for name in ("training_score", "inference_score", "hpc_score", "graphics_score")}
    assert all(value == 1.0 for key, value in best.items() if key != "graphics_score")


def test_models_are_frozen():
    with pytest.raises(FrozenInstanceError):
        CATALOG["nvidia-h100"].tier = "budget"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nvidia-h100", "nvidia-h100"),
        ("NVIDIA-H100", "nvidia-h100"),
        ("h100", "nvidia-h100"),
        ("H100 SXM5", "nvidia-h100"),
        ("NVIDIA-H100-80GB-HBM3", "nvidia-h100"),
        ("nvidia-a6000", "nvidia-rtx-a6000"),
        ("a6000", "nvidia-rtx-a6000"),
        ("NVIDIA-RTX-A6000", "nvidia-rtx-a6000"),
        ("a100-80gb", "nvidia-a100"),
        ("nvidia-a100-40gb", "nvidia-a100"),
        ("NVIDIA-A100-SXM4-40GB", "nvidia-a100"),
        ("NVIDIA-A100-80GB-PCIe", "nvidia-a100"),
        ("NVIDIA-GeForce-RTX-4090", "nvidia-rtx-4090"),
        ("rtx 4090", "nvidia-rtx-4090"),
        ("4080", "nvidia-rtx-4080"),
        ("GeForce RTX 3090", "nvidia-rtx-3090"),
        ("Tesla-T4", "nvidia-t4"),
        ("Tesla-V100-SXM2-16GB", "nvidia-v100"),
        ("NVIDIA-L40S", "nvidia-l40s"),
        ("NVIDIA-L4", "nvidia-l4"),
        ("NVIDIA-A10", "nvidia-a10"),
        ("h200", "nvidia-h200"),
        ("AMD-Instinct-MI300X", "amd-mi300x"),
        ("AMD_Instinct_MI300X_OAM", "amd-mi300x"),
        ("mi250x", "amd-mi250x"),
        ("AMD-Radeon-RX-7900-XTX", "amd-rx-7900xtx"),
        ("7900xtx", "amd-rx-7900xtx"),
        # Models FLARE does not know keep their name, normalised the same way.
        ("NVIDIA-B200", "nvidia-b200"),
        ("AMD-Radeon-PRO-W7900", "amd-w7900"),
        ("any", "any"),
        ("", ""),
    ],
)
def test_canonical_model(name, expected):
    assert canonical_model(name) == expected


def test_a_vendor_that_contradicts_the_catalogue_is_not_aliased():
    # "amd-h100" is not NVIDIA's H100.
    assert canonical_model("amd-h100") == "amd-h100"


def test_split_model_name_keeps_the_memory_of_the_name():
    assert split_model_name("NVIDIA-A100-SXM4-40GB") == ("nvidia-a100", 40 * GIB)
    assert split_model_name("h100") == ("nvidia-h100", None)


def test_lookup_returns_the_memory_variant():
    a100_40 = lookup("nvidia-a100-40gb")
    assert a100_40.id == "nvidia-a100"
    assert a100_40.memory_bytes == 40 * GIB
    assert a100_40.memory_bandwidth_gbs == 1555.0
    # Less memory and bandwidth: lower scores than the default 80 GB part.
    assert a100_40.training_score < CATALOG["nvidia-a100"].training_score
    assert lookup("nvidia-a100") is CATALOG["nvidia-a100"]
    assert lookup("a100", memory_bytes=40 * GIB).memory_bytes == 40 * GIB
    # 79.6 GiB is what the 80 GB part reports.
    assert lookup("nvidia-h100", memory_bytes=int(79.6 * GIB)) is CATALOG["nvidia-h100"]
    assert lookup("Tesla-V100-SXM2-32GB").memory_bytes == 32 * GIB


def test_lookup_of_an_unsold_memory_size_falls_back_to_the_default_variant():
    assert lookup("nvidia-a100", memory_bytes=64 * GIB) is CATALOG["nvidia-a100"]
    with pytest.raises(ValueError, match="nvidia-a100 is sold with 80Gi, 40Gi, not 64Gi"):
        CATALOG["nvidia-a100"].with_memory(64 * GIB)


@pytest.mark.parametrize("name", ["nvidia-b200", "", None, "any"])
def test_lookup_of_unknown_models(name):
    assert lookup(name) is None


def test_model_traits():
    traits = CATALOG["nvidia-l40s"].traits(4, region="eu-west-1")
    assert isinstance(traits, GpuTraits)
    assert (traits.model, traits.vendor, traits.count, traits.memory_per_gpu) == ("nvidia-l40s", "nvidia", 4, 48 * GIB)
    assert traits.memory_total == 4 * 48 * GIB
    assert traits.region == "eu-west-1"
    assert traits.compute_capability == "8.9" and traits.tier == "standard"


@pytest.mark.parametrize(
    "value, expected",
    [("9", "9.0"), (9, "9.0"), ("9.0", "9.0"), ("8.6", "8.6"), (8.6, "8.6"), ("sm_86", "8.6"), ("sm90", "9.0"),
     ("compute_75", "7.5"), (" 8.9 ", "8.9"), ("10.0", "10.0"), ("8.60", "8.6"), ("9.00", "9.0"),
     ("sm_100", "10.0"), ("sm_90a", "9.0"), ("sm_120", "12.0")],
)
def test_canonical_compute_capability(value, expected):
    assert canonical_compute_capability(value) == expected


@pytest.mark.parametrize("value", ["nine", "", "9.0.1", "v9", True, None, "any"])
def test_canonical_compute_capability_rejects(value):
    with pytest.raises(ValueError, match="expected a CUDA compute capability such as '9.0'"):
        canonical_compute_capability(value)


@pytest.mark.parametrize(
    "value, expected",
    [("hopper", "hopper"), ("Hopper", "hopper"), ("Ada Lovelace", "ada-lovelace"), ("ada_lovelace", "ada-lovelace"),
     ("ada", "ada-lovelace"), ("CDNA 3", "cdna3"), ("cdna-2", "cdna2"), ("RDNA3", "rdna3"), ("gfx942", "cdna3"),
     ("Blackwell", "blackwell"), ("Something New", "something-new")],
)
def test_canonical_architecture(value, expected):
    assert canonical_architecture(value) == expected


def test_vocabularies_cover_the_api_enumerations():
    # API.md resources.gpu enumerations.
    assert {"hopper", "ada-lovelace", "ampere", "turing", "volta", "cdna3", "rdna3"} <= set(ARCHITECTURES)
    assert set(TIERS) == {"premium", "standard", "gaming", "inference", "budget"}
    assert set(INTERCONNECTS) == {"nvlink", "nvswitch", "infiniband", "pcie", "infinity-fabric"}
    assert set(gpu_catalog.TOPOLOGIES) == {"all-to-all", "nvswitch", "ring", "mesh"}

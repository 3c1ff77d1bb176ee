import shlex
from decimal import Decimal

import pytest

from providers import annotations as a
from providers.annotations import (
    CLUSTER_KEYS,
    AnnotationError,
    kubectl_annotate_command,
    parse_annotations,
    to_annotations,
)
from providers.gpu_catalog import CATALOG, GIB, lookup
from providers.traits import GpuTraits

H100_NODE = {
    "gpu.fluidos.eu/vendor": "nvidia",
    "gpu.fluidos.eu/model": "nvidia-h100",
    "gpu.fluidos.eu/count": "8",
    "gpu.fluidos.eu/memory-per-gpu": "80Gi",
    "gpu.fluidos.eu/cores": "16896",
    "gpu.fluidos.eu/tier": "premium",
    "gpu.fluidos.eu/architecture": "hopper",
    "gpu.fluidos.eu/interconnect": "nvlink",
    "gpu.fluidos.eu/topology": "all-to-all",
    "gpu.fluidos.eu/dedicated": "true",
    "gpu.fluidos.eu/interruptible": "false",
    "gpu.fluidos.eu/compute-capability": "9.0",
    "gpu.fluidos.eu/clock-speed": "1.98G",
    "gpu.fluidos.eu/fp32-tflops": "67.0",
    "gpu.fluidos.eu/multi-gpu-efficiency": "0.95",
    "gpu.fluidos.eu/sharing-strategy": "mig",
    "gpu.fluidos.eu/interconnect-bandwidth-gbps": "900",
    "gpu.fluidos.eu/sharing-capable": "true",
    "nvidia.fluidos.eu/mig-capable": "true",
    "cost.fluidos.eu/hourly-rate": "4.5",
    "cost.fluidos.eu/currency": "USD",
    "location.fluidos.eu/region": "eu-west-1",
    "location.fluidos.eu/zone": "zone-a",
    "provider.fluidos.eu/name": "nebula-cloud",
    "provider.fluidos.eu/preemptible": "true",
    "workload.fluidos.eu/training-score": "0.95",
    "workload.fluidos.eu/inference-score": "0.9",
    "workload.fluidos.eu/hpc-score": "0.85",
    "workload.fluidos.eu/graphics-score": "0.2",
    "network.fluidos.eu/bandwidth-gbps": "100",
    "network.fluidos.eu/latency-ms": "5",
    "network.fluidos.eu/tier": "premium",
    # Ordinary node annotations are ignored.
    "node.alpha.kubernetes.io/ttl": "0",
    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
}

H100_TRAITS = GpuTraits(
    vendor="nvidia", model="nvidia-h100", count=8, memory_per_gpu=80 * GIB, cores_per_gpu=16896,
    clock_speed=1_980_000_000, compute_capability="9.0", architecture="hopper", tier="premium",
    interconnect="nvlink", interconnect_bandwidth_gbps=900.0, topology="all-to-all", multi_gpu_efficiency=0.95,
    fp32_tflops=67.0, sharing_strategy="mig", shared=True, dedicated=True, interruptible=False,
    multi_instance=True, training_score=0.95, inference_score=0.9, hpc_score=0.85, graphics_score=0.2,
    hourly_rate=Decimal("4.5"), currency="USD", region="eu-west-1", zone="zone-a", provider="nebula-cloud",
    preemptible=True, network_bandwidth_gbps=100.0, network_latency_ms=5, network_tier="premium",
)

MINIMAL = {
    "gpu.fluidos.eu/vendor": "nvidia",
    "gpu.fluidos.eu/model": "nvidia-h100",
    "gpu.fluidos.eu/count": "4",
    "gpu.fluidos.eu/memory-per-gpu": "80Gi",
}


def test_every_trait_from_cluster_keys():
    result = parse_annotations(H100_NODE)
    assert result.errors == []
    assert result.warnings == []
    assert result.inferred == {}
    assert result.traits == H100_TRAITS


def test_memory_and_cores_are_per_gpu():
    traits = parse_annotations(H100_NODE).traits
    assert traits.memory_per_gpu == 80 * GIB
    assert traits.memory_total == 8 * 80 * GIB
    assert traits.cores_total == 8 * 16896


def test_region_and_zone_are_read_unswapped():
    traits = parse_annotations({**MINIMAL, "location.fluidos.eu/region": "eu-west-1",
                                "location.fluidos.eu/zone": "zone-a"}).traits
    assert (traits.region, traits.zone) == ("eu-west-1", "zone-a")


def test_keys_without_a_domain_are_under_gpu_fluidos_eu():
    result = parse_annotations({"vendor": "amd", "model": "amd-mi300x", "count": "8", "memory-per-gpu": "192Gi"})
    assert result.errors == []
    assert (result.traits.vendor, result.traits.model, result.traits.count) == ("amd", "amd-mi300x", 8)


@pytest.mark.parametrize(
    "alias, cluster_key, value, attr, expected",
    [
        ("gpu.fluidos.eu/memory", "gpu.fluidos.eu/memory-per-gpu", "80Gi", "memory_per_gpu", 80 * GIB),
        ("memory", "gpu.fluidos.eu/memory-per-gpu", "80Gi", "memory_per_gpu", 80 * GIB),
        ("gpu.fluidos.eu/memory_per_gpu", "gpu.fluidos.eu/memory-per-gpu", "80Gi", "memory_per_gpu", 80 * GIB),
        ("gpu.fluidos.eu/compute_capability", "gpu.fluidos.eu/compute-capability", "9", "compute_capability", "9.0"),
        ("gpu.fluidos.eu/clock_speed", "gpu.fluidos.eu/clock-speed", "1.98G", "clock_speed", 1_980_000_000),
        ("gpu.fluidos.eu/fp32_tflops", "gpu.fluidos.eu/fp32-tflops", "67", "fp32_tflops", 67.0),
        ("gpu.fluidos.eu/multi_gpu_efficiency", "gpu.fluidos.eu/multi-gpu-efficiency", "0.9",
         "multi_gpu_efficiency", 0.9),
        ("gpu.fluidos.eu/sharing_strategy", "gpu.fluidos.eu/sharing-strategy", "mps", "sharing_strategy", "mps"),
        ("gpu.fluidos.eu/interconnect_bandwidth", "gpu.fluidos.eu/interconnect-bandwidth-gbps", "900",
         "interconnect_bandwidth_gbps", 900.0),
        ("interconnect_bandwidth", "gpu.fluidos.eu/interconnect-bandwidth-gbps", "900",
         "interconnect_bandwidth_gbps", 900.0),
        ("gpu.fluidos.eu/shared", "gpu.fluidos.eu/sharing-capable", "true", "shared", True),
        ("gpu.fluidos.eu/sharing_capable", "gpu.fluidos.eu/sharing-capable", "true", "shared", True),
        ("multi_instance", "nvidia.fluidos.eu/mig-capable", "true", "multi_instance", True),
        ("gpu.fluidos.eu/multi_instance", "nvidia.fluidos.eu/mig-capable", "true", "multi_instance", True),
        ("nvidia.fluidos.eu/mig_capable", "nvidia.fluidos.eu/mig-capable", "true", "multi_instance", True),
        ("cost.fluidos.eu/hourly_rate", "cost.fluidos.eu/hourly-rate", "2.75", "hourly_rate", Decimal("2.75")),
        ("training_score", "workload.fluidos.eu/training-score", "0.7", "training_score", 0.7),
        ("workload.fluidos.eu/training_score", "workload.fluidos.eu/training-score", "0.7", "training_score", 0.7),
        ("inference_score", "workload.fluidos.eu/inference-score", "0.6", "inference_score", 0.6),
        ("hpc_score", "workload.fluidos.eu/hpc-score", "0.5", "hpc_score", 0.5),
        ("graphics_score", "workload.fluidos.eu/graphics-score", "0.4", "graphics_score", 0.4),
        ("network.fluidos.eu/bandwidth", "network.fluidos.eu/bandwidth-gbps", "25", "network_bandwidth_gbps", 25.0),
        ("network.fluidos.eu/latency_ms", "network.fluidos.eu/latency-ms", "7", "network_latency_ms", 7),
        ("provider.fluidos.eu/pre-emptible", "provider.fluidos.eu/preemptible", "true", "preemptible", True),
    ],
)
def test_also_accepted_spellings(alias, cluster_key, value, attr, expected):
    base = {key: val for key, val in MINIMAL.items() if key != cluster_key}
    result = parse_annotations({**base, alias: value})
    assert result.errors == []
    assert getattr(result.traits, attr) == expected
    # The FLUIDOS node reads only the cluster key: say so.
    assert any(cluster_key in warning and alias in warning for warning in result.warnings)
    # The same value under the cluster key gives the same trait and no such warning.
    plain = parse_annotations({**base, cluster_key: value})
    assert getattr(plain.traits, attr) == expected
    assert not any("reads only" in warning for warning in plain.warnings)


def test_cluster_key_wins_over_another_spelling():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/memory": "40Gi"})
    assert result.traits.memory_per_gpu == 80 * GIB
    assert any("gpu.fluidos.eu/memory-per-gpu and gpu.fluidos.eu/memory are both set and differ" in warning
               for warning in result.warnings)


def test_an_explicit_domain_wins_over_a_bare_key():
    result = parse_annotations({**MINIMAL, "count": "2"})
    assert result.traits.count == 4
    assert any("count and gpu.fluidos.eu/count name the same key" in warning for warning in result.warnings)


def test_currency_is_read_by_flare_only():
    result = parse_annotations({**MINIMAL, "cost.fluidos.eu/hourly-rate": "3", "cost.fluidos.eu/currency": "usd"})
    assert (result.traits.hourly_rate, result.traits.currency) == (Decimal("3"), "USD")
    assert result.warnings == []
    assert parse_annotations({**MINIMAL, "cost.fluidos.eu/hourly-rate": "3"}).traits.currency == "EUR"


def test_go_boolean_spellings():
    for text, expected in [("true", True), ("True", True), ("TRUE", True), ("1", True), ("t", True),
                           ("false", False), ("0", False), ("F", False)]:
        traits = parse_annotations({**MINIMAL, "gpu.fluidos.eu/dedicated": text}).traits
        assert traits.dedicated is expected


def test_enumerations_are_lower_cased_and_aliased():
    traits = parse_annotations({
        **MINIMAL,
        "gpu.fluidos.eu/model": "nvidia-a6000",
        "gpu.fluidos.eu/memory-per-gpu": "48Gi",
        "gpu.fluidos.eu/tier": "Standard",
        "gpu.fluidos.eu/architecture": "Ampere",
        "gpu.fluidos.eu/interconnect": "NVLink",
        "gpu.fluidos.eu/sharing-strategy": "time_slicing",
        "gpu.fluidos.eu/sharing-capable": "true",
        "gpu.fluidos.eu/compute-capability": "8.6",
    }).traits
    assert (traits.model, traits.tier, traits.architecture, traits.interconnect, traits.sharing_strategy) == (
        "nvidia-rtx-a6000", "standard", "ampere", "nvlink", "time-slicing",
    )


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("gpu.fluidos.eu/memory-per-gpu", "40GB",
         "gpu.fluidos.eu/memory-per-gpu: expected a Kubernetes quantity such as '80Gi', got '40GB'"),
        ("gpu.fluidos.eu/memory-per-gpu", "80",
         "gpu.fluidos.eu/memory-per-gpu: expected memory per GPU with a unit such as '80Gi', got '80' (80 bytes)"),
        ("gpu.fluidos.eu/memory-per-gpu", "1K",
         "gpu.fluidos.eu/memory-per-gpu: expected a Kubernetes quantity such as '80Gi', got '1K'"),
        ("gpu.fluidos.eu/count", "four",
         "gpu.fluidos.eu/count: expected a whole number of GPUs (1 or more) such as '4', got 'four'"),
        ("gpu.fluidos.eu/count", "0",
         "gpu.fluidos.eu/count: expected a whole number of GPUs (1 or more) such as '4', got '0'"),
        ("gpu.fluidos.eu/count", "2.5",
         "gpu.fluidos.eu/count: expected a whole number of GPUs (1 or more) such as '4', got '2.5'"),
        ("gpu.fluidos.eu/vendor", "nvdia",
         "gpu.fluidos.eu/vendor: expected one of nvidia, amd, intel, got 'nvdia' (did you mean 'nvidia'?)"),
        ("gpu.fluidos.eu/model", "NVIDIA H100!",
         "gpu.fluidos.eu/model: expected a GPU model id such as 'nvidia-h100', got 'NVIDIA H100!'"),
        ("gpu.fluidos.eu/cores", "lots",
         "gpu.fluidos.eu/cores: expected a whole number of cores per GPU such as '16896', got 'lots'"),
        ("gpu.fluidos.eu/tier", "premum",
         "gpu.fluidos.eu/tier: expected one of premium, standard, gaming, inference, budget, got 'premum' "
         "(did you mean 'premium'?)"),
        ("gpu.fluidos.eu/architecture", "hopper!",
         "gpu.fluidos.eu/architecture: expected a GPU architecture such as 'hopper' or 'cdna3', got 'hopper!'"),
        ("gpu.fluidos.eu/interconnect", "nvlnk",
         "gpu.fluidos.eu/interconnect: expected one of nvlink, nvswitch, infiniband, pcie, infinity-fabric, "
         "got 'nvlnk' (did you mean 'nvlink'?)"),
        ("gpu.fluidos.eu/topology", "star",
         "gpu.fluidos.eu/topology: expected one of all-to-all, nvswitch, ring, mesh, got 'star'"),
        ("gpu.fluidos.eu/dedicated", "yes", "gpu.fluidos.eu/dedicated: expected true or false, got 'yes'"),
        ("gpu.fluidos.eu/interruptible", "no", "gpu.fluidos.eu/interruptible: expected true or false, got 'no'"),
        ("gpu.fluidos.eu/compute-capability", "hopper",
         "gpu.fluidos.eu/compute-capability: expected a CUDA compute capability such as '9.0' or '8.6', "
         "got 'hopper'"),
        ("gpu.fluidos.eu/clock-speed", "1.98GHz",
         "gpu.fluidos.eu/clock-speed: expected a clock speed in Hz as a Kubernetes quantity such as '1.98G', "
         "got '1.98GHz'"),
        ("gpu.fluidos.eu/clock-speed", "1980",
         "gpu.fluidos.eu/clock-speed: expected a clock speed in Hz as a Kubernetes quantity such as '1.98G' or "
         "'1980M', got '1980' (1980 Hz)"),
        ("gpu.fluidos.eu/fp32-tflops", "fast",
         "gpu.fluidos.eu/fp32-tflops: expected a number of FP32 TFLOPS per GPU such as '83.0', got 'fast'"),
        ("gpu.fluidos.eu/fp32-tflops", "NaN",
         "gpu.fluidos.eu/fp32-tflops: expected a number of FP32 TFLOPS per GPU such as '83.0', got 'NaN'"),
        ("gpu.fluidos.eu/multi-gpu-efficiency", "95%",
         "gpu.fluidos.eu/multi-gpu-efficiency: expected a number between 0 and 1 such as '0.95', got '95%'"),
        ("gpu.fluidos.eu/multi-gpu-efficiency", "1.5",
         "gpu.fluidos.eu/multi-gpu-efficiency: expected a number between 0 and 1 such as '0.95', got '1.5'"),
        ("gpu.fluidos.eu/sharing-strategy", "vgpu",
         "gpu.fluidos.eu/sharing-strategy: expected one of none, mig, mps, time-slicing, sriov, got 'vgpu'"),
        ("gpu.fluidos.eu/interconnect-bandwidth-gbps", "900GB/s",
         "gpu.fluidos.eu/interconnect-bandwidth-gbps: expected a bandwidth in Gbps as a plain number such as "
         "'900', got '900GB/s'"),
        ("gpu.fluidos.eu/sharing-capable", "maybe",
         "gpu.fluidos.eu/sharing-capable: expected true or false, got 'maybe'"),
        ("nvidia.fluidos.eu/mig-capable", "enabled",
         "nvidia.fluidos.eu/mig-capable: expected true or false, got 'enabled'"),
        ("cost.fluidos.eu/hourly-rate", "4.5 EUR",
         "cost.fluidos.eu/hourly-rate: expected a price per GPU-hour such as '4.5' (the currency goes in "
         "cost.fluidos.eu/currency), got '4.5 EUR'"),
        ("cost.fluidos.eu/hourly-rate", "-1",
         "cost.fluidos.eu/hourly-rate: expected a price per GPU-hour of 0 or more such as '4.5', got '-1'"),
        ("cost.fluidos.eu/currency", "euro",
         "cost.fluidos.eu/currency: expected an ISO 4217 currency code such as 'EUR', got 'euro'"),
        ("location.fluidos.eu/region", "eu west 1",
         "location.fluidos.eu/region: expected a name of letters, digits, '.', '_', ':' or '-' such as "
         "'eu-west-1', got 'eu west 1'"),
        ("location.fluidos.eu/zone", "zone/a",
         "location.fluidos.eu/zone: expected a name of letters, digits, '.', '_', ':' or '-' such as "
         "'eu-west-1', got 'zone/a'"),
        ("provider.fluidos.eu/preemptible", "spot",
         "provider.fluidos.eu/preemptible: expected true or false, got 'spot'"),
        ("workload.fluidos.eu/training-score", "95",
         "workload.fluidos.eu/training-score: expected a score between 0 and 1 such as '0.85', got '95'"),
        ("workload.fluidos.eu/inference-score", "high",
         "workload.fluidos.eu/inference-score: expected a score between 0 and 1 such as '0.85', got 'high'"),
        ("workload.fluidos.eu/hpc-score", "-0.1",
         "workload.fluidos.eu/hpc-score: expected a score between 0 and 1 such as '0.85', got '-0.1'"),
        ("workload.fluidos.eu/graphics-score", "1.01",
         "workload.fluidos.eu/graphics-score: expected a score between 0 and 1 such as '0.85', got '1.01'"),
        ("network.fluidos.eu/bandwidth-gbps", "10Gbps",
         "network.fluidos.eu/bandwidth-gbps: expected a bandwidth in Gbps as a plain number such as '900', "
         "got '10Gbps'"),
        ("network.fluidos.eu/latency-ms", "5ms",
         "network.fluidos.eu/latency-ms: expected a whole number of milliseconds such as '5', got '5ms'"),
        ("network.fluidos.eu/tier", "top tier",
         "network.fluidos.eu/tier: expected a name of letters, digits, '.', '_', ':' or '-' such as "
         "'eu-west-1', got 'top tier'"),
        ("gpu.fluidos.eu/tier", " premium",
         "gpu.fluidos.eu/tier: has leading or trailing spaces, which the FLUIDOS node does not ignore; "
         "write 'premium'"),
        ("gpu.fluidos.eu/memory-per-gpu", "",
         "gpu.fluidos.eu/memory-per-gpu: is empty; remove the annotation or give a value"),
    ],
)
def test_malformed_values_give_a_precise_error(key, value, message):
    result = parse_annotations({**MINIMAL, key: value})
    assert result.traits is None
    assert message.startswith(f"{key}: ")
    assert result.errors == [AnnotationError(key, value, message[len(key) + 2:])]
    assert str(result.errors[0]) == message


def test_a_misspelt_key_is_named_as_written():
    result = parse_annotations({**{k: v for k, v in MINIMAL.items() if "memory" not in k},
                                "gpu.fluidos.eu/memory": "40GB"})
    assert result.errors[0].key == "gpu.fluidos.eu/memory"
    assert str(result.errors[0]) == "gpu.fluidos.eu/memory: expected a Kubernetes quantity such as '80Gi', got '40GB'"


def test_all_errors_are_collected():
    result = parse_annotations({
        "gpu.fluidos.eu/vendor": "nvidia",
        "gpu.fluidos.eu/count": "-1",
        "gpu.fluidos.eu/memory-per-gpu": "40GB",
        "gpu.fluidos.eu/dedicated": "yes",
        "cost.fluidos.eu/hourly-rate": "cheap",
    })
    assert result.traits is None
    assert [error.key for error in result.errors] == [
        "gpu.fluidos.eu/count", "gpu.fluidos.eu/memory-per-gpu", "gpu.fluidos.eu/dedicated",
        "cost.fluidos.eu/hourly-rate", "gpu.fluidos.eu/model",
    ]


@pytest.mark.parametrize("missing", ["gpu.fluidos.eu/vendor", "gpu.fluidos.eu/model", "gpu.fluidos.eu/count",
                                     "gpu.fluidos.eu/memory-per-gpu"])
def test_required_minimum(missing):
    result = parse_annotations({key: value for key, value in MINIMAL.items() if key != missing})
    assert result.traits is None
    assert result.errors == [AnnotationError(missing, None, (
        "missing; a GPU node needs gpu.fluidos.eu/vendor, gpu.fluidos.eu/model, "
        "gpu.fluidos.eu/count (1 or more) and gpu.fluidos.eu/memory-per-gpu"
    ))]
    assert str(result.errors[0]).startswith(f"{missing}: missing; ")


def test_no_annotations_lists_every_required_key():
    result = parse_annotations({"node.alpha.kubernetes.io/ttl": "0"})
    assert [error.key for error in result.errors] == list(a.REQUIRED_KEYS)


def test_non_mapping_input_does_not_crash():
    result = parse_annotations(["gpu.fluidos.eu/count=4"])
    assert result.traits is None
    assert str(result.errors[0]) == "annotations must be a mapping of key to value, got list"


def test_values_that_are_not_strings():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/count": 4, "gpu.fluidos.eu/dedicated": True,
                                "gpu.fluidos.eu/topology": ["ring"]})
    assert [str(error) for error in result.errors] == [
        "gpu.fluidos.eu/topology: expected a string value, got list",
    ]
    ok = parse_annotations({**MINIMAL, "gpu.fluidos.eu/count": 4, "gpu.fluidos.eu/dedicated": True})
    assert (ok.traits.count, ok.traits.dedicated) == (4, True)


def test_unknown_trait_keys_are_warned_with_a_suggestion():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/teir": "premium", "workload.fluidos.eu/trainig-score": "1",
                                "example.com/whatever": "x"})
    assert result.errors == []
    assert "gpu.fluidos.eu/teir: not a GPU trait FLARE or the FLUIDOS node reads; did you mean gpu.fluidos.eu/tier?" \
        in result.warnings
    assert any(w.startswith("workload.fluidos.eu/trainig-score") and "workload.fluidos.eu/training-score" in w
               for w in result.warnings)
    assert not any("example.com" in w for w in result.warnings)


def test_catalogue_fills_what_is_missing_and_says_so():
    result = parse_annotations(MINIMAL)
    h100 = CATALOG["nvidia-h100"]
    traits = result.traits
    assert (traits.tier, traits.architecture, traits.cores_per_gpu, traits.fp32_tflops) == (
        h100.tier, h100.architecture, h100.cores, h100.fp32_tflops,
    )
    assert (traits.interconnect, traits.interconnect_bandwidth_gbps) == ("nvlink", 7200.0)
    assert (traits.training_score, traits.inference_score, traits.hpc_score, traits.graphics_score) == (
        h100.training_score, h100.inference_score, h100.hpc_score, h100.graphics_score,
    )
    assert set(result.inferred) == set(a.CATALOGUE_FIELDS)
    assert set(result.inferred.values()) == {"catalogue nvidia-h100"}
    # Not inferred: traits the catalogue does not own.
    assert traits.compute_capability == "" and traits.clock_speed == 0 and traits.region == ""


def test_catalogue_uses_the_memory_variant():
    traits = parse_annotations({**MINIMAL, "gpu.fluidos.eu/model": "nvidia-a100",
                                "gpu.fluidos.eu/memory-per-gpu": "40Gi"}).traits
    assert traits.training_score == lookup("nvidia-a100", 40 * GIB).training_score


def test_annotated_traits_are_not_overridden_by_the_catalogue():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/tier": "standard", "gpu.fluidos.eu/interconnect": "pcie"})
    assert result.traits.tier == "standard"
    assert result.traits.interconnect == "pcie"
    # NVLink bandwidth does not describe a PCIe interconnect.
    assert result.traits.interconnect_bandwidth_gbps == 0.0
    assert "tier" not in result.inferred and "interconnect_bandwidth_gbps" not in result.inferred


def test_catalogue_inference_can_be_turned_off():
    result = parse_annotations(MINIMAL, infer_from_catalogue=False)
    assert result.inferred == {}
    assert result.traits.tier == "" and result.traits.fp32_tflops is None


def test_unknown_model_is_accepted_with_a_warning():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/model": "b200", "gpu.fluidos.eu/memory-per-gpu": "180Gi"})
    assert result.errors == []
    assert result.traits.model == "nvidia-b200"
    assert result.inferred == {}
    assert any("nvidia-b200 is not in FLARE's GPU catalogue" in warning for warning in result.warnings)


def test_model_and_vendor_must_agree():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/vendor": "amd"})
    assert result.errors == [AnnotationError(
        "gpu.fluidos.eu/model", "nvidia-h100",
        "nvidia-h100 is an nvidia GPU, but gpu.fluidos.eu/vendor is 'amd'",
    )]


def test_memory_per_node_instead_of_per_gpu_is_warned():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/memory-per-gpu": "320Gi"})
    assert result.errors == []
    assert ("gpu.fluidos.eu/memory-per-gpu: 320Gi per GPU, but nvidia-h100 is sold with 80Gi; memory is per GPU, "
            "not per node") in result.warnings


def test_aliased_model_is_canonicalised_with_a_note():
    result = parse_annotations({**MINIMAL, "gpu.fluidos.eu/model": "NVIDIA-H100-80GB-HBM3"})
    assert result.traits.model == "nvidia-h100"
    assert any("is read as 'nvidia-h100'" in warning for warning in result.warnings)


def test_labels_check_the_resource_label():
    warned = parse_annotations(MINIMAL, labels={"kubernetes.io/hostname": "gpu-1"})
    assert any("node-role.fluidos.eu/resources=true" in warning for warning in warned.warnings)
    fine = parse_annotations(MINIMAL, labels={"node-role.fluidos.eu/resources": "true"})
    assert not any("node-role" in warning for warning in fine.warnings)


def test_gpu_operator_labels_fill_missing_annotations():
    labels = {
        "node-role.fluidos.eu/resources": "true",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
        "nvidia.com/gpu.memory": "40960",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.family": "ampere",
        "nvidia.com/gpu.compute.major": "8",
        "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/mig.capable": "true",
    }
    result = parse_annotations({"location.fluidos.eu/region": "eu-central-1", "gpu.fluidos.eu/count": "4"}, labels)
    assert result.errors == []
    traits = result.traits
    assert (traits.vendor, traits.model, traits.count, traits.memory_per_gpu) == ("nvidia", "nvidia-a100", 4, 40 * GIB)
    assert (traits.architecture, traits.compute_capability, traits.multi_instance) == ("ampere", "8.0", True)
    assert result.inferred["memory_per_gpu"] == "label nvidia.com/gpu.memory"
    assert result.inferred["model"] == "label nvidia.com/gpu.product"
    assert "count" not in result.inferred          # annotated: the annotation wins
    assert result.inferred["tier"] == "catalogue nvidia-a100"


def test_round_trip_through_annotations():
    annotations = to_annotations(H100_TRAITS)
    assert set(annotations) <= set(CLUSTER_KEYS.values())
    assert annotations["gpu.fluidos.eu/memory-per-gpu"] == "80Gi"
    assert annotations["gpu.fluidos.eu/clock-speed"] == "1980M"
    assert annotations["location.fluidos.eu/region"] == "eu-west-1"
    assert annotations["location.fluidos.eu/zone"] == "zone-a"
    result = parse_annotations(annotations)
    assert result.errors == [] and result.warnings == []
    assert result.traits == H100_TRAITS


def test_round_trip_of_catalogue_traits_for_every_model():
    for model in CATALOG.values():
        traits = model.traits(2, region="us-east-1", hourly_rate=Decimal("1.25"), network_latency_ms=0)
        assert parse_annotations(to_annotations(traits)).traits == traits


def test_to_annotations_leaves_out_empty_and_omitted_traits():
    traits = parse_annotations(MINIMAL).traits
    annotations = to_annotations(traits)
    assert "nvidia.fluidos.eu/mig-capable" not in annotations       # false
    assert "cost.fluidos.eu/hourly-rate" not in annotations         # unknown
    assert "cost.fluidos.eu/currency" not in annotations
    stated = to_annotations(traits, omit=parse_annotations(MINIMAL).inferred)
    assert stated == MINIMAL


def test_kubectl_annotate_command_is_shell_quoted():
    command = kubectl_annotate_command("gpu-node-1", {
        "provider.fluidos.eu/name": "O'Brien cloud",
        "gpu.fluidos.eu/count": 4,
        "gpu.fluidos.eu/dedicated": True,
    })
    assert command.startswith("kubectl annotate node gpu-node-1 --overwrite ")
    assert shlex.split(command) == [
        "kubectl", "annotate", "node", "gpu-node-1", "--overwrite",
        "gpu.fluidos.eu/count=4", "gpu.fluidos.eu/dedicated=true", "provider.fluidos.eu/name=O'Brien cloud",
    ]


def test_kubectl_annotate_command_from_traits():
    command = kubectl_annotate_command("node; rm -rf /", H100_TRAITS)
    arguments = shlex.split(command)
    assert arguments[3] == "node; rm -rf /"
    annotated = dict(argument.split("=", 1) for argument in arguments[5:])
    assert annotated == to_annotations(H100_TRAITS)


@pytest.mark.parametrize("node, annotations", [("", MINIMAL), ("gpu-1", {}), ("gpu-1", {"a": None})])
def test_kubectl_annotate_command_refuses_bad_input(node, annotations):
    with pytest.raises(ValueError):
        kubectl_annotate_command(node, annotations)


def test_key_constants():
    assert a.KEY_MEMORY_PER_GPU == "gpu.fluidos.eu/memory-per-gpu"
    assert a.KEY_MIG_CAPABLE == "nvidia.fluidos.eu/mig-capable"
    assert a.KEY_HOURLY_RATE == "cost.fluidos.eu/hourly-rate"
    assert a.KEY_NETWORK_BANDWIDTH == "network.fluidos.eu/bandwidth-gbps"
    assert a.KEY_TRAINING_SCORE == "workload.fluidos.eu/training-score"
    assert a.KEY_PREEMPTIBLE == "provider.fluidos.eu/preemptible"
    # One cluster key per GpuTraits field FLARE reads from annotations.
    assert len(set(CLUSTER_KEYS.values())) == len(CLUSTER_KEYS)


def test_labels_of_another_model_are_not_mixed_in():
    labels = {"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.memory": "15360", "nvidia.com/gpu.count": "1",
              "nvidia.com/gpu.compute.major": "7", "nvidia.com/gpu.compute.minor": "5"}
    result = parse_annotations(MINIMAL, labels)
    assert result.traits.compute_capability == ""
    assert not any(source.startswith("label") for source in result.inferred.values())
    assert any("labels describe nvidia-t4" in warning for warning in result.warnings)


def test_labels_that_are_not_a_mapping_are_ignored():
    result = parse_annotations(MINIMAL, labels=["nvidia.com/gpu.count=4"])
    assert result.errors == []
    assert any(warning.startswith("labels: expected a mapping") for warning in result.warnings)


def test_empty_labels_mean_unknown_labels():
    assert parse_annotations(MINIMAL, labels={}).warnings == parse_annotations(MINIMAL).warnings

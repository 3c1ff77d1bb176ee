"""Known GPU models: what a model id means, so traits a provider leaves out can be filled in.

Figures are the vendors' published specifications, for the form factor FLARE assumes when a
label or annotation names only the model (SXM/OAM boards for data-centre parts, the reference
board for the rest):

- NVIDIA data sheets: H200 Tensor Core GPU, H100 Tensor Core GPU (SXM5), A100 Tensor Core GPU
  (SXM4 40/80 GB), L40S, L4, A10, RTX A6000, Tesla V100 (SXM2), Tesla T4; the NVIDIA Hopper,
  Ada Lovelace (GeForce RTX 4090/4080), Ampere GA102 (GeForce RTX 3090), Volta and Turing
  architecture whitepapers; compute capabilities from developer.nvidia.com/cuda-gpus and the
  CUDA C++ Programming Guide.
- AMD data sheets: Instinct MI300X, Instinct MI250X (OAM), Radeon RX 7900 XTX product
  specifications; the CDNA 3 white paper.

Conventions:
- Memory is the vendor's nominal size, stored as GiB (``80GB`` on a data sheet is written
  ``80Gi`` in annotations, which is also what the GPU operators' labels round to).
- ``fp32_tflops`` is the peak non-tensor FP32 rate per GPU (RDNA 3 counts dual issue, as AMD
  does); ``tensor_tflops`` the dense (no sparsity) FP16/BF16 matrix rate (FP32 accumulate on
  GeForce cards); ``fp64_tflops`` the non-tensor FP64 rate.
- ``interconnect_bandwidth_gbps`` is the total bidirectional GPU-to-GPU bandwidth of the typical
  interconnect, in gigabits per second (NVLink 4: 900 GB/s = 7200 Gbps; PCIe 4.0 x16: 64 GB/s =
  512 Gbps).

Workload scores (0–1) are derived, not published. Each input is scaled as sqrt(x / catalogue
maximum), so the best GPU in the table scores 1 on that input and a GPU with a quarter of it
scores 0.5:

- training  = 0.5·tensor + 0.3·memory + 0.2·interconnect bandwidth
- inference = 0.5·tensor + 0.3·memory bandwidth + 0.2·(tensor per watt)
- hpc       = 0.6·fp64 + 0.4·memory bandwidth
- graphics  = 0.7·fp32 + 0.3·memory bandwidth, times 0.25 for compute-only parts without a
  graphics/ray-tracing pipeline (H100, H200, A100, V100, Instinct)

rounded to two decimals and clamped to [0.05, 1] (FLUIDOS drops a 0 score, which filters read
as "not published").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from flare_portal.units import format_gi
from providers.traits import GpuTraits

GIB = 1 << 30
MHZ = 1_000_000

VENDORS = ("nvidia", "amd", "intel")
TIERS = ("premium", "standard", "gaming", "inference", "budget")
ARCHITECTURES = (
    "blackwell", "hopper", "ada-lovelace", "ampere", "turing", "volta", "pascal",
    "cdna4", "cdna3", "cdna2", "cdna", "rdna4", "rdna3", "rdna2",
)
INTERCONNECTS = ("nvlink", "nvswitch", "infiniband", "pcie", "infinity-fabric")
TOPOLOGIES = ("all-to-all", "nvswitch", "ring", "mesh")
SHARING_STRATEGIES = ("none", "mig", "mps", "time-slicing", "sriov")


@dataclass(frozen=True)
class GpuModel:
    id: str                          # canonical model id: nvidia-h100
    name: str                        # marketing name
    vendor: str
    architecture: str
    tier: str
    memory_bytes: int                # per GPU
    memory_type: str
    memory_bandwidth_gbs: float      # GB/s
    cores: int                       # CUDA cores / stream processors
    fp32_tflops: float
    fp64_tflops: float
    tensor_tflops: float             # dense FP16/BF16 matrix
    compute_capability: str          # "" for AMD
    boost_clock_hz: int
    interconnect: str
    interconnect_bandwidth_gbps: float
    power_watts: int
    has_graphics: bool               # display/ray-tracing pipeline (graphics score)
    mig_capable: bool
    training_score: float
    inference_score: float
    hpc_score: float
    graphics_score: float
    # (memory bytes, memory bandwidth GB/s) of every variant sold, the default one included.
    memory_variants: tuple[tuple[int, float], ...] = ()

    @property
    def memory_gi(self) -> str:
        return format_gi(self.memory_bytes)

    def with_memory(self, memory_bytes: int) -> GpuModel:
        """The variant with this much memory (exact, or within 5%: 79.6Gi is the 80 GB part)."""
        for size, bandwidth in self.memory_variants:
            if abs(size - memory_bytes) <= size * 0.05:
                if size == self.memory_bytes:
                    return self
                return _scored(replace(self, memory_bytes=size, memory_bandwidth_gbs=bandwidth))
        sizes = ", ".join(format_gi(size) for size, _ in self.memory_variants)
        raise ValueError(f"{self.id} is sold with {sizes}, not {format_gi(memory_bytes)}")

    def traits(self, count: int, **changes) -> GpuTraits:
        """GpuTraits of a node with `count` of these GPUs, from the catalogue alone."""
        base = GpuTraits(
            vendor=self.vendor,
            model=self.id,
            count=count,
            memory_per_gpu=self.memory_bytes,
            cores_per_gpu=self.cores,
            clock_speed=self.boost_clock_hz,
            compute_capability=self.compute_capability,
            architecture=self.architecture,
            tier=self.tier,
            interconnect=self.interconnect,
            interconnect_bandwidth_gbps=self.interconnect_bandwidth_gbps,
            fp32_tflops=self.fp32_tflops,
            multi_instance=self.mig_capable,
            training_score=self.training_score,
            inference_score=self.inference_score,
            hpc_score=self.hpc_score,
            graphics_score=self.graphics_score,
        )
        return replace(base, **changes)


# id, name, vendor, architecture, tier, memory GiB variants [(GiB, GB/s)] (default first), memory
# type, cores, fp32, fp64, tensor, compute capability, boost MHz, interconnect, Gbps, watts,
# graphics pipeline, MIG.
_SPECS = [
    ("nvidia-h200", "NVIDIA H200 SXM", "nvidia", "hopper", "premium", [(141, 4800)], "HBM3e",
     16896, 67.0, 34.0, 989.4, "9.0", 1980, "nvlink", 7200, 700, False, True),
    ("nvidia-h100", "NVIDIA H100 SXM5", "nvidia", "hopper", "premium", [(80, 3350)], "HBM3",
     16896, 67.0, 34.0, 989.4, "9.0", 1980, "nvlink", 7200, 700, False, True),
    ("nvidia-a100", "NVIDIA A100 SXM4", "nvidia", "ampere", "premium", [(80, 2039), (40, 1555)], "HBM2e",
     6912, 19.5, 9.7, 312.0, "8.0", 1410, "nvlink", 4800, 400, False, True),
    ("nvidia-l40s", "NVIDIA L40S", "nvidia", "ada-lovelace", "standard", [(48, 864)], "GDDR6",
     18176, 91.6, 1.4, 362.1, "8.9", 2520, "pcie", 512, 350, True, False),
    ("nvidia-l4", "NVIDIA L4", "nvidia", "ada-lovelace", "inference", [(24, 300)], "GDDR6",
     7424, 30.3, 0.47, 121.0, "8.9", 2040, "pcie", 512, 72, True, False),
    ("nvidia-a10", "NVIDIA A10", "nvidia", "ampere", "standard", [(24, 600)], "GDDR6",
     9216, 31.2, 0.49, 125.0, "8.6", 1695, "pcie", 512, 150, True, False),
    ("nvidia-rtx-a6000", "NVIDIA RTX A6000", "nvidia", "ampere", "standard", [(48, 768)], "GDDR6",
     10752, 38.7, 0.6, 154.8, "8.6", 1800, "pcie", 512, 300, True, False),
    ("nvidia-rtx-4090", "NVIDIA GeForce RTX 4090", "nvidia", "ada-lovelace", "gaming", [(24, 1008)], "GDDR6X",
     16384, 82.6, 1.29, 165.2, "8.9", 2520, "pcie", 512, 450, True, False),
    ("nvidia-rtx-4080", "NVIDIA GeForce RTX 4080", "nvidia", "ada-lovelace", "gaming", [(16, 716.8)], "GDDR6X",
     9728, 48.7, 0.76, 97.5, "8.9", 2505, "pcie", 512, 320, True, False),
    ("nvidia-rtx-3090", "NVIDIA GeForce RTX 3090", "nvidia", "ampere", "gaming", [(24, 936)], "GDDR6X",
     10496, 35.6, 0.56, 71.0, "8.6", 1695, "pcie", 512, 350, True, False),
    ("nvidia-v100", "NVIDIA Tesla V100 SXM2", "nvidia", "volta", "budget", [(16, 900), (32, 900)], "HBM2",
     5120, 15.7, 7.8, 125.0, "7.0", 1530, "nvlink", 2400, 300, False, False),
    ("nvidia-t4", "NVIDIA Tesla T4", "nvidia", "turing", "inference", [(16, 320)], "GDDR6",
     2560, 8.1, 0.25, 65.0, "7.5", 1590, "pcie", 256, 70, True, False),
    ("amd-mi300x", "AMD Instinct MI300X", "amd", "cdna3", "premium", [(192, 5300)], "HBM3",
     19456, 81.7, 81.7, 1307.4, "", 2100, "infinity-fabric", 7168, 750, False, False),
    ("amd-mi250x", "AMD Instinct MI250X", "amd", "cdna2", "premium", [(128, 3276.8)], "HBM2e",
     14080, 47.9, 47.9, 383.0, "", 1700, "infinity-fabric", 6400, 500, False, False),
    ("amd-rx-7900xtx", "AMD Radeon RX 7900 XTX", "amd", "rdna3", "gaming", [(24, 960)], "GDDR6",
     6144, 61.4, 1.92, 122.8, "", 2500, "pcie", 512, 355, True, False),
]


def _maxima() -> dict[str, float]:
    rows = [
        {
            "tensor": spec[10], "memory": spec[5][0][0], "interconnect": spec[14],
            "memory_bandwidth": spec[5][0][1], "tensor_per_watt": spec[10] / spec[15],
            "fp64": spec[9], "fp32": spec[8],
        }
        for spec in _SPECS
    ]
    return {key: max(row[key] for row in rows) for key in rows[0]}


_MAXIMA = _maxima()


def _scale(value: float, key: str) -> float:
    return math.sqrt(min(value / _MAXIMA[key], 1.0))


def _clamp(score: float) -> float:
    return min(1.0, max(0.05, round(score, 2)))


def _scored(model: GpuModel) -> GpuModel:
    memory_gib = model.memory_bytes / GIB
    training = 0.5 * _scale(model.tensor_tflops, "tensor") + 0.3 * _scale(memory_gib, "memory") + 0.2 * _scale(
        model.interconnect_bandwidth_gbps, "interconnect"
    )
    inference = (
        0.5 * _scale(model.tensor_tflops, "tensor")
        + 0.3 * _scale(model.memory_bandwidth_gbs, "memory_bandwidth")
        + 0.2 * _scale(model.tensor_tflops / model.power_watts, "tensor_per_watt")
    )
    hpc = 0.6 * _scale(model.fp64_tflops, "fp64") + 0.4 * _scale(model.memory_bandwidth_gbs, "memory_bandwidth")
    graphics = 0.7 * _scale(model.fp32_tflops, "fp32") + 0.3 * _scale(model.memory_bandwidth_gbs, "memory_bandwidth")
    if not model.has_graphics:
        graphics *= 0.25
    return replace(
        model,
        training_score=_clamp(training),
        inference_score=_clamp(inference),
        hpc_score=_clamp(hpc),
        graphics_score=_clamp(graphics),
    )


def _build() -> dict[str, GpuModel]:
    catalog = {}
    for (model_id, name, vendor, architecture, tier, variants, memory_type, cores, fp32, fp64, tensor,
         capability, boost_mhz, interconnect, interconnect_gbps, watts, graphics, mig) in _SPECS:
        memory_gib, bandwidth = variants[0]
        catalog[model_id] = _scored(GpuModel(
            id=model_id, name=name, vendor=vendor, architecture=architecture, tier=tier,
            memory_bytes=memory_gib * GIB, memory_type=memory_type, memory_bandwidth_gbs=float(bandwidth),
            cores=cores, fp32_tflops=fp32, fp64_tflops=fp64, tensor_tflops=tensor,
            compute_capability=capability, boost_clock_hz=boost_mhz * MHZ, interconnect=interconnect,
            interconnect_bandwidth_gbps=float(interconnect_gbps), power_watts=watts, has_graphics=graphics,
            mig_capable=mig, training_score=0.0, inference_score=0.0, hpc_score=0.0, graphics_score=0.0,
            memory_variants=tuple((gib * GIB, float(bw)) for gib, bw in variants),
        ))
    return catalog


CATALOG: dict[str, GpuModel] = _build()

# Vendor and product-line words, form factors and memory kinds that do not change the model id
# (FLUIDOS.md §4: "model lower-case without form factor, memory, Instinct/Radeon/Pro").
_VENDOR_WORDS = {
    "nvidia": "nvidia", "tesla": "nvidia", "geforce": "nvidia", "quadro": "nvidia",
    "amd": "amd", "instinct": "amd", "radeon": "amd", "intel": "intel",
}
_NOISE_WORDS = {
    "pro", "sxm", "sxm2", "sxm3", "sxm4", "sxm5", "sxm6", "pcie", "pci", "nvl", "oam", "hgx", "dgx",
    "mezzanine", "hbm", "hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6", "gddr6x", "shared", "gpu",
}
_MEMORY_TOKEN = re.compile(r"^(?P<size>\d+)(gb|g|gib)$")

# Compact spellings (no vendor, no separators) → model id.
_COMPACT = {model_id.split("-", 1)[1].replace("-", ""): model_id for model_id in CATALOG}
_COMPACT.update({
    "a6000": "nvidia-rtx-a6000",
    "4090": "nvidia-rtx-4090",
    "4080": "nvidia-rtx-4080",
    "3090": "nvidia-rtx-3090",
    "7900xtx": "amd-rx-7900xtx",
})


def _tokens(name: str) -> list[str]:
    text = re.sub(r"[\s_/]+", "-", str(name).strip().lower())
    return [token for token in text.split("-") if token]


def split_model_name(name: str) -> tuple[str, int | None]:
    """"NVIDIA-A100-SXM4-40GB" → ("nvidia-a100", 40 GiB); "h100" → ("nvidia-h100", None).

    Unknown models keep their words, minus form factor and memory, behind the vendor:
    "NVIDIA-B200" → "nvidia-b200", "AMD-Radeon-PRO-W7900" → "amd-w7900".
    """
    vendor = ""
    memory = None
    kept = []
    for token in _tokens(name):
        if token in _VENDOR_WORDS:
            vendor = vendor or _VENDOR_WORDS[token]
            continue
        if token in _NOISE_WORDS:
            continue
        match = _MEMORY_TOKEN.match(token)
        if match:
            memory = int(match["size"]) * GIB
            continue
        kept.append(token)
    compact = "".join(kept)
    model_id = _COMPACT.get(compact)
    if model_id and (not vendor or CATALOG[model_id].vendor == vendor):
        return model_id, memory
    words = "-".join(kept)
    if vendor and words:
        return f"{vendor}-{words}", memory
    return words or vendor, memory


def canonical_model(name: str) -> str:
    """Lower-case catalogue id after aliases: "nvidia-a6000" and "RTX A6000" → "nvidia-rtx-a6000"."""
    if name is None:
        return ""
    return split_model_name(name)[0]


def lookup(name: str, memory_bytes: int | None = None) -> GpuModel | None:
    """The catalogue entry for a model name, in the memory variant the name or `memory_bytes` gives.

    A memory size the model is not sold with falls back to the default variant.
    """
    if not name:
        return None
    model_id, named_memory = split_model_name(name)
    model = CATALOG.get(model_id)
    if model is None:
        return None
    wanted = memory_bytes or named_memory
    if wanted:
        try:
            return model.with_memory(wanted)
        except ValueError:
            return model
    return model


_CAPABILITY = re.compile(r"^(?P<major>\d+)(?:\.(?P<minor>\d+))?$")
# nvcc target names: sm_86, sm_90a, compute_100 (the last digit is the minor version).
_SM_TARGET = re.compile(r"^(?:sm|compute)_?(?P<major>\d+)(?P<minor>\d)[a-z]?$")


def canonical_compute_capability(value) -> str:
    """"9" → "9.0", 8.6 → "8.6", "8.60" → "8.6", "sm_86" → "8.6", "sm_100" → "10.0".

    Raises ValueError on anything else."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a CUDA compute capability such as '9.0' or '8.6', got {value!r}")
    if isinstance(value, int):
        return f"{value}.0"
    text = str(value).strip().lower()
    match = _SM_TARGET.match(text) or _CAPABILITY.match(text)
    if not match:
        raise ValueError(f"expected a CUDA compute capability such as '9.0' or '8.6', got {value!r}")
    minor = (match["minor"] or "0").rstrip("0") or "0"
    return f"{int(match['major'])}.{minor}"


_ARCHITECTURE_ALIASES = {
    "ada": "ada-lovelace", "adalovelace": "ada-lovelace", "lovelace": "ada-lovelace",
    "cdna-3": "cdna3", "cdna-2": "cdna2", "cdna-4": "cdna4", "cdna-1": "cdna", "cdna1": "cdna",
    "rdna-3": "rdna3", "rdna-2": "rdna2", "rdna-4": "rdna4",
    # LLVM/ROCm targets, as ROCm tools print them.
    "gfx942": "cdna3", "gfx90a": "cdna2", "gfx908": "cdna", "gfx950": "cdna4",
    "gfx1100": "rdna3", "gfx1101": "rdna3", "gfx1102": "rdna3", "gfx1030": "rdna2",
}


def canonical_architecture(value: str) -> str:
    """"Ada Lovelace" → "ada-lovelace", "CDNA 3" → "cdna3". Unknown names are only normalised."""
    if value is None:
        return ""
    text = re.sub(r"[\s_]+", "-", str(value).strip().lower())
    text = re.sub(r"-+", "-", text).strip("-")
    return _ARCHITECTURE_ALIASES.get(text, _ARCHITECTURE_ALIASES.get(text.replace("-", ""), text))

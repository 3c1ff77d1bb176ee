"""A deterministic demo federation: providers and GPU nodes as plain data.

`generate_federation(seed)` returns the providers of a realistic FLUIDOS federation, each
with its Kubernetes GPU nodes described exactly as a provider cluster publishes them: node
annotations with the cluster keys of FLUIDOS.md §4, GPU-operator labels, capacity. The
simulated backend, `seed_federation`, the benchmarks and tests all start from it, so the
same seed always gives the same federation, byte for byte.

Prices are per GPU-hour in EUR and follow the 2025–2026 market (list prices converted at
about 0.92 EUR/USD): hyperscalers charge several times what neoclouds do for the same
Hopper/Ampere GPU, marketplaces rent consumer cards cheaply, spot/interruptible capacity is
40–65 % below on-demand, and an on-premise cluster charges an internal rate. The spread is
the point of the demo: cost, energy and latency objectives pick different providers.

Model constants (memory, cores, FP32, clock, compute capability, tier, interconnect, workload
scores) come from `providers.gpu_catalog`; `SKUS` only adds what a form factor changes (H100
and A100 PCIe cards against the catalogue's SXM boards) and what operators label.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from providers import gpu_catalog
from providers.traits import ProviderProfile

__all__ = [
    "SKUS",
    "REGIONS",
    "PRICES",
    "GpuSku",
    "Region",
    "NodeSpec",
    "ProviderSpec",
    "generate_federation",
    "iter_nodes",
    "summary",
]

KINDS = ("hyperscaler", "neocloud", "marketplace", "on-premise")
CURRENCY = "EUR"


# --------------------------------------------------------------------------- GPU SKUs

@dataclass(frozen=True)
class GpuSku:
    """One sellable GPU variant: the catalogue model plus what its form factor changes."""

    key: str                    # short id used in node names: h100-sxm, a100-pcie-40g
    model: str                  # canonical catalogue id: nvidia-h100
    vendor: str                 # nvidia | amd
    product: str                # GPU-operator gpu.product label
    memory_gi: int              # per GPU, nominal (annotation memory-per-gpu)
    label_memory: int           # nvidia.com/gpu.memory in MiB, amd.com/gpu.memory in MB
    cores: int                  # CUDA cores / stream processors per GPU
    fp32_tflops: float          # per GPU, non-tensor peak
    clock_hz: int               # boost clock
    compute_capability: str     # "" for AMD
    architecture: str
    tier: str
    interconnect: str           # nvlink | pcie | infinity-fabric
    interconnect_gbps: int      # catalogue unit: total bidirectional Gbps (NVLink 4 = 7200)
    mig_capable: bool
    form: str                   # sxm | pcie | oam
    host_cpu_per_gpu: int       # vCPUs the host gives each GPU
    host_memory_gi_per_gpu: int
    scores: tuple[float, float, float, float]   # training, inference, hpc, graphics

    @property
    def datacenter(self) -> bool:
        return self.tier != "gaming"

    @property
    def clock(self) -> str:
        """Boost clock as a Kubernetes quantity: 1980 MHz → "1.98G"."""
        return f"{(Decimal(self.clock_hz) / 10**9).normalize():f}G"


# key, catalogue model, memory GiB (selects the variant), gpu.product label, label memory
# (MiB as nvidia-smi reports it; MB for AMD), form, host vCPU and GiB per GPU, and what the
# form factor changes against the catalogue's SXM/OAM/reference figures.
_PCIE_GEN4 = {"interconnect": "pcie", "interconnect_gbps": 512}
_SKU_ROWS = (
    ("h200-sxm", "nvidia-h200", 141, "NVIDIA-H200", 143771, "sxm", 24, 256, {}),
    ("h100-sxm", "nvidia-h100", 80, "NVIDIA-H100-80GB-HBM3", 81559, "sxm", 24, 256, {}),
    ("h100-pcie", "nvidia-h100", 80, "NVIDIA-H100-PCIe", 81559, "pcie", 16, 192,
     {"cores": 14592, "fp32_tflops": 51.2, "clock_hz": 1_755_000_000, "interconnect": "pcie",
      "interconnect_gbps": 1024}),                     # H100 PCIe data sheet; PCIe 5.0 x16
    ("a100-sxm-80g", "nvidia-a100", 80, "NVIDIA-A100-SXM4-80GB", 81920, "sxm", 12, 128, {}),
    ("a100-pcie-80g", "nvidia-a100", 80, "NVIDIA-A100-PCIE-80GB", 81920, "pcie", 12, 128,
     _PCIE_GEN4),
    ("a100-sxm-40g", "nvidia-a100", 40, "NVIDIA-A100-SXM4-40GB", 40960, "sxm", 12, 144, {}),
    ("a100-pcie-40g", "nvidia-a100", 40, "NVIDIA-A100-PCIE-40GB", 40960, "pcie", 8, 96,
     _PCIE_GEN4),
    ("l40s", "nvidia-l40s", 48, "NVIDIA-L40S", 46068, "pcie", 16, 128, {}),
    ("l4", "nvidia-l4", 24, "NVIDIA-L4", 23034, "pcie", 8, 32, {}),
    ("a10", "nvidia-a10", 24, "NVIDIA-A10", 23028, "pcie", 8, 32, {}),
    ("rtx-a6000", "nvidia-rtx-a6000", 48, "NVIDIA-RTX-A6000", 49140, "pcie", 12, 64, {}),
    ("rtx-4090", "nvidia-rtx-4090", 24, "NVIDIA-GeForce-RTX-4090", 24564, "pcie", 8, 32, {}),
    ("rtx-4080", "nvidia-rtx-4080", 16, "NVIDIA-GeForce-RTX-4080", 16376, "pcie", 8, 32, {}),
    ("rtx-3090", "nvidia-rtx-3090", 24, "NVIDIA-GeForce-RTX-3090", 24576, "pcie", 8, 32, {}),
    ("v100-sxm2", "nvidia-v100", 32, "Tesla-V100-SXM2-32GB", 32768, "sxm", 8, 64, {}),
    ("t4", "nvidia-t4", 16, "Tesla-T4", 15360, "pcie", 4, 16, {}),
    ("mi300x", "amd-mi300x", 192, "AMD-Instinct-MI300X", 192000, "oam", 24, 256, {}),
    ("mi250x", "amd-mi250x", 128, "AMD-Instinct-MI250X", 128000, "oam", 16, 128, {}),
    ("rx-7900xtx", "amd-rx-7900xtx", 24, "AMD-Radeon-RX-7900-XTX", 24000, "pcie", 8, 32, {}),
)


def _load_skus() -> dict[str, GpuSku]:
    skus = {}
    for key, model_id, memory_gi, product, label_memory, form, cpu, host_gi, changes in _SKU_ROWS:
        model = gpu_catalog.lookup(model_id, memory_gi << 30)
        if model is None or model.id != model_id or model.memory_bytes != memory_gi << 30:
            raise LookupError(f"gpu_catalog has no {model_id} with {memory_gi}Gi")
        values = {
            "cores": model.cores, "fp32_tflops": model.fp32_tflops,
            "clock_hz": model.boost_clock_hz, "interconnect": model.interconnect,
            "interconnect_gbps": int(model.interconnect_bandwidth_gbps),
        }
        values.update(changes)
        skus[key] = GpuSku(
            key=key, model=model.id, vendor=model.vendor, product=product, memory_gi=memory_gi,
            label_memory=label_memory, compute_capability=model.compute_capability,
            architecture=model.architecture, tier=model.tier, mig_capable=model.mig_capable,
            form=form, host_cpu_per_gpu=cpu, host_memory_gi_per_gpu=host_gi,
            scores=(model.training_score, model.inference_score, model.hpc_score,
                    model.graphics_score),
            **values,
        )
    return skus


SKUS: dict[str, GpuSku] = _load_skus()


# --------------------------------------------------------------------------- prices
# On-demand EUR per GPU-hour by provider kind, before a provider's price factor and the
# per-node jitter. A kind only sells what it has a price for.
#
# Sources (2025–2026 list prices, USD → EUR at ~0.92):
# - Hyperscalers: AWS p5.48xlarge 8×H100 $55–98/h ($6.9–12.3/GPU; Jan-2026 cut to ~$80),
#   GCP a3-highgpu $11.06/GPU, Azure ND96isr_H100_v5 $88.49/h; GCP A100 40 GB $3.67/GPU,
#   80 GB $5.07/GPU; AWS g5.xlarge (A10G) $1.006/h, g6e (L40S) ~$1.86/h, g4dn (T4) $0.526/h,
#   p3 (V100) $3.06/GPU; Azure/Oracle MI300X ~$6/GPU.
# - Neoclouds: Lambda/CoreWeave/Crusoe H100 SXM $2.49–2.99, RunPod H100 SXM $2.69 and PCIe
#   $1.99–2.79, A100 80 GB $1.10–1.50, H200 $3.50–4.50, L40S $0.79–1.40, L4 ~$0.44–0.78,
#   RTX A6000 ~$0.80; MI300X at TensorWave $1.50, Crusoe spot $1.71, Vultr $1.85.
# - Marketplaces (Vast.ai, RunPod community): RTX 4090 $0.31–0.87, RTX 3090 $0.18–0.39,
#   RTX A6000 from $0.55, A100 40 GB from $0.40 interruptible, H100 PCIe $1.85–2.50;
#   interruptible 40–65 % below on-demand.
# - On-premise: internal cost-recovery rates of an academic HPC centre (estimate).
# Spot/interruptible nodes are priced at 35–60 % of on-demand (`SPOT_FACTOR`).
PRICES: dict[str, dict[str, str]] = {
    "hyperscaler": {
        "h200-sxm": "9.80", "h100-sxm": "9.20", "h100-pcie": "6.40", "a100-sxm-80g": "4.70",
        "a100-sxm-40g": "3.40", "a100-pcie-40g": "3.10", "l40s": "1.75", "l4": "0.70",
        "a10": "0.95", "v100-sxm2": "2.80", "t4": "0.48", "mi300x": "5.50",
    },
    "neocloud": {
        "h200-sxm": "3.30", "h100-sxm": "2.30", "h100-pcie": "1.95", "a100-sxm-80g": "1.35",
        "a100-pcie-80g": "1.25", "a100-sxm-40g": "1.05", "a100-pcie-40g": "0.95",
        "l40s": "0.95", "l4": "0.42", "a10": "0.60", "rtx-a6000": "0.72", "mi300x": "1.75",
        "mi250x": "1.10",
    },
    "marketplace": {
        "h100-pcie": "1.75", "a100-pcie-40g": "0.70", "rtx-a6000": "0.45", "rtx-4090": "0.52",
        "rtx-4080": "0.32", "rtx-3090": "0.26", "rx-7900xtx": "0.30", "t4": "0.15",
    },
    "on-premise": {
        "h100-sxm": "1.60", "a100-sxm-80g": "0.90", "a100-sxm-40g": "0.75", "l40s": "0.55",
        "rtx-a6000": "0.40", "v100-sxm2": "0.32", "t4": "0.18", "mi250x": "0.60",
    },
}
SPOT_FACTOR = (0.35, 0.60)
# Relative per-node jitter by kind: list prices are flat at hyperscalers, marketplace hosts
# set their own.
JITTER = {"hyperscaler": 0.02, "neocloud": 0.06, "marketplace": 0.15, "on-premise": 0.0}

_CENT = Decimal("0.01")


def _rate(base: str, factor: float) -> Decimal:
    return max(_CENT, (Decimal(base) * Decimal(repr(round(factor, 4)))).quantize(
        _CENT, rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- regions

@dataclass(frozen=True)
class Region:
    code: str
    city: str
    country: str                # lower-case English name (FLUIDOS.md §3.10: countries match)
    group: str                  # most specific location group of FLUIDOS.md §3.10
    carbon_intensity: int       # grid average, g CO2/kWh
    grid_renewable: float       # share of renewables in the grid mix
    style: str                  # aws (eu-west-1a) | gcp (europe-west4-a)
    latency_ms: int             # typical RTT from the EU consumer cluster

    def zones(self) -> tuple[str, ...]:
        if self.style == "aws":
            return tuple(f"{self.code}{z}" for z in "abc")
        return tuple(f"{self.code}-{z}" for z in "abc")


REGIONS: dict[str, Region] = {r.code: r for r in (
    Region("eu-central-1", "Frankfurt", "germany", "EU", 350, 0.55, "aws", 9),
    Region("eu-central-2", "Zurich", "switzerland", "EU", 40, 0.65, "aws", 12),
    Region("eu-west-1", "Dublin", "ireland", "EU", 290, 0.40, "aws", 22),
    Region("eu-west-2", "London", "united kingdom", "EU", 200, 0.50, "aws", 15),
    Region("eu-west-3", "Paris", "france", "EU", 55, 0.27, "aws", 12),
    Region("eu-north-1", "Stockholm", "sweden", "EU", 32, 0.70, "aws", 24),
    Region("eu-south-1", "Milan", "italy", "EU", 310, 0.42, "aws", 11),
    Region("eu-south-2", "Madrid", "spain", "EU", 150, 0.56, "aws", 26),
    Region("europe-west4", "Eemshaven", "netherlands", "EU", 330, 0.45, "gcp", 10),
    Region("europe-west1", "St. Ghislain", "belgium", "EU", 160, 0.30, "gcp", 9),
    Region("europe-west9", "Paris", "france", "EU", 55, 0.27, "gcp", 12),
    Region("europe-north1", "Hamina", "finland", "EU", 80, 0.52, "gcp", 30),
    Region("europe-central2", "Warsaw", "poland", "EU", 650, 0.27, "gcp", 21),
    Region("us-east-1", "N. Virginia", "united states", "US", 380, 0.10, "aws", 88),
    Region("us-east-2", "Ohio", "united states", "US", 480, 0.06, "aws", 97),
    Region("us-west-1", "N. California", "united states", "US", 220, 0.50, "aws", 148),
    Region("us-west-2", "Oregon", "united states", "US", 250, 0.60, "aws", 145),
    Region("us-central1", "Iowa", "united states", "US", 420, 0.60, "gcp", 110),
    Region("us-east4", "Ashburn", "united states", "US", 380, 0.10, "gcp", 89),
    Region("ca-central-1", "Montreal", "canada", "Canada", 30, 0.95, "aws", 85),
    Region("sa-east-1", "Sao Paulo", "brazil", "Brazil", 100, 0.85, "aws", 200),
    Region("southamerica-east1", "Sao Paulo", "brazil", "Brazil", 100, 0.85, "gcp", 200),
    Region("ap-northeast-1", "Tokyo", "japan", "Japan", 460, 0.22, "aws", 235),
    Region("ap-northeast-3", "Osaka", "japan", "Japan", 440, 0.22, "aws", 240),
    Region("asia-northeast1", "Tokyo", "japan", "Japan", 460, 0.22, "gcp", 235),
    Region("ap-southeast-1", "Singapore", "singapore", "Singapore", 400, 0.03, "aws", 165),
    Region("asia-southeast1", "Jurong West", "singapore", "Singapore", 400, 0.03, "gcp", 165),
    Region("ap-south-1", "Mumbai", "india", "India", 650, 0.20, "aws", 125),
    Region("asia-south1", "Mumbai", "india", "India", 650, 0.20, "gcp", 125),
    Region("ap-southeast-2", "Sydney", "australia", "Australia", 550, 0.35, "aws", 280),
    Region("australia-southeast1", "Sydney", "australia", "Australia", 550, 0.35, "gcp", 280),
    Region("ap-northeast-2", "Seoul", "south korea", "Asia", 430, 0.10, "aws", 255),
    Region("asia-east1", "Changhua", "taiwan", "Asia", 550, 0.10, "gcp", 250),
    Region("me-central-1", "Dubai", "united arab emirates", "Asia", 420, 0.10, "aws", 110),
)}


# --------------------------------------------------------------------------- specs

@dataclass
class NodeSpec:
    """One provider GPU node as its cluster publishes it."""

    name: str                   # Kubernetes node name, unique within its provider
    annotations: dict[str, str]
    labels: dict[str, str]
    cpu: str                    # quantities, as in the Flavor characteristics
    memory: str
    pods: str
    available: bool = True

    @property
    def model(self) -> str:
        return self.annotations["gpu.fluidos.eu/model"]

    @property
    def gpu_count(self) -> int:
        return int(self.annotations["gpu.fluidos.eu/count"])

    @property
    def hourly_rate(self) -> Decimal:
        return Decimal(self.annotations["cost.fluidos.eu/hourly-rate"])

    @property
    def interruptible(self) -> bool:
        return self.annotations["gpu.fluidos.eu/interruptible"] == "true"


@dataclass
class ProviderSpec:
    """One FLUIDOS provider (one cluster in one region) and its GPU nodes."""

    name: str
    kind: str                   # hyperscaler | neocloud | marketplace | on-premise
    fluidos_domain: str
    fluidos_node_id: str
    region: str
    zone: str                   # primary zone; hyperscaler nodes spread over the region's zones
    location_group: str         # most specific group of FLUIDOS.md §3.10 (EU, US, Japan…)
    latency_ms: int
    bandwidth_gbps: float
    offers_spot: bool
    renewable_share: float
    pue: float
    carbon_intensity: float     # g CO2/kWh
    energy_rating: str          # A–F
    green_certified: bool
    certifications: tuple[str, ...]
    currency: str = CURRENCY
    country: str = ""
    fluidos_ip: str = ""        # NodeIdentity ip ("ip:port")
    nodes: list[NodeSpec] = field(default_factory=list)

    def profile(self) -> ProviderProfile:
        return ProviderProfile(
            name=self.name, region=self.region, zone=self.zone,
            location_group=self.location_group, latency_ms=self.latency_ms,
            bandwidth_gbps=self.bandwidth_gbps, offers_spot=self.offers_spot,
            renewable_share=self.renewable_share, pue=self.pue,
            carbon_intensity=self.carbon_intensity, energy_rating=self.energy_rating,
            green_certified=self.green_certified, certifications=self.certifications,
            kind=self.kind,
        )


# --------------------------------------------------------------------------- plans

# A fleet line: (sku, GPUs per node, nodes, mode). mode: "od" (on-demand, dedicated),
# "spot" (interruptible/preemptible), or a sharing strategy: mig | time-slicing | mps | sriov.
Line = tuple[str, int, int, str]


@dataclass(frozen=True)
class _Plan:
    name: str
    kind: str
    region: str
    latency_ms: int
    bandwidth_gbps: float
    offers_spot: bool
    renewable_share: float
    pue: float
    carbon_intensity: float
    certifications: tuple[str, ...]
    price_factor: float
    lines: tuple[Line, ...]
    unavailable: int = 0
    domain: str = ""


_DEFAULT_PLANS: tuple[_Plan, ...] = (
    # Hyperscaler regions are separate FLUIDOS providers named as their operators name them;
    # the published API examples select them by these names (`providers: ["aws", "gcp"]`).
    _Plan("aws-eu", "hyperscaler", "eu-central-1", 9, 100, True, 0.72, 1.12, 350,
          ("ISO27001", "ISO27017", "ISO27018", "SOC2", "GDPR", "HIPAA", "PCI-DSS", "C5",
           "ISO50001"), 1.0,
          (("h100-sxm", 8, 2, "od"), ("h100-sxm", 8, 1, "spot"), ("h200-sxm", 8, 1, "od"),
           ("a100-sxm-80g", 8, 1, "od"), ("a100-sxm-80g", 8, 1, "mig"), ("l40s", 4, 1, "od"),
           ("l40s", 4, 1, "spot"), ("l4", 1, 1, "od"), ("l4", 1, 1, "time-slicing"),
           ("a10", 1, 1, "od"), ("a10", 4, 1, "time-slicing"), ("t4", 1, 1, "spot")),
          domain="aws-eu.fluidos.example"),
    _Plan("aws", "hyperscaler", "us-east-1", 88, 100, True, 0.55, 1.13, 380,
          ("ISO27001", "SOC2", "HIPAA", "PCI-DSS", "FedRAMP"), 0.95,
          (("h100-sxm", 8, 2, "od"), ("h100-sxm", 8, 1, "spot"), ("h200-sxm", 8, 1, "od"),
           ("a100-sxm-40g", 8, 2, "od"), ("a10", 4, 1, "od"), ("a10", 4, 2, "mps"),
           ("l4", 4, 1, "od"), ("t4", 1, 1, "od"), ("t4", 1, 1, "spot"),
           ("v100-sxm2", 8, 1, "od")),
          unavailable=1, domain="aws-us.fluidos.example"),
    _Plan("gcp", "hyperscaler", "us-central1", 110, 100, True, 0.60, 1.10, 420,
          ("ISO27001", "SOC2", "HIPAA", "PCI-DSS", "FedRAMP"), 1.02,
          (("a100-sxm-80g", 8, 1, "od"), ("h100-sxm", 8, 1, "od"), ("l4", 1, 2, "od"),
           ("l4", 4, 1, "spot"), ("t4", 1, 1, "od")),
          domain="gcp-us.fluidos.example"),
    _Plan("Fjord Compute", "neocloud", "eu-north-1", 24, 100, False, 1.0, 1.08, 32,
          ("ISO27001", "SOC2", "GDPR", "ISO14001", "ISO50001"), 0.92,
          (("h100-sxm", 8, 3, "od"), ("h100-sxm", 2, 1, "od"), ("h100-pcie", 1, 2, "od"),
           ("h200-sxm", 8, 1, "od"), ("a100-sxm-80g", 8, 2, "od"), ("a100-pcie-80g", 1, 1, "od"),
           ("l40s", 4, 1, "od")),
          domain="fjord-compute.fluidos.example"),
    _Plan("Lumen Compute", "neocloud", "us-west-2", 145, 100, True, 0.65, 1.20, 250,
          ("ISO27001", "SOC2", "HIPAA"), 1.0,
          (("h100-sxm", 8, 1, "od"), ("h100-sxm", 8, 1, "spot"), ("h100-pcie", 1, 2, "od"),
           ("a100-sxm-80g", 4, 1, "od"), ("a100-sxm-80g", 4, 1, "spot"),
           ("a100-pcie-40g", 1, 1, "od"), ("mi300x", 8, 1, "od"), ("mi300x", 8, 1, "sriov"),
           ("rtx-a6000", 2, 1, "od"), ("rtx-a6000", 1, 1, "od")),
          domain="lumen-compute.fluidos.example"),
    _Plan("GridMarket", "marketplace", "europe-central2", 26, 10, True, 0.25, 1.65, 650,
          ("GDPR",), 1.0,
          (("rtx-4090", 1, 2, "od"), ("rtx-4090", 1, 3, "spot"), ("rtx-4090", 2, 1, "spot"),
           ("rtx-4090", 4, 1, "od"), ("rtx-4090", 1, 4, "time-slicing"), ("rtx-4090", 4, 4, "time-slicing"), ("rtx-4080", 1, 2, "spot"), ("rtx-3090", 1, 1, "od"),
           ("rtx-3090", 1, 2, "spot"), ("rtx-3090", 2, 1, "spot"), ("rx-7900xtx", 1, 1, "od"),
           ("rx-7900xtx", 1, 1, "spot"), ("rtx-a6000", 1, 1, "od"), ("a100-pcie-40g", 1, 1, "spot")),
          unavailable=1, domain="gridmarket-eu.fluidos.example"),
    _Plan("Aurora University HPC", "on-premise", "eu-south-1", 3, 25, False, 0.45, 1.45, 310,
          ("ISO27001", "GDPR"), 1.0,
          (("v100-sxm2", 4, 2, "od"), ("v100-sxm2", 8, 1, "od"), ("t4", 4, 1, "time-slicing"),
           ("rtx-a6000", 2, 2, "od"), ("mi250x", 4, 1, "od"), ("a100-sxm-40g", 4, 1, "mig")),
          domain="hpc-aurora-uni.fluidos.example"),
    _Plan("Sakura GPU Cloud", "neocloud", "ap-northeast-1", 235, 40, False, 0.20, 1.35, 460,
          ("ISO27001", "SOC2", "ISMAP"), 1.40,
          (("h100-sxm", 8, 2, "od"), ("h200-sxm", 8, 1, "od"), ("a100-sxm-80g", 8, 1, "od"),
           ("l40s", 2, 1, "od"), ("l4", 1, 2, "od"), ("l4", 4, 1, "time-slicing")),
          domain="sakura-gpu.fluidos.example"),
)


# Weighted fleet mixes for generated providers: (sku, weight, GPU counts, sharing strategy
# offered on some nodes or "").
_MIXES: dict[str, tuple[tuple[str, float, tuple[int, ...], str], ...]] = {
    "hyperscaler": (
        ("h100-sxm", 16, (8,), "mig"), ("h200-sxm", 6, (8,), ""),
        ("a100-sxm-80g", 10, (8,), "mig"), ("a100-sxm-40g", 6, (8,), "mig"),
        ("l40s", 12, (1, 4, 8), ""), ("l4", 16, (1, 4, 8), "time-slicing"),
        ("a10", 12, (1, 4), "mps"), ("t4", 12, (1, 4), "time-slicing"),
        ("v100-sxm2", 4, (8,), ""), ("mi300x", 2, (8,), "sriov"), ("h100-pcie", 4, (1, 2), ""),
    ),
    "neocloud": (
        ("h100-sxm", 28, (8, 8, 8, 1, 2, 4), ""), ("h100-pcie", 8, (1, 2), ""),
        ("h200-sxm", 8, (8,), ""), ("a100-sxm-80g", 14, (8, 4), "mig"),
        ("a100-pcie-80g", 6, (1, 2), ""), ("a100-pcie-40g", 4, (1,), ""),
        ("l40s", 10, (1, 2, 4, 8), ""), ("rtx-a6000", 8, (1, 2, 4), ""), ("a10", 4, (1,), ""),
        ("mi300x", 6, (8,), "sriov"), ("mi250x", 2, (4,), ""), ("l4", 2, (1, 4), "time-slicing"),
    ),
    "marketplace": (
        ("rtx-4090", 30, (1, 1, 1, 2, 4, 8), ""), ("rtx-3090", 20, (1, 1, 2, 4), ""),
        ("rtx-4080", 12, (1, 2), ""), ("rx-7900xtx", 8, (1, 2), ""), ("rtx-a6000", 10, (1, 2), ""),
        ("a100-pcie-40g", 5, (1,), ""), ("h100-pcie", 5, (1,), ""), ("t4", 5, (1,), ""),
    ),
    "on-premise": (
        ("v100-sxm2", 20, (4, 8), ""), ("t4", 15, (1, 4), "time-slicing"),
        ("rtx-a6000", 20, (2, 4), ""), ("a100-sxm-40g", 15, (4, 8), "mig"),
        ("a100-sxm-80g", 10, (4, 8), "mig"), ("mi250x", 8, (4,), ""), ("l40s", 7, (4,), ""),
        ("h100-sxm", 5, (8,), "mig"),
    ),
}
_KIND_WEIGHTS = (("neocloud", 35), ("hyperscaler", 20), ("marketplace", 20), ("on-premise", 25))
_GROUP_WEIGHTS = (("EU", 35), ("US", 30), ("Japan", 6), ("Singapore", 5), ("India", 4),
                  ("Asia", 8), ("Canada", 4), ("Brazil", 3), ("Australia", 5))
_NEOCLOUD_BRANDS = (
    "Borealis GPU", "Cobalt Compute", "Vantage AI Cloud", "Tensorfield", "Aster Compute",
    "Helix GPU", "Quanta Grid", "Northwind AI", "Photon Cloud", "Kestrel Compute",
    "Meridian GPU", "Obsidian AI", "Polaris Compute", "Solace GPU", "Tidal Compute",
    "Zenith AI Cloud", "Ember GPU", "Arcadia Compute", "Lattice AI", "Nova Silicon",
)
_MARKET_BRANDS = ("GridMarket", "RigShare", "ClusterBazaar", "SpareCycles", "GPUHub Exchange")
_ONPREM_BRANDS = (
    "University HPC", "Research Computing Centre", "Institute of Technology HPC",
    "National Lab Cluster", "Enterprise AI Platform",
)
_HYPERSCALERS = (("Hyperion Cloud", "aws"), ("Nimbus Cloud", "gcp"))

_CERTS_BY_GROUP = {
    "EU": ("GDPR",), "US": ("HIPAA",), "Japan": ("ISMAP",), "Singapore": ("MTCS",),
    "India": (), "Asia": (), "Canada": ("PIPEDA",), "Brazil": ("LGPD",), "Australia": ("IRAP",),
}


# --------------------------------------------------------------------------- helpers

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _energy_rating(carbon: float, pue: float, renewable: float) -> str:
    """Location-based carbon per facility kWh, softened by the renewable share."""
    effective = carbon * pue * (1 - 0.5 * renewable)
    for grade, bound in (("A", 100), ("B", 200), ("C", 300), ("D", 400), ("E", 500)):
        if effective < bound:
            return grade
    return "F"


def _green(renewable: float, pue: float) -> bool:
    return renewable >= 0.8 and pue <= 1.25


def _quantity_gi(gi: int) -> str:
    return f"{gi // 1024}Ti" if gi % 1024 == 0 else f"{gi}Gi"


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _node_id(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))


def _topology(sku: GpuSku, count: int) -> tuple[str, float]:
    """(topology, multi-GPU efficiency) of `count` GPUs of `sku` in one node."""
    if count <= 1:
        return "", 1.0
    if sku.interconnect == "nvlink":
        if sku.form == "sxm" and sku.key.startswith("v100"):
            return ("mesh", 0.88) if count == 8 else ("all-to-all", 0.90)
        return ("nvswitch", 0.95) if count == 8 else ("all-to-all", 0.92)
    if sku.interconnect == "infinity-fabric":
        return ("all-to-all", 0.90) if sku.key == "mi300x" else ("mesh", 0.85)
    # PCIe: NCCL falls back to a ring; consumer cards have no peer-to-peer.
    return "ring", (0.78 if sku.datacenter else 0.70)


def _node_bandwidth(kind: str, sku: GpuSku, count: int, rng: random.Random) -> int:
    if kind == "marketplace":
        return rng.choice((1, 1, 5, 10))
    if sku.form in ("sxm", "oam") and count >= 4:
        return 400 if kind != "on-premise" else 200
    if kind == "on-premise":
        return 25
    return 100 if count > 1 else 50


def _network_tier(kind: str) -> str:
    return {"hyperscaler": "premium", "neocloud": "premium", "marketplace": "basic",
            "on-premise": "standard"}[kind]


# --------------------------------------------------------------------------- builders

def _make_provider(plan: _Plan, rng: random.Random) -> ProviderSpec:
    region = REGIONS[plan.region]
    zone = region.zones()[0]
    rating = _energy_rating(plan.carbon_intensity, plan.pue, plan.renewable_share)
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}:30000"
    return ProviderSpec(
        name=plan.name, kind=plan.kind,
        fluidos_domain=plan.domain or f"{_slug(plan.name)}.fluidos.example",
        fluidos_node_id=_node_id(rng), region=region.code, zone=zone,
        location_group=region.group, latency_ms=plan.latency_ms,
        bandwidth_gbps=float(plan.bandwidth_gbps), offers_spot=plan.offers_spot,
        renewable_share=round(plan.renewable_share, 2), pue=round(plan.pue, 2),
        carbon_intensity=float(plan.carbon_intensity), energy_rating=rating,
        green_certified=_green(plan.renewable_share, plan.pue),
        certifications=tuple(plan.certifications), currency=CURRENCY,
        country=region.country, fluidos_ip=ip,
    )


def _make_node(provider: ProviderSpec, plan: _Plan, sku: GpuSku, count: int, mode: str,
               index: int, zone: str, rng: random.Random) -> NodeSpec:
    kind = plan.kind
    spot = mode == "spot"
    sharing = mode if mode not in ("od", "spot") else "none"
    shared = sharing != "none"

    jitter = JITTER[kind]
    factor = plan.price_factor * (1 + rng.uniform(-jitter, jitter) if jitter else 1)
    if spot:
        factor *= rng.uniform(*SPOT_FACTOR)
    rate = _rate(PRICES[kind][sku.key], factor)

    topology, efficiency = _topology(sku, count)
    latency = provider.latency_ms + (rng.randint(0, 30) if kind == "marketplace"
                                     else rng.randint(0, 2))
    bandwidth = _node_bandwidth(kind, sku, count, rng)
    name = f"gpu-{sku.key}-{index:02x}"

    gpu = "gpu.fluidos.eu/"
    annotations = {
        gpu + "vendor": sku.vendor,
        gpu + "model": sku.model,
        gpu + "count": str(count),
        gpu + "memory-per-gpu": f"{sku.memory_gi}Gi",
        gpu + "cores": str(sku.cores),
        gpu + "tier": sku.tier,
        gpu + "architecture": sku.architecture,
        gpu + "interconnect": sku.interconnect,
        gpu + "interconnect-bandwidth-gbps": str(sku.interconnect_gbps),
        gpu + "clock-speed": sku.clock,
        gpu + "fp32-tflops": _fmt(sku.fp32_tflops, 1),
        gpu + "multi-gpu-efficiency": _fmt(efficiency),
        gpu + "sharing-strategy": sharing,
        gpu + "sharing-capable": _bool(shared),
        gpu + "dedicated": _bool(not shared),
        gpu + "interruptible": _bool(spot),
    }
    if sku.compute_capability:
        annotations[gpu + "compute-capability"] = sku.compute_capability
    if topology:
        annotations[gpu + "topology"] = topology
    if sku.vendor == "nvidia":
        annotations["nvidia.fluidos.eu/mig-capable"] = _bool(sku.mig_capable)
    annotations.update({
        "cost.fluidos.eu/hourly-rate": str(rate),
        "cost.fluidos.eu/currency": provider.currency,
        "location.fluidos.eu/region": provider.region,
        "location.fluidos.eu/zone": zone,
        "provider.fluidos.eu/name": provider.name,
        "provider.fluidos.eu/preemptible": _bool(spot),
        "workload.fluidos.eu/training-score": _fmt(sku.scores[0]),
        "workload.fluidos.eu/inference-score": _fmt(sku.scores[1]),
        "workload.fluidos.eu/hpc-score": _fmt(sku.scores[2]),
        "workload.fluidos.eu/graphics-score": _fmt(sku.scores[3]),
        "network.fluidos.eu/bandwidth-gbps": str(bandwidth),
        "network.fluidos.eu/latency-ms": str(latency),
        "network.fluidos.eu/tier": _network_tier(kind),
    })

    labels = {
        "node-role.fluidos.eu/resources": "true",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": provider.region,
        "topology.kubernetes.io/zone": zone,
        "node.kubernetes.io/instance-type": f"gpu-{count}x-{sku.key}",
    }
    if sku.vendor == "nvidia":
        major, minor = sku.compute_capability.split(".")
        labels.update({
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": sku.product,
            "nvidia.com/gpu.count": str(count),
            "nvidia.com/gpu.memory": str(sku.label_memory),
            "nvidia.com/gpu.family": sku.architecture,
            "nvidia.com/gpu.compute.major": major,
            "nvidia.com/gpu.compute.minor": minor,
            "nvidia.com/mig.capable": _bool(sku.mig_capable),
            "nvidia.com/cuda.driver.major": "550" if sku.architecture != "hopper" else "560",
            "feature.node.kubernetes.io/pci-10de.present": "true",
        })
        if sharing == "mig":
            labels["nvidia.com/mig.config"] = "all-balanced"
            labels["nvidia.com/mig.strategy"] = "mixed"
        elif sharing in ("time-slicing", "mps"):
            labels["nvidia.com/gpu.sharing-strategy"] = sharing
            labels["nvidia.com/gpu.replicas"] = "4"
    else:
        labels.update({
            "amd.com/gpu.product": sku.product,
            "amd.com/gpu.count": str(count),
            "amd.com/gpu.memory": str(sku.label_memory),
            "amd.com/gpu.family": sku.architecture,
            "feature.node.kubernetes.io/pci-1002.present": "true",
        })
        if sharing == "sriov":
            labels["amd.com/sriov.capable"] = "true"
    if spot:
        labels["node.fluidos.eu/lifecycle"] = "spot"

    return NodeSpec(
        name=name, annotations=annotations, labels=labels,
        cpu=str(sku.host_cpu_per_gpu * count),
        memory=_quantity_gi(sku.host_memory_gi_per_gpu * count),
        pods="250" if count >= 8 else "110",
        available=True,
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _build(plan: _Plan, rng: random.Random, limit: int | None = None) -> ProviderSpec:
    """Build a provider from its plan; with `limit`, keep an evenly mixed subset of nodes."""
    provider = _make_provider(plan, rng)
    region = REGIONS[plan.region]
    zones = region.zones() if plan.kind == "hyperscaler" else (provider.zone,)

    nodes: list[NodeSpec] = []
    ranks: list[tuple[int, int]] = []        # (round within its line, line index) for trimming
    index = 0
    for line_no, (sku_key, count, n, mode) in enumerate(plan.lines):
        sku = SKUS[sku_key]
        for k in range(n):
            zone = zones[index % len(zones)]
            nodes.append(_make_node(provider, plan, sku, count, mode, index, zone, rng))
            ranks.append((k, line_no))
            index += 1

    if limit is not None and limit < len(nodes):
        keep = set(sorted(range(len(nodes)), key=lambda i: ranks[i])[:limit])
        nodes = [node for i, node in enumerate(nodes) if i in keep]

    if plan.unavailable and nodes:
        unavailable = min(plan.unavailable, max(0, len(nodes) - 1))
        for node in rng.sample(nodes, unavailable):
            node.available = False
    provider.nodes = nodes
    return provider


def _weighted(rng: random.Random, pairs) -> str:
    names = [name for name, _ in pairs]
    return rng.choices(names, weights=[w for _, w in pairs])[0]


def _extra_plan(rng: random.Random, size: int, used_names: set[str]) -> _Plan:
    """A generated provider with `size` nodes, drawn from the same distributions."""
    kind = _weighted(rng, _KIND_WEIGHTS)
    group = _weighted(rng, _GROUP_WEIGHTS)
    style = None
    if kind == "hyperscaler":
        brand, style = rng.choice(_HYPERSCALERS)
    elif kind == "neocloud":
        brand = rng.choice(_NEOCLOUD_BRANDS)
    elif kind == "marketplace":
        brand = rng.choice(_MARKET_BRANDS)
    else:
        brand = rng.choice(_ONPREM_BRANDS)
    candidates = [r for r in REGIONS.values()
                  if r.group == group and (style is None or r.style == style)]
    if not candidates:
        candidates = [r for r in REGIONS.values() if style is None or r.style == style]
    region = rng.choice(candidates)

    if kind == "on-premise":
        base = f"{region.city} {brand}"
    else:
        base = f"{brand} {region.city}"
    name, n = base, 2
    while name in used_names:
        name, n = f"{base} {n}", n + 1
    used_names.add(name)

    carbon = round(region.carbon_intensity * rng.uniform(0.92, 1.08))
    if kind == "hyperscaler":
        renewable = min(1.0, region.grid_renewable + rng.uniform(0.25, 0.45))
        pue, factor, spot = rng.uniform(1.08, 1.15), rng.uniform(0.95, 1.15), True
        latency, bandwidth = region.latency_ms + rng.randint(0, 4), 100
        certs = ("ISO27001", "ISO27017", "SOC2", "PCI-DSS", "ISO50001")
    elif kind == "neocloud":
        renewable = min(1.0, region.grid_renewable + rng.uniform(0.0, 0.35))
        pue, factor = rng.uniform(1.08, 1.35), rng.uniform(0.85, 1.40)
        spot = rng.random() < 0.5
        latency, bandwidth = region.latency_ms + rng.randint(2, 12), rng.choice((40, 100))
        certs = ("ISO27001", "SOC2") if rng.random() < 0.7 else ("ISO27001",)
    elif kind == "marketplace":
        renewable = max(0.0, region.grid_renewable - rng.uniform(0.0, 0.2))
        pue, factor, spot = rng.uniform(1.5, 1.9), rng.uniform(0.9, 1.1), True
        latency, bandwidth = region.latency_ms + rng.randint(15, 45), rng.choice((5, 10))
        certs = ()
    else:
        renewable = min(1.0, region.grid_renewable + rng.uniform(0.0, 0.2))
        pue, factor, spot = rng.uniform(1.3, 1.7), rng.uniform(0.9, 1.1), False
        latency, bandwidth = region.latency_ms + rng.randint(0, 5), rng.choice((10, 25))
        certs = ("ISO27001",) if rng.random() < 0.5 else ()
    certs = certs + _CERTS_BY_GROUP[region.group]
    if kind == "hyperscaler" and region.group != "US":
        certs += ("HIPAA",)
    if _green(renewable, pue):
        certs += ("ISO14001",)

    mix = _MIXES[kind]
    weights = [w for _, w, _, _ in mix]
    groups: dict[tuple[str, int, str], int] = {}
    for _ in range(size):
        sku_key, _, counts, sharing = rng.choices(mix, weights=weights)[0]
        count = rng.choice(counts)
        roll = rng.random()
        if spot and roll < (0.6 if kind == "marketplace" else 0.2):
            mode = "spot"
        elif sharing and roll > 0.85:
            mode = sharing
        else:
            mode = "od"
        groups[(sku_key, count, mode)] = groups.get((sku_key, count, mode), 0) + 1
    lines = tuple((sku_key, count, n, mode) for (sku_key, count, mode), n in groups.items())
    unavailable = sum(1 for _ in range(size) if rng.random() < 0.03)

    return _Plan(
        name=name, kind=kind, region=region.code, latency_ms=latency,
        bandwidth_gbps=bandwidth, offers_spot=spot, renewable_share=round(renewable, 2),
        pue=round(pue, 2), carbon_intensity=carbon, certifications=certs,
        price_factor=factor, lines=lines, unavailable=unavailable,
    )


def _plan_size(plan: _Plan) -> int:
    return sum(n for _, _, n, _ in plan.lines)


def _allocate(total: int, sizes: list[int]) -> list[int]:
    """Split `total` over `sizes` proportionally (largest remainder, ties by position)."""
    whole = sum(sizes)
    quotas = [total * s / whole for s in sizes]
    shares = [int(q) for q in quotas]
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


# --------------------------------------------------------------------------- public API

def generate_federation(seed: int = 7, nodes: int | None = None) -> list[ProviderSpec]:
    """The demo federation for `seed`.

    Without `nodes`: seven providers across EU, US and Japan (two hyperscaler regions, three
    neoclouds, a marketplace, an on-premise university cluster), 79 GPU nodes. With
    `nodes=N`: exactly N nodes; below the default size the seven providers are trimmed
    evenly, above it generated providers in further regions are added with the same
    distributions. Deterministic for a given (seed, nodes).
    """
    if nodes is not None:
        if isinstance(nodes, bool) or not isinstance(nodes, int):
            raise TypeError("nodes must be an int or None")
        if nodes < 0:
            raise ValueError("nodes must be >= 0")

    def provider_rng(i: int) -> random.Random:
        return random.Random(f"flare-demo:{seed}:provider:{i}")

    default_sizes = [_plan_size(p) for p in _DEFAULT_PLANS]
    default_total = sum(default_sizes)

    if nodes is None or nodes == default_total:
        return [_build(p, provider_rng(i)) for i, p in enumerate(_DEFAULT_PLANS)]

    if nodes < default_total:
        shares = _allocate(nodes, default_sizes)
        return [_build(p, provider_rng(i), limit=share)
                for i, (p, share) in enumerate(zip(_DEFAULT_PLANS, shares)) if share > 0]

    federation = [_build(p, provider_rng(i)) for i, p in enumerate(_DEFAULT_PLANS)]
    used = {p.name for p in _DEFAULT_PLANS}
    plan_rng = random.Random(f"flare-demo:{seed}:plans")
    remaining = nodes - default_total
    i = len(_DEFAULT_PLANS)
    while remaining > 0:
        size = min(remaining, plan_rng.randint(20, 160))
        plan = _extra_plan(plan_rng, size, used)
        federation.append(_build(plan, provider_rng(i)))
        remaining -= size
        i += 1
    return federation


def iter_nodes(federation: list[ProviderSpec]) -> Iterator[tuple[ProviderSpec, NodeSpec]]:
    """Every (provider, node) pair, in federation order."""
    for provider in federation:
        for node in provider.nodes:
            yield provider, node


def summary(federation: list[ProviderSpec]) -> dict:
    """Counts and price ranges, as plain JSON-ready data (rates as decimal strings)."""
    gpus_by_model: Counter[str] = Counter()
    nodes_by_kind: Counter[str] = Counter()
    nodes_by_group: Counter[str] = Counter()
    prices: dict[str, list[Decimal]] = {}
    available = 0
    for provider, node in iter_nodes(federation):
        gpus_by_model[node.model] += node.gpu_count
        nodes_by_kind[provider.kind] += 1
        nodes_by_group[provider.location_group] += 1
        prices.setdefault(node.model, []).append(node.hourly_rate)
        available += node.available
    currencies = sorted({p.currency for p in federation})
    return {
        "providers": len(federation),
        "nodes": sum(nodes_by_kind.values()),
        "available_nodes": available,
        "gpus": sum(gpus_by_model.values()),
        "gpus_by_model": dict(sorted(gpus_by_model.items())),
        "nodes_by_kind": dict(sorted(nodes_by_kind.items())),
        "nodes_by_location_group": dict(sorted(nodes_by_group.items())),
        "price_ranges": {
            model: {"min": str(min(rates)), "max": str(max(rates)),
                    "currency": currencies[0] if len(currencies) == 1 else ""}
            for model, rates in sorted(prices.items())
        },
        "currencies": currencies,
    }

"""Typed GPU traits of one node, and the provider attributes placement needs.

Plain Python, no ORM: this is the one vocabulary shared by annotation parsing, the
Flavor view, matching/ranking and both federation backends. Units are fixed here so
nobody has to guess: memory in bytes *per GPU*, clock in Hz, bandwidths in Gbps,
prices per GPU-hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal


@dataclass(frozen=True)
class GpuTraits:
    vendor: str = ""                     # nvidia | amd | intel
    model: str = ""                      # canonical catalogue id: nvidia-h100, amd-mi300x
    count: int = 0                       # GPUs on the node
    memory_per_gpu: int = 0              # bytes
    cores_per_gpu: int = 0               # CUDA cores / stream processors
    clock_speed: int = 0                 # Hz (boost clock)
    compute_capability: str = ""         # "9.0"; "" when not published (AMD)
    architecture: str = ""               # hopper, ada-lovelace, ampere, turing, volta, cdna3, rdna3…
    tier: str = ""                       # premium | standard | gaming | inference | budget
    interconnect: str = ""               # nvlink | nvswitch | infiniband | pcie | infinity-fabric
    interconnect_bandwidth_gbps: float = 0.0
    topology: str = ""                   # all-to-all | nvswitch | ring | mesh
    multi_gpu_efficiency: float | None = None   # 0–1
    fp32_tflops: float | None = None     # per GPU
    sharing_strategy: str = ""           # none | mig | mps | time-slicing | sriov
    shared: bool = False
    dedicated: bool = False
    interruptible: bool = False
    multi_instance: bool = False
    training_score: float | None = None
    inference_score: float | None = None
    hpc_score: float | None = None
    graphics_score: float | None = None
    hourly_rate: Decimal | None = None   # per GPU-hour
    currency: str = "EUR"
    # Location and network, un-swapped (FLUIDOS.md §3.9): region is the real region.
    region: str = ""
    zone: str = ""
    provider: str = ""
    preemptible: bool = False
    network_bandwidth_gbps: float | None = None
    network_latency_ms: int | None = None
    network_tier: str = ""

    @property
    def memory_total(self) -> int:
        return self.memory_per_gpu * self.count

    @property
    def cores_total(self) -> int:
        return self.cores_per_gpu * self.count

    def with_(self, **changes) -> GpuTraits:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.hourly_rate is not None:
            data["hourly_rate"] = str(self.hourly_rate)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GpuTraits:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("hourly_rate") not in (None, ""):
            values["hourly_rate"] = Decimal(str(values["hourly_rate"]))
        return cls(**values)


@dataclass(frozen=True)
class ProviderProfile:
    """What placement knows about the provider that owns a node."""

    name: str
    region: str = ""
    zone: str = ""
    location_group: str = ""             # EU | US | Asia | …
    latency_ms: int | None = None
    bandwidth_gbps: float | None = None
    offers_spot: bool = False
    renewable_share: float | None = None     # 0–1
    pue: float | None = None
    carbon_intensity: float | None = None    # grid g CO2 / kWh
    energy_rating: str = ""                  # A–F
    green_certified: bool = False
    certifications: tuple[str, ...] = ()     # ISO27001, SOC2, GDPR, HIPAA…
    kind: str = ""                           # hyperscaler | neocloud | marketplace | on-premise


@dataclass(frozen=True)
class Offer:
    """One node as a placement candidate: its traits, its provider, and free capacity now."""

    node_id: str                 # stable id (GpuNode pk as str, or flavor name on Kubernetes)
    node_name: str
    flavor_name: str
    traits: GpuTraits
    provider: ProviderProfile
    free_gpus: int
    total_gpus: int
    power_watts: int | None = None   # per GPU, from the catalogue, for carbon estimates
    extra: dict = field(default_factory=dict, compare=False)
    cpu_millicores: int | None = None    # node allocatable CPU (None: not published)
    memory_bytes: int | None = None      # node allocatable memory

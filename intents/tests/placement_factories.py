"""Hand-built offers and normalised intent documents for the placement tests."""

from __future__ import annotations

import copy
from decimal import Decimal

from flare_portal.units import parse_bytes
from providers.traits import GpuTraits, Offer, ProviderProfile

_TRAIT_FIELDS = set(GpuTraits.__dataclass_fields__)
_PROVIDER_FIELDS = set(ProviderProfile.__dataclass_fields__) - {"name"}

# Realistic per-model defaults (vendor data sheets), so tests only spell out what they vary.
MODELS = {
    "nvidia-h100": dict(vendor="nvidia", memory="80Gi", cores=16896, clock=1_980_000_000, cc="9.0",
                        architecture="hopper", tier="premium", fp32=66.9, training=1.0, inference=0.95,
                        interconnect="nvlink", watts=700),
    "nvidia-a100": dict(vendor="nvidia", memory="80Gi", cores=6912, clock=1_410_000_000, cc="8.0",
                        architecture="ampere", tier="standard", fp32=19.5, training=0.7, inference=0.65,
                        interconnect="nvlink", watts=400),
    "nvidia-rtx-4090": dict(vendor="nvidia", memory="24Gi", cores=16384, clock=2_520_000_000, cc="8.9",
                            architecture="ada-lovelace", tier="gaming", fp32=82.6, training=0.45,
                            inference=0.5, interconnect="pcie", watts=450),
    "nvidia-t4": dict(vendor="nvidia", memory="16Gi", cores=2560, clock=1_590_000_000, cc="7.5",
                      architecture="turing", tier="inference", fp32=8.1, training=0.15, inference=0.3,
                      interconnect="pcie", watts=70),
    "amd-mi300x": dict(vendor="amd", memory="192Gi", cores=19456, clock=2_100_000_000, cc="",
                       architecture="cdna3", tier="premium", fp32=81.7, training=0.95, inference=0.9,
                       interconnect="infinity-fabric", watts=750),
}


def make_offer(name: str, model: str = "nvidia-h100", *, free: int = 8, total: int | None = None,
               rate="4.00", region: str = "eu-west-1", zone: str = "zone-a", provider: str = "aws",
               power_watts: int | None = None, node_id: str | None = None, **overrides) -> Offer:
    """One node. Keyword overrides go to GpuTraits or ProviderProfile by field name."""
    spec = MODELS.get(model, {})
    total = free if total is None else total
    traits = dict(
        vendor=spec.get("vendor", model.split("-")[0]),
        model=model,
        count=total,
        memory_per_gpu=parse_bytes(spec.get("memory", "16Gi")),
        cores_per_gpu=spec.get("cores", 0),
        clock_speed=spec.get("clock", 0),
        compute_capability=spec.get("cc", ""),
        architecture=spec.get("architecture", ""),
        tier=spec.get("tier", ""),
        interconnect=spec.get("interconnect", ""),
        fp32_tflops=spec.get("fp32"),
        training_score=spec.get("training"),
        inference_score=spec.get("inference"),
        multi_gpu_efficiency=0.9,
        hourly_rate=None if rate is None else Decimal(str(rate)),
        region=region,
        zone=zone,
        provider=provider,
    )
    profile = dict(region=region, zone=zone)
    for key, value in overrides.items():
        if key in _TRAIT_FIELDS:
            traits[key] = value
        elif key in _PROVIDER_FIELDS:
            profile[key] = value
        else:
            raise TypeError(f"unknown offer field {key!r}")
    if isinstance(traits.get("hourly_rate"), (str, int, float)):
        traits["hourly_rate"] = Decimal(str(traits["hourly_rate"]))
    return Offer(
        node_id=node_id or name,
        node_name=name,
        flavor_name=f"{provider}-k8slice-{name}",
        traits=GpuTraits(**traits),
        provider=ProviderProfile(name=provider, **profile),
        free_gpus=free,
        total_gpus=total,
        power_watts=power_watts if power_watts is not None else spec.get("watts"),
    )


def make_doc(*, objective: str = "Cost_Minimization", gpu: dict | None = None, constraints: dict | None = None,
             type: str = "batch", units: int = 1, strategy: str | None = None, timeout: str | None = None,
             sla: dict | None = None, pattern: str | None = None) -> dict:
    """A normalised intent document, shaped as intents/schema.py produces it."""
    workload = {
        "type": type,
        "name": "job",
        "image": "pytorch/pytorch:2.3",
        "resources": {"cpu": "8", "memory": "32Gi", "gpu": {"count": 1, **(gpu or {})}},
    }
    if strategy:
        workload["deployment_strategy"] = strategy
    if pattern:
        workload["communication_pattern"] = pattern
    if type == "batch":
        workload["batch"] = {"parallel_tasks": units, "max_retries": 3, "completion_policy": "All"}
        if timeout:
            workload["batch"]["timeout"] = timeout
    else:
        workload["scaling"] = {"min_replicas": units, "max_replicas": max(10, units)}
    doc = {
        "objective": objective,
        "workload": workload,
        "constraints": {"max_latency_ms": 100, "preemptible": False, **(constraints or {})},
    }
    if sla:
        doc["sla"] = sla
    return doc


def apply_patch(doc: dict, patch: dict) -> dict:
    """The document after a suggestion's `relax` change (None removes a field)."""
    out = copy.deepcopy(doc)

    def merge(target: dict, change: dict):
        for key, value in change.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            elif value is None:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(value)

    merge(out, patch)
    return out

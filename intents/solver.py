"""Intent document → FLUIDOS Solver manifest (FLUIDOS.md §2 filter language, §6.1).

The Solver FLARE creates runs with `findCandidate: true, reserveAndBuy: false`, so the cluster
never applies `gpuFilters` itself: FLARE ranks the PeeringCandidates with the semantics of
FLUIDOS.md §3. The filters still carry every GPU requirement of the intent, because they are what
operators read (`kubectl get solver -o yaml`, `GET /intents/{id}/solver`) and because the
manifest must stay a correct request in FLUIDOS's own language. Where FLUIDOS's evaluation
differs from FLARE's, the filter is written so that FLUIDOS would evaluate it correctly:

- `memory` and `cores` are node totals in a Flavor, so the filter states the request as a
  total: the per-GPU bound × `count` (80Gi per GPU × 2 GPUs → `min: 160Gi`). A total cannot
  state a per-GPU bound exactly for a node with more GPUs than requested; FLARE checks the
  per-GPU value itself (node total ÷ node count, FLUIDOS.md §3.1).
- `count` is a NumberRangeFilter `{min}`: a NumberMatchFilter is exact, and a 4-GPU node serves
  a 1-GPU request.
- `fp32_tflops` is a float in the Flavor: NumberRangeFilter (a Resource filter on a float
  rejects every Flavor). `multi_gpu_efficiency` is a *string* ("0.95") in the Flavor: a Number
  filter on a string rejects every Flavor, while a Resource filter parses the string as a
  quantity, so it is a ResourceRangeSelector `{min: "0.9"}`.
- BooleanFilter is inverted in FLUIDOS (`true` matches nothing, `false` matches only nodes
  whose trait is true). A required capability (`shared: true` in the intent) is therefore
  written `data: false`; a capability that is not required is not written at all.
- `any` or an absent value writes nothing (`StringFilter {value: Any}` matches nothing).
- `storageFilter` is never written (providers answer 400 and the Discovery fails).
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

import yaml

from flare_portal import units

API_VERSION = "nodecore.fluidos.eu/v1alpha1"
KIND = "Solver"
NAMESPACE = "fluidos"
FLAVOR_TYPE = "K8Slice"
DISCOVERY_MARKER_FIELD = "flare_discovery"

LABEL_INTENT = "flare.io/intent-id"
LABEL_TENANT = "flare.io/tenant"
LABEL_USER = "flare.io/user"
LABEL_FLUIDOS_INTENT = "intentID"
ANNOTATION_SEMANTICS = "flare.io/gpu-filter-semantics"
SEMANTICS_NOTE = (
    "Evaluated by FLARE, not by this Solver (reserveAndBuy is false). memory and cores are node "
    "totals (per-GPU bound x count); BooleanFilter false means the trait is required (FLUIDOS "
    "inverts BooleanFilter)."
)

# The GPU vendors whose models FLUIDOS names `<vendor>-<model>` (FLUIDOS.md §4).
VENDORS = ("nvidia", "amd", "intel")
STRING_FIELDS = ("compute_capability", "architecture", "tier", "interconnect", "topology")
BOOLEAN_FIELDS = ("shared", "interruptible", "multi_instance", "dedicated")

_LABEL_VALUE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_SIMPLE_QUANTITY = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)


def label_value(value) -> str:
    """A Kubernetes label value (≤ 63 characters, alphanumeric ends, `-_.` inside)."""
    raw = str(value)
    text = _LABEL_VALUE_CHARS.sub("-", raw).strip("-_.")
    if len(text) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        text = f"{text[:54].rstrip('-_.')}-{digest}"
    return text


def solver_name(intent_id: str, attempt: int = 1) -> str:
    """`flare-<intent_id>-<attempt>` as a DNS-1123 subdomain."""
    name = f"flare-{intent_id}-{int(attempt)}".lower()
    name = re.sub(r"[^a-z0-9.-]+", "-", name).strip("-.")
    return name[:253].rstrip("-.")


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


def _times(quantity: str, factor: int) -> str:
    """A quantity string × an integer, keeping its unit ("80Gi" × 2 → "160Gi")."""
    if factor == 1:
        return quantity
    match = _SIMPLE_QUANTITY.fullmatch(quantity)
    if match:
        return _plain(Decimal(match["number"]) * factor) + (match["suffix"] or "")
    return _plain(units.parse_quantity(quantity) * factor)


def _string_filter(field: str, value: str) -> dict:
    return {"field": field, "filter": "StringFilter", "data": {"value": value}}


def _requested(value) -> bool:
    return value not in (None, "", "any")


def gpu_filters(gpu: dict) -> list[dict]:
    """One `gpuFilters` entry per GPU requirement of `resources.gpu` (normalised document)."""
    filters: list[dict] = []
    count = int(gpu.get("count") or 1)

    model = gpu.get("model")
    if _requested(model):
        filters.append(_string_filter("model", model))
        vendor = model.split("-", 1)[0]
        if vendor in VENDORS:
            filters.append(_string_filter("vendor", vendor))

    filters.append({"field": "count", "filter": "NumberRangeFilter", "data": {"min": count}})

    memory: dict = {}
    if gpu.get("memory_min"):
        memory["min"] = _times(gpu["memory_min"], count)
    if gpu.get("memory_max"):
        memory["max"] = _times(gpu["memory_max"], count)
    if memory:
        filters.append({"field": "memory", "filter": "ResourceRangeSelector", "data": memory})

    cores: dict = {}
    if gpu.get("cores_min"):
        cores["min"] = str(int(gpu["cores_min"]) * count)
    if gpu.get("cores_max"):
        cores["max"] = str(int(gpu["cores_max"]) * count)
    if cores:
        filters.append({"field": "cores", "filter": "ResourceRangeSelector", "data": cores})

    if gpu.get("clock_speed_min"):
        filters.append({"field": "clock_speed", "filter": "ResourceRangeSelector",
                        "data": {"min": gpu["clock_speed_min"]}})

    for field in STRING_FIELDS:
        if _requested(gpu.get(field)):
            filters.append(_string_filter(field, gpu[field]))

    if gpu.get("fp32_tflops") is not None:
        filters.append({"field": "fp32_tflops", "filter": "NumberRangeFilter",
                        "data": {"min": float(gpu["fp32_tflops"])}})
    if gpu.get("multi_gpu_efficiency") is not None:
        filters.append({"field": "multi_gpu_efficiency", "filter": "ResourceRangeSelector",
                        "data": {"min": _plain(Decimal(str(gpu["multi_gpu_efficiency"])))}})

    for field in BOOLEAN_FIELDS:
        if gpu.get(field) is True:
            filters.append({"field": field, "filter": "BooleanFilter", "data": False})
    return filters


def solver_filters(doc: dict) -> dict:
    """`spec.selector.filters` for a normalised intent document (cpu/memory are per replica)."""
    doc = doc.get("intent", doc)
    resources = doc["workload"].get("resources") or {}
    filters: dict = {}
    if resources.get("cpu"):
        filters["cpuFilter"] = {"name": "Range", "data": {"min": resources["cpu"]}}
    if resources.get("memory"):
        filters["memoryFilter"] = {"name": "Range", "data": {"min": resources["memory"]}}
    filters["gpuFilters"] = gpu_filters(resources.get("gpu") or {})
    return filters


def solver_manifest(doc: dict, *, intent_id: str, tenant: str, user: str, name: str | None = None,
                    attempt: int = 1, discovery_marker: bool = False) -> dict:
    """The Solver for one attempt at an intent.

    `discovery_marker=True` appends the `flare_discovery` entry of FLUIDOS.md §6.1: a field no
    Flavor has, so the Solver never re-uses an existing PeeringCandidate and always runs a
    fresh Discovery. Without it, the manifest is what `GET /intents/{id}/solver` shows.
    """
    name = name or solver_name(intent_id, attempt)
    filters = solver_filters(doc)
    if discovery_marker:
        filters["gpuFilters"].append({"field": DISCOVERY_MARKER_FIELD, "filter": "StringFilter",
                                      "data": {"value": name}})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                LABEL_INTENT: label_value(intent_id),
                LABEL_TENANT: label_value(tenant),
                LABEL_USER: label_value(user),
                LABEL_FLUIDOS_INTENT: label_value(intent_id),
            },
            "annotations": {ANNOTATION_SEMANTICS: SEMANTICS_NOTE},
        },
        "spec": {
            "intentID": intent_id,
            "findCandidate": True,
            "reserveAndBuy": False,
            "establishPeering": False,
            "selector": {"flavorType": FLAVOR_TYPE, "filters": filters},
        },
    }


def solver_yaml(manifest: dict) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, allow_unicode=True)

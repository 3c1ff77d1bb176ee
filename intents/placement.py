"""Placement: FLARE's matching semantics, objective ranking, gang plans, feasibility and suggestions.

Pure Python over `providers.traits.Offer` (no ORM, no HTTP), so the lifecycle, both federation
backends, the API's submit path and the benchmarks share one implementation.

The law is FLUIDOS.md §3; the pipeline is ARCHITECTURE.md "Placement":

1. `Requirements.from_document(doc)` parses the normalised intent document once.
2. `mismatches(offer, req)` applies the hard filters to one node and says why it fails.
3. `rank(offers, req, objective)` orders the feasible nodes by the objective.
4. `plan(offers, req, objective)` places the whole gang (all units or nothing).
5. `assess(offers, req, objective)` classifies an intent for submit: placeable, queue, infeasible
   (with the API error code) or over budget, with an estimate and real suggestions.

Decisions where the docs are silent (each is also explained where it is implemented):

- Constraints on *provider attributes* (latency, bandwidth, energy, certifications, security and
  compliance capabilities) that no offer in the federation publishes are reported as warnings and
  not applied (API.md: "reported in the response warnings, never silently dropped"). Once any
  offer publishes the attribute, nodes that do not publish it fail (§3.5). GPU traits always
  follow §3.5 strictly. `mismatches()` is always strict; `rank`, `plan`, `assess` and
  `first_match` first derive the effective requirements over the offers they are given.
- Defaults are permissive: a node that does not publish latency (PUE) passes `max_latency_ms`
  (`power_usage_effectiveness`) when the limit is no stricter than the API default (100 ms, 2.0).
- `preemptible: false` keeps an intent off interruptible or preemptible nodes unless it asked for
  `gpu.interruptible: true`; `preemptible: true` allows such nodes without requiring them.
- Costs are compared only in the cap's currency (no exchange rates): a node priced in another
  currency fails a cost limit; a plan never mixes currencies.
- `max_total_cost` needs an expected duration (`batch.timeout`); without one it is a warning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache

from flare_portal.units import (
    format_gi,
    format_money,
    parse_bandwidth,
    parse_bytes,
    parse_carbon_rate,
    parse_duration,
    parse_money,
    parse_quantity,
)
from providers.traits import Offer

__all__ = [
    "COST", "PERFORMANCE", "LATENCY", "ENERGY", "BALANCED", "OBJECTIVES", "BALANCED_WEIGHTS", "TIER_ORDER",
    "Requirements", "Mismatch", "ScoredOffer", "Allocation", "Plan", "Assessment",
    "mismatches", "effective_requirements", "unevaluable_constraints", "rank", "plan", "plan_ignoring_capacity",
    "first_match", "apply_fallback", "assess", "normalise_objective",
    "canonical_model", "canonical_architecture", "canonical_compute_capability", "canonical_location",
    "region_groups", "location_matches", "location_label", "parse_carbon", "parse_bandwidth_gbps",
]

try:  # the model catalogue owns aliases (nvidia-a6000 = nvidia-rtx-a6000, "Ada" = ada-lovelace, sm_86 = 8.6)
    from providers import gpu_catalog as _catalog
except ImportError:  # catalogue not available: lower-case slugs only
    _catalog = None
_catalog_canonical_model = getattr(_catalog, "canonical_model", None)
_catalog_canonical_architecture = getattr(_catalog, "canonical_architecture", None)
_catalog_canonical_compute_capability = getattr(_catalog, "canonical_compute_capability", None)
_catalog_lookup = getattr(_catalog, "lookup", None)


# --------------------------------------------------------------------------------------------
# Vocabulary

COST = "Cost_Minimization"
PERFORMANCE = "Performance_Maximization"
LATENCY = "Latency_Minimization"
ENERGY = "Energy_Efficiency"
BALANCED = "Balanced_Optimization"
OBJECTIVES = (COST, PERFORMANCE, LATENCY, ENERGY, BALANCED)

# Balanced_Optimization: weighted sum of min–max normalised metrics (1 = best in the candidate set).
BALANCED_WEIGHTS = {"cost": 0.35, "performance": 0.35, "latency": 0.15, "energy": 0.15}

DEFAULT_MAX_LATENCY_MS = 100
DEFAULT_MAX_PUE = 2.0
# Carbon estimates for a provider that publishes no PUE assume the worst PUE the API accepts by default.
ASSUMED_PUE = 2.0
# Multi-GPU scaling assumed when a multi-GPU unit lands on a node that publishes no efficiency
# (PCIe-class scaling); only used to rank, never to filter (a requested minimum needs the real trait).
ASSUMED_MULTI_GPU_EFFICIENCY = 0.8

# Descending, as API.md lists them; `lower_tier` moves one step right.
TIER_ORDER = ("premium", "standard", "gaming", "inference", "budget")
ENERGY_RATINGS = "ABCDEF"
FALLBACK_STRATEGIES = ("queue", "lower_tier", "shared", "spot", "fail")
STRATEGIES = ("colocated", "distributed", "flexible")
MAX_SUGGESTIONS = 5

STATUS_PLACEABLE = "placeable"
STATUS_QUEUE = "queue"
STATUS_INFEASIBLE = "infeasible"
STATUS_OVER_BUDGET = "over_budget"

HTTP_STATUS = {
    "GPU_MODEL_UNAVAILABLE": 409,
    "GPU_MEMORY_INSUFFICIENT": 409,
    "GPU_COUNT_INSUFFICIENT": 409,
    "REGION_UNAVAILABLE": 409,
    "INSUFFICIENT_RESOURCES": 409,
    "COST_LIMIT_EXCEEDED": 402,
}

_INF = float("inf")
_DEC_INF = Decimal("Infinity")
_CENT = Decimal("0.01")

# Requirement keys, in the order diagnostics consider them.
_GPU_ENUMS = ("compute_capability", "architecture", "tier", "interconnect", "topology")
_GPU_FLAGS = ("shared", "interruptible", "multi_instance", "dedicated")
_WHERE_KEYS = frozenset({"constraints.location", "constraints.availability_zone", "constraints.providers"})
_MEMORY_KEYS = frozenset({"gpu.memory_min", "gpu.memory_max"})
_COST_KEYS = frozenset({"constraints.max_hourly_cost", "constraints.max_total_cost"})
_KEY_ORDER = (
    "gpu.model", "constraints.location", "constraints.availability_zone", "constraints.providers",
    "gpu.memory_min", "gpu.memory_max", "gpu.count", "gpu.cores_min", "gpu.cores_max",
    "gpu.clock_speed_min", *(f"gpu.{name}" for name in _GPU_ENUMS), "gpu.fp32_tflops",
    "gpu.multi_gpu_efficiency", *(f"gpu.{name}" for name in _GPU_FLAGS), "constraints.preemptible",
    "constraints.max_latency_ms", "constraints.performance.min_network_bandwidth",
    "constraints.energy.max_carbon_footprint", "constraints.energy.renewable_energy_only",
    "constraints.energy.power_usage_effectiveness", "constraints.energy.energy_efficiency_rating",
    "constraints.energy.green_certified_only", "constraints.compliance.certifications",
    "constraints.compliance.data_residency", "constraints.compliance.gdpr_compliant",
    "constraints.compliance.hipaa_compliant",
)

# Security/compliance capabilities no dedicated provider field carries: a provider publishes one by
# listing it among its certifications (normalised: case, spaces, dashes and underscores ignored).
_CAPABILITIES = (
    ("compliance", "encryption_at_rest"),
    ("compliance", "encryption_in_transit"),
    ("compliance", "audit_logging"),
    ("security", "vpn_access"),
    ("security", "bastion_host"),
    ("security", "intrusion_detection"),
    ("security", "vulnerability_scanning"),
)
# Fields no provider attribute can ever evaluate at placement time: always a warning when set.
# (security.network_isolation and firewall_rules are enforced by the workload's NetworkPolicy,
# not by placement, so they are not listed.)
_NEVER_EVALUABLE = (
    ("constraints", "performance", "max_jitter_ms"),
    ("constraints", "performance", "min_uptime_percent"),
    ("constraints", "performance", "max_cold_start_time"),
    ("constraints", "performance", "gpu_utilization_target"),
    ("constraints", "performance", "memory_utilization_target"),
    ("sla", "availability"),
    ("sla", "max_interruption_time"),
    ("sla", "backup_strategy"),
)


# --------------------------------------------------------------------------------------------
# Canonical forms

@lru_cache(maxsize=8192)
def _slug(value) -> str:
    return re.sub(r"[\s_]+", "-", str(value).strip().lower())


@lru_cache(maxsize=8192)
def _compact(value) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


def _is_any(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", "any"))


def _enum(value) -> str | None:
    return None if _is_any(value) else _slug(value)


@lru_cache(maxsize=4096)
def canonical_model(name: str) -> str:
    """Model id after catalogue aliases (§3.6); lower-case slug when the catalogue does not know it."""
    slug = _slug(name or "")
    if not slug:
        return ""
    if _catalog_canonical_model is not None:
        try:
            found = _catalog_canonical_model(name)
        except (LookupError, ValueError):
            found = None
        if isinstance(found, str) and found:
            return _slug(found)
    return slug


@lru_cache(maxsize=512)
def canonical_architecture(value: str) -> str:
    slug = _slug(value or "")
    if slug and _catalog_canonical_architecture is not None:
        return _slug(_catalog_canonical_architecture(value)) or slug
    return slug


@lru_cache(maxsize=512)
def canonical_compute_capability(value) -> str:
    """"9" → "9.0", 8.6 → "8.6", "8.60" → "8.6" (and "sm_86" → "8.6" with the catalogue)."""
    text = str(value).strip().lower()
    if not text:
        return ""
    if _catalog_canonical_compute_capability is not None:
        try:
            return _catalog_canonical_compute_capability(value)
        except ValueError:
            pass
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if number == number.to_integral_value():
        return f"{int(number)}.0"
    return format(number.normalize(), "f")


# Location groups are region prefixes (§3.10). India's `asia-south` is read as `asia-south<digit>`
# so that `asia-southeast1` (Singapore) is not India; Japan and Singapore regions end at their digit.
_GROUP_PATTERNS = (
    ("eu", re.compile(r"^(eu-|europe-)")),
    ("us", re.compile(r"^us-")),
    ("canada", re.compile(r"^ca-")),
    ("brazil", re.compile(r"^(sa-east-|southamerica-)")),
    ("india", re.compile(r"^(ap-south-|asia-south\d)")),
    ("japan", re.compile(r"^(ap-northeast-[13]|asia-northeast[12])(?!\d)")),
    ("singapore", re.compile(r"^(ap-southeast-1|asia-southeast1)(?!\d)")),
    ("australia", re.compile(r"^(ap-southeast-[24](?!\d)|australia-)")),
)
_ASIA = re.compile(r"^(ap-|asia-|me-)")
GROUP_LABELS = {
    "eu": "EU", "us": "US", "canada": "Canada", "brazil": "Brazil", "asia": "Asia", "india": "India",
    "japan": "Japan", "singapore": "Singapore", "australia": "Australia",
}
# Most specific first: the group a region is suggested under.
_PRIMARY_GROUP_ORDER = ("eu", "us", "canada", "brazil", "australia", "india", "japan", "singapore", "asia")
_LOCATION_ALIASES = {"europe": "eu", "usa": "us", "united-states": "us", "apac": "asia"}
_EUROPE = (
    "germany", "france", "netherlands", "ireland", "italy", "spain", "portugal", "sweden", "finland",
    "norway", "denmark", "poland", "belgium", "austria", "switzerland", "united-kingdom", "uk",
    "england", "czechia", "czech-republic", "greece", "hungary", "romania", "bulgaria", "croatia",
    "slovakia", "slovenia", "luxembourg", "estonia", "latvia", "lithuania", "iceland",
)
_ASIA_COUNTRIES = (
    "china", "hong-kong", "hongkong", "taiwan", "korea", "south-korea", "indonesia", "malaysia",
    "thailand", "vietnam", "philippines", "israel", "uae", "united-arab-emirates", "saudi-arabia",
    "qatar", "bahrain",
)
COUNTRY_GROUPS: dict[str, tuple[str, ...]] = {
    **{country: ("eu",) for country in _EUROPE},
    **{country: ("asia",) for country in _ASIA_COUNTRIES},
    "united-states": ("us",), "usa": ("us",), "canada": ("canada",), "brazil": ("brazil",),
    "india": ("india", "asia"), "japan": ("japan", "asia"), "singapore": ("singapore", "asia"),
    "australia": ("australia",),
}
_COUNTRY_PREFIXES = sorted(((_compact(c), groups) for c, groups in COUNTRY_GROUPS.items()), key=lambda x: -len(x[0]))


@lru_cache(maxsize=4096)
def region_groups(region: str) -> frozenset[str]:
    """Location groups of a region: `eu-west-1` → {eu}; `ap-southeast-2` → {australia} (not Asia)."""
    region = _slug(region or "")
    if not region:
        return frozenset()
    groups = {name for name, pattern in _GROUP_PATTERNS if pattern.match(region)}
    if _ASIA.match(region) and "australia" not in groups:
        groups.add("asia")
    compact = _compact(region)
    for prefix, country_groups in _COUNTRY_PREFIXES:
        if compact.startswith(prefix):
            groups.update(country_groups)
            break
    return frozenset(groups)


def canonical_location(value) -> str | None:
    """Intent location → group key (`eu`, `asia`…), a country slug, or a region prefix."""
    if _is_any(value):
        return None
    slug = _slug(value)
    return _LOCATION_ALIASES.get(slug, slug)


def location_label(location: str | None) -> str:
    if not location:
        return "any location"
    return GROUP_LABELS.get(location, location)


@lru_cache(maxsize=8192)
def location_matches(location: str, region: str) -> bool:
    """Does `region` belong to the intent location (group, country name or region prefix)?"""
    region = _slug(region or "")
    if not region:
        return False
    if location in GROUP_LABELS:
        return location in region_groups(region)
    if location in COUNTRY_GROUPS:
        return _compact(region).startswith(_compact(location))
    return region == location or region.startswith(location)


def _primary_group(region: str) -> str | None:
    groups = region_groups(region)
    for name in _PRIMARY_GROUP_ORDER:
        if name in groups:
            return name
    return None


def _norm_token(value) -> str:
    return _compact(value)


# --------------------------------------------------------------------------------------------
# Parsing helpers for document values (the schema validated shapes; these only convert units)

def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return value is True


def _int_or_none(value) -> int | None:
    if value is None or value == "":
        return None
    return int(parse_quantity(value))


def _float_or_none(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100
    return float(value)


def _money(value) -> tuple[Decimal | None, str]:
    if value is None or value == "":
        return None, "EUR"
    if isinstance(value, dict):
        amount = value.get("amount", value.get("value"))
        return Decimal(str(amount)), str(value.get("currency") or "EUR").upper()
    return parse_money(value)


_MS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms)?\s*$", re.IGNORECASE)


def _milliseconds(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _MS.match(str(value))
    if not match:
        raise ValueError(f"expected a latency such as 50 or '50ms', got {value!r}")
    return int(float(match[1]))


def parse_carbon(value) -> float | None:
    """"50g CO2/h" (flare_portal.units), or a bare number of grams → grams CO2 per hour."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return float(parse_carbon_rate(value))


def parse_bandwidth_gbps(value) -> float | None:
    """"10Gbps", "500Mbps" (flare_portal.units), or a bare number → Gbps."""
    if value is None or value == "":
        return None
    return float(parse_bandwidth(value))


def _rating(value) -> str | None:
    if _is_any(value):
        return None
    letter = str(value).strip().upper()[:1]
    return letter if letter in ENERGY_RATINGS else None


# --------------------------------------------------------------------------------------------
# Requirements

@dataclass(frozen=True)
class Requirements:
    """The intent document with every number parsed and every enum canonicalised (lower-case)."""

    objective: str = COST
    workload_type: str = "batch"
    communication_pattern: str | None = None
    # resources.gpu — per GPU, §3.1
    model: str | None = None
    gpus_per_unit: int = 1
    memory_min: int | None = None            # bytes per GPU
    memory_max: int | None = None
    cores_min: int | None = None             # per GPU
    cores_max: int | None = None
    clock_speed_min: int | None = None       # Hz
    compute_capability: str | None = None    # "9.0"
    architecture: str | None = None
    tier: str | None = None
    interconnect: str | None = None
    topology: str | None = None
    fp32_tflops: float | None = None         # minimum, per GPU
    multi_gpu_efficiency: float | None = None
    shared: bool = False
    interruptible: bool = False
    multi_instance: bool = False
    dedicated: bool = False
    # CPU and memory one unit (replica / task) requests: the node must have at least that allocatable
    cpu_millicores: int | None = None
    memory_request: int | None = None        # bytes
    # the gang
    units: int = 1                           # scaling.min_replicas or batch.parallel_tasks
    deployment_strategy: str = "flexible"
    # where
    location: str | None = None              # group key (eu, asia…), country or region prefix
    availability_zone: str | None = None
    providers: frozenset[str] = frozenset()  # lower-case
    max_latency_ms: int | None = DEFAULT_MAX_LATENCY_MS
    preemptible: bool = False
    # money
    max_hourly_cost: Decimal | None = None
    max_hourly_cost_currency: str = "EUR"
    max_total_cost: Decimal | None = None
    max_total_cost_currency: str = "EUR"
    expected_duration_s: int | None = None   # batch.timeout
    # energy
    max_carbon_g_per_hour: float | None = None
    renewable_energy_only: bool = False
    max_pue: float | None = None
    green_certified_only: bool = False
    energy_efficiency_rating: str | None = None   # worst acceptable letter
    # compliance / performance / security
    certifications: tuple[str, ...] = ()
    data_residency: tuple[str, ...] = ()     # canonical locations
    gdpr_compliant: bool = False
    hipaa_compliant: bool = False
    capabilities: tuple[tuple[str, str], ...] = ()   # (requirement key, normalised token)
    min_network_bandwidth_gbps: float | None = None
    # behaviour
    fallback_strategy: str = "queue"
    unevaluable: tuple[str, ...] = ()        # document paths placement can never evaluate

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_unit * self.units

    @property
    def unit_word(self) -> str:
        return "task" if self.workload_type == "batch" else "replica"

    @property
    def workload_score_kind(self) -> str:
        """Which catalogue score breaks performance ties: training for batch/all-reduce, else inference."""
        if self.workload_type == "batch" or self.communication_pattern == "all-reduce":
            return "training"
        return "inference"

    @property
    def has_cost_limit(self) -> bool:
        return self.max_hourly_cost is not None or self.max_total_cost is not None

    @property
    def expected_hours(self) -> Decimal | None:
        if not self.expected_duration_s:
            return None
        return Decimal(self.expected_duration_s) / Decimal(3600)

    def with_(self, **changes) -> Requirements:
        return replace(self, **changes)

    @classmethod
    def from_document(cls, doc: dict) -> Requirements:
        doc = _as_dict(doc)
        workload = _as_dict(doc.get("workload"))
        resources = _as_dict(workload.get("resources"))
        gpu = _as_dict(resources.get("gpu"))
        constraints = _as_dict(doc.get("constraints"))
        energy = _as_dict(constraints.get("energy"))
        compliance = _as_dict(constraints.get("compliance"))
        performance = _as_dict(constraints.get("performance"))
        negotiation = _as_dict(constraints.get("negotiation"))

        workload_type = _slug(workload.get("type") or "")
        if workload_type == "job":
            workload_type = "batch"
        if workload_type not in ("service", "batch"):
            workload_type = "batch" if workload.get("batch") is not None else "service"
        batch = _as_dict(workload.get("batch"))
        scaling = _as_dict(workload.get("scaling"))
        if workload_type == "batch":
            units = batch.get("parallel_tasks")
        else:
            units = scaling.get("min_replicas")
        units = max(1, int(units)) if units not in (None, "") else 1

        strategy = _slug(workload.get("deployment_strategy") or "flexible")
        if strategy == "flexibile":
            strategy = "flexible"
        if strategy not in STRATEGIES:
            strategy = "flexible"

        model = gpu.get("model")
        count = gpu.get("count")
        cpu_millicores = memory_request = None
        try:
            if resources.get("cpu") not in (None, ""):
                cpu_millicores = int(parse_quantity(resources["cpu"]) * 1000)
            if resources.get("memory") not in (None, ""):
                memory_request = int(parse_quantity(resources["memory"]))
        except ValueError:
            cpu_millicores = memory_request = None
        timeout = batch.get("timeout") if workload_type == "batch" else None
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            expected = int(timeout)
        elif timeout:
            expected = parse_duration(timeout)
        else:
            expected = None

        hourly, hourly_currency = _money(constraints.get("max_hourly_cost"))
        total, total_currency = _money(constraints.get("max_total_cost"))

        providers = constraints.get("providers") or []
        if isinstance(providers, str):
            providers = [providers]
        providers = frozenset(str(p).strip().lower() for p in providers if not _is_any(p))

        latency = constraints.get("max_latency_ms", DEFAULT_MAX_LATENCY_MS)

        residency = compliance.get("data_residency") or []
        if isinstance(residency, str):
            residency = [residency]

        capabilities = []
        sections = {"compliance": compliance, "security": _as_dict(constraints.get("security"))}
        for section, name in _CAPABILITIES:
            if _flag(sections[section].get(name)):
                capabilities.append((f"constraints.{section}.{name}", _norm_token(name)))

        unevaluable = []
        for path in _NEVER_EVALUABLE:
            node = doc
            for part in path:
                node = _as_dict(node).get(part) if isinstance(node, dict) else None
            if node not in (None, "", [], {}, False):
                unevaluable.append(".".join(path))

        fallback = _strategy_name(negotiation.get("fallback_strategy"))
        if fallback not in FALLBACK_STRATEGIES:
            fallback = "queue"

        return cls(
            objective=normalise_objective(doc.get("objective") or COST),
            workload_type=workload_type,
            communication_pattern=_enum(workload.get("communication_pattern")),
            model=None if _is_any(model) else canonical_model(str(model)),
            gpus_per_unit=max(1, int(count)) if count not in (None, "") else 1,
            cpu_millicores=cpu_millicores,
            memory_request=memory_request,
            memory_min=None if gpu.get("memory_min") in (None, "") else parse_bytes(gpu["memory_min"]),
            memory_max=None if gpu.get("memory_max") in (None, "") else parse_bytes(gpu["memory_max"]),
            cores_min=_int_or_none(gpu.get("cores_min")),
            cores_max=_int_or_none(gpu.get("cores_max")),
            clock_speed_min=_int_or_none(gpu.get("clock_speed_min")),
            compute_capability=(None if _is_any(gpu.get("compute_capability"))
                                else canonical_compute_capability(gpu["compute_capability"])),
            architecture=(None if _is_any(gpu.get("architecture"))
                          else canonical_architecture(str(gpu["architecture"]))),
            tier=_enum(gpu.get("tier")),
            interconnect=_enum(gpu.get("interconnect")),
            topology=_enum(gpu.get("topology")),
            fp32_tflops=_float_or_none(gpu.get("fp32_tflops")),
            multi_gpu_efficiency=_float_or_none(gpu.get("multi_gpu_efficiency")),
            shared=_flag(gpu.get("shared")),
            interruptible=_flag(gpu.get("interruptible")),
            multi_instance=_flag(gpu.get("multi_instance")),
            dedicated=_flag(gpu.get("dedicated")),
            units=units,
            deployment_strategy=strategy,
            location=canonical_location(constraints.get("location")),
            availability_zone=_enum(constraints.get("availability_zone")),
            providers=providers,
            max_latency_ms=_milliseconds(latency),
            preemptible=_flag(constraints.get("preemptible")),
            max_hourly_cost=hourly,
            max_hourly_cost_currency=hourly_currency,
            max_total_cost=total,
            max_total_cost_currency=total_currency,
            expected_duration_s=expected,
            max_carbon_g_per_hour=parse_carbon(energy.get("max_carbon_footprint")),
            renewable_energy_only=_flag(energy.get("renewable_energy_only")),
            max_pue=_float_or_none(energy.get("power_usage_effectiveness")),
            green_certified_only=_flag(energy.get("green_certified_only")),
            energy_efficiency_rating=_rating(energy.get("energy_efficiency_rating")),
            certifications=tuple(str(c) for c in (compliance.get("certifications") or []) if not _is_any(c)),
            data_residency=tuple(loc for loc in (canonical_location(r) for r in residency) if loc),
            gdpr_compliant=_flag(compliance.get("gdpr_compliant")),
            hipaa_compliant=_flag(compliance.get("hipaa_compliant")),
            capabilities=tuple(capabilities),
            min_network_bandwidth_gbps=parse_bandwidth_gbps(performance.get("min_network_bandwidth")),
            fallback_strategy=fallback,
            unevaluable=tuple(unevaluable),
        )


def _strategy_name(value) -> str:
    return str(value or "queue").strip().lower().replace("-", "_")


def normalise_objective(value) -> str:
    text = _compact(value or "")
    for objective in OBJECTIVES:
        if _compact(objective) == text or _compact(objective.split("_")[0]) == text:
            return objective
    raise ValueError(f"unknown objective {value!r}; expected one of {', '.join(OBJECTIVES)}")


def _requirements(doc_or_req) -> Requirements:
    if isinstance(doc_or_req, Requirements):
        return doc_or_req
    return Requirements.from_document(doc_or_req)


# --------------------------------------------------------------------------------------------
# Per-offer facts, computed once per call

@dataclass(slots=True)
class _Facts:
    offer: Offer
    model: str
    compute_capability: str
    architecture: str
    tier: str
    interconnect: str
    topology: str
    region: str
    declared_group: str | None       # the provider's location_group, used only when no region is published
    zone: str
    provider_key: str                # the provider a colocated gang must stay within
    provider_names: frozenset
    rate: Decimal | None             # per GPU-hour
    currency: str
    latency: int | None
    bandwidth: float | None
    carbon_per_gpu_hour: float | None
    renewable: float | None
    pue: float | None
    rating: str
    certs: frozenset
    spot: bool                       # interruptible or preemptible capacity


def _facts(offer: Offer) -> _Facts:
    t = offer.traits
    p = offer.provider
    region = _slug(t.region or p.region or "")
    latency = t.network_latency_ms if t.network_latency_ms is not None else p.latency_ms
    bandwidth = t.network_bandwidth_gbps if t.network_bandwidth_gbps else p.bandwidth_gbps
    carbon = None
    watts = offer.power_watts or _catalog_power_watts(t.model)
    if p.carbon_intensity is not None and watts:
        pue = p.pue if p.pue is not None else ASSUMED_PUE
        carbon = p.carbon_intensity * watts / 1000.0 * pue
    provider_key = _slug(p.name or t.provider or "")
    return _Facts(
        offer=offer,
        model=canonical_model(t.model) if t.model else "",
        compute_capability=canonical_compute_capability(t.compute_capability) if t.compute_capability else "",
        architecture=canonical_architecture(t.architecture) if t.architecture else "",
        tier=_slug(t.tier or ""),
        interconnect=_slug(t.interconnect or ""),
        topology=_slug(t.topology or ""),
        region=region,
        declared_group=canonical_location(p.location_group) if p.location_group else None,
        zone=_slug(t.zone or p.zone or ""),
        provider_key=provider_key,
        provider_names=_provider_names(p.name, t.provider),
        rate=t.hourly_rate,
        currency=(t.currency or "EUR").upper(),
        latency=latency,
        bandwidth=bandwidth if bandwidth and bandwidth > 0 else None,
        carbon_per_gpu_hour=carbon,
        renewable=p.renewable_share,
        pue=p.pue,
        rating=(p.energy_rating or "").strip().upper()[:1],
        certs=_cert_tokens(tuple(p.certifications)),
        spot=bool(t.interruptible or t.preemptible),
    )


@lru_cache(maxsize=4096)
def _cert_tokens(certifications: tuple) -> frozenset:
    return frozenset(_norm_token(c) for c in certifications)


@lru_cache(maxsize=8192)
def _provider_names(*names) -> frozenset:
    return frozenset(n.strip().lower() for n in names if n)


@lru_cache(maxsize=1024)
def _catalog_power_watts(model: str) -> int | None:
    if not model or _catalog_lookup is None:
        return None
    entry = _catalog_lookup(model)
    return getattr(entry, "power_watts", None) or None


def _build_facts(offers) -> list[_Facts]:
    return [_facts(offer) for offer in offers]


# --------------------------------------------------------------------------------------------
# Matching (§3)

@dataclass(frozen=True)
class Mismatch:
    requirement: str      # "gpu.model", "constraints.location", …
    message: str          # "node has nvidia-a100, intent asks nvidia-h100"


def _located(f: _Facts, location: str) -> bool:
    if f.region:
        return location_matches(location, f.region)
    return f.declared_group is not None and f.declared_group == location


def _group_of(f: _Facts) -> str | None:
    return _primary_group(f.region) if f.region else f.declared_group


def _clock(hz: int) -> str:
    return f"{hz / 1e9:.2f} GHz"


def _where(f: _Facts) -> str:
    if not f.region:
        return location_label(f.declared_group) if f.declared_group else "an unpublished region"
    groups = region_groups(f.region)
    label = ", ".join(GROUP_LABELS[g] for g in _PRIMARY_GROUP_ORDER if g in groups)
    return f"{f.region} ({label})" if label else f.region


def _iter_mismatches(f: _Facts, req: Requirements, ignore_capacity: bool, cost_scope: str):
    """Yield every failed requirement of one node, lazily (callers that only need pass/fail stop early).

    cost_scope "request": the whole request at this node's rate (what one node can promise);
    "unit": only what plan() needs per node — one unit must fit; the plan's total is checked later.
    """
    t = f.offer.traits
    if req.model and f.model != req.model:
        yield Mismatch("gpu.model", f"node has {f.model or 'no published model'}, intent asks {req.model}")

    if req.location and not _located(f, req.location):
        yield Mismatch("constraints.location", f"node is in {_where(f)}, intent asks {location_label(req.location)}")
    if req.availability_zone and f.zone != req.availability_zone:
        yield Mismatch("constraints.availability_zone",
                       f"node is in zone {f.zone or '(unpublished)'}, intent asks {req.availability_zone}")
    if req.providers and not (f.provider_names & req.providers):
        yield Mismatch("constraints.providers",
                       f"node belongs to {f.offer.provider.name or t.provider or 'an unnamed provider'}, "
                       f"intent allows {', '.join(sorted(req.providers))}")

    memory = t.memory_per_gpu
    if req.memory_min is not None:
        if memory <= 0:
            yield Mismatch("gpu.memory_min", f"node does not publish GPU memory, intent asks at least "
                                             f"{format_gi(req.memory_min)} per GPU")
        elif memory < req.memory_min:
            yield Mismatch("gpu.memory_min", f"node has {format_gi(memory)} per GPU, intent asks at least "
                                             f"{format_gi(req.memory_min)}")
    if req.memory_max is not None:
        if memory <= 0:
            yield Mismatch("gpu.memory_max", "node does not publish GPU memory, intent asks at most "
                                             f"{format_gi(req.memory_max)} per GPU")
        elif memory > req.memory_max:
            yield Mismatch("gpu.memory_max", f"node has {format_gi(memory)} per GPU, intent asks at most "
                                             f"{format_gi(req.memory_max)}")

    capacity = f.offer.total_gpus if ignore_capacity else f.offer.free_gpus
    if capacity < req.gpus_per_unit:
        what = "GPUs" if ignore_capacity else "free GPUs"
        yield Mismatch("gpu.count", f"node has {capacity} {what}, intent needs {req.gpus_per_unit} "
                                    f"on one node per {req.unit_word}")

    node_cpu = f.offer.cpu_millicores
    if req.cpu_millicores and node_cpu is not None and node_cpu < req.cpu_millicores:
        yield Mismatch("workload.resources.cpu", f"node has {node_cpu / 1000:g} CPUs allocatable, one "
                                                 f"{req.unit_word} asks {req.cpu_millicores / 1000:g}")
    node_memory = f.offer.memory_bytes
    if req.memory_request and node_memory is not None and node_memory < req.memory_request:
        yield Mismatch("workload.resources.memory", f"node has {format_gi(node_memory)} memory allocatable, "
                                                    f"one {req.unit_word} asks {format_gi(req.memory_request)}")

    cores = t.cores_per_gpu
    if req.cores_min is not None and (cores <= 0 or cores < req.cores_min):
        have = f"{cores} cores per GPU" if cores > 0 else "no published core count"
        yield Mismatch("gpu.cores_min", f"node has {have}, intent asks at least {req.cores_min}")
    if req.cores_max is not None and (cores <= 0 or cores > req.cores_max):
        have = f"{cores} cores per GPU" if cores > 0 else "no published core count"
        yield Mismatch("gpu.cores_max", f"node has {have}, intent asks at most {req.cores_max}")
    if req.clock_speed_min is not None and (t.clock_speed <= 0 or t.clock_speed < req.clock_speed_min):
        have = _clock(t.clock_speed) if t.clock_speed > 0 else "no published clock speed"
        yield Mismatch("gpu.clock_speed_min", f"node has {have}, intent asks at least {_clock(req.clock_speed_min)}")

    for name in _GPU_ENUMS:
        wanted = getattr(req, name)
        if wanted and getattr(f, name) != wanted:
            have = getattr(f, name)
            label = name.replace("_", " ")
            yield Mismatch(f"gpu.{name}", f"node has {label} {have}, intent asks {wanted}" if have
                           else f"node does not publish {label}, intent asks {wanted}")

    if req.fp32_tflops is not None and (t.fp32_tflops is None or t.fp32_tflops < req.fp32_tflops):
        have = f"{t.fp32_tflops:g} FP32 TFLOPS per GPU" if t.fp32_tflops is not None else "no published FP32 TFLOPS"
        yield Mismatch("gpu.fp32_tflops", f"node has {have}, intent asks at least {req.fp32_tflops:g}")
    if req.multi_gpu_efficiency is not None and (
            t.multi_gpu_efficiency is None or t.multi_gpu_efficiency < req.multi_gpu_efficiency):
        have = (f"multi-GPU efficiency {t.multi_gpu_efficiency:g}" if t.multi_gpu_efficiency is not None
                else "no published multi-GPU efficiency")
        yield Mismatch("gpu.multi_gpu_efficiency",
                       f"node has {have}, intent asks at least {req.multi_gpu_efficiency:g}")

    for name in _GPU_FLAGS:
        if getattr(req, name) and not getattr(t, name):
            yield Mismatch(f"gpu.{name}", f"node does not offer {name.replace('_', '-')} GPUs, intent requires it")

    # An intent that did not accept interruption stays off spot capacity — unless it asked for
    # interruptible GPUs, which is accepting exactly that.
    if f.spot and not req.preemptible and not req.interruptible:
        yield Mismatch("constraints.preemptible",
                       "node is interruptible/spot capacity, intent has preemptible: false")

    if req.max_latency_ms is not None:
        if f.latency is None:
            if req.max_latency_ms < DEFAULT_MAX_LATENCY_MS:
                yield Mismatch("constraints.max_latency_ms",
                               f"node does not publish its latency, intent asks at most {req.max_latency_ms} ms")
        elif f.latency > req.max_latency_ms:
            yield Mismatch("constraints.max_latency_ms",
                           f"node has {f.latency} ms latency, intent asks at most {req.max_latency_ms} ms")

    if req.min_network_bandwidth_gbps is not None and (
            f.bandwidth is None or f.bandwidth < req.min_network_bandwidth_gbps):
        have = f"{f.bandwidth:g} Gbps" if f.bandwidth is not None else "no published network bandwidth"
        yield Mismatch("constraints.performance.min_network_bandwidth",
                       f"node has {have}, intent asks at least {req.min_network_bandwidth_gbps:g} Gbps")

    if req.max_carbon_g_per_hour is not None:
        if f.carbon_per_gpu_hour is None:
            yield Mismatch("constraints.energy.max_carbon_footprint",
                           "node's provider does not publish grid carbon intensity or GPU power")
        else:
            carbon = f.carbon_per_gpu_hour * req.total_gpus
            if carbon > req.max_carbon_g_per_hour:
                yield Mismatch("constraints.energy.max_carbon_footprint",
                               f"{req.total_gpus} GPUs on this node emit ~{carbon:.0f} g CO2/h, intent allows "
                               f"{req.max_carbon_g_per_hour:g} g CO2/h")
    if req.renewable_energy_only and (f.renewable is None or f.renewable < 0.999):
        have = f"{f.renewable:.0%} renewable energy" if f.renewable is not None else "no published renewable share"
        yield Mismatch("constraints.energy.renewable_energy_only", f"provider has {have}, intent asks 100%")
    if req.max_pue is not None:
        if f.pue is None:
            if req.max_pue < DEFAULT_MAX_PUE:
                yield Mismatch("constraints.energy.power_usage_effectiveness",
                               f"provider does not publish its PUE, intent asks at most {req.max_pue:g}")
        elif f.pue > req.max_pue:
            yield Mismatch("constraints.energy.power_usage_effectiveness",
                           f"provider has PUE {f.pue:g}, intent asks at most {req.max_pue:g}")
    if req.energy_efficiency_rating and (
            not f.rating or f.rating not in ENERGY_RATINGS or f.rating > req.energy_efficiency_rating):
        have = f"rating {f.rating}" if f.rating else "no published energy rating"
        yield Mismatch("constraints.energy.energy_efficiency_rating",
                       f"provider has {have}, intent asks {req.energy_efficiency_rating} or better")
    if req.green_certified_only and not f.offer.provider.green_certified:
        yield Mismatch("constraints.energy.green_certified_only", "provider is not green certified")

    if req.certifications:
        missing = [c for c in req.certifications if _norm_token(c) not in f.certs]
        if missing:
            yield Mismatch("constraints.compliance.certifications",
                           f"provider lacks {', '.join(missing)}")
    if req.data_residency and not any(_located(f, loc) for loc in req.data_residency):
        yield Mismatch("constraints.compliance.data_residency",
                       f"node is in {_where(f)}, data must stay in "
                       f"{', '.join(location_label(loc) for loc in req.data_residency)}")
    if req.gdpr_compliant and "gdpr" not in f.certs:
        yield Mismatch("constraints.compliance.gdpr_compliant", "provider is not GDPR certified")
    if req.hipaa_compliant and "hipaa" not in f.certs:
        yield Mismatch("constraints.compliance.hipaa_compliant", "provider is not HIPAA certified")
    for key, token in req.capabilities:
        if token not in f.certs:
            yield Mismatch(key, f"provider does not publish {key.rsplit('.', 1)[1].replace('_', ' ')}")

    if req.has_cost_limit:
        yield from _cost_mismatches(f, req, cost_scope)


def _cost_mismatches(f: _Facts, req: Requirements, cost_scope: str):
    gpus = req.total_gpus if cost_scope == "request" else req.gpus_per_unit
    limits = []
    if req.max_hourly_cost is not None:
        limits.append(("constraints.max_hourly_cost", req.max_hourly_cost, req.max_hourly_cost_currency, Decimal(1)))
    if req.max_total_cost is not None and req.expected_hours is not None:
        limits.append(("constraints.max_total_cost", req.max_total_cost, req.max_total_cost_currency,
                       req.expected_hours))
    for key, cap, currency, hours in limits:
        if f.rate is None:
            yield Mismatch(key, "node publishes no hourly rate, so no cost limit can be met")
        elif f.currency != currency:
            yield Mismatch(key, f"node is priced in {f.currency}, the limit is in {currency}")
        else:
            cost = f.rate * gpus * hours
            if cost > cap:
                per = "/hour" if key == "constraints.max_hourly_cost" else ""
                yield Mismatch(key, f"node costs {format_money(f.rate, f.currency)}/GPU-hour × {gpus} GPUs = "
                                    f"{format_money(cost, f.currency)}{per}, limit {format_money(cap, currency)}{per}")


def _passes(f: _Facts, req: Requirements, ignore_capacity: bool, cost_scope: str = "unit") -> bool:
    return next(_iter_mismatches(f, req, ignore_capacity, cost_scope), None) is None


def mismatches(offer: Offer, req: Requirements, *, ignore_capacity: bool = False) -> list[Mismatch]:
    """Every requirement the node fails (strict §3; the whole request priced at this node's rate)."""
    return list(_iter_mismatches(_facts(offer), req, ignore_capacity, "request"))


# --------------------------------------------------------------------------------------------
# Unevaluable constraints

def _effective(req: Requirements, facts: list[_Facts]) -> tuple[Requirements, list[str]]:
    """Drop provider-attribute constraints no offer publishes, with a warning for each (API.md)."""
    latency = bandwidth = carbon = renewable = pue = rating = green = False
    certs: set[str] = set()
    for f in facts:
        latency = latency or f.latency is not None
        bandwidth = bandwidth or f.bandwidth is not None
        carbon = carbon or f.carbon_per_gpu_hour is not None
        renewable = renewable or f.renewable is not None
        pue = pue or f.pue is not None
        rating = rating or bool(f.rating)
        green = green or f.offer.provider.green_certified
        certs |= f.certs

    warnings = []
    changes: dict = {}

    def drop(path: str, what: str, **change):
        warnings.append(f"{path} cannot be evaluated: no provider in the federation publishes {what}; "
                        "it was not applied to placement")
        changes.update(change)

    if req.max_latency_ms is not None and not latency:
        if req.max_latency_ms < DEFAULT_MAX_LATENCY_MS:
            drop("constraints.max_latency_ms", "its latency", max_latency_ms=None)
        else:
            changes["max_latency_ms"] = None
    if req.min_network_bandwidth_gbps is not None and not bandwidth:
        drop("constraints.performance.min_network_bandwidth", "its network bandwidth", min_network_bandwidth_gbps=None)
    if req.max_carbon_g_per_hour is not None and not carbon:
        drop("constraints.energy.max_carbon_footprint", "grid carbon intensity and GPU power",
             max_carbon_g_per_hour=None)
    if req.renewable_energy_only and not renewable:
        drop("constraints.energy.renewable_energy_only", "its renewable energy share", renewable_energy_only=False)
    if req.max_pue is not None and not pue:
        if req.max_pue < DEFAULT_MAX_PUE:
            drop("constraints.energy.power_usage_effectiveness", "its PUE", max_pue=None)
        else:
            changes["max_pue"] = None
    if req.energy_efficiency_rating and not rating:
        drop("constraints.energy.energy_efficiency_rating", "an energy efficiency rating",
             energy_efficiency_rating=None)
    if req.green_certified_only and not green:
        drop("constraints.energy.green_certified_only", "a green certification", green_certified_only=False)
    if not certs:
        if req.certifications:
            drop("constraints.compliance.certifications", "certifications", certifications=())
        if req.gdpr_compliant:
            drop("constraints.compliance.gdpr_compliant", "a GDPR certification", gdpr_compliant=False)
        if req.hipaa_compliant:
            drop("constraints.compliance.hipaa_compliant", "a HIPAA certification", hipaa_compliant=False)
    kept = []
    for key, token in req.capabilities:
        if token in certs:
            kept.append((key, token))
        else:
            drop(key, key.rsplit(".", 1)[1].replace("_", " "))
    if len(kept) != len(req.capabilities):
        changes["capabilities"] = tuple(kept)
    if req.max_total_cost is not None and req.expected_hours is None:
        warnings.append("constraints.max_total_cost cannot be checked at placement: the workload has no "
                        "expected duration (batch.timeout); it was not applied to placement")
        changes["max_total_cost"] = None
    for path in req.unevaluable:
        warnings.append(f"{path} cannot be evaluated: no provider attribute describes it; "
                        "it was not applied to placement")
    return (replace(req, **changes) if changes else req), warnings


def effective_requirements(offers, req: Requirements) -> tuple[Requirements, list[str]]:
    """The requirements placement applies over these offers, and the warnings for what it cannot."""
    return _effective(req, _build_facts(offers))


def unevaluable_constraints(doc: dict, offers) -> list[str]:
    """Warnings for constraints no provider attribute can evaluate — reported, never silenced."""
    return _effective(Requirements.from_document(doc), _build_facts(offers))[1]


# --------------------------------------------------------------------------------------------
# Ranking

@dataclass(frozen=True)
class ScoredOffer:
    offer: Offer
    hourly_cost: Decimal | None          # the whole request at this node's rate
    currency: str
    score: float                         # 0–1 within this ranking, 1 = best on the objective's metric
    #                                      (Energy: carbon per hour — the order puts renewable share first;
    #                                      Balanced: the weighted sum of BALANCED_WEIGHTS)
    delivered_tflops: float              # per unit: FP32 per GPU × count × multi-GPU efficiency
    workload_score: float | None         # training or inference score (performance tie-break)
    latency_ms: int | None
    carbon_g_per_hour: float | None      # the whole request on this node
    renewable_share: float | None
    rank: int = 0                        # 1-based position; 0 when not ranked

    def metrics(self) -> dict:
        return {
            "node": self.offer.node_name,
            "provider": self.offer.provider.name,
            "rank": self.rank,
            "score": round(self.score, 4),
            "hourly_cost": None if self.hourly_cost is None else format_money(self.hourly_cost, self.currency, True),
            "hourly_cost_number": None if self.hourly_cost is None else float(self.hourly_cost),
            "delivered_tflops": round(self.delivered_tflops, 2),
            "workload_score": self.workload_score,
            "latency_ms": self.latency_ms,
            "carbon_g_per_hour": None if self.carbon_g_per_hour is None else round(self.carbon_g_per_hour, 1),
            "renewable_share": self.renewable_share,
        }


def _normalised(values: list, higher_is_better: bool) -> list[float]:
    """Min–max to 0–1 (1 = best); unknown values score 0; a single distinct value scores 1."""
    known = [v for v in values if v is not None]
    if not known:
        return [0.0] * len(values)
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(0.0)
        elif not span:
            out.append(1.0)
        else:
            fraction = float((v - low) / span)
            out.append(fraction if higher_is_better else 1.0 - fraction)
    return out


def _score(facts: list[_Facts], req: Requirements, objective: str) -> list[ScoredOffer]:
    """Metrics and objective score for each (already feasible) node, in input order."""
    kind = req.workload_score_kind
    n = req.gpus_per_unit
    rows = []
    for f in facts:
        t = f.offer.traits
        efficiency = 1.0 if n == 1 else (t.multi_gpu_efficiency if t.multi_gpu_efficiency is not None
                                         else ASSUMED_MULTI_GPU_EFFICIENCY)
        delivered = round((t.fp32_tflops or 0.0) * n * efficiency, 9)
        rows.append((
            f,
            None if f.rate is None else f.rate * req.total_gpus,
            delivered,
            t.training_score if kind == "training" else t.inference_score,
            None if f.carbon_per_gpu_hour is None else round(f.carbon_per_gpu_hour * req.total_gpus, 9),
        ))
    costs = _normalised([r[1] for r in rows], False)
    perf = _normalised([r[2] for r in rows], True)
    latency = _normalised([r[0].latency for r in rows], False)
    carbon = _normalised([r[4] for r in rows], False)
    if objective == COST:
        scores = costs
    elif objective == PERFORMANCE:
        scores = perf
    elif objective == LATENCY:
        scores = latency
    elif objective == ENERGY:
        scores = carbon
    else:
        w = BALANCED_WEIGHTS
        scores = [round(w["cost"] * c + w["performance"] * p + w["latency"] * lt + w["energy"] * e, 9)
                  for c, p, lt, e in zip(costs, perf, latency, carbon)]
    return [
        ScoredOffer(offer=f.offer, hourly_cost=cost, currency=f.currency, score=score, delivered_tflops=delivered,
                    workload_score=ws, latency_ms=f.latency, carbon_g_per_hour=co2, renewable_share=f.renewable)
        for (f, cost, delivered, ws, co2), score in zip(rows, scores)
    ]


def _name_key(offer: Offer) -> tuple:
    return (offer.node_name, offer.node_id)


def _cost_key(s: ScoredOffer) -> Decimal:
    return s.hourly_cost if s.hourly_cost is not None else _DEC_INF


def _sort_key(objective: str):
    if objective == COST:
        return lambda s: (_cost_key(s), _name_key(s.offer))
    if objective == PERFORMANCE:
        return lambda s: (-s.delivered_tflops, -(s.workload_score if s.workload_score is not None else -1.0),
                          _cost_key(s), _name_key(s.offer))
    if objective == LATENCY:
        return lambda s: (s.latency_ms if s.latency_ms is not None else _INF, _cost_key(s), _name_key(s.offer))
    if objective == ENERGY:
        # Renewable share first, then carbon per hour (grid intensity × GPU power × PUE).
        return lambda s: (-(s.renewable_share or 0.0),
                          s.carbon_g_per_hour if s.carbon_g_per_hour is not None else _INF,
                          _cost_key(s), _name_key(s.offer))
    return lambda s: (-s.score, _cost_key(s), _name_key(s.offer))


def _ranked(facts: list[_Facts], req: Requirements, objective: str) -> list[tuple[_Facts, ScoredOffer]]:
    scored = _score(facts, req, objective)
    key = _sort_key(objective)
    order = sorted(range(len(scored)), key=lambda i: key(scored[i]))
    return [(facts[i], replace(scored[i], rank=position)) for position, i in enumerate(order, 1)]


def rank(offers, req: Requirements, objective: str | None = None, *,
         ignore_capacity: bool = False) -> list[ScoredOffer]:
    """Feasible nodes (one unit fits) ordered best first by the objective; ties by cost, then name."""
    objective = normalise_objective(objective or req.objective)
    facts = _build_facts(offers)
    req, _ = _effective(req, facts)
    feasible = [f for f in facts if _passes(f, req, ignore_capacity, "request")]
    return [s for _, s in _ranked(feasible, req, objective)]


# --------------------------------------------------------------------------------------------
# Gang plans

@dataclass(frozen=True)
class Allocation:
    offer: Offer
    units: int                   # replicas / tasks on this node
    gpus: int                    # units × GPUs per unit
    hourly_cost: Decimal | None


@dataclass(frozen=True)
class Plan:
    allocations: tuple[Allocation, ...]
    unit_nodes: tuple[str, ...]          # node_id of each unit (replica / task), in order
    hourly_cost: Decimal | None          # rate × GPUs, summed; None when a node publishes no rate
    currency: str
    strategy: str                        # colocated (one provider) | distributed
    objective: str
    delivered_tflops: float              # sum over units
    carbon_g_per_hour: float | None
    max_latency_ms: int | None
    renewable_share: float | None        # GPU-weighted mean
    score: float                         # GPU-weighted mean objective score (within its ranking)
    workload_score: float | None = None

    @property
    def total_gpus(self) -> int:
        return sum(a.gpus for a in self.allocations)

    @property
    def offer(self) -> Offer:
        """The node of the first unit (the primary placement)."""
        return self.allocations[0].offer

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.offer.provider.name for a in self.allocations))

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(a.offer.node_name for a in self.allocations)

    def total_cost(self, hours) -> Decimal | None:
        if self.hourly_cost is None:
            return None
        return self.hourly_cost * Decimal(str(hours))

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "objective": self.objective,
            "hourly_cost": None if self.hourly_cost is None else format_money(self.hourly_cost, self.currency, True),
            "hourly_cost_number": None if self.hourly_cost is None else float(self.hourly_cost),
            "currency": self.currency,
            "total_gpus": self.total_gpus,
            "delivered_tflops": round(self.delivered_tflops, 2),
            "allocations": [
                {"node_id": a.offer.node_id, "node": a.offer.node_name, "flavor": a.offer.flavor_name,
                 "provider": a.offer.provider.name, "units": a.units, "gpus": a.gpus,
                 "hourly_cost": None if a.hourly_cost is None else format_money(a.hourly_cost, self.currency, True)}
                for a in self.allocations
            ],
            "unit_nodes": list(self.unit_nodes),
        }


def _fill(pool, req: Requirements, ignore_capacity: bool):
    """Greedy in the pool's order: each unit needs gpus_per_unit GPUs on one node. All or nothing."""
    remaining = req.units
    taken = []
    for f, s in pool:
        capacity = f.offer.total_gpus if ignore_capacity else f.offer.free_gpus
        slots = capacity // req.gpus_per_unit
        if slots <= 0:
            continue
        units = min(slots, remaining)
        taken.append((f, s, units))
        remaining -= units
        if not remaining:
            return taken
    return None


def _make_plan(taken, req: Requirements, objective: str) -> Plan:
    allocations, unit_nodes = [], []
    cost: Decimal | None = Decimal(0)
    delivered = 0.0
    carbon: float | None = 0.0
    latency: int | None = None
    renewable_weighted, renewable_known = 0.0, True
    score = 0.0
    workload, workload_known = 0.0, True
    for f, s, units in taken:
        gpus = units * req.gpus_per_unit
        alloc_cost = None if f.rate is None else f.rate * gpus
        allocations.append(Allocation(offer=f.offer, units=units, gpus=gpus, hourly_cost=alloc_cost))
        unit_nodes.extend([f.offer.node_id] * units)
        cost = None if cost is None or alloc_cost is None else cost + alloc_cost
        delivered += s.delivered_tflops * units
        carbon = None if carbon is None or f.carbon_per_gpu_hour is None else carbon + f.carbon_per_gpu_hour * gpus
        if f.latency is not None:
            latency = f.latency if latency is None else max(latency, f.latency)
        if f.renewable is None:
            renewable_known = False
        else:
            renewable_weighted += f.renewable * units
        score += s.score * units
        if s.workload_score is None:
            workload_known = False
        else:
            workload += s.workload_score * units
    providers = {f.provider_key for f, _, _ in taken}
    return Plan(
        allocations=tuple(allocations),
        unit_nodes=tuple(unit_nodes),
        hourly_cost=cost,
        currency=taken[0][0].currency,
        strategy="colocated" if len(providers) == 1 else "distributed",
        objective=objective,
        delivered_tflops=round(delivered, 9),
        carbon_g_per_hour=None if carbon is None else round(carbon, 9),
        max_latency_ms=latency,
        renewable_share=round(renewable_weighted / req.units, 9) if renewable_known else None,
        score=round(score / req.units, 9),
        workload_score=round(workload / req.units, 9) if workload_known else None,
    )


def _plan_cost_key(plan: Plan) -> Decimal:
    return plan.hourly_cost if plan.hourly_cost is not None else _DEC_INF


def _plan_key(plan: Plan, objective: str) -> tuple:
    """Best first. Greedy filling in rank order is optimal for each of these (all units are alike)."""
    names = tuple(_name_key(a.offer) for a in plan.allocations)
    cost = _plan_cost_key(plan)
    if objective == COST:
        return (cost, names)
    if objective == PERFORMANCE:
        ws = plan.workload_score if plan.workload_score is not None else -1.0
        return (-plan.delivered_tflops, -ws, cost, names)
    if objective == LATENCY:
        return (plan.max_latency_ms if plan.max_latency_ms is not None else _INF, cost, names)
    if objective == ENERGY:
        return (-(plan.renewable_share or 0.0),
                plan.carbon_g_per_hour if plan.carbon_g_per_hour is not None else _INF, cost, names)
    return (-plan.score, cost, names)


def _within_budget(plan: Plan, req: Requirements) -> bool:
    if not req.has_cost_limit:
        return True
    if plan.hourly_cost is None:
        return False
    if req.max_hourly_cost is not None and plan.hourly_cost > req.max_hourly_cost:
        return False
    if req.max_total_cost is not None and req.expected_hours is not None:
        if plan.hourly_cost * req.expected_hours > req.max_total_cost:
            return False
    return True


def _best_in_pool(pool, req: Requirements, objective: str, ignore_capacity: bool) -> Plan | None:
    taken = _fill(pool, req, ignore_capacity)
    if taken is None:
        return None
    plan = _make_plan(taken, req, objective)
    if _within_budget(plan, req):
        return plan
    # The objective's pick is over budget: the cheapest gang of this pool is the only other candidate
    # worth trying (greedy by rate is the minimum-cost gang, since all units are alike).
    cheapest = sorted(pool, key=lambda fs: (fs[0].rate if fs[0].rate is not None else _DEC_INF,
                                            _name_key(fs[0].offer)))
    taken = _fill(cheapest, req, ignore_capacity)
    plan = _make_plan(taken, req, objective)
    return plan if _within_budget(plan, req) else None


def _best(plans, objective: str) -> Plan | None:
    plans = [p for p in plans if p is not None]
    return min(plans, key=lambda p: _plan_key(p, objective)) if plans else None


def _group(ranked, key) -> list[list]:
    groups: dict = {}
    for item in ranked:
        groups.setdefault(key(item[0]), []).append(item)
    return list(groups.values())


def _arrange(ranked, req: Requirements, objective: str, ignore_capacity: bool, chooser) -> Plan | None:
    def colocated():
        return chooser(_group(ranked, lambda f: (f.provider_key, f.currency)))

    def distributed():
        return chooser(_group(ranked, lambda f: f.currency))

    if req.deployment_strategy == "colocated":
        return colocated()
    if req.deployment_strategy == "distributed":
        return distributed()
    return colocated() or distributed()


def _plan(facts: list[_Facts], req: Requirements, objective: str, ignore_capacity: bool) -> Plan | None:
    feasible = [f for f in facts if _passes(f, req, ignore_capacity, "unit")]
    if not feasible:
        return None
    ranked = _ranked(feasible, req, objective)

    def choose(pools):
        return _best((_best_in_pool(pool, req, objective, ignore_capacity) for pool in pools), objective)

    return _arrange(ranked, req, objective, ignore_capacity, choose)


def plan(offers, req: Requirements, objective: str | None = None, *, ignore_capacity: bool = False) -> Plan | None:
    """The objective's best gang placement now (free GPUs), or with ignore_capacity against total GPUs.

    All or nothing: every unit (replica / task) gets gpus_per_unit GPUs on one node. `colocated`
    keeps all units at one provider, `distributed` may span providers, `flexible` prefers colocated.
    """
    objective = normalise_objective(objective or req.objective)
    facts = _build_facts(offers)
    req, _ = _effective(req, facts)
    return _plan(facts, req, objective, ignore_capacity)


def plan_ignoring_capacity(offers, req: Requirements, objective: str | None = None) -> Plan | None:
    """Could the federation ever satisfy the intent? (judged against total GPUs, API.md)."""
    return plan(offers, req, objective, ignore_capacity=True)


def first_match(offers, req: Requirements) -> Plan | None:
    """Naive baseline for benchmarks: nodes in the given order, same hard constraints, no ranking."""
    objective = normalise_objective(req.objective)
    facts = _build_facts(offers)
    req, _ = _effective(req, facts)
    feasible = [f for f in facts if _passes(f, req, False, "request")]
    if not feasible:
        return None
    in_order = list(zip(feasible, _score(feasible, req, objective)))

    def first(pools):
        for pool in pools:
            taken = _fill(pool, req, False)
            if taken is not None:
                candidate = _make_plan(taken, req, objective)
                if _within_budget(candidate, req):
                    return candidate
        return None

    return _arrange(in_order, req, objective, False, first)


# --------------------------------------------------------------------------------------------
# Fallback strategies

def _model_tier(model: str, facts: list[_Facts]) -> str | None:
    for f in facts:
        if f.model == model and f.tier:
            return f.tier
    return None


def _lower_tier(tier: str | None) -> str | None:
    if tier not in TIER_ORDER:
        return None
    index = TIER_ORDER.index(tier)
    return TIER_ORDER[index + 1] if index + 1 < len(TIER_ORDER) else None


def apply_fallback(doc_or_req, strategy: str, offers=None) -> Requirements:
    """The requirements after `negotiation.fallback_strategy` relaxes them one step.

    lower_tier: one tier below the requested tier (or below the requested model's tier, read from
    the offers); the GPU identity (model, architecture, compute capability) is released, other GPU
    minimums stay. shared: `dedicated` is released and a sharing-capable GPU is required. spot:
    interruptible/preemptible capacity is accepted. queue/fail change nothing. When nothing can be
    relaxed (no lower tier), the requirements come back unchanged.
    """
    req = _requirements(doc_or_req)
    strategy = _strategy_name(strategy)
    if strategy not in FALLBACK_STRATEGIES:
        raise ValueError(f"unknown fallback strategy {strategy!r}; expected one of {', '.join(FALLBACK_STRATEGIES)}")
    if strategy == "spot":
        return replace(req, preemptible=True)
    if strategy == "shared":
        return replace(req, dedicated=False, shared=True)
    if strategy == "lower_tier":
        return _lower_tier_requirements(req, _build_facts(offers or []))
    return req


def _lower_tier_requirements(req: Requirements, facts: list[_Facts]) -> Requirements:
    current = req.tier
    if current is None and req.model:
        current = _model_tier(req.model, facts)
    lower = _lower_tier(current)
    if lower is None:
        return req
    return replace(req, tier=lower, model=None, architecture=None, compute_capability=None)


# --------------------------------------------------------------------------------------------
# Feasibility and suggestions

@dataclass
class Assessment:
    status: str                                  # placeable | queue | infeasible | over_budget
    message: str
    error_code: str | None = None                # API.md error code when infeasible / over budget
    http_status: int | None = None               # 409 / 402
    plan: Plan | None = None                     # best placement now
    estimated_plan: Plan | None = None           # objective's pick ignoring capacity (estimate when queued)
    blocking_requirement: str | None = None      # what keeps a feasible intent from starting / placing
    suggestions: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requirements: Requirements | None = None     # what was applied (after warnings and any fallback)
    fallback_applied: str | None = None


def _fmt_cost(amount: Decimal | None, currency: str) -> str:
    return "unpriced" if amount is None else format_money(amount, currency, per_hour=True)


def _diagnose(facts: list[_Facts], req: Requirements) -> tuple[str, str, str]:
    """Why no node could ever take the intent: (error code, blocking requirement, message).

    Requirements are applied in stages — model, where, memory, GPU count, then everything else —
    and the first stage that leaves no node names the error (API.md codes).
    """
    keysets = [frozenset(m.requirement for m in _iter_mismatches(f, req, True, "unit")) - _COST_KEYS
               for f in facts]
    present = set().union(*keysets) if keysets else set()
    staged = _WHERE_KEYS | _MEMORY_KEYS | {"gpu.model", "gpu.count"}
    others = [k for k in _KEY_ORDER if k in present and k not in staged]
    others += sorted(present - set(_KEY_ORDER))
    stages = [("GPU_MODEL_UNAVAILABLE", frozenset({"gpu.model"})),
              ("REGION_UNAVAILABLE", _WHERE_KEYS),
              ("GPU_MEMORY_INSUFFICIENT", _MEMORY_KEYS),
              ("GPU_COUNT_INSUFFICIENT", frozenset({"gpu.count"}))]
    stages += [("INSUFFICIENT_RESOURCES", frozenset({k})) for k in others]

    survivors = list(range(len(facts)))
    what = req.model or "matching GPU"
    for code, keys in stages:
        remaining = [i for i in survivors if not keysets[i] & keys]
        if remaining:
            survivors = remaining
            continue
        if not facts:
            code = "GPU_MODEL_UNAVAILABLE" if req.model else "INSUFFICIENT_RESOURCES"
            return code, "gpu.model" if req.model else "gpu", "The federation advertises no GPU nodes."
        hit = [i for i in survivors if keysets[i] & keys]
        blocking = next(k for k in _KEY_ORDER + tuple(sorted(keys)) if k in keys and any(k in keysets[i] for i in hit))
        example = next(m for m in _iter_mismatches(facts[hit[0]], req, True, "unit") if m.requirement in keys)
        where = _where_text(req)
        if code == "GPU_MODEL_UNAVAILABLE":
            models = sorted({f.model for f in facts if f.model})
            return code, blocking, (f"No node in the federation has {req.model}; models offered: "
                                    f"{', '.join(models) or 'none'}.")
        if code == "REGION_UNAVAILABLE":
            groups = sorted({GROUP_LABELS.get(_group_of(facts[i]), facts[i].region or "unknown")
                             for i in hit})
            return code, blocking, (f"No provider {where} offers {what}; it is offered in "
                                    f"{', '.join(groups)}.")
        if code == "GPU_MEMORY_INSUFFICIENT":
            sizes = [facts[i].offer.traits.memory_per_gpu for i in hit if facts[i].offer.traits.memory_per_gpu > 0]
            if blocking == "gpu.memory_min":
                best = f"the largest is {format_gi(max(sizes))}" if sizes else "none publishes its memory"
                return code, blocking, (f"No {what} node {where} has {format_gi(req.memory_min)} per GPU; {best}.")
            best = f"the smallest is {format_gi(min(sizes))}" if sizes else "none publishes its memory"
            return code, blocking, (f"No {what} node {where} has at most {format_gi(req.memory_max)} per GPU; {best}.")
        if code == "GPU_COUNT_INSUFFICIENT":
            largest = max(facts[i].offer.total_gpus for i in hit)
            return code, blocking, (f"No {what} node {where} has {req.gpus_per_unit} GPUs; "
                                    f"the largest has {largest}.")
        return code, blocking, (f"No node meets {blocking}: {len(hit)} node(s) match every other requirement "
                                f"checked before it, e.g. {facts[hit[0]].offer.node_name}: {example.message}.")

    # Every requirement is met by some node, yet no gang fits the federation's total capacity.
    pool = [facts[i] for i in survivors]
    slots = sum(f.offer.total_gpus // req.gpus_per_unit for f in pool)
    per_provider: dict[str, int] = {}
    for f in pool:
        per_provider[f.provider_key] = per_provider.get(f.provider_key, 0) + f.offer.total_gpus // req.gpus_per_unit
    detail = f"matching nodes hold at most {slots} {req.unit_word}(s) in total"
    if req.deployment_strategy == "colocated":
        detail += f", at most {max(per_provider.values())} at one provider (colocated)"
    return ("GPU_COUNT_INSUFFICIENT", "gpu.count",
            f"The gang of {req.units} {req.unit_word}(s) × {req.gpus_per_unit} {what} GPU(s) can never fit: "
            f"{detail}.")


def _where_text(req: Requirements) -> str:
    parts = []
    if req.location:
        parts.append(f"in {location_label(req.location)}")
    if req.availability_zone:
        parts.append(f"in zone {req.availability_zone}")
    if req.providers:
        parts.append(f"among {', '.join(sorted(req.providers))}")
    return " ".join(parts) or "in the federation"


def _signed_money(diff: Decimal, currency: str) -> str:
    sign = "-" if diff < 0 else "+"
    return f"{sign}{abs(diff).quantize(_CENT)} {currency}/hour"


def _suggestion_order_key(plan: Plan, objective: str) -> tuple:
    """Comparable across differently relaxed requirements (plan scores are not: they are relative)."""
    cost = _plan_cost_key(plan)
    if objective == PERFORMANCE:
        return (-plan.delivered_tflops, cost)
    if objective == LATENCY:
        return (plan.max_latency_ms if plan.max_latency_ms is not None else _INF, cost)
    if objective == ENERGY:
        return (-(plan.renewable_share or 0.0),
                plan.carbon_g_per_hour if plan.carbon_g_per_hour is not None else _INF, cost)
    # Cost, and Balanced (whose normalised score means nothing across different candidate sets):
    # cheaper first, then faster.
    return (cost, -plan.delivered_tflops)


def _patch(path: str, value) -> dict:
    out: dict = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _merge(*patches: dict) -> dict:
    out: dict = {}
    for patch in patches:
        for key, value in patch.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = _merge(out[key], value)
            else:
                out[key] = value
    return out


def _relaxations(facts: list[_Facts], keysets: list[frozenset], req: Requirements):
    """(kind, alternative, relaxed requirements, touched keys, document patch) — one requirement each."""
    gpu = "workload.resources.gpu"
    only = lambda keys: [f for f, ks in zip(facts, keysets) if ks <= keys]  # noqa: E731

    if req.model:
        keys = frozenset({"gpu.model"})
        for model in sorted({f.model for f in only(keys) if f.model and f.model != req.model}):
            yield ("model", f"Use {model} instead of {req.model}", replace(req, model=model), keys,
                   _patch(f"{gpu}.model", model))

    current_tier = req.tier or (_model_tier(req.model, facts) if req.model else None)
    if current_tier in TIER_ORDER:
        keys = frozenset({"gpu.tier", "gpu.model", "gpu.architecture", "gpu.compute_capability"})
        for tier in TIER_ORDER[TIER_ORDER.index(current_tier) + 1:]:
            relaxed = replace(req, tier=tier, model=None, architecture=None, compute_capability=None)
            was = req.model if req.model and not req.tier else f"{current_tier}-tier GPUs"
            yield ("tier", f"Use a {tier}-tier GPU instead of {was}", relaxed, keys,
                   _merge(_patch(f"{gpu}.tier", tier), _patch(f"{gpu}.model", "any"),
                          *([_patch(f"{gpu}.architecture", "any")] if req.architecture else []),
                          *([_patch(f"{gpu}.compute_capability", "any")] if req.compute_capability else [])))

    if req.location:
        # Another location: the zone (which belongs to the old location) goes with it.
        keys = frozenset({"constraints.location", "constraints.availability_zone"})
        groups = {_group_of(f) for f in only(keys)} - {None, req.location}
        groups &= set(GROUP_LABELS)
        for group in sorted(groups, key=_PRIMARY_GROUP_ORDER.index):
            label = GROUP_LABELS[group]
            was = location_label(req.location)
            patch = _patch("constraints.location", label)
            if req.availability_zone:
                patch = _merge(patch, _patch("constraints.availability_zone", None))
            yield ("location", f"Run in {label} instead of {was}",
                   replace(req, location=group, availability_zone=None), keys, patch)
    if req.availability_zone:
        keys = frozenset({"constraints.availability_zone"})
        yield ("zone", f"Accept any availability zone instead of {req.availability_zone}",
               replace(req, availability_zone=None), keys, _patch("constraints.availability_zone", None))
    if req.providers:
        keys = frozenset({"constraints.providers"})
        yield ("providers", f"Accept any provider instead of {', '.join(sorted(req.providers))}",
               replace(req, providers=frozenset()), keys, _patch("constraints.providers", []))

    if not req.preemptible and not req.interruptible:
        yield ("spot", "Accept spot/interruptible capacity (preemptible: true)", replace(req, preemptible=True),
               frozenset({"constraints.preemptible"}), _patch("constraints.preemptible", True))

    if req.dedicated:
        yield ("shared", "Use a shared GPU (MIG/time-slicing) instead of a dedicated one",
               replace(req, dedicated=False, shared=True), frozenset({"gpu.dedicated", "gpu.shared"}),
               _merge(_patch(f"{gpu}.dedicated", False), _patch(f"{gpu}.shared", True)))

    if req.memory_min is not None:
        keys = frozenset({"gpu.memory_min"})
        sizes = sorted({f.offer.traits.memory_per_gpu for f in only(keys)
                        if 0 < f.offer.traits.memory_per_gpu < req.memory_min}, reverse=True)
        for size in sizes[:2]:
            yield ("memory", f"Accept {format_gi(size)} per GPU instead of {format_gi(req.memory_min)}",
                   replace(req, memory_min=size), keys, _patch(f"{gpu}.memory_min", format_gi(size)))

    if req.max_latency_ms is not None:
        keys = frozenset({"constraints.max_latency_ms"})
        latencies = sorted({f.latency for f in only(keys) if f.latency is not None and f.latency > req.max_latency_ms})
        for latency in latencies[:2]:
            yield ("latency", f"Accept {latency} ms latency instead of {req.max_latency_ms} ms",
                   replace(req, max_latency_ms=latency), keys, _patch("constraints.max_latency_ms", latency))

    # Any other single requirement that is the only thing keeping some node out: drop it.
    for key, change, path, value, text in _droppable(req):
        yield ("drop", text, replace(req, **change), frozenset({key}), _patch(path, value))

    # Fewer GPUs and fewer units are searched by the caller (first count that fits), see _suggest.
    if req.has_cost_limit:
        yield ("cost", None, replace(req, max_hourly_cost=None, max_total_cost=None), _COST_KEYS, None)


def _droppable(req: Requirements):
    """(key, Requirements change, document path, document value, text) for requirements a user can drop."""
    gpu = "workload.resources.gpu"
    for name, unit in (("cores_min", " cores"), ("cores_max", " cores"), ("fp32_tflops", " FP32 TFLOPS"),
                       ("multi_gpu_efficiency", " multi-GPU efficiency")):
        if getattr(req, name) is not None:
            yield (f"gpu.{name}", {name: None}, f"{gpu}.{name}", None,
                   f"Drop gpu.{name} ({getattr(req, name):g}{unit})")
    if req.memory_max is not None:
        yield ("gpu.memory_max", {"memory_max": None}, f"{gpu}.memory_max", None,
               f"Drop gpu.memory_max ({format_gi(req.memory_max)})")
    if req.clock_speed_min is not None:
        yield ("gpu.clock_speed_min", {"clock_speed_min": None}, f"{gpu}.clock_speed_min", None,
               f"Drop gpu.clock_speed_min ({_clock(req.clock_speed_min)})")
    for name in ("compute_capability", "architecture", "interconnect", "topology"):
        if getattr(req, name):
            yield (f"gpu.{name}", {name: None}, f"{gpu}.{name}", "any",
                   f"Accept any {name.replace('_', ' ')} instead of {getattr(req, name)}")
    for name in ("shared", "multi_instance", "dedicated"):
        if getattr(req, name):
            yield (f"gpu.{name}", {name: False}, f"{gpu}.{name}", False,
                   f"Do not require {name.replace('_', '-')} GPUs")
    energy = "constraints.energy"
    if req.max_carbon_g_per_hour is not None:
        yield (f"{energy}.max_carbon_footprint", {"max_carbon_g_per_hour": None}, f"{energy}.max_carbon_footprint",
               None, f"Drop the carbon limit of {req.max_carbon_g_per_hour:g} g CO2/h")
    if req.renewable_energy_only:
        yield (f"{energy}.renewable_energy_only", {"renewable_energy_only": False}, f"{energy}.renewable_energy_only",
               False, "Accept providers that are not 100% renewable")
    if req.max_pue is not None:
        yield (f"{energy}.power_usage_effectiveness", {"max_pue": None}, f"{energy}.power_usage_effectiveness",
               None, f"Drop the PUE limit of {req.max_pue:g}")
    if req.energy_efficiency_rating:
        yield (f"{energy}.energy_efficiency_rating", {"energy_efficiency_rating": None},
               f"{energy}.energy_efficiency_rating", None,
               f"Drop the energy efficiency rating {req.energy_efficiency_rating}")
    if req.green_certified_only:
        yield (f"{energy}.green_certified_only", {"green_certified_only": False}, f"{energy}.green_certified_only",
               False, "Accept providers that are not green certified")
    compliance = "constraints.compliance"
    if req.certifications:
        yield (f"{compliance}.certifications", {"certifications": ()}, f"{compliance}.certifications", [],
               f"Drop the certification requirement ({', '.join(req.certifications)})")
    if req.data_residency:
        yield (f"{compliance}.data_residency", {"data_residency": ()}, f"{compliance}.data_residency", [],
               "Drop the data residency requirement")
    for name in ("gdpr_compliant", "hipaa_compliant"):
        if getattr(req, name):
            yield (f"{compliance}.{name}", {name: False}, f"{compliance}.{name}", False,
                   f"Drop {compliance}.{name}")
    for key, token in req.capabilities:
        kept = tuple(c for c in req.capabilities if c[0] != key)
        yield (key, {"capabilities": kept}, key, False, f"Drop {key}")
    if req.min_network_bandwidth_gbps is not None:
        path = "constraints.performance.min_network_bandwidth"
        yield (path, {"min_network_bandwidth_gbps": None}, path, None,
               f"Drop the minimum network bandwidth of {req.min_network_bandwidth_gbps:g} Gbps")


def _suggest(facts: list[_Facts], req: Requirements, objective: str, baseline: Plan | None,
             include_queue: bool) -> list[dict]:
    keysets = [frozenset(m.requirement for m in _iter_mismatches(f, req, True, "unit")) for f in facts]
    found = []

    def attempt(pool, relaxed):
        now = _plan(pool, relaxed, objective, False)
        if now is not None:
            return now, True
        if include_queue:
            ever = _plan(pool, relaxed, objective, True)
            if ever is not None:
                return ever, False
        return None, False

    def record(kind, alternative, relaxed, placed, now, patch):
        if placed is None:
            return
        found.append((kind, alternative, relaxed, placed, now, patch))

    for kind, alternative, relaxed, keys, patch in _relaxations(facts, keysets, req):
        pool = [f for f, ks in zip(facts, keysets) if ks <= keys]
        if not pool:
            continue
        placed, now = attempt(pool, relaxed)
        if kind == "cost" and placed is not None:
            # The cheapest such gang names the cap that would have been enough.
            cheapest = _plan(pool, relaxed, COST, not now) or placed
            placed = cheapest
            if cheapest.hourly_cost is None:
                continue
            patches, texts = [], []
            if req.max_hourly_cost is not None and cheapest.hourly_cost > req.max_hourly_cost:
                cap = cheapest.hourly_cost.quantize(_CENT, rounding=ROUND_CEILING)
                patches.append(_patch("constraints.max_hourly_cost", f"{cap} {cheapest.currency}"))
                texts.append(f"Raise max_hourly_cost to {cap} {cheapest.currency}")
            hours = req.expected_hours
            over_total = hours is not None and req.max_total_cost is not None
            if over_total and cheapest.hourly_cost * hours > req.max_total_cost:
                cap = (cheapest.hourly_cost * hours).quantize(_CENT, rounding=ROUND_CEILING)
                patches.append(_patch("constraints.max_total_cost", f"{cap} {cheapest.currency}"))
                texts.append(f"raise max_total_cost to {cap} {cheapest.currency}")
            if not patches:
                continue
            alternative, patch = " and ".join(texts), _merge(*patches)
        record(kind, alternative, relaxed, placed, now, patch)

    # Fewer GPUs per unit / fewer units: the largest reduction-free value that fits.
    for kind, attr, path, words in (
            ("count", "gpus_per_unit", "workload.resources.gpu.count",
             (f"GPU per {req.unit_word}", f"GPUs per {req.unit_word}")),
            ("units", "units",
             "workload.batch.parallel_tasks" if req.workload_type == "batch" else "workload.scaling.min_replicas",
             ("parallel task", "parallel tasks") if req.workload_type == "batch" else ("replica", "replicas"))):
        keys = frozenset({"gpu.count"}) if kind == "count" else frozenset()
        pool = [f for f, ks in zip(facts, keysets) if ks <= keys | _COST_KEYS]
        current = getattr(req, attr)
        fallback = None
        for value in range(current - 1, 0, -1):
            relaxed = replace(req, **{attr: value})
            placed, now = attempt(pool, relaxed)
            if placed is not None and now:
                fallback = (placed, now, value, relaxed)
                break
            if placed is not None and fallback is None:
                fallback = (placed, now, value, relaxed)
        if fallback:
            placed, now, value, relaxed = fallback
            word = words[0] if value == 1 else words[1]
            record(kind, f"Use {value} {word} instead of {current}", relaxed, placed, now, _patch(path, value))

    ordered = sorted(range(len(found)), key=lambda i: (not found[i][4],
                                                       _suggestion_order_key(found[i][3], objective), i))
    out, seen = [], set()
    for i in ordered:
        kind, alternative, relaxed, placed, now, patch = found[i]
        signature = tuple((a.offer.node_id, a.units, a.gpus) for a in placed.allocations)
        relax_key = json.dumps(patch, sort_keys=True, default=str)
        if signature in seen or relax_key in seen or alternative in seen:
            continue
        seen.update({signature, relax_key, alternative})
        out.append(_suggestion(kind, alternative, patch, placed, now, baseline))
        if len(out) == MAX_SUGGESTIONS:
            break
    return out


def _suggestion(kind, alternative, patch, placed: Plan, now: bool, baseline: Plan | None) -> dict:
    currency = placed.currency
    if placed.hourly_cost is None:
        cost_difference = "unpriced"
    elif baseline is None or baseline.hourly_cost is None or baseline.currency != currency:
        cost_difference = f"{placed.hourly_cost.quantize(_CENT)} {currency}/hour (estimate)"
    else:
        cost_difference = _signed_money(placed.hourly_cost - baseline.hourly_cost, currency)
    if baseline is None or not baseline.delivered_tflops:
        impact = f"{placed.delivered_tflops:.1f} TFLOPS FP32"
    else:
        change = round((placed.delivered_tflops - baseline.delivered_tflops) / baseline.delivered_tflops * 100)
        impact = f"{'+' if change >= 0 else '-'}{abs(change)}% FP32"
    if kind == "spot":
        impact += ", may be interrupted"
    if not now:
        alternative += " (queued until capacity frees up)"
    return {
        "alternative": alternative,
        "cost_difference": cost_difference,
        "performance_impact": impact,
        "kind": kind,
        "relax": patch,
        "placeable_now": now,
        "status": STATUS_PLACEABLE if now else STATUS_QUEUE,
        "estimated_cost": _fmt_cost(placed.hourly_cost, currency),
        "estimated_cost_per_hour": None if placed.hourly_cost is None else float(placed.hourly_cost),
        "currency": currency,
        "provider": placed.offer.provider.name,
        "node": placed.offer.node_name,
    }


def _capacity_message(facts: list[_Facts], req: Requirements, estimate: Plan, queued: bool) -> str:
    matching = [f for f in facts if _passes(f, req, True, "unit")]
    free = sum(f.offer.free_gpus for f in matching)
    total = sum(f.offer.total_gpus for f in matching)
    outcome = ("is queued until capacity is released" if queued
               else "is not queued (negotiation.fallback_strategy: fail)")
    return (f"No free capacity now for {req.units} {req.unit_word}(s) × {req.gpus_per_unit} "
            f"{req.model or 'GPU'}(s) ({req.deployment_strategy}): matching nodes have {free} of {total} GPUs "
            f"free. The intent fits the federation and {outcome} "
            f"(estimated {_fmt_cost(estimate.hourly_cost, estimate.currency)} on {', '.join(estimate.providers)}).")


def assess(offers, req: Requirements, objective: str | None = None) -> Assessment:
    """Classify an intent for submit (API.md): placeable now, queue, infeasible (409) or over budget (402)."""
    objective = normalise_objective(objective or req.objective)
    facts = _build_facts(offers)
    eff, warnings = _effective(req, facts)

    now = _plan(facts, eff, objective, False)
    if now is not None:
        return Assessment(status=STATUS_PLACEABLE, plan=now, estimated_plan=now, warnings=warnings,
                          requirements=eff, message=_placed_message(now))

    ever = _plan(facts, eff, objective, True)
    if ever is not None:
        strategy = eff.fallback_strategy
        if strategy in ("lower_tier", "shared", "spot"):
            relaxed = eff
            while True:
                step = (_lower_tier_requirements(relaxed, facts) if strategy == "lower_tier"
                        else apply_fallback(relaxed, strategy))
                if step == relaxed:
                    break
                relaxed = step
                fallback_plan = _plan(facts, relaxed, objective, False)
                if fallback_plan is not None:
                    note = (f"negotiation.fallback_strategy {strategy} applied: no free capacity for the "
                            f"requested GPUs, placed on {', '.join(fallback_plan.providers)} instead")
                    return Assessment(status=STATUS_PLACEABLE, plan=fallback_plan, estimated_plan=fallback_plan,
                                      warnings=[*warnings, note], requirements=relaxed, fallback_applied=strategy,
                                      message=_placed_message(fallback_plan) + f" (fallback {strategy})")
                if strategy != "lower_tier":
                    break
        suggestions = _suggest(facts, eff, objective, ever, include_queue=False)
        if strategy == "fail":
            return Assessment(status=STATUS_INFEASIBLE, error_code="INSUFFICIENT_RESOURCES",
                              http_status=HTTP_STATUS["INSUFFICIENT_RESOURCES"], estimated_plan=ever,
                              blocking_requirement="gpu.count", suggestions=suggestions, warnings=warnings,
                              requirements=eff, message=_capacity_message(facts, eff, ever, queued=False))
        return Assessment(status=STATUS_QUEUE, estimated_plan=ever, blocking_requirement="gpu.count",
                          suggestions=suggestions, warnings=warnings, requirements=eff,
                          message=_capacity_message(facts, eff, ever, queued=True))

    if eff.has_cost_limit:
        uncapped = replace(eff, max_hourly_cost=None, max_total_cost=None)
        currency = eff.max_hourly_cost_currency if eff.max_hourly_cost is not None else eff.max_total_cost_currency
        cheapest = (_plan([f for f in facts if f.currency == currency], uncapped, COST, True)
                    or _plan(facts, uncapped, COST, True))
        if cheapest is not None:
            estimate = _plan(facts, uncapped, objective, True)
            suggestions = _suggest(facts, eff, objective, estimate, include_queue=True)
            blocking, message = _budget_message(eff, cheapest)
            return Assessment(status=STATUS_OVER_BUDGET, error_code="COST_LIMIT_EXCEEDED",
                              http_status=HTTP_STATUS["COST_LIMIT_EXCEEDED"], estimated_plan=estimate,
                              blocking_requirement=blocking, suggestions=suggestions, warnings=warnings,
                              requirements=eff, message=message)

    code, blocking, message = _diagnose(facts, eff)
    suggestions = _suggest(facts, eff, objective, None, include_queue=True)
    return Assessment(status=STATUS_INFEASIBLE, error_code=code, http_status=HTTP_STATUS[code],
                      blocking_requirement=blocking, suggestions=suggestions, warnings=warnings,
                      requirements=eff, message=message)


def _placed_message(plan: Plan) -> str:
    where = ", ".join(f"{a.offer.node_name} ({a.offer.provider.name}, {a.gpus} GPU)" for a in plan.allocations)
    return f"Placeable now on {where} for {_fmt_cost(plan.hourly_cost, plan.currency)}."


def _budget_message(req: Requirements, cheapest: Plan) -> tuple[str, str]:
    cost = cheapest.hourly_cost
    if cost is None:
        return ("constraints.max_hourly_cost" if req.max_hourly_cost is not None else "constraints.max_total_cost",
                "No feasible node publishes an hourly rate, so the intent's cost limit cannot be met.")
    where = f"{', '.join(cheapest.nodes)} ({', '.join(cheapest.providers)})"
    limit_currency = req.max_hourly_cost_currency if req.max_hourly_cost is not None else req.max_total_cost_currency
    if cheapest.currency != limit_currency:
        return ("constraints.max_hourly_cost" if req.max_hourly_cost is not None else "constraints.max_total_cost",
                f"No feasible node is priced in {limit_currency}, the currency of the intent's cost limit: "
                f"the cheapest is {_fmt_cost(cost, cheapest.currency)} on {where}.")
    if req.max_hourly_cost is not None and cost > req.max_hourly_cost:
        return ("constraints.max_hourly_cost",
                f"Every feasible placement costs more than max_hourly_cost "
                f"{format_money(req.max_hourly_cost, req.max_hourly_cost_currency, True)}: the cheapest is "
                f"{_fmt_cost(cost, cheapest.currency)} on {where}.")
    hours = req.expected_hours
    total = cost * hours if hours is not None else None
    return ("constraints.max_total_cost",
            f"Every feasible placement costs more than max_total_cost "
            f"{format_money(req.max_total_cost, req.max_total_cost_currency)}: the cheapest is "
            f"{_fmt_cost(cost, cheapest.currency)}, about "
            f"{format_money(total, cheapest.currency) if total is not None else 'unknown'} for the "
            f"expected {req.expected_duration_s // 60} min, on {where}.")

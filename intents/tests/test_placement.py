"""Matching semantics (FLUIDOS.md §3), requirement parsing, unevaluable-constraint warnings, first_match."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from intents import placement
from intents.placement import Requirements, first_match, mismatches, unevaluable_constraints
from intents.tests.placement_factories import make_doc, make_offer

GI = 1 << 30


def req(**kwargs) -> Requirements:
    return Requirements.from_document(make_doc(**kwargs))


def keys(offer, requirements, **kwargs) -> list[str]:
    return [m.requirement for m in mismatches(offer, requirements, **kwargs)]


# --- Requirements.from_document ---------------------------------------------------------------

def test_document_is_parsed_into_numbers_and_canonical_enums():
    r = req(
        objective="Performance_Maximization", type="service", units=3, strategy="colocated",
        gpu={"model": "NVIDIA-H100", "count": 2, "memory_min": "80Gi", "memory_max": "96Gi", "cores_min": "10000",
             "clock_speed_min": "1.5G", "compute_capability": "9", "architecture": "Hopper", "tier": "Premium",
             "interconnect": "NVLink", "fp32_tflops": 50, "multi_gpu_efficiency": 0.9, "dedicated": True},
        constraints={"max_hourly_cost": "40 EUR", "location": "EU", "availability_zone": "Zone-A",
                     "providers": ["AWS", "CoreWeave"], "max_latency_ms": 20, "preemptible": False,
                     "energy": {"max_carbon_footprint": "1.2kg CO2/h", "renewable_energy_only": True,
                                "power_usage_effectiveness": 1.3, "energy_efficiency_rating": "B",
                                "green_certified_only": True},
                     "compliance": {"certifications": ["ISO27001"], "data_residency": ["EU"],
                                    "gdpr_compliant": True, "encryption_at_rest": True},
                     "performance": {"min_network_bandwidth": "500Mbps"},
                     "negotiation": {"fallback_strategy": "spot"}},
    )
    assert r.objective == placement.PERFORMANCE
    assert r.workload_type == "service" and r.units == 3 and r.gpus_per_unit == 2 and r.total_gpus == 6
    assert r.deployment_strategy == "colocated"
    assert r.model == "nvidia-h100"
    assert (r.memory_min, r.memory_max) == (80 * GI, 96 * GI)
    assert r.cores_min == 10000 and r.clock_speed_min == 1_500_000_000
    assert r.compute_capability == "9.0"
    assert (r.architecture, r.tier, r.interconnect) == ("hopper", "premium", "nvlink")
    assert r.dedicated and not r.shared
    assert (r.max_hourly_cost, r.max_hourly_cost_currency) == (Decimal("40"), "EUR")
    assert r.location == "eu" and r.availability_zone == "zone-a"
    assert r.providers == frozenset({"aws", "coreweave"})
    assert r.max_latency_ms == 20
    assert r.max_carbon_g_per_hour == 1200.0 and r.renewable_energy_only and r.max_pue == 1.3
    assert r.energy_efficiency_rating == "B" and r.green_certified_only
    assert r.certifications == ("ISO27001",) and r.data_residency == ("eu",) and r.gdpr_compliant
    assert r.capabilities == (("constraints.compliance.encryption_at_rest", "encryptionatrest"),)
    assert r.min_network_bandwidth_gbps == 0.5
    assert r.fallback_strategy == "spot"


def test_units_come_from_parallel_tasks_and_duration_from_timeout():
    r = req(type="batch", units=4, timeout="1h30m", constraints={"max_total_cost": "100 USD"})
    assert r.units == 4 and r.workload_type == "batch"
    assert r.expected_duration_s == 5400 and r.expected_hours == Decimal("1.5")
    assert (r.max_total_cost, r.max_total_cost_currency) == (Decimal("100"), "USD")


def test_missing_and_any_sections_mean_no_filter():
    r = Requirements.from_document({"objective": "Cost_Minimization",
                                    "workload": {"type": "service", "name": "x", "image": "x"}})
    assert r.model is None and r.gpus_per_unit == 1 and r.units == 1
    assert r.location is None and r.providers == frozenset() and r.max_latency_ms == 100
    assert r.deployment_strategy == "flexible" and r.fallback_strategy == "queue"
    r = req(gpu={"model": "any", "architecture": "any", "compute_capability": "any", "tier": "any"},
            constraints={"location": "any", "providers": ["any"]})
    assert (r.model, r.architecture, r.compute_capability, r.tier, r.location) == (None,) * 5
    assert r.providers == frozenset()
    offer = make_offer("n1", "amd-mi300x", region="", zone="")
    assert mismatches(offer, r) == []


def test_model_aliases_come_from_the_catalogue():
    r = req(gpu={"model": "nvidia-a6000"})
    assert r.model == "nvidia-rtx-a6000"
    assert mismatches(make_offer("n1", "NVIDIA-RTX-A6000"), r) == []
    assert keys(make_offer("n2", "nvidia-a100"), r) == ["gpu.model"]


def test_model_aliases_fall_back_to_lower_case_without_the_catalogue(monkeypatch):
    monkeypatch.setattr(placement, "_catalog_canonical_model", None)
    placement.canonical_model.cache_clear()
    try:
        assert placement.canonical_model("NVIDIA H100") == "nvidia-h100"
        assert placement.canonical_model("nvidia-a6000") == "nvidia-a6000"
    finally:
        placement.canonical_model.cache_clear()


# --- GPU traits -------------------------------------------------------------------------------

def test_memory_is_per_gpu_not_node_total():
    r = req(gpu={"memory_min": "80Gi"})
    eight_by_80 = make_offer("big", "nvidia-h100", memory_per_gpu=80 * GI)
    eight_by_40 = make_offer("small", "nvidia-a100", memory_per_gpu=40 * GI)   # 320Gi on the node
    assert mismatches(eight_by_80, r) == []
    [m] = mismatches(eight_by_40, r)
    assert m.requirement == "gpu.memory_min"
    assert m.message == "node has 40Gi per GPU, intent asks at least 80Gi"


def test_memory_max_and_units_are_unit_aware():
    assert keys(make_offer("n", memory_per_gpu=80 * GI), req(gpu={"memory_max": "48Gi"})) == ["gpu.memory_max"]
    # 80G (10^9) < 80Gi (2^30): a node with 80Gi meets "80G"; a node with 80G fails "80Gi".
    assert keys(make_offer("gi", memory_per_gpu=80 * GI), req(gpu={"memory_min": "80G"})) == []
    assert keys(make_offer("g", memory_per_gpu=80 * 10**9), req(gpu={"memory_min": "80Gi"})) == ["gpu.memory_min"]


def test_cores_and_clock_are_per_gpu_minimums_and_maximums():
    offer = make_offer("n", "nvidia-h100")  # 16896 cores per GPU on an 8-GPU node, 1.98 GHz
    assert keys(offer, req(gpu={"cores_min": 16000})) == []
    assert keys(offer, req(gpu={"cores_min": 20000})) == ["gpu.cores_min"]
    assert keys(offer, req(gpu={"cores_max": 10000})) == ["gpu.cores_max"]
    assert keys(offer, req(gpu={"clock_speed_min": "1.5G"})) == []
    assert keys(offer, req(gpu={"clock_speed_min": "2.1G"})) == ["gpu.clock_speed_min"]


def test_fp32_and_efficiency_are_minimums():
    offer = make_offer("n", "nvidia-h100", multi_gpu_efficiency=0.92)
    assert keys(offer, req(gpu={"fp32_tflops": 60, "multi_gpu_efficiency": 0.9})) == []
    assert keys(offer, req(gpu={"fp32_tflops": 70})) == ["gpu.fp32_tflops"]
    assert keys(offer, req(gpu={"multi_gpu_efficiency": 0.95})) == ["gpu.multi_gpu_efficiency"]


def test_enumerations_compare_after_lower_casing_and_aliases():
    offer = make_offer("n", "nvidia-h100", architecture="Hopper", compute_capability="9.0", tier="PREMIUM",
                       interconnect="NVLink", topology="All-To-All")
    r = req(gpu={"model": "H100", "architecture": "hopper", "compute_capability": "9", "tier": "premium",
                 "interconnect": "nvlink", "topology": "all-to-all"})
    assert mismatches(offer, r) == []
    [m] = mismatches(offer, req(gpu={"architecture": "ampere"}))
    assert (m.requirement, m.message) == ("gpu.architecture", "node has architecture hopper, intent asks ampere")
    [m] = mismatches(make_offer("n", "nvidia-a100"), req(gpu={"model": "nvidia-h100"}))
    assert m.message == "node has nvidia-a100, intent asks nvidia-h100"
    assert keys(make_offer("n", "nvidia-rtx-4090"), req(gpu={"architecture": "Ada Lovelace"})) == []


def test_a_requested_trait_the_node_does_not_publish_fails():
    amd = make_offer("mi", "amd-mi300x")          # no compute capability on AMD
    [m] = mismatches(amd, req(gpu={"compute_capability": "9.0"}))
    assert m.requirement == "gpu.compute_capability" and "does not publish" in m.message
    no_topology = make_offer("n", "nvidia-h100")
    assert keys(no_topology, req(gpu={"topology": "ring"})) == ["gpu.topology"]
    no_fp32 = make_offer("n", "nvidia-h100", fp32_tflops=None)
    assert keys(no_fp32, req(gpu={"fp32_tflops": 1})) == ["gpu.fp32_tflops"]
    no_memory = make_offer("n", "nvidia-h100", memory_per_gpu=0)
    assert keys(no_memory, req(gpu={"memory_min": "1Gi"})) == ["gpu.memory_min"]


@pytest.mark.parametrize("flag", ["shared", "interruptible", "multi_instance", "dedicated"])
def test_boolean_true_requires_the_capability_and_false_is_no_requirement(flag):
    without = make_offer("plain", "nvidia-h100")
    with_it = make_offer("capable", "nvidia-h100", **{flag: True})
    assert keys(without, req(gpu={flag: True})) == [f"gpu.{flag}"]
    extra = {"preemptible": True} if flag == "interruptible" else {}
    assert keys(with_it, req(gpu={flag: True}, constraints=extra)) == []
    assert keys(without, req(gpu={flag: False})) == []


def test_count_must_fit_on_one_node_now_or_in_total():
    offer = make_offer("n", free=2, total=8)
    r = req(gpu={"count": 4})
    [m] = mismatches(offer, r)
    assert m.requirement == "gpu.count" and m.message == "node has 2 free GPUs, intent needs 4 on one node per task"
    assert mismatches(offer, r, ignore_capacity=True) == []


# --- Where ------------------------------------------------------------------------------------

@pytest.mark.parametrize("region, location, expected", [
    ("eu-west-1", "EU", True), ("europe-west4", "EU", True), ("eu-central-1", "US", False),
    ("us-east-1", "US", True), ("ca-central-1", "Canada", True), ("us-east-1", "Canada", False),
    ("sa-east-1", "Brazil", True), ("southamerica-east1", "Brazil", True),
    ("ap-northeast-1", "Asia", True), ("asia-east1", "Asia", True), ("me-central-1", "Asia", True),
    ("ap-southeast-2", "Asia", False), ("ap-southeast-4", "Asia", False), ("australia-southeast1", "Asia", False),
    ("ap-southeast-2", "Australia", True), ("ap-southeast-4", "Australia", True),
    ("australia-southeast1", "Australia", True), ("ap-southeast-1", "Australia", False),
    ("ap-south-1", "India", True), ("asia-south1", "India", True), ("asia-southeast1", "India", False),
    ("ap-northeast-1", "Japan", True), ("ap-northeast-3", "Japan", True), ("asia-northeast1", "Japan", True),
    ("asia-northeast2", "Japan", True), ("ap-northeast-2", "Japan", False), ("asia-northeast3", "Japan", False),
    ("ap-southeast-1", "Singapore", True), ("asia-southeast1", "Singapore", True),
    ("ap-southeast-3", "Singapore", False),
    ("germany", "EU", True), ("germany-west-central", "EU", True), ("japan-east", "Japan", True),
    ("japan-east", "Asia", True), ("us-east-1", "EU", False),
])
def test_location_groups_are_region_prefixes(region, location, expected):
    offer = make_offer("n", region=region)
    assert (keys(offer, req(constraints={"location": location})) == []) is expected


def test_region_is_read_un_swapped():
    # §3.9: the node's region is the real region; a swapped reading (zone as region) must not match.
    right = make_offer("right", region="eu-west-1", zone="zone-a")
    swapped = make_offer("swapped", region="zone-a", zone="eu-west-1")
    r = req(constraints={"location": "EU", "availability_zone": "zone-a"})
    assert mismatches(right, r) == []
    assert keys(swapped, r) == ["constraints.location", "constraints.availability_zone"]
    [m] = mismatches(make_offer("us", region="us-east-1"), req(constraints={"location": "EU"}))
    assert m.message == "node is in us-east-1 (US), intent asks EU"


def test_provider_region_is_used_when_the_node_publishes_none():
    offer = make_offer("n", region="")
    offer = replace(offer, provider=replace(offer.provider, region="eu-north-1"))
    assert keys(offer, req(constraints={"location": "EU"})) == []
    assert keys(make_offer("bare", region=""), req(constraints={"location": "EU"})) == ["constraints.location"]


def test_providers_are_case_insensitive():
    offer = make_offer("n", provider="CoreWeave")
    assert keys(offer, req(constraints={"providers": ["coreweave"]})) == []
    assert keys(offer, req(constraints={"providers": ["AWS", "GCP"]})) == ["constraints.providers"]


def test_latency_limit_and_unpublished_latency():
    fast, slow = make_offer("fast", latency_ms=10), make_offer("slow", latency_ms=150)
    quiet = make_offer("quiet")
    assert keys(fast, req()) == [] and keys(slow, req()) == ["constraints.max_latency_ms"]
    # Unpublished latency passes the default 100 ms, but not a limit the intent tightened.
    assert keys(quiet, req()) == []
    assert keys(quiet, req(constraints={"max_latency_ms": 50})) == ["constraints.max_latency_ms"]


# --- Preemptible ------------------------------------------------------------------------------

def test_preemptible_false_keeps_the_intent_off_spot_capacity():
    spot = make_offer("spot", interruptible=True)
    preemptible_node = make_offer("pre", preemptible=True)
    r = req()
    assert keys(spot, r) == ["constraints.preemptible"]
    assert keys(preemptible_node, r) == ["constraints.preemptible"]
    assert keys(spot, req(constraints={"preemptible": True})) == []
    # Asking for interruptible GPUs is accepting interruption.
    assert keys(spot, req(gpu={"interruptible": True})) == []
    # preemptible: true allows spot nodes but does not require them.
    assert keys(make_offer("on-demand"), req(constraints={"preemptible": True})) == []


# --- Cost ---------------------------------------------------------------------------------------

def test_cost_is_rate_times_all_gpus_of_the_request():
    offer = make_offer("n", rate="2.00")
    assert keys(offer, req(gpu={"count": 2}, units=2, constraints={"max_hourly_cost": "8 EUR"})) == []
    [m] = mismatches(offer, req(gpu={"count": 2}, units=3, constraints={"max_hourly_cost": "8 EUR"}))
    assert m.requirement == "constraints.max_hourly_cost"
    assert m.message == "node costs 2.00 EUR/GPU-hour × 6 GPUs = 12.00 EUR/hour, limit 8.00 EUR/hour"


def test_no_rate_fails_any_cost_limit_and_other_currencies_do_not_compare():
    assert keys(make_offer("free", rate=None), req(constraints={"max_hourly_cost": "100 EUR"})) == [
        "constraints.max_hourly_cost"]
    assert keys(make_offer("usd", rate="1", currency="USD"), req(constraints={"max_hourly_cost": "100 EUR"})) == [
        "constraints.max_hourly_cost"]
    assert keys(make_offer("free", rate=None), req()) == []


def test_max_total_cost_uses_the_batch_timeout():
    offer = make_offer("n", rate="5.00")
    assert keys(offer, req(timeout="2h", constraints={"max_total_cost": "10 EUR"})) == []
    [m] = mismatches(offer, req(timeout="3h", constraints={"max_total_cost": "10 EUR"}))
    assert m.requirement == "constraints.max_total_cost" and "15.00 EUR" in m.message


# --- Energy, compliance, performance ------------------------------------------------------------

def test_carbon_footprint_is_grid_intensity_times_gpu_power_times_pue():
    # 400 g/kWh × 0.7 kW × PUE 1.2 = 336 g/h per H100
    offer = make_offer("n", carbon_intensity=400.0, pue=1.2)
    assert keys(offer, req(constraints={"energy": {"max_carbon_footprint": "340g CO2/h"}})) == []
    [m] = mismatches(offer, req(constraints={"energy": {"max_carbon_footprint": "300g CO2/h"}}))
    assert m.requirement == "constraints.energy.max_carbon_footprint" and "~336 g CO2/h" in m.message
    assert keys(make_offer("unknown"), req(constraints={"energy": {"max_carbon_footprint": "1kg CO2/h"}})) == [
        "constraints.energy.max_carbon_footprint"]


def test_energy_attributes():
    green = make_offer("green", renewable_share=1.0, pue=1.1, green_certified=True, energy_rating="A")
    grey = make_offer("grey", renewable_share=0.4, pue=1.6, energy_rating="D")
    energy = {"renewable_energy_only": True, "power_usage_effectiveness": 1.2, "green_certified_only": True,
              "energy_efficiency_rating": "B"}
    assert keys(green, req(constraints={"energy": energy})) == []
    assert keys(grey, req(constraints={"energy": energy})) == [
        "constraints.energy.renewable_energy_only", "constraints.energy.power_usage_effectiveness",
        "constraints.energy.energy_efficiency_rating", "constraints.energy.green_certified_only"]
    # The default PUE cap (2.0) lets a provider without a published PUE through.
    assert keys(make_offer("quiet"), req(constraints={"energy": {"power_usage_effectiveness": 2.0}})) == []


def test_compliance_against_provider_certifications_and_region():
    certified = make_offer("ok", certifications=("ISO 27001", "SOC2", "GDPR"), region="eu-central-1")
    bare = make_offer("bare", certifications=("SOC2",), region="us-east-1")
    compliance = {"certifications": ["ISO27001", "soc2"], "data_residency": ["EU"], "gdpr_compliant": True}
    assert keys(certified, req(constraints={"compliance": compliance})) == []
    assert keys(bare, req(constraints={"compliance": compliance})) == [
        "constraints.compliance.certifications", "constraints.compliance.data_residency",
        "constraints.compliance.gdpr_compliant"]
    assert keys(certified, req(constraints={"compliance": {"hipaa_compliant": True}})) == [
        "constraints.compliance.hipaa_compliant"]


def test_min_network_bandwidth():
    r = req(constraints={"performance": {"min_network_bandwidth": "10Gbps"}})
    assert keys(make_offer("fast", network_bandwidth_gbps=25.0), r) == []
    assert keys(make_offer("slow", bandwidth_gbps=1.0), r) == ["constraints.performance.min_network_bandwidth"]
    assert keys(make_offer("quiet"), r) == ["constraints.performance.min_network_bandwidth"]


# --- Warnings for what cannot be evaluated ------------------------------------------------------

def test_unevaluable_constraints_are_reported_never_silenced():
    doc = make_doc(
        type="service",
        constraints={"security": {"intrusion_detection": True},
                     "performance": {"max_jitter_ms": 5, "max_cold_start_time": "30s"},
                     "energy": {"renewable_energy_only": True}},
        sla={"availability": "99.9%"},
    )
    doc["constraints"]["max_total_cost"] = "100 EUR"
    warnings = unevaluable_constraints(doc, [make_offer("n")])
    text = "\n".join(warnings)
    for path in ("constraints.security.intrusion_detection", "constraints.performance.max_jitter_ms",
                 "constraints.performance.max_cold_start_time", "sla.availability",
                 "constraints.energy.renewable_energy_only", "constraints.max_total_cost"):
        assert path in text
    assert len(warnings) == 6


def test_a_published_capability_is_enforced_not_warned():
    doc = make_doc(constraints={"security": {"intrusion_detection": True}})
    ids = make_offer("ids", certifications=("Intrusion Detection",))
    plain = make_offer("plain", provider="gcp")
    assert unevaluable_constraints(doc, [ids, plain]) == []
    chosen = first_match([plain, ids], Requirements.from_document(doc))
    assert chosen.nodes == ("ids",)
    # Nobody publishes it: placement proceeds and the warning says the constraint was not applied.
    assert first_match([plain], Requirements.from_document(doc)).nodes == ("plain",)
    assert unevaluable_constraints(doc, [plain])


def test_default_latency_is_not_a_warning_but_a_tightened_one_is():
    assert unevaluable_constraints(make_doc(), [make_offer("n")]) == []
    warnings = unevaluable_constraints(make_doc(constraints={"max_latency_ms": 20}), [make_offer("n")])
    assert len(warnings) == 1 and "constraints.max_latency_ms" in warnings[0]


# --- first_match ----------------------------------------------------------------------------------

def test_first_match_takes_the_first_feasible_node_in_the_given_order():
    offers = [
        make_offer("a100", "nvidia-a100", rate="1.00"),
        make_offer("h100-busy", free=0, total=8, rate="3.00"),
        make_offer("h100-us", region="us-east-1", rate="2.00"),
        make_offer("h100-expensive", rate="9.00"),
        make_offer("h100-cheap", rate="2.50"),
    ]
    r = req(gpu={"model": "nvidia-h100"}, constraints={"location": "EU"})
    chosen = first_match(offers, r)
    assert chosen.nodes == ("h100-expensive",) and chosen.hourly_cost == Decimal("9.00")
    assert first_match(offers, req(gpu={"model": "nvidia-h100"}, constraints={"location": "Brazil"})) is None


def test_a_declared_location_group_stands_in_for_an_unpublished_region():
    offer = make_offer("n", region="", location_group="EU")
    assert keys(offer, req(constraints={"location": "EU"})) == []
    assert keys(offer, req(constraints={"location": "US"})) == ["constraints.location"]

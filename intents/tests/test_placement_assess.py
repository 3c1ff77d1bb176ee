"""Feasibility for submit (API.md errors), queueing, fallback strategies and suggestions."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from intents.placement import Requirements, apply_fallback, assess
from intents.tests.placement_factories import apply_patch, make_doc, make_offer


@pytest.fixture
def federation():
    return [
        make_offer("eu-h100", "nvidia-h100", free=0, total=8, rate="4.00", region="eu-west-1", provider="aws"),
        make_offer("eu-a100", "nvidia-a100", free=8, rate="2.00", region="europe-west4", provider="gcp"),
        make_offer("us-h100", "nvidia-h100", free=8, rate="3.50", region="us-east-1", provider="coreweave"),
        make_offer("eu-h100-spot", "nvidia-h100", free=8, rate="1.50", region="eu-central-1", provider="lambda",
                   interruptible=True),
        make_offer("eu-4090", "nvidia-rtx-4090", free=4, rate="0.70", region="eu-north-1", provider="runpod"),
    ]


def h100_doc(**kwargs) -> dict:
    gpu = {"model": "nvidia-h100", "count": 2, **kwargs.pop("gpu", {})}
    constraints = {"location": "EU", **kwargs.pop("constraints", {})}
    return make_doc(gpu=gpu, constraints=constraints, **kwargs)


def run(offers, doc, objective=None):
    return assess(offers, Requirements.from_document(doc), objective)


# --- placeable / queue ------------------------------------------------------------------------

def test_placeable_now(federation):
    result = run(federation, h100_doc(constraints={"location": "US"}))
    assert result.status == "placeable" and result.error_code is None
    assert result.plan.nodes == ("us-h100",) and result.plan.hourly_cost == Decimal("7.00")
    assert result.estimated_plan == result.plan
    assert result.suggestions == [] and "us-h100" in result.message


def test_fits_the_federation_but_not_its_free_capacity_is_queued(federation):
    result = run(federation, h100_doc())
    assert result.status == "queue" and result.error_code is None and result.plan is None
    assert result.blocking_requirement == "gpu.count"
    assert result.estimated_plan.nodes == ("eu-h100",) and result.estimated_plan.hourly_cost == Decimal("8.00")
    assert "0 of 8 GPUs free" in result.message and "queued" in result.message
    # Queued: only alternatives that start now are worth suggesting.
    assert result.suggestions and all(s["placeable_now"] for s in result.suggestions)


# --- error codes --------------------------------------------------------------------------------

def test_gpu_model_unavailable(federation):
    result = run(federation, h100_doc(gpu={"model": "amd-mi300x"}))
    assert (result.status, result.error_code, result.http_status) == ("infeasible", "GPU_MODEL_UNAVAILABLE", 409)
    assert result.blocking_requirement == "gpu.model"
    assert "amd-mi300x" in result.message and "nvidia-a100" in result.message


@pytest.mark.parametrize("constraints", [
    {"location": "Brazil"}, {"availability_zone": "zone-z"}, {"providers": ["Oracle"]},
])
def test_region_unavailable(federation, constraints):
    result = run(federation, h100_doc(constraints=constraints))
    assert (result.status, result.error_code) == ("infeasible", "REGION_UNAVAILABLE")
    assert result.blocking_requirement.startswith("constraints.")
    assert "nvidia-h100" in result.message


def test_region_unavailable_names_where_the_model_is(federation):
    result = run(federation, h100_doc(constraints={"location": "Australia"}))
    assert result.message == "No provider in Australia offers nvidia-h100; it is offered in EU, US."


def test_gpu_memory_insufficient(federation):
    result = run(federation, h100_doc(gpu={"memory_min": "120Gi"}))
    assert (result.error_code, result.blocking_requirement) == ("GPU_MEMORY_INSUFFICIENT", "gpu.memory_min")
    assert result.message == "No nvidia-h100 node in EU has 120Gi per GPU; the largest is 80Gi."


def test_gpu_count_insufficient_for_one_node(federation):
    result = run(federation, h100_doc(gpu={"count": 16}))
    assert (result.error_code, result.blocking_requirement) == ("GPU_COUNT_INSUFFICIENT", "gpu.count")
    assert "the largest has 8" in result.message


def test_gpu_count_insufficient_for_the_gang(federation):
    result = run(federation, h100_doc(gpu={"count": 8}, units=2, strategy="colocated"))
    assert (result.error_code, result.http_status) == ("GPU_COUNT_INSUFFICIENT", 409)
    assert "gang of 2 task(s) × 8" in result.message and "at most 1" in result.message


def test_other_combinations_are_insufficient_resources(federation):
    result = run(federation, h100_doc(gpu={"interconnect": "infiniband"}))
    assert (result.error_code, result.blocking_requirement) == ("INSUFFICIENT_RESOURCES", "gpu.interconnect")
    assert "gpu.interconnect" in result.message and "infiniband" in result.message


def test_cost_limit_exceeded(federation):
    result = run(federation, h100_doc(constraints={"max_hourly_cost": "5 EUR"}))
    assert (result.status, result.error_code, result.http_status) == ("over_budget", "COST_LIMIT_EXCEEDED", 402)
    assert result.blocking_requirement == "constraints.max_hourly_cost"
    assert "5.00 EUR/hour" in result.message and "8.00 EUR/hour" in result.message
    raise_cap = [s for s in result.suggestions if s["kind"] == "cost"]
    assert raise_cap and raise_cap[0]["relax"] == {"constraints": {"max_hourly_cost": "8.00 EUR"}}


def test_total_cost_limit_exceeded(federation):
    doc = h100_doc(constraints={"location": "US", "max_total_cost": "20 EUR"}, timeout="4h")
    result = run(federation, doc)
    assert (result.error_code, result.blocking_requirement) == ("COST_LIMIT_EXCEEDED", "constraints.max_total_cost")
    assert "28.00 EUR" in result.message


def test_an_empty_federation(federation):
    result = run([], h100_doc())
    assert result.status == "infeasible" and result.error_code == "GPU_MODEL_UNAVAILABLE"
    result = run([], make_doc())
    assert result.error_code == "INSUFFICIENT_RESOURCES"


def test_warnings_travel_with_the_assessment(federation):
    result = run(federation, h100_doc(constraints={"location": "US"}, sla={"availability": "99.9%"}))
    assert result.status == "placeable" and any("sla.availability" in w for w in result.warnings)


# --- fallback strategies --------------------------------------------------------------------------

def test_fallback_fail_refuses_to_queue(federation):
    result = run(federation, h100_doc(constraints={"negotiation": {"fallback_strategy": "fail"}}))
    assert (result.status, result.error_code) == ("infeasible", "INSUFFICIENT_RESOURCES")
    assert result.estimated_plan is not None and "fallback_strategy: fail" in result.message


def test_fallback_spot_places_on_interruptible_capacity(federation):
    result = run(federation, h100_doc(constraints={"negotiation": {"fallback_strategy": "spot"}}))
    assert result.status == "placeable" and result.fallback_applied == "spot"
    assert result.plan.nodes == ("eu-h100-spot",) and result.requirements.preemptible
    assert any("fallback_strategy spot" in w for w in result.warnings)


def test_fallback_lower_tier_walks_down_until_something_is_free(federation):
    result = run(federation, h100_doc(constraints={"negotiation": {"fallback_strategy": "lower_tier"}}))
    assert result.status == "placeable" and result.fallback_applied == "lower_tier"
    assert result.plan.nodes == ("eu-a100",) and result.requirements.tier == "standard"
    busy = [o for o in federation if o.node_name != "eu-a100"]
    result = run(busy, h100_doc(constraints={"negotiation": {"fallback_strategy": "lower_tier"}}))
    assert result.plan.nodes == ("eu-4090",) and result.requirements.tier == "gaming"


def test_fallback_shared_releases_dedicated_for_a_sharing_capable_gpu():
    offers = [make_offer("dedicated", free=0, total=8, dedicated=True),
              make_offer("sliced", free=8, shared=True, sharing_strategy="mig")]
    doc = h100_doc(gpu={"dedicated": True}, constraints={"negotiation": {"fallback_strategy": "shared"}})
    result = run(offers, doc)
    assert result.status == "placeable" and result.plan.nodes == ("sliced",)
    assert result.fallback_applied == "shared"


def test_apply_fallback_on_documents_and_requirements(federation):
    doc = h100_doc()
    assert apply_fallback(doc, "spot").preemptible
    shared = apply_fallback(doc, "shared")
    assert shared.shared and not shared.dedicated
    lower = apply_fallback(doc, "lower_tier", federation)
    assert (lower.tier, lower.model) == ("standard", None)
    assert apply_fallback(lower, "lower_tier").tier == "gaming"
    assert apply_fallback(apply_fallback(make_doc(gpu={"tier": "budget"}), "lower_tier"), "queue").tier == "budget"
    assert apply_fallback(doc, "queue") == Requirements.from_document(doc)
    with pytest.raises(ValueError):
        apply_fallback(doc, "pray")


# --- suggestions ------------------------------------------------------------------------------------

def test_suggestions_are_real_ordered_and_unique(federation):
    doc = h100_doc()
    result = run(federation, doc)
    alternatives = [s["alternative"] for s in result.suggestions]
    assert alternatives == [
        "Use nvidia-rtx-4090 instead of nvidia-h100",
        "Accept spot/interruptible capacity (preemptible: true)",
        "Use nvidia-a100 instead of nvidia-h100",
        "Run in US instead of EU",
    ]
    first = result.suggestions[0]
    assert first["cost_difference"] == "-6.60 EUR/hour"          # 1.40 vs 8.00
    assert first["performance_impact"] == f"+{round((82.6 - 66.9) / 66.9 * 100)}% FP32"
    assert result.suggestions[1]["performance_impact"] == "+0% FP32, may be interrupted"
    assert result.suggestions[2]["cost_difference"] == "-4.00 EUR/hour"
    assert result.suggestions[2]["performance_impact"] == f"-{round((66.9 - 19.5) / 66.9 * 100)}% FP32"
    assert result.suggestions[3]["cost_difference"] == "-1.00 EUR/hour"
    # Every suggestion, applied to the document, places the intent now.
    for suggestion in result.suggestions:
        relaxed = apply_patch(doc, suggestion["relax"])
        again = run(federation, relaxed)
        assert again.status == "placeable", suggestion
        assert again.plan.offer.node_name == suggestion["node"]
        assert float(again.plan.hourly_cost) == suggestion["estimated_cost_per_hour"]
    # No duplicates: the lower-tier relaxations land where the model ones already do.
    assert len({json.dumps(s["relax"], sort_keys=True) for s in result.suggestions}) == len(result.suggestions)
    assert len({s["node"] for s in result.suggestions}) == len(result.suggestions)


def test_suggestions_follow_the_objective(federation):
    result = run(federation, h100_doc(objective="Performance_Maximization"))
    nodes = [s["node"] for s in result.suggestions]
    # Fastest first: RTX 4090 (82.6) then the H100s (66.9; spot cheaper first) then the A100 (19.5).
    assert nodes == ["eu-4090", "eu-h100-spot", "us-h100", "eu-a100"]


def test_placeable_suggestions_come_before_queued_ones(federation):
    result = run(federation, h100_doc(gpu={"model": "amd-mi300x"}))
    statuses = [s["status"] for s in result.suggestions]
    assert statuses == sorted(statuses, key=lambda s: s != "placeable")
    assert "queue" in statuses and statuses[0] == "placeable"
    queued = [s for s in result.suggestions if s["status"] == "queue"]
    assert queued[0]["alternative"].endswith("(queued until capacity frees up)")
    # No original plan to compare with: absolute estimates.
    assert result.suggestions[0]["cost_difference"].endswith("EUR/hour (estimate)")


def test_fewer_gpus_and_fewer_units_are_suggested():
    offers = [make_offer("a", free=4, total=8, rate="1"), make_offer("b", free=2, total=8, rate="1")]
    result = run(offers, make_doc(gpu={"model": "nvidia-h100", "count": 8}, units=2, strategy="distributed"))
    assert result.status == "queue"
    by_kind = {s["kind"]: s for s in result.suggestions}
    assert by_kind["count"]["relax"] == {"workload": {"resources": {"gpu": {"count": 2}}}}
    assert by_kind["count"]["alternative"] == "Use 2 GPUs per task instead of 8"
    assert by_kind["count"]["performance_impact"] == "-75% FP32"
    # One unit of 8 does not fit now either (4 free at most): no "fewer units" suggestion.
    assert "units" not in by_kind
    offers.append(make_offer("c", free=8, rate="1"))
    result = run(offers, make_doc(gpu={"model": "nvidia-h100", "count": 8}, units=2, strategy="distributed"))
    assert result.status == "queue"
    units = [s for s in result.suggestions if s["kind"] == "units"][0]
    assert units["relax"] == {"workload": {"batch": {"parallel_tasks": 1}}}


def test_memory_and_zone_and_provider_relaxations():
    offers = [make_offer("small", "nvidia-a100", memory_per_gpu=40 << 30, zone="zone-b", provider="gcp")]
    doc = make_doc(gpu={"model": "nvidia-a100", "memory_min": "80Gi"},
                   constraints={"availability_zone": "zone-b", "providers": ["gcp"]})
    result = run(offers, doc)
    assert result.error_code == "GPU_MEMORY_INSUFFICIENT"
    [memory] = result.suggestions
    assert memory["alternative"] == "Accept 40Gi per GPU instead of 80Gi"
    assert run(offers, apply_patch(doc, memory["relax"])).status == "placeable"
    for constraints, kind in (({"availability_zone": "zone-a"}, "zone"), ({"providers": ["AWS"]}, "providers")):
        doc = make_doc(constraints=constraints)
        result = run(offers, doc)
        assert result.error_code == "REGION_UNAVAILABLE"
        [suggestion] = result.suggestions
        assert suggestion["kind"] == kind
        assert run(offers, apply_patch(doc, suggestion["relax"])).status == "placeable"


def test_at_most_five_suggestions():
    offers = [make_offer(f"n-{model}", model, free=8, rate="1")
              for model in ("nvidia-a100", "nvidia-rtx-4090", "nvidia-t4", "amd-mi300x", "nvidia-v100", "nvidia-l4")]
    result = run(offers, make_doc(gpu={"model": "nvidia-h100"}))
    assert result.error_code == "GPU_MODEL_UNAVAILABLE"
    assert len(result.suggestions) == 5


def test_a_single_blocking_trait_can_be_dropped(federation):
    doc = h100_doc(gpu={"interconnect": "infiniband"})
    result = run(federation, doc)
    assert result.error_code == "INSUFFICIENT_RESOURCES"
    drop = [s for s in result.suggestions if s["kind"] == "drop"]
    assert drop[0]["alternative"] == "Accept any interconnect instead of infiniband (queued until capacity frees up)"
    assert drop[0]["relax"] == {"workload": {"resources": {"gpu": {"interconnect": "any"}}}}
    assert run(federation, apply_patch(doc, drop[0]["relax"])).status == "queue"   # the EU H100 is busy


def test_a_latency_limit_can_be_loosened():
    offers = [make_offer("far", latency_ms=40, rate="1"), make_offer("farther", latency_ms=80, rate="1")]
    doc = make_doc(constraints={"max_latency_ms": 20})
    result = run(offers, doc)
    assert (result.error_code, result.blocking_requirement) == ("INSUFFICIENT_RESOURCES", "constraints.max_latency_ms")
    first = result.suggestions[0]
    assert first["alternative"] == "Accept 40 ms latency instead of 20 ms"
    assert run(offers, apply_patch(doc, first["relax"])).plan.nodes == ("far",)

"""Invariants of gang plans over generated federations (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intents.placement import Requirements, assess, first_match, mismatches, plan, plan_ignoring_capacity
from intents.tests.placement_factories import apply_patch, make_doc, make_offer

MODELS = ("nvidia-h100", "nvidia-a100", "nvidia-t4")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
PROVIDERS = ("aws", "gcp", "lambda")


@st.composite
def federations(draw):
    offers = []
    for i in range(draw(st.integers(0, 10))):
        total = draw(st.integers(1, 8))
        offers.append(make_offer(
            f"n{i:02d}", draw(st.sampled_from(MODELS)), free=draw(st.integers(0, total)), total=total,
            rate=f"{draw(st.integers(1, 9))}.{draw(st.integers(0, 99)):02d}", region=draw(st.sampled_from(REGIONS)),
            provider=draw(st.sampled_from(PROVIDERS)), interruptible=draw(st.booleans()),
        ))
    return offers


@st.composite
def documents(draw):
    gpu = {"count": draw(st.integers(1, 4))}
    model = draw(st.sampled_from((None, *MODELS)))
    if model:
        gpu["model"] = model
    constraints = {"preemptible": draw(st.booleans())}
    location = draw(st.sampled_from((None, "EU", "US", "Australia")))
    if location:
        constraints["location"] = location
    return make_doc(
        objective=draw(st.sampled_from(("Cost_Minimization", "Performance_Maximization", "Latency_Minimization",
                                        "Energy_Efficiency", "Balanced_Optimization"))),
        gpu=gpu, constraints=constraints, units=draw(st.integers(1, 5)),
        strategy=draw(st.sampled_from(("colocated", "distributed", "flexible"))),
    )


def requirements():
    return documents().map(Requirements.from_document)


def _slots(offers, req, ignore_capacity=False):
    per_provider: dict[str, int] = {}
    for offer in offers:
        if not mismatches(offer, req, ignore_capacity=True):
            capacity = offer.total_gpus if ignore_capacity else offer.free_gpus
            per_provider[offer.provider.name] = per_provider.get(offer.provider.name, 0) + capacity // req.gpus_per_unit
    return per_provider


def _could_place(per_provider, req) -> bool:
    if req.deployment_strategy == "colocated":
        return any(slots >= req.units for slots in per_provider.values())
    if req.deployment_strategy == "distributed":
        return sum(per_provider.values()) >= req.units
    return sum(per_provider.values()) >= req.units


settings.register_profile("placement", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


@settings(settings.get_profile("placement"))
@given(federations(), requirements())
def test_plans_are_whole_gangs_on_feasible_nodes_within_capacity(offers, req):
    result = plan(offers, req)
    assert (result is not None) == _could_place(_slots(offers, req), req)
    if result is None:
        return
    assert result.total_gpus == req.total_gpus and len(result.unit_nodes) == req.units
    by_id = {o.node_id: o for o in offers}
    assert len({a.offer.node_id for a in result.allocations}) == len(result.allocations)
    for allocation in result.allocations:
        assert allocation.gpus == allocation.units * req.gpus_per_unit
        assert allocation.gpus <= by_id[allocation.offer.node_id].free_gpus
        assert not mismatches(allocation.offer, req)
    if req.deployment_strategy == "colocated":
        assert len(result.providers) == 1
    assert sum(a.hourly_cost for a in result.allocations) == result.hourly_cost


@settings(settings.get_profile("placement"))
@given(federations(), requirements())
def test_capacity_classification_is_consistent(offers, req):
    now = plan(offers, req)
    ever = plan_ignoring_capacity(offers, req)
    assert (ever is not None) == _could_place(_slots(offers, req, ignore_capacity=True), req)
    if now is not None:
        assert ever is not None
    assert (first_match(offers, req) is not None) == (now is not None)
    result = assess(offers, req)
    if now is not None:
        assert result.status == "placeable"
    elif ever is not None:
        assert result.status == "queue" and result.blocking_requirement == "gpu.count"
    else:
        assert result.status == "infeasible" and result.error_code in (
            "GPU_MODEL_UNAVAILABLE", "REGION_UNAVAILABLE", "GPU_COUNT_INSUFFICIENT", "INSUFFICIENT_RESOURCES")
    for suggestion in result.suggestions:
        assert suggestion["alternative"] and suggestion["relax"]
    assert len(result.suggestions) <= 5


@settings(settings.get_profile("placement"))
@given(federations(), requirements())
def test_cost_objective_never_costs_more_than_the_naive_baseline(offers, req):
    req = req.with_(objective="Cost_Minimization")
    best, naive = plan(offers, req), first_match(offers, req)
    if best is not None:
        assert best.hourly_cost <= naive.hourly_cost


@settings(settings.get_profile("placement"))
@given(federations(), documents())
def test_every_suggestion_is_real(offers, doc):
    result = assess(offers, Requirements.from_document(doc))
    for suggestion in result.suggestions:
        again = assess(offers, Requirements.from_document(apply_patch(doc, suggestion["relax"])))
        if suggestion["placeable_now"]:
            assert again.status == "placeable", suggestion
            assert float(again.plan.hourly_cost) == suggestion["estimated_cost_per_hour"]
        else:
            assert again.status in ("placeable", "queue"), suggestion

"""Gang plans: all or nothing, one node per unit, colocated vs distributed vs flexible, budgets, scale."""

from __future__ import annotations

from decimal import Decimal

from intents.placement import Requirements, assess, first_match, plan, plan_ignoring_capacity
from intents.tests.placement_factories import make_doc, make_offer


def req(**kwargs) -> Requirements:
    return Requirements.from_document(make_doc(**kwargs))


def test_single_unit_plan():
    p = plan([make_offer("a", rate="3"), make_offer("b", rate="2")], req(gpu={"count": 2}))
    assert p.nodes == ("b",) and p.total_gpus == 2 and p.hourly_cost == Decimal("4")
    assert p.unit_nodes == ("b",) and p.strategy == "colocated"
    assert p.to_dict()["allocations"][0]["gpus"] == 2


def test_all_or_nothing():
    offers = [make_offer("a", free=2, total=8), make_offer("b", free=2, total=8)]
    # 3 units × 2 GPUs: only 2 units fit now → no partial plan.
    assert plan(offers, req(gpu={"count": 2}, units=3)) is None
    full = plan_ignoring_capacity(offers, req(gpu={"count": 2}, units=3))
    assert full is not None and full.total_gpus == 6


def test_a_unit_never_spans_nodes():
    offers = [make_offer("a", free=2, total=2), make_offer("b", free=2, total=2)]
    # 4 GPUs free in total, but each task needs 4 on ONE node.
    assert plan(offers, req(gpu={"count": 4})) is None
    assert plan_ignoring_capacity(offers, req(gpu={"count": 4})) is None


def test_units_are_packed_per_node_and_listed_per_unit():
    offers = [make_offer("a", free=5, rate="1"), make_offer("b", free=8, rate="2")]
    p = plan(offers, req(gpu={"count": 2}, units=4, strategy="distributed"))
    # Cheapest first: node a holds 2 units (5 // 2), node b the other 2.
    assert [(a.offer.node_name, a.units, a.gpus) for a in p.allocations] == [("a", 2, 4), ("b", 2, 4)]
    assert p.unit_nodes == ("a", "a", "b", "b")
    assert p.hourly_cost == Decimal("4") + Decimal("8")


def test_colocated_keeps_every_unit_at_one_provider():
    offers = [
        make_offer("aws-1", provider="aws", free=2, rate="1"),
        make_offer("gcp-1", provider="gcp", free=2, rate="3"),
        make_offer("gcp-2", provider="gcp", free=2, rate="3"),
    ]
    r = req(gpu={"count": 2}, units=2, strategy="colocated")
    p = plan(offers, r)
    assert p.providers == ("gcp",) and p.strategy == "colocated" and p.nodes == ("gcp-1", "gcp-2")
    distributed = plan(offers, req(gpu={"count": 2}, units=2, strategy="distributed"))
    assert set(distributed.providers) == {"aws", "gcp"} and distributed.strategy == "distributed"
    assert distributed.hourly_cost == Decimal("8") < p.hourly_cost
    # Colocated, the gang cannot be split: 3 units do not fit at any single provider.
    assert plan(offers, req(gpu={"count": 2}, units=3, strategy="colocated")) is None
    assert plan(offers, req(gpu={"count": 2}, units=3, strategy="distributed")) is not None


def test_colocated_picks_the_best_provider_for_the_objective():
    offers = [
        make_offer("aws-1", provider="aws", free=2, rate="1"), make_offer("aws-2", provider="aws", free=2, rate="5"),
        make_offer("gcp-1", provider="gcp", free=2, rate="2"), make_offer("gcp-2", provider="gcp", free=2, rate="2"),
    ]
    # aws has the single cheapest node, but gcp is the cheaper gang.
    p = plan(offers, req(gpu={"count": 2}, units=2, strategy="colocated"))
    assert p.providers == ("gcp",) and p.hourly_cost == Decimal("8")


def test_flexible_prefers_colocated_then_distributed():
    offers = [
        make_offer("aws-1", provider="aws", free=2, rate="1"),
        make_offer("gcp-1", provider="gcp", free=4, rate="3"),
    ]
    p = plan(offers, req(gpu={"count": 2}, units=2, strategy="flexible"))
    assert p.providers == ("gcp",)        # colocated although the mix would be cheaper
    p = plan(offers, req(gpu={"count": 2}, units=3, strategy="flexible"))
    assert set(p.providers) == {"aws", "gcp"} and p.total_gpus == 6


def test_plan_ignoring_capacity_judges_total_gpus():
    offers = [make_offer("busy", free=0, total=8)]
    assert plan(offers, req(gpu={"count": 8})) is None
    estimate = plan_ignoring_capacity(offers, req(gpu={"count": 8}))
    assert estimate.nodes == ("busy",) and estimate.total_gpus == 8


def test_the_hourly_cap_applies_to_the_whole_gang():
    offers = [make_offer("cheap", free=2, rate="1"), make_offer("dear", free=2, rate="4")]
    r = req(gpu={"count": 2}, units=2, strategy="distributed", constraints={"max_hourly_cost": "10 EUR"})
    p = plan(offers, r)
    # 2 GPUs at 1 + 2 GPUs at 4 = 10 EUR/hour: a mixed gang within the cap is fine.
    assert p.hourly_cost == Decimal("10") and set(p.nodes) == {"cheap", "dear"}
    assert plan(offers, req(gpu={"count": 2}, units=2, strategy="distributed",
                            constraints={"max_hourly_cost": "9.99 EUR"})) is None


def test_an_objective_pick_over_budget_falls_back_to_the_cheapest_gang():
    offers = [make_offer("fast", "nvidia-h100", free=2, rate="8"), make_offer("slow", "nvidia-a100", free=2, rate="2"),
              make_offer("slow-2", "nvidia-a100", free=2, rate="2")]
    r = req(objective="Performance_Maximization", gpu={"count": 2}, units=2, strategy="distributed",
            constraints={"max_hourly_cost": "12 EUR"})
    p = plan(offers, r)
    assert p.hourly_cost == Decimal("8") and set(p.nodes) == {"slow", "slow-2"}
    unconstrained = plan(offers, req(objective="Performance_Maximization", gpu={"count": 2}, units=2,
                                     strategy="distributed"))
    assert "fast" in unconstrained.nodes


def test_performance_gang_takes_the_fastest_nodes():
    offers = [make_offer("a100", "nvidia-a100", free=4, rate="1"), make_offer("h100", "nvidia-h100", free=4, rate="4")]
    p = plan(offers, req(objective="Performance_Maximization", gpu={"count": 2}, units=3, strategy="distributed"))
    assert [(a.offer.node_name, a.units) for a in p.allocations] == [("h100", 2), ("a100", 1)]


def test_a_plan_never_mixes_currencies():
    offers = [make_offer("eur", free=2, rate="1"), make_offer("usd", free=2, rate="1", currency="USD")]
    assert plan(offers, req(gpu={"count": 2}, units=2, strategy="distributed")) is None
    assert plan(offers, req(gpu={"count": 2}, units=1)).currency == "EUR"


def test_first_match_is_a_gang_too():
    offers = [make_offer("a", free=2, rate="9"), make_offer("b", free=2, rate="1"), make_offer("c", free=2, rate="1")]
    p = first_match(offers, req(gpu={"count": 2}, units=2, strategy="distributed"))
    assert p.nodes == ("a", "b") and p.hourly_cost == Decimal("20")
    assert first_match(offers, req(gpu={"count": 2}, units=4, strategy="distributed")) is None


def _federation(n: int) -> list:
    models = ("nvidia-h100", "nvidia-a100", "nvidia-rtx-4090", "nvidia-t4", "amd-mi300x")
    regions = ("eu-west-1", "us-east-1", "ap-southeast-2", "asia-south1", "europe-west4", "ca-central-1")
    return [
        make_offer(f"node-{i:05d}", models[i % 5], free=i % 9, total=8, rate=f"{1 + (i * 7) % 50 / 10:.2f}",
                   region=regions[i % 6], provider=f"provider-{i % 40}", latency_ms=i % 30,
                   carbon_intensity=float(50 + i % 400), renewable_share=(i % 11) / 10, pue=1.1 + (i % 5) / 10)
        for i in range(n)
    ]


# Speed at this scale is measured by benchmarks/placement.py, never asserted here.
def test_ten_thousand_offers_place_a_colocated_gang_for_every_objective():
    offers = _federation(10_000)
    r = req(objective="Balanced_Optimization", gpu={"model": "nvidia-h100", "count": 4}, units=8,
            strategy="colocated", constraints={"location": "EU"})
    for objective in ("Cost_Minimization", "Performance_Maximization", "Latency_Minimization",
                      "Energy_Efficiency", "Balanced_Optimization"):
        chosen = plan(offers, r, objective)
        assert chosen is not None and chosen.total_gpus == 32 and len(chosen.providers) == 1
    assert assess(offers, r).status == "placeable"


def test_ten_thousand_offers_oversized_gang_is_queued_or_refused():
    offers = _federation(10_000)
    r = req(gpu={"model": "nvidia-h100", "count": 8}, units=40, strategy="colocated",
            constraints={"location": "EU"})
    assert assess(offers, r).status in ("queue", "infeasible")

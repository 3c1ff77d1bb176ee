"""Objective ranking (ARCHITECTURE.md "Placement" step 3): each objective, its tie-breaks, the metrics shown."""

from __future__ import annotations

from decimal import Decimal

import pytest

from intents.placement import BALANCED_WEIGHTS, Requirements, rank
from intents.tests.placement_factories import make_doc, make_offer


def req(**kwargs) -> Requirements:
    return Requirements.from_document(make_doc(**kwargs))


def names(scored) -> list[str]:
    return [s.offer.node_name for s in scored]


def test_cost_ranks_by_hourly_cost_of_the_whole_request():
    offers = [make_offer("b", rate="3.00"), make_offer("a", rate="2.00"), make_offer("c", rate="2.50")]
    scored = rank(offers, req(gpu={"count": 2}, units=2), "Cost_Minimization")
    assert names(scored) == ["a", "c", "b"]
    assert [s.hourly_cost for s in scored] == [Decimal("8.00"), Decimal("10.00"), Decimal("12.00")]
    assert [s.rank for s in scored] == [1, 2, 3]
    assert scored[0].score == 1.0 and scored[-1].score == 0.0


def test_unpriced_nodes_rank_last_for_cost():
    scored = rank([make_offer("unpriced", rate=None), make_offer("priced", rate="9")], req(), "Cost_Minimization")
    assert names(scored) == ["priced", "unpriced"]


def test_ties_are_broken_by_cost_then_node_name():
    offers = [make_offer("zeta", rate="2"), make_offer("alpha", rate="2"), make_offer("mid", rate="1")]
    assert names(rank(offers, req(), "Cost_Minimization")) == ["mid", "alpha", "zeta"]
    # Same latency everywhere: cost decides, then the name.
    offers = [make_offer(n, rate=r, latency_ms=5) for n, r in (("zeta", "2"), ("alpha", "2"), ("mid", "1"))]
    assert names(rank(offers, req(), "Latency_Minimization")) == ["mid", "alpha", "zeta"]
    # Deterministic whatever the input order.
    assert names(rank(list(reversed(offers)), req(), "Latency_Minimization")) == ["mid", "alpha", "zeta"]


def test_performance_is_fp32_times_count_times_multi_gpu_efficiency():
    poor_scaling = make_offer("poor", "nvidia-h100", fp32_tflops=60.0, multi_gpu_efficiency=0.6)
    good_scaling = make_offer("good", "nvidia-h100", fp32_tflops=50.0, multi_gpu_efficiency=0.95)
    scored = rank([poor_scaling, good_scaling], req(gpu={"count": 4}), "Performance_Maximization")
    assert names(scored) == ["good", "poor"]
    assert scored[0].delivered_tflops == pytest.approx(50 * 4 * 0.95)
    # A single GPU does not scale, so efficiency does not apply: raw FP32 wins.
    scored = rank([poor_scaling, good_scaling], req(gpu={"count": 1}), "Performance_Maximization")
    assert names(scored) == ["poor", "good"] and scored[0].delivered_tflops == 60.0


def test_performance_ties_use_the_workload_score_then_cost():
    training = make_offer("training", fp32_tflops=50.0, training_score=0.9, inference_score=0.4, rate="5")
    inference = make_offer("inference", fp32_tflops=50.0, training_score=0.5, inference_score=0.8, rate="1")
    same = make_offer("cheap-twin", fp32_tflops=50.0, training_score=0.9, inference_score=0.4, rate="4")
    # Batch → training score; service → inference score; all-reduce services → training score.
    assert names(rank([training, inference, same], req(type="batch"), "Performance_Maximization")) == [
        "cheap-twin", "training", "inference"]
    assert names(rank([training, inference], req(type="service"), "Performance_Maximization")) == [
        "inference", "training"]
    assert names(rank([training, inference], req(type="service", pattern="all-reduce"),
                      "Performance_Maximization")) == ["training", "inference"]


def test_latency_ranks_lowest_provider_latency_and_unpublished_last():
    offers = [make_offer("far", latency_ms=40), make_offer("near", latency_ms=3),
              make_offer("unknown"), make_offer("node-latency", network_latency_ms=2, latency_ms=90)]
    scored = rank(offers, req(), "Latency_Minimization")
    assert names(scored) == ["node-latency", "near", "far", "unknown"]
    assert scored[0].latency_ms == 2


def test_energy_ranks_renewable_share_first_then_carbon_per_hour():
    # carbon per hour = grid g/kWh × GPU kW × PUE
    hydro = make_offer("hydro", renewable_share=1.0, carbon_intensity=30.0, pue=1.3)
    coal_low_pue = make_offer("coal", renewable_share=0.2, carbon_intensity=700.0, pue=1.05)
    mixed = make_offer("mixed", renewable_share=0.6, carbon_intensity=300.0, pue=1.2)
    efficient = make_offer("efficient", renewable_share=0.6, carbon_intensity=100.0, pue=1.1)
    scored = rank([coal_low_pue, mixed, hydro, efficient], req(gpu={"count": 2}), "Energy_Efficiency")
    assert names(scored) == ["hydro", "efficient", "mixed", "coal"]
    assert scored[0].carbon_g_per_hour == pytest.approx(30 * 0.7 * 1.3 * 2)
    assert scored[0].renewable_share == 1.0


def test_balanced_is_a_documented_weighted_sum_of_normalised_metrics():
    cheap_slow = make_offer("cheap-slow", "nvidia-t4", rate="0.50", latency_ms=50, carbon_intensity=300.0, pue=1.5)
    dear_fast = make_offer("dear-fast", "nvidia-h100", rate="6.00", latency_ms=10, carbon_intensity=300.0, pue=1.5)
    middle = make_offer("middle", "nvidia-a100", rate="2.00", latency_ms=20, carbon_intensity=300.0, pue=1.5)
    scored = rank([cheap_slow, dear_fast, middle], req(), "Balanced_Optimization")
    by_name = {s.offer.node_name: s for s in scored}
    w = BALANCED_WEIGHTS
    assert sum(w.values()) == pytest.approx(1.0)
    # cheap-slow: best cost, worst performance, worst latency, best carbon (70 W).
    assert by_name["cheap-slow"].score == pytest.approx(w["cost"] + w["energy"])
    # dear-fast: worst cost, best performance, best latency, worst carbon (700 W).
    assert by_name["dear-fast"].score == pytest.approx(w["performance"] + w["latency"])
    cost = (6.0 - 2.0) / 5.5
    perf = (19.5 - 8.1) / (66.9 - 8.1)
    latency = (50 - 20) / 40
    carbon = (700 - 400) / (700 - 70)
    expected = w["cost"] * cost + w["performance"] * perf + w["latency"] * latency + w["energy"] * carbon
    assert by_name["middle"].score == pytest.approx(expected)
    assert names(scored) == [s.offer.node_name for s in sorted(scored, key=lambda s: -s.score)]


def test_only_feasible_nodes_are_ranked():
    offers = [make_offer("h100"), make_offer("a100", "nvidia-a100"), make_offer("busy", free=0, total=8)]
    assert names(rank(offers, req(gpu={"model": "nvidia-h100"}), "Cost_Minimization")) == ["h100"]
    assert names(rank(offers, req(gpu={"model": "nvidia-h100"}), "Cost_Minimization", ignore_capacity=True)) == [
        "busy", "h100"]


def test_scored_offers_carry_the_metrics_of_the_alternatives_they_beat():
    scored = rank([make_offer("a", rate="2", latency_ms=5), make_offer("b", rate="3", latency_ms=9)],
                  req(gpu={"count": 2}), "Cost_Minimization")
    metrics = scored[1].metrics()
    assert metrics["node"] == "b" and metrics["rank"] == 2
    assert metrics["hourly_cost"] == "6.00 EUR/hour" and metrics["hourly_cost_number"] == 6.0
    assert metrics["latency_ms"] == 9 and metrics["delivered_tflops"] == pytest.approx(66.9 * 2 * 0.9, abs=0.01)


def test_objective_defaults_to_the_intents_own():
    offers = [make_offer("cheap", "nvidia-t4", rate="0.5"), make_offer("fast", "nvidia-h100", rate="5")]
    assert names(rank(offers, req(objective="Performance_Maximization"))) == ["fast", "cheap"]
    assert names(rank(offers, req(objective="Cost_Minimization"))) == ["cheap", "fast"]

#!/usr/bin/env python
"""Placement benchmark: FLARE's objective-aware placement against a first-match baseline.

Prints figures; it is not a test. Pure Python over `intents.placement` (no database, no ORM):

1. Offers from the demo federation (`providers.demo_data.generate_federation`): each node's
   annotations and labels parsed into GpuTraits (`providers.annotations.parse_annotations`), its
   provider's profile, and the catalogue's power per GPU. Nodes published as unavailable are left out.
2. A seeded synthetic trace of batch intents in the API's shape, normalised by
   `intents.schema.validate_intent`, with Poisson arrivals whose rate puts ~1.3x the federation's
   GPU capacity on offer.
3. A discrete-event simulation in simulated time of FLARE's central queue (FIFO, equal priority,
   the reconciler's backfill rule), run twice on the same trace: placement by `plan()` (FLARE)
   and by `first_match()` (first node in inventory order that honours the same hard constraints).
4. Time to place one intent against 1k and 10k GPU nodes.

Usage: python benchmarks/placement.py [--intents N] [--seed S] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flare_portal.settings")

from intents import placement  # noqa: E402
from intents.placement import (  # noqa: E402
    BALANCED, COST, ENERGY, LATENCY, OBJECTIVES, PERFORMANCE, Requirements, first_match, mismatches, plan,
)
from intents.schema import validate_intent  # noqa: E402
from providers import gpu_catalog  # noqa: E402
from providers.annotations import parse_annotations  # noqa: E402
from providers.demo_data import generate_federation, iter_nodes  # noqa: E402
from providers.traits import Offer  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # progress is optional
    tqdm = None

FEDERATION_SEED = 7          # the demo federation `./flare up` seeds
TARGET_LOAD = 1.3            # offered GPU-hours / GPU-hours of capacity
MEDIAN_MINUTES = 20.0
SIGMA = 1.2

SHORT = {COST: "Cost", PERFORMANCE: "Performance", LATENCY: "Latency", ENERGY: "Energy", BALANCED: "Balanced"}


def progress(total: int, desc: str, enabled: bool):
    if tqdm is None or not enabled:
        return _NoBar()
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True, mininterval=0.5)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


# --------------------------------------------------------------------------------------------
# Federation → offers

def build_offers(seed: int, nodes: int | None = None) -> list[Offer]:
    """Every available node of the demo federation as a placement Offer (all GPUs free), inventory order."""
    offers = []
    power: dict[str, int | None] = {}
    for provider, node in iter_nodes(generate_federation(seed, nodes=nodes)):
        if not node.available:
            continue
        result = parse_annotations(node.annotations, node.labels)
        if result.traits is None:
            raise SystemExit(f"{provider.name}/{node.name}: annotations do not parse: {result.errors}")
        traits = result.traits
        if traits.model not in power:
            entry = gpu_catalog.lookup(traits.model)
            power[traits.model] = entry.power_watts if entry is not None else None
        node_id = f"{provider.name}/{node.name}"
        offers.append(Offer(node_id=node_id, node_name=node.name, flavor_name=node_id, traits=traits,
                            provider=provider.profile(), free_gpus=traits.count, total_gpus=traits.count,
                            power_watts=power[traits.model]))
    return offers


# --------------------------------------------------------------------------------------------
# Synthetic trace

MODELS = (  # when an intent names a model: roughly the demand mix of a GPU cloud
    ("nvidia-h100", 30), ("nvidia-a100", 25), ("nvidia-l40s", 9), ("nvidia-rtx-4090", 9), ("nvidia-h200", 8),
    ("nvidia-l4", 5), ("nvidia-v100", 5), ("amd-mi300x", 4), ("nvidia-t4", 3), ("nvidia-rtx-a6000", 2),
)
TIERS = (("premium", 45), ("standard", 25), ("gaming", 15), ("inference", 15))
MEMORY_MIN = (("16Gi", 20), ("24Gi", 30), ("40Gi", 25), ("48Gi", 10), ("80Gi", 15))
LOCATIONS = (("EU", 35), ("US", 20), ("Asia", 7), ("any", 38))
OBJECTIVE_MIX = ((COST, 30), (PERFORMANCE, 20), (BALANCED, 20), (ENERGY, 15), (LATENCY, 15))
COUNTS = ((1, 70), (2, 15), (4, 10), (8, 5))
CAP_PER_GPU = (0.5, 1.0, 2.0, 3.0, 5.0)       # max_hourly_cost per GPU, EUR
IMAGES = ("pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime", "nvcr.io/nvidia/tensorflow:24.05-tf2-py3",
          "ffmpeg-gpu:latest", "rapidsai/base:24.06-cuda12.2-py3.11")


def _pick(rng: random.Random, pairs):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


@dataclass
class Job:
    index: int
    arrival: float               # seconds
    duration: float              # seconds
    doc: dict
    req: Requirements
    objective: str
    gpus: int                    # total GPUs
    # filled for feasible jobs
    eff: Requirements | None = None
    elig_mask: int = 0           # nodes that pass every static requirement for one unit
    head_mask: int = 0           # nodes the reconciler keeps free for this job when it heads the queue


def make_payload(rng: random.Random, i: int, duration_s: float) -> dict:
    objective = _pick(rng, OBJECTIVE_MIX)
    count = _pick(rng, COUNTS)
    gpu: dict = {"count": count}
    if rng.random() < 0.35:
        gpu["model"] = _pick(rng, MODELS)
    elif rng.random() < 0.20:
        gpu["tier"] = _pick(rng, TIERS)
    if rng.random() < 0.25:
        gpu["memory_min"] = _pick(rng, MEMORY_MIN)

    workload: dict = {
        "type": "batch",
        "name": f"bench-{i:05d}",
        "image": rng.choice(IMAGES),
        "commands": ["python3 run.py"],
        "resources": {"cpu": str(4 * count), "memory": f"{16 * count}Gi", "gpu": gpu},
    }
    tasks = 1
    if rng.random() < 0.05:      # a gang: every task needs `count` GPUs on one node, all or nothing
        tasks = rng.randint(2, 4)
        workload["deployment_strategy"] = rng.choice(("colocated", "distributed"))
        workload["communication_pattern"] = "all-reduce"
    hours = max(1, math.ceil(2 * duration_s / 3600))
    workload["batch"] = {"parallel_tasks": tasks, "timeout": f"{hours}h", "max_retries": 1}

    constraints: dict = {}
    location = _pick(rng, LOCATIONS)
    if location != "any" or rng.random() < 0.5:
        constraints["location"] = location
    # Batch work tolerates latency from the consumer cluster; US and Asia are 88–280 ms away, so
    # intents that go there lift the API default of 100 ms. Latency-minimising intents keep it.
    if location in ("US", "Asia") or (location == "any" and objective != LATENCY and rng.random() < 0.6):
        constraints["max_latency_ms"] = 300
    if rng.random() < 0.25:
        cap = rng.choice(CAP_PER_GPU) * count * tasks
        constraints["max_hourly_cost"] = f"{cap:g} EUR"
    if rng.random() < 0.30:
        constraints["preemptible"] = True
    return {"intent": {"objective": objective, "workload": workload, "constraints": constraints}}


def make_trace(n: int, seed: int) -> list[Job]:
    """The intents, in arrival order (arrival times come later, from the offered load)."""
    rng = random.Random(f"flare-bench:{seed}:trace")
    jobs = []
    for i in range(n):
        duration = rng.lognormvariate(math.log(MEDIAN_MINUTES * 60), SIGMA)
        doc = validate_intent(make_payload(rng, i, duration))
        req = Requirements.from_document(doc)
        jobs.append(Job(index=i, arrival=0.0, duration=duration, doc=doc, req=req,
                        objective=doc["objective"], gpus=req.total_gpus))
    return jobs


def set_arrivals(jobs: list[Job], seed: int, total_gpus: int) -> dict:
    """Poisson arrivals at the rate that offers TARGET_LOAD x the federation's GPU-hours.

    Intents that no node could ever satisfy are refused at submit and load nothing, so the rate is
    rate = TARGET_LOAD x GPUs / (mean GPU-hours per submitted intent, refused ones counting 0)."""
    gpu_hours = [j.gpus * j.duration / 3600 for j in jobs]
    offered = [h for j, h in zip(jobs, gpu_hours) if j.eff is not None]
    mean_offered = sum(offered) / len(jobs)
    rate_per_hour = TARGET_LOAD * total_gpus / mean_offered
    rng = random.Random(f"flare-bench:{seed}:arrivals")
    t = 0.0
    for job in jobs:
        t += rng.expovariate(rate_per_hour / 3600)
        job.arrival = t
    return {
        "intents": len(jobs),
        "mean_gpus_per_intent": statistics.fmean(j.gpus for j in jobs),
        "median_duration_min": statistics.median(j.duration for j in jobs) / 60,
        "mean_duration_min": statistics.fmean(j.duration for j in jobs) / 60,
        "p99_duration_min": _pct([j.duration for j in jobs], 99) / 60,
        "mean_gpu_hours_per_intent": statistics.fmean(gpu_hours),
        "mean_gpu_hours_per_feasible_intent": statistics.fmean(offered) if offered else float("nan"),
        "feasible_share": len(offered) / len(jobs),
        "arrival_rate_per_hour": rate_per_hour,
        "target_offered_load": TARGET_LOAD,
        "arrival_span_h": t / 3600,
        "objectives": {SHORT[o]: sum(j.objective == o for j in jobs) for o in OBJECTIVES},
        "gangs": sum(j.req.units > 1 for j in jobs),
        "with_model": sum(j.req.model is not None for j in jobs),
        "with_tier": sum(j.req.tier is not None for j in jobs),
        "with_memory_min": sum(j.req.memory_min is not None for j in jobs),
        "with_location": sum(j.req.location is not None for j in jobs),
        "with_cost_cap": sum(j.req.max_hourly_cost is not None for j in jobs),
        "preemptible_allowed": sum(j.req.preemptible for j in jobs),
    }


def classify(jobs: list[Job], offers: list[Offer]) -> dict:
    """Keep only intents the federation could ever satisfy (all GPUs free), under both placers."""
    never_flare = never_fm = 0
    reasons: dict[str, int] = {}
    for job in jobs:
        eff, _ = placement.effective_requirements(offers, job.req)
        job.eff = eff
        if plan(offers, job.req, job.objective, ignore_capacity=True) is None:
            never_flare += 1
            job.eff = None
            verdict = placement.assess(offers, job.req, job.objective)   # the 409/402 submit would return
            reason = f"{verdict.error_code} ({verdict.blocking_requirement})"
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        if first_match(offers, job.req) is None:
            never_fm += 1
            job.eff = None
            continue
        one_unit = replace(eff, units=1)
        for k, offer in enumerate(offers):
            if not mismatches(offer, one_unit, ignore_capacity=True):
                job.elig_mask |= 1 << k
            if not mismatches(offer, eff, ignore_capacity=True):
                job.head_mask |= 1 << k
    return {"never_satisfiable": never_flare, "never_satisfiable_first_match_only": never_fm,
            "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


# --------------------------------------------------------------------------------------------
# Discrete-event simulation of the central queue

def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


@dataclass
class Placed:
    start: float
    plan: placement.Plan


@dataclass
class RunResult:
    name: str
    placed: dict = field(default_factory=dict)     # job index → Placed
    calls: int = 0
    call_seconds: float = 0.0                      # wall clock inside placement calls
    call_cpu_seconds: float = 0.0                  # process CPU time inside them (steadier on a busy machine)
    skipped_by_prefilter: int = 0
    cache_hits: int = 0
    violations: list = field(default_factory=list)
    capacity_violations: int = 0
    busy_gpu_seconds_queued: float = 0.0
    capacity_gpu_seconds_queued: float = 0.0
    queued_seconds: float = 0.0
    busy_gpu_seconds_queued_window: float = 0.0      # the same, only while intents still arrive
    capacity_gpu_seconds_queued_window: float = 0.0
    busy_gpu_seconds_window: float = 0.0             # whether or not anything is queued
    capacity_gpu_seconds_window: float = 0.0
    max_queue: int = 0
    first_arrival: float = 0.0
    last_completion: float = 0.0
    wall_seconds: float = 0.0


def _check(job: Job, chosen: placement.Plan, offers: list[Offer], index: dict, free: list[int]) -> list[str]:
    """Re-check a placement against the intent at decision time (strict §3, current free GPUs)."""
    problems = []
    req = job.req
    units = 0
    for alloc in chosen.allocations:
        k = index[alloc.offer.node_id]
        units += alloc.units
        if alloc.gpus != alloc.units * req.gpus_per_unit:
            problems.append(f"{alloc.offer.node_id}: {alloc.gpus} GPUs for {alloc.units} units")
        if alloc.gpus > free[k]:
            problems.append(f"{alloc.offer.node_id}: {alloc.gpus} GPUs but {free[k]} free")
        for m in mismatches(offers[k], replace(req, units=alloc.units), ignore_capacity=False):
            problems.append(f"{alloc.offer.node_id}: {m.requirement}: {m.message}")
    if units != req.units:
        problems.append(f"{units} units placed, intent has {req.units}")
    if req.deployment_strategy == "colocated" and len(chosen.providers) > 1:
        problems.append(f"colocated gang spans {chosen.providers}")
    if req.max_hourly_cost is not None and (chosen.hourly_cost is None or chosen.hourly_cost > req.max_hourly_cost):
        problems.append(f"hourly cost {chosen.hourly_cost} over max_hourly_cost {req.max_hourly_cost}")
    return problems


def simulate(name: str, jobs: list[Job], base_offers: list[Offer], place, show_progress: bool,
             backfill: str = "exclude") -> RunResult:
    """FIFO queue with the reconciler's backfill rule (intents/reconcile.py `queue_decisions`):
    the queue is walked in order; an intent starts when `place` finds a plan; the first intent that
    cannot start is the head, and after it an intent may start only if its plan uses no node the
    head could ever use (`mismatches(offer, head_req, ignore_capacity=True)` empty).

    Two shortcuts keep it fast without changing a single decision: an intent whose eligible nodes
    (minus the head's, once there is a head) lack the free GPUs for its units is not started without
    a call (any plan would be None or rejected), and a rejected intent is not re-planned until the
    free GPUs on its eligible nodes or the head change (`place` is deterministic in them)."""
    result = RunResult(name=name)
    feasible = [j for j in jobs if j.eff is not None]
    n = len(base_offers)
    index = {o.node_id: k for k, o in enumerate(base_offers)}
    offers = list(base_offers)
    free = [o.total_gpus for o in base_offers]
    total = list(free)
    total_gpus = sum(total)
    free_mask = sum(1 << k for k in range(n) if free[k] > 0)
    cache: dict[int, tuple] = {}

    events: list[tuple[float, int, int, int]] = []   # (time, kind 0=completion 1=arrival, seq, job)
    for seq, job in enumerate(feasible):
        heapq.heappush(events, (job.arrival, 1, seq, job.index))
    by_index = {j.index: j for j in feasible}
    running: dict[int, placement.Plan] = {}
    queue: list[int] = []
    allocated = 0
    seq = len(feasible)
    now = feasible[0].arrival if feasible else 0.0
    result.first_arrival = now
    bar = progress(len(feasible), f"simulating {name}", show_progress)
    wall = time.perf_counter()

    def set_free(k: int, value: int):
        nonlocal free_mask
        free[k] = value
        offers[k] = replace(base_offers[k], free_gpus=value)
        if value > 0:
            free_mask |= 1 << k
        else:
            free_mask &= ~(1 << k)

    last_arrival = max((j.arrival for j in feasible), default=0.0)
    while events:
        t = events[0][0]
        dt = t - now
        if queue:
            result.busy_gpu_seconds_queued += allocated * dt
            result.capacity_gpu_seconds_queued += total_gpus * dt
            result.queued_seconds += dt
        if t <= last_arrival:
            result.busy_gpu_seconds_window += allocated * dt
            result.capacity_gpu_seconds_window += total_gpus * dt
            if queue:
                result.busy_gpu_seconds_queued_window += allocated * dt
                result.capacity_gpu_seconds_queued_window += total_gpus * dt
        now = t
        while events and events[0][0] == t:
            _, kind, _, j = heapq.heappop(events)
            if kind == 1:
                queue.append(j)
            else:
                done = running.pop(j)
                for alloc in done.allocations:
                    k = index[alloc.offer.node_id]
                    set_free(k, free[k] + alloc.gpus)
                    allocated -= alloc.gpus
                    if free[k] > total[k]:
                        result.capacity_violations += 1
                result.last_completion = t

        # One pass of the central queue.
        head: int | None = None
        head_mask = 0
        remaining = []
        for j in queue:
            job = by_index[j]
            g, units = job.req.gpus_per_unit, job.req.units
            usable = job.elig_mask & free_mask & ~head_mask
            slots = 0
            for k in _bits(usable):
                slots += free[k] // g
                if slots >= units:
                    break
            started = False
            if slots < units:
                result.skipped_by_prefilter += 1
            else:
                key = (head, tuple((k, free[k]) for k in _bits(job.elig_mask & free_mask) if free[k] >= g))
                if cache.get(j) == key:
                    result.cache_hits += 1
                else:
                    candidates = offers
                    if head is not None and backfill == "exclude":
                        candidates = [replace(o, free_gpus=0) if head_mask >> k & 1 else o
                                      for k, o in enumerate(offers)]
                    c0, t0 = time.process_time(), time.perf_counter()
                    chosen = place(candidates, job)
                    result.call_seconds += time.perf_counter() - t0
                    result.call_cpu_seconds += time.process_time() - c0
                    result.calls += 1
                    if chosen is not None and head is not None and any(
                            head_mask >> index[a.offer.node_id] & 1 for a in chosen.allocations):
                        chosen = None       # would take GPUs the head is waiting for
                    if chosen is None:
                        cache[j] = key
                    else:
                        problems = _check(job, chosen, offers, index, free)
                        if problems:
                            result.violations.append((j, problems))
                        for alloc in chosen.allocations:
                            k = index[alloc.offer.node_id]
                            set_free(k, free[k] - alloc.gpus)
                            allocated += alloc.gpus
                            if free[k] < 0:
                                result.capacity_violations += 1
                        running[j] = chosen
                        result.placed[j] = Placed(start=t, plan=chosen)
                        cache.pop(j, None)
                        seq += 1
                        heapq.heappush(events, (t + job.duration, 0, seq, j))
                        started = True
                        bar.update()
            if not started:
                remaining.append(j)
                if head is None:
                    head, head_mask = j, job.head_mask
        queue = remaining
        result.max_queue = max(result.max_queue, len(queue))
    bar.close()
    result.wall_seconds = time.perf_counter() - wall
    if queue:
        raise SystemExit(f"{name}: {len(queue)} intents never started (simulation bug)")
    return result


def place_flare(offers, job: Job):
    return plan(offers, job.req, job.objective)


def place_first_match(offers, job: Job):
    return first_match(offers, job.req)


# --------------------------------------------------------------------------------------------
# Figures

def summarise(run: RunResult, jobs: list[Job]) -> dict:
    feasible = [j for j in jobs if j.eff is not None]
    waits = [(run.placed[j.index].start - j.arrival) / 60 for j in feasible]
    cost = sum(float(run.placed[j.index].plan.hourly_cost) * j.duration / 3600 for j in feasible)
    return {
        "placed": len(run.placed),
        "total_cost_eur": cost,
        "mean_wait_min": statistics.fmean(waits),
        "p95_wait_min": _pct(waits, 95),
        "max_wait_min": max(waits),
        "gpu_allocation_while_queued": (run.busy_gpu_seconds_queued / run.capacity_gpu_seconds_queued
                                        if run.capacity_gpu_seconds_queued else float("nan")),
        "gpu_allocation_while_queued_arrivals": _ratio(run.busy_gpu_seconds_queued_window,
                                                       run.capacity_gpu_seconds_queued_window),
        "gpu_allocation_arrivals": _ratio(run.busy_gpu_seconds_window, run.capacity_gpu_seconds_window),
        "time_with_queue_h": run.queued_seconds / 3600,
        "max_queue_length": run.max_queue,
        "constraint_violations": len(run.violations),
        "capacity_violations": run.capacity_violations,
        "placement_calls": run.calls,
        "placement_seconds": run.call_seconds,
        "decisions_per_second": _ratio(run.calls, run.call_seconds),
        "decisions_per_cpu_second": _ratio(run.calls, run.call_cpu_seconds),
        "skipped_without_call": run.skipped_by_prefilter,
        "unchanged_rejections_reused": run.cache_hits,
        "makespan_h": (run.last_completion - run.first_arrival) / 3600,
        "simulation_wall_s": run.wall_seconds,
    }


def per_objective(run: RunResult, jobs: list[Job]) -> dict:
    out = {}
    for objective in OBJECTIVES:
        group = [j for j in jobs if j.eff is not None and j.objective == objective]
        if not group:
            continue
        gpu_h = sum(j.gpus * j.duration / 3600 for j in group)
        plans = [(j, run.placed[j.index].plan) for j in group]
        carbon = [p.carbon_g_per_hour / p.total_gpus for _, p in plans if p.carbon_g_per_hour is not None]
        renewable = [p.renewable_share for _, p in plans if p.renewable_share is not None]
        latency = [p.max_latency_ms for _, p in plans if p.max_latency_ms is not None]
        out[SHORT[objective]] = {
            "intents": len(group),
            "total_cost_eur": sum(float(p.hourly_cost) * j.duration / 3600 for j, p in plans),
            "eur_per_gpu_hour": sum(float(p.hourly_cost) * j.duration / 3600 for j, p in plans) / gpu_h,
            # per decision, unweighted: robust to the few long multi-GPU jobs that dominate the totals
            "median_rate_eur_per_gpu_hour": statistics.median(float(p.hourly_cost) / p.total_gpus for _, p in plans),
            "tflops_per_gpu": statistics.fmean(p.delivered_tflops / p.total_gpus for _, p in plans),
            "carbon_g_per_gpu_hour": statistics.fmean(carbon) if carbon else None,
            "renewable_share": statistics.fmean(renewable) if renewable else None,
            "latency_ms": statistics.fmean(latency) if latency else None,
            "mean_wait_min": statistics.fmean((run.placed[j.index].start - j.arrival) / 60 for j in group),
        }
    return out


def scale_test(seed: int, sizes: tuple[int, ...], jobs: list[Job], samples: int, show_progress: bool) -> dict:
    """Time one placement decision against large federations, nodes half-occupied at random."""
    feasible = [j for j in jobs if j.eff is not None]
    step = max(1, len(feasible) // samples)
    picked = feasible[::step][:samples]
    out = {}
    for size in sizes:
        offers = build_offers(seed, nodes=size)
        rng = random.Random(f"flare-bench:{seed}:occupancy:{size}")
        offers = [replace(o, free_gpus=rng.randint(0, o.total_gpus)) for o in offers]
        times = {"plan": [], "first_match": []}
        found = {"plan": 0, "first_match": 0}
        bar = progress(2 * len(picked), f"timing {size} nodes", show_progress)
        for job in picked:
            for name, fn in (("plan", lambda: plan(offers, job.req, job.objective)),
                             ("first_match", lambda: first_match(offers, job.req))):
                t0 = time.perf_counter()
                chosen = fn()
                times[name].append(time.perf_counter() - t0)
                found[name] += chosen is not None
                bar.update()
        bar.close()
        out[str(size)] = {
            "requested_nodes": size,
            "nodes": len(offers),
            "gpus": sum(o.total_gpus for o in offers),
            "free_gpus": sum(o.free_gpus for o in offers),
            "intents": len(picked),
            **{f"{name}_median_ms": statistics.median(v) * 1000 for name, v in times.items()},
            **{f"{name}_p95_ms": _pct(v, 95) * 1000 for name, v in times.items()},
            **{f"{name}_placed": found[name] for name in found},
        }
    return out


def _ratio(a, b):
    return a / b if b else float("nan")


def _fmt(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def print_report(r: dict) -> None:
    fed, tr, ex = r["federation"], r["trace"], r["excluded"]
    f, b = r["runs"]["flare"], r["runs"]["first_match"]
    print("FLARE placement benchmark")
    print(f"federation: demo seed {fed['seed']}: {fed['providers']} providers, {fed['nodes']} available nodes, "
          f"{fed['gpus']} GPUs")
    print(f"trace: seed {tr['seed']}, {tr['intents']} batch intents, {tr['mean_gpus_per_intent']:.2f} GPUs/intent; "
          f"duration median {tr['median_duration_min']:.1f} min, mean {tr['mean_duration_min']:.1f} min, "
          f"p99 {tr['p99_duration_min']:.0f} min (lognormal, sigma {SIGMA})")
    print(f"       {tr['gangs']} gangs; constraints: model {tr['with_model']}, tier {tr['with_tier']}, "
          f"memory_min {tr['with_memory_min']}, location {tr['with_location']}, max_hourly_cost "
          f"{tr['with_cost_cap']}, preemptible allowed {tr['preemptible_allowed']}")
    print("       objectives: " + ", ".join(f"{k} {v}" for k, v in tr["objectives"].items()))
    print(f"excluded: {ex['never_satisfiable']} intents no node could ever satisfy (refused at submit; left out of "
          f"both runs): " + ", ".join(f"{k} {v}" for k, v in ex["reasons"].items()))
    if ex["never_satisfiable_first_match_only"]:
        print(f"          + {ex['never_satisfiable_first_match_only']} that only first-match could never place")
    print(f"arrivals: Poisson, {tr['arrival_rate_per_hour']:.1f} intents/h = {tr['target_offered_load']} x "
          f"{fed['gpus']} GPUs / {tr['mean_gpu_hours_per_feasible_intent']:.3f} GPU-h per placeable intent / "
          f"{tr['feasible_share']:.3f} placeable")
    print(f"          arrivals span {tr['arrival_span_h']:.2f} h; realised offered load over that span "
          f"{ex['offered_load']:.2f}x capacity ({ex['simulated']} intents simulated)")
    print()
    rows = [
        ("total cost (EUR)", "total_cost_eur", "{:,.0f}"),
        ("mean queue wait (min)", "mean_wait_min", "{:.1f}"),
        ("p95 queue wait (min)", "p95_wait_min", "{:.1f}"),
        ("max queue wait (min)", "max_wait_min", "{:.1f}"),
        ("GPU allocation while queue non-empty", "gpu_allocation_while_queued", "{:.1%}"),
        ("  same, while intents still arrive", "gpu_allocation_while_queued_arrivals", "{:.1%}"),
        ("GPU allocation while intents arrive", "gpu_allocation_arrivals", "{:.1%}"),
        ("time with a non-empty queue (h)", "time_with_queue_h", "{:.2f}"),
        ("max queue length", "max_queue_length", "{}"),
        ("constraint violations", "constraint_violations", "{}"),
        ("capacity violations", "capacity_violations", "{}"),
        ("placement calls", "placement_calls", "{:,}"),
        ("decisions per second (wall clock)", "decisions_per_second", "{:,.0f}"),
        ("  per CPU-second", "decisions_per_cpu_second", "{:,.0f}"),
        ("makespan (h)", "makespan_h", "{:.2f}"),
        ("simulation wall clock (s)", "simulation_wall_s", "{:.1f}"),
    ]
    print(f"{'':40}{'FLARE plan()':>16}{'first-match':>16}")
    for label, key, fmt in rows:
        print(f"{label:40}{_fmt(fmt, f[key]):>16}{_fmt(fmt, b[key]):>16}")
    print(f"{'cost ratio FLARE / first-match':40}{r['comparison']['cost_ratio']:>16.3f}")
    print()
    print("per objective (means per intent; EUR/GPU-h = the group's cost / its GPU-hours;")
    print("median rate = median over the group's intents of the EUR per GPU-hour each was placed at)")
    po_f, po_b = r["per_objective"]["flare"], r["per_objective"]["first_match"]
    metrics = [("total cost EUR", "total_cost_eur", "{:,.0f}"), ("EUR/GPU-h", "eur_per_gpu_hour", "{:.3f}"),
               ("median rate", "median_rate_eur_per_gpu_hour", "{:.3f}"),
               ("TFLOPS FP32/GPU", "tflops_per_gpu", "{:.1f}"), ("g CO2/GPU-h", "carbon_g_per_gpu_hour", "{:.0f}"),
               ("renewable share", "renewable_share", "{:.0%}"), ("latency ms", "latency_ms", "{:.0f}"),
               ("wait min", "mean_wait_min", "{:.1f}")]
    headline = {"Cost": ("total_cost_eur", "eur_per_gpu_hour", "median_rate_eur_per_gpu_hour"), "Performance": ("tflops_per_gpu",),
                "Latency": ("latency_ms",), "Energy": ("renewable_share", "carbon_g_per_gpu_hour"),
                "Balanced": ()}
    print(f"{'objective':13}{'n':>5}  {'metric':18}{'FLARE':>10}{'first-match':>13}{'ratio':>8}")
    for objective, vf in po_f.items():
        vb = po_b[objective]
        for i, (label, key, fmt) in enumerate(metrics):
            mark = " *" if key in headline[objective] else ""
            a, c = vf[key], vb[key]
            left = f"{objective:13}{vf['intents']:>5}  " if i == 0 else " " * 20
            ratio = f"{a / c:.2f}" if a is not None and c else "-"
            print(f"{left}{label + mark:18}{_fmt(fmt, a):>10}{_fmt(fmt, c):>13}{ratio:>8}")
    print("  * what the objective ranks by (Energy: renewable share first, then carbon per hour;")
    print("    Balanced: 0.35 cost + 0.35 performance + 0.15 latency + 0.15 carbon, min-max normalised)")
    v = r.get("backfill_variant")
    if v:
        print()
        print("comparison, FLARE's earlier rule: backfill planned on all nodes and dropped when it touches a node")
        print("the head could use (the reconciler now re-plans the backfill on the other nodes, as above)")
        print(f"{'':40}{'FLARE plan()':>16}{'first-match':>16}")
        for label, key, fmt in (("total cost (EUR)", "total_cost_eur", "{:,.0f}"),
                                ("mean queue wait (min)", "mean_wait_min", "{:.1f}"),
                                ("p95 queue wait (min)", "p95_wait_min", "{:.1f}"),
                                ("GPU allocation while queue non-empty", "gpu_allocation_while_queued", "{:.1%}"),
                                ("  same, while intents still arrive", "gpu_allocation_while_queued_arrivals",
                                 "{:.1%}"),
                                ("placement calls", "placement_calls", "{:,}"),
                                ("constraint + capacity violations", None, "{}")):
            if key is None:
                vals = [v[n]["constraint_violations"] + v[n]["capacity_violations"] for n in ("flare", "first_match")]
            else:
                vals = [v[n][key] for n in ("flare", "first_match")]
            print(f"{label:40}{_fmt(fmt, vals[0]):>16}{_fmt(fmt, vals[1]):>16}")
    print()
    print("time to place one intent (wall clock; free GPUs per node drawn uniformly from 0..total)")
    print(f"{'nodes':>13}{'GPUs':>8}{'intents':>9}{'plan() median':>15}{'p95':>10}{'first_match median':>20}"
          f"{'p95':>10}{'placed plan/fm':>16}")
    for s in r["scale"].values():
        print(f"{s['requested_nodes']:>6} ({s['nodes']:>4}){s['gpus']:>8}{s['intents']:>9}"
              f"{s['plan_median_ms']:>12.1f} ms{s['plan_p95_ms']:>7.1f} ms"
              f"{s['first_match_median_ms']:>17.1f} ms{s['first_match_p95_ms']:>7.1f} ms"
              f"{s['plan_placed']:>9}/{s['first_match_placed']}")
    print("  (nodes: requested (available); the demo generator marks a few nodes unavailable)")
    if r["violation_examples"]:
        print()
        print("violations (first few):")
        for line in r["violation_examples"]:
            print("  " + line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=None, help="intents in the trace (default 2000; 300 with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="trace seed (default 1)")
    parser.add_argument("--federation-seed", type=int, default=FEDERATION_SEED,
                        help=f"demo federation seed (default {FEDERATION_SEED}, the one ./flare up seeds)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 intents, 10 timed intents per size")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--no-variant", action="store_true",
                        help="skip the comparison runs with the earlier backfill rule (drop instead of re-plan)")
    args = parser.parse_args(argv)
    n = args.intents if args.intents is not None else (300 if args.quick else 2000)
    if n < 1:
        parser.error("--intents must be at least 1")
    show = not args.no_progress

    started = time.perf_counter()
    offers = build_offers(args.federation_seed)
    total_gpus = sum(o.total_gpus for o in offers)
    jobs = make_trace(n, args.seed)
    excluded = classify(jobs, offers)
    trace = set_arrivals(jobs, args.seed, total_gpus)
    trace["seed"] = args.seed
    feasible = [j for j in jobs if j.eff is not None]
    if not feasible:
        raise SystemExit("no intent of the trace fits the federation")
    span = (max(j.arrival for j in feasible) - min(j.arrival for j in feasible)) if len(feasible) > 1 else 0.0
    excluded["simulated"] = len(feasible)
    # Realised over the arrival window (a heavy-tailed sample: not exactly the target).
    excluded["offered_load"] = (sum(j.gpus * j.duration for j in feasible) / (total_gpus * span)) if span else float("nan")

    flare_run = simulate("FLARE", jobs, offers, place_flare, show)
    fm_run = simulate("first-match", jobs, offers, place_first_match, show)
    runs = {"flare": summarise(flare_run, jobs), "first_match": summarise(fm_run, jobs)}
    variant = None
    if not args.no_variant:
        variant = {name: summarise(simulate(f"{name} (earlier rule: drop a backfill touching head nodes)", jobs,
                                            offers, fn, show, backfill="reconciler"), jobs)
                   for name, fn in (("flare", place_flare), ("first_match", place_first_match))}
    scale = scale_test(args.federation_seed, (1000, 10000), jobs, 10 if args.quick else 50, show)

    examples = []
    for run in (flare_run, fm_run):
        for j, problems in run.violations[:3]:
            examples.append(f"{run.name} intent {j}: {'; '.join(problems)}")

    report = {
        "federation": {"seed": args.federation_seed, "providers": len({o.provider.name for o in offers}),
                       "nodes": len(offers), "gpus": total_gpus},
        "trace": trace,
        "excluded": excluded,
        "runs": runs,
        "comparison": {
            "cost_ratio": _ratio(runs["flare"]["total_cost_eur"], runs["first_match"]["total_cost_eur"]),
            "mean_wait_ratio": _ratio(runs["flare"]["mean_wait_min"], runs["first_match"]["mean_wait_min"]),
        },
        "per_objective": {"flare": per_objective(flare_run, jobs), "first_match": per_objective(fm_run, jobs)},
        "backfill_variant": variant,
        "scale": scale,
        "violation_examples": examples,
        "wall_clock_s": time.perf_counter() - started,
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
        print()
        print(f"total wall clock {report['wall_clock_s']:.0f} s")
    return 1 if runs["flare"]["constraint_violations"] or runs["flare"]["capacity_violations"] \
        or runs["first_match"]["constraint_violations"] or runs["first_match"]["capacity_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

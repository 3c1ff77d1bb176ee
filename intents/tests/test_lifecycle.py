"""The intent lifecycle on the simulated federation: every transition, retries, queueing, cancel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from intents import lifecycle
from intents.lifecycle import TRANSITIONS, P
from intents.models import Intent, IntentEvent
from intents.reconcile import advance, queue_decisions
from intents.tests.lifecycle_helpers import get, job, phases, service, submit
from providers import ledger
from providers.federation import get_federation
from providers.models import FederationObject, GpuReservation, QueueEntry

pytestmark = pytest.mark.django_db


def drive(tenant, intent_id, *, until=None, max_steps=40) -> Intent:
    """Run reconcile steps (as the worker would) until the intent rests or reaches `until`."""
    for _ in range(max_steps):
        with schema_context(tenant.schema_name):
            intent = Intent.objects.get(intent_id=intent_id)
            if until is not None and intent.phase == until:
                return intent
            result = advance(tenant.schema_name, intent_id)
        if result.again is None and until is None:
            break
    connection.set_schema_to_public()
    return get(tenant, intent_id)


def test_transition_table_is_closed():
    for source, targets in TRANSITIONS.items():
        for target in targets:
            assert target in TRANSITIONS, f"{source} → {target} leads nowhere known"
    assert not TRANSITIONS[P.SUCCEEDED] and not TRANSITIONS[P.FAILED] and not TRANSITIONS[P.CANCELLED]


def test_invalid_transition_is_refused(client_a, demo_federation, tenant_a):
    intent_id = submit(client_a, job())
    with schema_context(tenant_a.schema_name):
        intent = Intent.objects.get(intent_id=intent_id)
        with pytest.raises(lifecycle.InvalidTransition):
            lifecycle.transition(intent, P.RUNNING, reason="x", message="skipping ahead")


def test_compare_and_set_refuses_a_stale_copy(client_a, demo_federation, tenant_a):
    intent_id = submit(client_a, job())
    with schema_context(tenant_a.schema_name):
        stale = Intent.objects.get(intent_id=intent_id)
        fresh = Intent.objects.get(intent_id=intent_id)
        lifecycle.transition(fresh, P.DISCOVERING, reason="x", message="moved")
        with pytest.raises(lifecycle.StaleIntent):
            lifecycle.transition(stale, P.CANCELLED, reason="x", message="too late")


def test_batch_job_runs_to_completion_with_every_phase_and_cost(client_a, demo_federation, tenant_a, settings):
    settings.FLARE_SIM_BATCH_SECONDS = 0
    intent_id = submit(client_a, job(count=2))
    intent = drive(tenant_a, intent_id)
    assert intent.phase == P.SUCCEEDED and intent.status == "completed", intent.message
    assert phases(tenant_a, intent_id) == [P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING,
                                           P.RUNNING, P.SUCCEEDED]
    assert intent.provider and intent.node and intent.flavor and intent.namespace.startswith("flare-acme-")
    assert intent.placement["chosen"]["total_gpus"] == 2
    conditions = {c["type"]: c["status"] for c in intent.conditions}
    for type_ in ("Discovered", "Reserved", "Peered", "Offloaded", "Deployed", "Completed"):
        assert conditions[type_] == "True", intent.conditions
    # Everything released at the end, the ledger says so, and the cost is real reserved time × price.
    assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists()
    reservation = GpuReservation.objects.get(intent_id=intent_id)
    assert reservation.state == "released" and reservation.gpus == 2
    assert not FederationObject.objects.filter(labels__contains={"flare.io/intent-id": intent_id},
                                               kind__in=["Job", "Namespace", "Allocation"]).exists()


def test_service_reaches_running_and_accrues_cost(client_a, demo_federation, tenant_a):
    intent_id = submit(client_a, service())
    intent = drive(tenant_a, intent_id, until=P.RUNNING)
    assert intent.status == "running" and intent.started_at is not None
    GpuReservation.objects.filter(intent_id=intent_id).update(activated_at=timezone.now() - timedelta(hours=2))
    drive(tenant_a, intent_id, max_steps=1)
    intent = get(tenant_a, intent_id)
    rate = GpuReservation.objects.get(intent_id=intent_id).price_per_gpu_hour
    assert abs(intent.current_cost - rate * 2) < Decimal("0.05")
    status = client_a.get(f"/api/v1/intents/{intent_id}").json()
    assert status["runtime"] and status["workload_url"]


def test_cancel_at_every_phase_releases_everything(client_a, demo_federation, tenant_a):
    for index, phase in enumerate([P.SUBMITTED, P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING,
                                   P.RUNNING]):
        intent_id = submit(client_a, service(name=f"cancel-{index}"))
        drive(tenant_a, intent_id, until=phase)
        response = client_a.delete(f"/api/v1/intents/{intent_id}")
        assert response.status_code == 202
        assert response.json()["status"] == "cancelled", (phase, response.json())
        assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists(), phase
        live = FederationObject.objects.filter(labels__contains={"flare.io/intent-id": intent_id}).exclude(
            kind__in=["Solver", "Discovery", "PeeringCandidate"])
        assert not live.exists(), (phase, list(live.values_list("kind", "name")))
    assert ledger.invariant_violations() == []


def test_contention_no_double_booking_and_queue_wakes_in_order(client_a, client_b, tenant_a, tenant_b, make_node):
    make_node(provider_name="Tiny", model="nvidia-a100", count=2, rate="1.00")
    first = [submit(client_a, job(name=f"a{i}")) for i in range(2)]
    for intent_id in first:
        drive(tenant_a, intent_id, until=P.RUNNING)
    waiting_b = submit(client_b, job(name="b-waits"))
    waiting_a = submit(client_a, job(name="a-waits"))
    with schema_context(tenant_b.schema_name):
        assert Intent.objects.get(intent_id=waiting_b).status == "queued"
    assert ledger.invariant_violations() == []
    assert [e.intent_id for e in QueueEntry.objects.order_by("enqueued_at")] == [waiting_b, waiting_a]
    # One GPU is released: the head of the central queue (tenant B's, arrived first) starts.
    client_a.delete(f"/api/v1/intents/{first[0]}")
    assert queue_decisions() == [(tenant_b.schema_name, waiting_b)]
    with schema_context(tenant_b.schema_name):
        advance(tenant_b.schema_name, waiting_b, dequeue=True)
    intent_b = drive(tenant_b, waiting_b, until=P.RUNNING)
    assert intent_b.phase == P.RUNNING
    assert get(tenant_a, waiting_a).status == "queued"
    assert get(tenant_a, waiting_a).queue_position == 1
    assert ledger.invariant_violations() == []


def test_backfill_never_takes_what_the_head_waits_for(client_a, tenant_a, make_node):
    make_node(provider_name="Big", model="nvidia-h100", count=4, rate="2.00")
    make_node(provider_name="Small", model="nvidia-t4", count=1, rate="0.30")
    running = submit(client_a, job(name="holder", model="nvidia-h100", count=3))
    drive(tenant_a, running, until=P.RUNNING)
    head = submit(client_a, job(name="head", model="nvidia-h100", count=4))          # waits for all 4
    sneaky = submit(client_a, job(name="sneaky", model="nvidia-h100", count=1))      # would fit the free one
    small = submit(client_a, job(name="small", model="nvidia-t4", count=1))          # other node: may backfill
    assert get(tenant_a, head).status == "queued" and get(tenant_a, sneaky).status == "queued"
    assert get(tenant_a, small).status == "pending"  # fits free capacity right away, never queued
    decisions = queue_decisions()
    assert (tenant_a.schema_name, sneaky) not in decisions and (tenant_a.schema_name, head) not in decisions


def test_gang_is_all_or_nothing(client_a, tenant_a, make_node):
    make_node(provider_name="P1", model="nvidia-a100", count=2, rate="1.00")
    make_node(provider_name="P2", model="nvidia-a100", count=2, rate="1.20")
    colocated = job(name="gang", count=2, tasks=2)
    colocated["intent"]["workload"]["deployment_strategy"] = "colocated"
    response = client_a.post("/api/v1/intents", colocated, format="json")
    assert response.status_code == 409, response.content  # no single provider holds 4 GPUs
    distributed = job(name="gang", count=2, tasks=2)
    distributed["intent"]["workload"]["deployment_strategy"] = "distributed"
    intent_id = submit(client_a, distributed)
    intent = drive(tenant_a, intent_id, until=P.RUNNING)
    assert sorted(r.gpus for r in GpuReservation.objects.filter(intent_id=intent_id)) == [2, 2]
    assert intent.placement["chosen"]["strategy"] == "distributed"


def test_timeout_retries_with_a_fresh_solver_then_fails(client_a, demo_federation, tenant_a, settings):
    settings.FLARE_MAX_RETRIES = 1
    federation = get_federation()
    intent_id = submit(client_a, service(name="hangs"))
    federation.inject_fault("hang", intent_id=intent_id, times=10)
    drive(tenant_a, intent_id, until=P.DISCOVERING)
    for attempt in (1, 2):
        drive(tenant_a, intent_id, max_steps=1)  # still running: FLUIDOS hangs
        with schema_context(tenant_a.schema_name):
            Intent.objects.filter(intent_id=intent_id).update(step_started_at=timezone.now() - timedelta(hours=1))
        drive(tenant_a, intent_id, max_steps=1)
        intent = get(tenant_a, intent_id)
        if attempt == 1:
            assert intent.phase == P.DISCOVERING and intent.attempt == 2
            assert intent.solver_name == f"flare-{intent_id}-2"
    intent = get(tenant_a, intent_id)
    assert intent.phase == P.FAILED and intent.status == "failed" and "Timeout" in phases(tenant_a, intent_id) or \
        intent.phase == P.FAILED
    with schema_context(tenant_a.schema_name):
        reasons = list(IntentEvent.objects.filter(intent__intent_id=intent_id).values_list("reason", flat=True))
    assert reasons.count("Timeout") == 2


def test_peering_error_retries_and_recovers(client_a, demo_federation, tenant_a):
    federation = get_federation()
    intent_id = submit(client_a, service(name="flaky-peer"))
    federation.inject_fault("peering_error", intent_id=intent_id, times=1)
    intent = drive(tenant_a, intent_id, until=P.RUNNING)
    assert intent.phase == P.RUNNING and intent.attempt == 2
    assert GpuReservation.objects.filter(intent_id=intent_id, state="released").count() >= 1
    assert ledger.live_reservations(tenant_a.schema_name, intent_id).count() == 1


def test_workload_crash_exhausts_max_retries(client_a, demo_federation, tenant_a, settings):
    settings.FLARE_SIM_BATCH_SECONDS = 3600
    federation = get_federation()
    doc = job(name="crashy")
    doc["intent"]["workload"]["batch"]["max_retries"] = 1
    intent_id = submit(client_a, doc)
    federation.inject_fault("workload_crash", intent_id=intent_id, times=5)
    intent = drive(tenant_a, intent_id, max_steps=60)
    assert intent.phase == P.FAILED and intent.attempt == 2, (intent.phase, intent.message)
    assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists()


def test_budget_enforced(client_a, demo_federation, tenant_a):
    intent_id = submit(client_a, service(name="budget", max_total_cost="5 EUR"))
    drive(tenant_a, intent_id, until=P.RUNNING)
    GpuReservation.objects.filter(intent_id=intent_id).update(activated_at=timezone.now() - timedelta(hours=100))
    intent = drive(tenant_a, intent_id, max_steps=1)
    assert intent.phase == P.FAILED and "max_total_cost" in intent.message
    assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists()


def test_deadline_enforced(client_a, demo_federation, tenant_a):
    deadline = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    intent_id = submit(client_a, service(name="deadline", deadline=deadline))
    drive(tenant_a, intent_id, until=P.RUNNING)
    with schema_context(tenant_a.schema_name):
        intent = Intent.objects.get(intent_id=intent_id)
        intent.document["constraints"]["deadline"] = (timezone.now() - timedelta(minutes=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        intent.save(update_fields=["document"])
    intent = drive(tenant_a, intent_id, max_steps=1)
    assert intent.phase == P.FAILED and intent.conditions and "Deadline" in intent.message


def test_reconcile_is_idempotent_on_terminal_intents(client_a, demo_federation, tenant_a, settings):
    settings.FLARE_SIM_BATCH_SECONDS = 0
    intent_id = submit(client_a, job(name="done"))
    drive(tenant_a, intent_id)
    before = phases(tenant_a, intent_id)
    with schema_context(tenant_a.schema_name):
        assert advance(tenant_a.schema_name, intent_id).again is None
    assert phases(tenant_a, intent_id) == before


def test_failed_placement_releases_its_solver_and_discovery(client_a, tenant_a, make_node):
    from providers.models import GpuNode

    make_node(provider_name="Only", model="nvidia-l4", count=1)
    intent_id = submit(client_a, service(name="vanishing", model="nvidia-l4"))
    GpuNode.objects.update(available=False)  # the only node disappears before discovery
    intent = drive(tenant_a, intent_id)
    assert intent.phase == P.FAILED
    assert not FederationObject.objects.filter(kind__in=["Solver", "Discovery"],
                                               name__contains=intent_id).exists()


def test_availability_window_gates_the_start(client_a, tenant_a, make_node):
    """Outside its window an intent waits queued, with the opening as its start; it neither starts
    nor holds back others; once the window opens the queue starts it."""
    make_node(provider_name="Win", model="nvidia-a100", count=2, rate="1.00")
    now = timezone.now()
    closed = {"window_start": (now + timedelta(hours=2)).strftime("%H:%M"),
              "window_end": (now + timedelta(hours=3)).strftime("%H:%M"), "timezone": "UTC"}
    response = client_a.post("/api/v1/intents", job(name="night-run", availability=closed), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and "availability window" in body["message"]
    assert any("gates when the workload starts" in w for w in body["warnings"])
    opens = body["estimated_start_time"]
    assert opens.startswith((now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")) or \
        opens.startswith((now + timedelta(hours=2, minutes=-1)).strftime("%Y-%m-%dT%H:%M"))
    waiting = body["intent_id"]
    # Another intent is not held back by it.
    other = submit(client_a, job(name="day-run", count=2))
    assert get(tenant_a, other).status == "pending"
    assert queue_decisions() == []
    # The window opens (its document is moved, as time would): the queue starts it once GPUs free up.
    drive(tenant_a, other, until=P.RUNNING)
    client_a.delete(f"/api/v1/intents/{other}")
    with schema_context(tenant_a.schema_name):
        intent = Intent.objects.get(intent_id=waiting)
        intent.document["constraints"]["availability"] = {"window_start": "00:00", "window_end": "23:59"}
        intent.save(update_fields=["document"])
    assert queue_decisions() == [(tenant_a.schema_name, waiting)]
    with schema_context(tenant_a.schema_name):
        advance(tenant_a.schema_name, waiting, dequeue=True)
    assert drive(tenant_a, waiting, until=P.RUNNING).phase == P.RUNNING


def test_a_window_that_never_opens_is_refused(client_a, demo_federation):
    never = {"window_start": "09:00", "window_end": "17:00", "days_of_week": ["Mon"],
             "maintenance_windows": [{"start": "2026-11-30T00:00:00Z", "end": "2026-12-01T00:00:00Z",
                                      "frequency": "weekly"}]}
    response = client_a.post("/api/v1/intents", job(name="never", availability=never), format="json")
    assert response.status_code == 409 and response.json()["error_code"] == "INSUFFICIENT_RESOURCES"


def test_queued_by_the_reconciler_gets_an_estimate_from_the_ledger(client_a, tenant_a, make_node):
    make_node(provider_name="Solo", model="nvidia-a100", count=1, rate="1.00")
    late = submit(client_a, job(name="late"))                  # placeable when submitted…
    holder = submit(client_a, service(name="holder", model="nvidia-a100"))
    drive(tenant_a, holder, until=P.RUNNING)                   # …but a service takes the GPU first
    intent = drive(tenant_a, late, max_steps=3)
    assert intent.phase == P.QUEUED
    assert intent.estimated_start_time is None                 # a service has no expected end
    client_a.delete(f"/api/v1/intents/{holder}")
    # `late` heads the queue: it gets the GPU (batch, 2h timeout) …
    with schema_context(tenant_a.schema_name):
        advance(tenant_a.schema_name, late, dequeue=True)
    drive(tenant_a, late, until=P.RUNNING)
    # … and the next job, queued behind it by the reconciler, expects to start when it times out.
    later = submit(client_a, job(name="later"))
    with schema_context(tenant_a.schema_name):
        Intent.objects.filter(intent_id=later).update(phase=P.DISCOVERING, estimated_start_time=None)
        advance(tenant_a.schema_name, later)
    intent = get(tenant_a, later)
    assert intent.phase == P.QUEUED
    expected = timezone.now() + timedelta(hours=2)
    assert abs((intent.estimated_start_time - expected).total_seconds()) < 120

"""Reconciliation: advance one intent by one step against the federation.

`advance(schema, intent_id)` is idempotent and safe to run concurrently: it takes the intent's
row lock (`SKIP LOCKED` — if another worker holds it, that worker is already on the job) and
performs at most one phase step. It returns when to run again; the Celery task schedules that,
and the beat task re-drives every live intent in case a message was lost.

The backend only answers observations; every decision (retry, queue, fail) is made here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from flare_portal.units import format_money
from providers import ledger
from providers.federation import get_federation
from providers.federation.base import (
    Conflict,
    Deployment,
    Failed,
    IntentRef,
    Peering,
    Reservation,
    Timeout,
    Unavailable,
)
from providers.models import GpuNode, QueueEntry

from . import lifecycle, placement
from .lifecycle import P, StepResult
from .models import Intent

logger = logging.getLogger("flare.reconcile")


def poll_seconds() -> float:
    return getattr(settings, "FLARE_POLL_SECONDS", 2.0)


def step_timeout(phase: str) -> float:
    """FLARE's own timeouts (FLUIDOS.md §6.10); FLUIDOS itself can hang for ever."""
    defaults = {P.DISCOVERING: 150, P.RESERVING: 120, P.PEERING: 300, P.OFFLOADING: 120, P.DEPLOYING: 300}
    overrides = getattr(settings, "FLARE_STEP_TIMEOUTS", {}) or {}
    return float(overrides.get(phase, defaults.get(phase, 300)))


def max_attempts(intent: Intent) -> int:
    batch = intent.document.get("workload", {}).get("batch") or {}
    if intent.workload_type == "batch" and "max_retries" in batch:
        return 1 + int(batch["max_retries"])
    return 1 + int(getattr(settings, "FLARE_MAX_RETRIES", 3))


def solver_name(intent: Intent) -> str:
    return f"flare-{intent.intent_id}-{intent.attempt}"


_tenant_slugs: dict[str, str] = {}


def tenant_slug(schema: str) -> str:
    if schema not in _tenant_slugs:
        with connection.cursor() as cursor:
            cursor.execute("SELECT slug FROM public.tenants_tenant WHERE schema_name = %s", [schema])
            row = cursor.fetchone()
        _tenant_slugs[schema] = row[0] if row else schema
    return _tenant_slugs[schema]


def intent_ref(intent: Intent, schema: str | None = None) -> IntentRef:
    from .solver import solver_manifest

    schema = schema or connection.schema_name
    tenant = tenant_slug(schema)
    name = intent.solver_name or solver_name(intent)
    manifest = solver_manifest(intent.document, intent_id=intent.intent_id, tenant=tenant,
                               user=intent.owner_username or "unknown", name=name, attempt=intent.attempt,
                               discovery_marker=True)
    return IntentRef(schema=schema, tenant=tenant, intent_id=intent.intent_id, user=intent.owner_username,
                     attempt=intent.attempt, document=intent.document, solver_manifest=manifest)


def requirements(intent: Intent) -> placement.Requirements:
    return placement.Requirements.from_document(intent.document)


# --------------------------------------------------------------------------------------------
# Entry point


def advance(schema: str, intent_id: str, *, federation=None, dequeue: bool = False) -> StepResult:
    federation = federation or get_federation()
    with transaction.atomic():
        intent = Intent.objects.select_for_update(skip_locked=True).filter(intent_id=intent_id).first()
        if intent is None:
            return StepResult(None)
        handler = HANDLERS.get(intent.phase)
        if handler is None:
            return StepResult(None)
        step = Step(schema, intent, federation)
        try:
            if intent.phase == P.QUEUED:
                return step.queued(dequeue=dequeue)
            return handler(step)
        except Unavailable as error:
            # Transient: keep the phase, say why, try again later (the step timeout still runs).
            step.progress(f"Federation unavailable: {error.message}; retrying")
            return step.wait_or_timeout()
        except (Conflict, Failed, Timeout) as error:
            return step.retry_or_fail(error.reason, error.message)


class Step:
    def __init__(self, schema: str, intent: Intent, federation):
        self.schema = schema
        self.intent = intent
        self.federation = federation
        self.state = dict(intent.federation_state or {})

    # --- helpers -------------------------------------------------------------------------------

    @property
    def ref(self) -> IntentRef:
        return intent_ref(self.intent, self.schema)

    def save_state(self, **fields):
        lifecycle.update_fields(self.intent, federation_state=self.state, **fields)

    def progress(self, message: str):
        if message and message != self.intent.message:
            lifecycle.update_fields(self.intent, message=message)

    def elapsed(self) -> float:
        return (timezone.now() - self.intent.step_started_at).total_seconds()

    def wait_or_timeout(self) -> StepResult:
        limit = step_timeout(self.intent.phase)
        if self.elapsed() > limit:
            return self.retry_or_fail("Timeout", f"{self.intent.phase} did not finish within {int(limit)} s")
        return StepResult(poll_seconds())

    def go(self, to_phase: str, reason: str, message: str, *, event_type: str = "Normal", data=None,
           again: float | None = 0, **fields) -> StepResult:
        if self.state != (self.intent.federation_state or {}):
            fields.setdefault("federation_state", self.state)
        lifecycle.transition(self.intent, to_phase, reason=reason, message=message, event_type=event_type,
                             data=data, **fields)
        return StepResult(again, progressed=True)

    def teardown(self, reason: str) -> int:
        """Release everything of the current attempt: federation objects, then the ledger."""
        self.federation.release(self.ref)
        freed = ledger.release(self.schema, self.intent.intent_id, reason=reason)
        if QueueEntry.objects.filter(tenant_schema=self.schema, intent_id=self.intent.intent_id).delete()[0]:
            refresh_queue_positions()
        self.accrue()
        if freed:
            wake_queue_after_commit()
        return freed

    def accrue(self):
        cost, currency = ledger.accrued_cost(self.schema, self.intent.intent_id)
        if cost != self.intent.current_cost:
            lifecycle.update_fields(self.intent, current_cost=cost, currency=currency)

    def retry_or_fail(self, reason: str, message: str) -> StepResult:
        self.teardown(reason)
        self.state = {}
        if self.intent.attempt < max_attempts(self.intent):
            attempt = self.intent.attempt + 1
            return self.go(P.DISCOVERING, reason, f"Attempt {self.intent.attempt} failed: {message}; retrying "
                           f"(attempt {attempt} of {max_attempts(self.intent)}) with a fresh Solver",
                           event_type="Warning", attempt=attempt, solver_name=f"flare-{self.intent.intent_id}-{attempt}",
                           provider="", node="", flavor="", namespace="", workload_url="",
                           data={"failed_attempt": self.intent.attempt})
        return self.go(P.FAILED, reason, f"{message} (after {self.intent.attempt} attempt(s))", event_type="Warning",
                       again=None)

    def offers_from_nodes(self, node_ids) -> dict[str, object]:
        nodes = list(GpuNode.objects.select_related("provider").filter(pk__in=[int(n) for n in node_ids]))
        free = ledger.free_by_node(nodes)
        return {str(n.pk): n.as_offer(free[n.pk]) for n in nodes}

    # --- phases --------------------------------------------------------------------------------

    def window_wait(self) -> StepResult | None:
        """Outside its availability window the intent waits in the queue until the window opens
        (or fails when none opens in the next 13 months). None when it may start now."""
        from types import SimpleNamespace

        from .availability import start_allowed_at

        availability = (self.intent.document.get("constraints") or {}).get("availability")
        if not availability:
            return None
        now = timezone.now()
        opens = start_allowed_at(availability, now)
        if opens is None:
            return self.go(P.FAILED, "INSUFFICIENT_RESOURCES", "constraints.availability leaves no start time "
                           "in the next 13 months", event_type="Warning", again=None)
        if opens <= now:
            return None
        lifecycle.update_fields(self.intent, estimated_start_time=opens)
        return self.enqueue(SimpleNamespace(
            message=f"Waits for its availability window, which opens at {opens.isoformat()}", suggestions=[]))

    def submitted(self) -> StepResult:
        waiting = self.window_wait()
        if waiting is not None:
            return waiting
        return self.go(P.DISCOVERING, "SolverCreated", f"Solver {solver_name(self.intent)} created; discovering "
                       "GPU offers across the federation", solver_name=solver_name(self.intent))

    def discovering(self) -> StepResult:
        discovery = self.federation.discover(self.ref)
        if not discovery.done:
            self.progress(discovery.message or "Discovery running")
            return self.wait_or_timeout()
        return self.place(discovery.candidates, discovery.message)

    def place(self, candidates, discovery_message: str = "") -> StepResult:
        intent = self.intent
        objective = intent.objective
        assessment = placement.assess(candidates, requirements(intent), objective)
        if assessment.status == "placeable":
            waiting = self.window_wait()
            if waiting is not None:
                return waiting
            chosen, blocked = backfill(self.schema, intent.intent_id, assessment.plan, candidates,
                                       assessment.requirements, objective)
            if blocked:
                assessment.message = blocked
                return self.enqueue(assessment, candidates)
            ranked = placement.rank(candidates, assessment.requirements, objective)
            chosen_nodes = {a.offer.node_id for a in chosen.allocations}
            alternatives = [alternative_summary(s) for s in ranked if s.offer.node_id not in chosen_nodes][:5]
            self.state = {"plan": chosen.to_dict()}
            message = (f"Chose {', '.join(chosen.nodes)} at {', '.join(chosen.providers)} "
                       f"({format_money(chosen.hourly_cost or 0, chosen.currency, True)}) for "
                       f"{objective}; {len(candidates)} candidate(s) considered")
            if assessment.fallback_applied:
                message += f"; fallback_strategy {assessment.fallback_applied} applied"
            return self.go(P.RESERVING, "CandidateChosen", message,
                           placement={"chosen": chosen.to_dict(), "alternatives": alternatives,
                                      "candidates": len(candidates), "fallback": assessment.fallback_applied},
                           estimated_cost_per_hour=chosen.hourly_cost, currency=chosen.currency,
                           gpus=chosen.total_gpus, federation_state=self.state)
        if assessment.status == "queue":
            return self.enqueue(assessment, candidates)
        self.teardown(assessment.error_code or "NoCandidate")  # the Solver and Discovery of this attempt
        return self.go(P.FAILED, assessment.error_code or "NoCandidate",
                       assessment.message or discovery_message or "No offer can satisfy this intent",
                       event_type="Warning", again=None, suggestions=assessment.suggestions or [])

    def enqueue(self, assessment, offers=None) -> StepResult:
        intent = self.intent
        reason = assessment.message or "Waiting for free GPUs"
        if offers is not None:
            # When will enough GPUs free up? Replayed from the ledger's expected releases (None when
            # the blocking GPUs are held by work without an end, such as services).
            from .services import estimate_start

            req = getattr(assessment, "requirements", None) or requirements(intent)
            lifecycle.update_fields(intent, estimated_start_time=estimate_start(req, intent.objective, offers,
                                                                                timezone.now()))
        entry, _ = QueueEntry.objects.get_or_create(
            tenant_schema=self.schema, intent_id=intent.intent_id,
            defaults={"priority": intent.priority, "gpus": requirements(intent).total_gpus, "reason": reason},
        )
        suggestions = [dict(s) for s in (assessment.suggestions or [])]
        result = self.go(P.QUEUED, "InsufficientCapacity", f"Queued: {reason}", queue_reason=reason,
                         suggestions=suggestions, again=None)
        refresh_queue_positions()
        return result

    def queued(self, dequeue: bool) -> StepResult:
        if not dequeue:
            return StepResult(None)
        return self.go(P.DISCOVERING, "CapacityFreed", "GPUs were released; discovering again",
                       solver_name=self.intent.solver_name or solver_name(self.intent))

    def reserving(self) -> StepResult:
        plan = self.state.get("plan") or {}
        allocations = plan.get("allocations") or []
        if not allocations:
            return self.go(P.DISCOVERING, "NoPlan", "Lost the placement plan; discovering again")
        if not self.state.get("held"):
            holds = [ledger.Hold(node_id=int(a["node_id"]), gpus=int(a["gpus"]),
                                 price_per_gpu_hour=Decimal(str(rate_of(a, plan))),
                                 currency=plan.get("currency") or "EUR") for a in allocations]
            try:
                ledger.reserve(self.schema, self.intent.intent_id, holds, attempt=self.intent.attempt,
                               expected_release_at=expected_release(self.intent))
            except ledger.LedgerConflict as conflict:
                self.state = {}
                return self.go(P.DISCOVERING, "CapacityTaken", f"{conflict.message}; choosing again",
                               event_type="Warning", federation_state={})
            if QueueEntry.objects.filter(tenant_schema=self.schema, intent_id=self.intent.intent_id).delete()[0]:
                refresh_queue_positions()
            self.state["held"] = True
            self.save_state()
        offers = self.offers_from_nodes(a["node_id"] for a in allocations)
        reservations = self.state.setdefault("reservations", {})
        pending = []
        for index, allocation in enumerate(allocations):
            key = str(index)
            if reservations.get(key, {}).get("done"):
                continue
            offer = offers.get(str(allocation["node_id"]))
            if offer is None:
                raise Failed(f"node {allocation['node']} disappeared from the inventory", "NodeGone")
            result = self.federation.reserve(self.ref, offer, int(allocation["gpus"]))
            reservations[key] = asdict(result)
            if not result.done:
                pending.append(result.message or result.phase)
        self.save_state()
        if pending:
            self.progress(pending[0])
            return self.wait_or_timeout()
        ledger.activate(self.schema, self.intent.intent_id)
        first = reservations["0"]
        return self.go(P.PEERING, "ReservationSolved",
                       f"Reservation solved: contract {first['contract']} with {first['provider']}",
                       provider=", ".join(plan.get("providers") or dict.fromkeys(a["provider"] for a in allocations)),
                       node=", ".join(a["node"] for a in allocations), flavor=first.get("flavor", ""),
                       agreed_cost_per_hour=Decimal(str(plan.get("hourly_cost_number") or 0)))

    def peering(self) -> StepResult:
        reservations = self.state.get("reservations") or {}
        peerings = self.state.setdefault("peerings", {})
        pending = []
        for key, stored in sorted(reservations.items()):
            if peerings.get(key, {}).get("done"):
                continue
            result = self.federation.peer(self.ref, Reservation(**stored))
            peerings[key] = asdict(result)
            if not result.done:
                pending.append(result.message or result.phase)
        self.save_state()
        if pending:
            self.progress(pending[0])
            return self.wait_or_timeout()
        clusters = sorted({p["remote_cluster_id"] for p in peerings.values()})
        return self.go(P.OFFLOADING, "AllocationActive", f"Allocation is now Active; peered with {', '.join(clusters)}")

    def manifests(self) -> list[dict]:
        from .workload import workload_manifests

        plan = self.state.get("plan") or {}
        node_ids = [a["node_id"] for a in plan.get("allocations", [])]
        vendor = "nvidia"
        if node_ids:
            node = GpuNode.objects.filter(pk=int(node_ids[0])).only("vendor").first()
            vendor = (node.vendor if node else "") or "nvidia"
        clusters = sorted({p["remote_cluster_id"] for p in (self.state.get("peerings") or {}).values()})
        return workload_manifests(self.intent.document, intent_id=self.intent.intent_id,
                                  tenant=tenant_slug(self.schema), gpu_vendor=vendor, remote_cluster_ids=clusters)

    def peerings(self) -> list[Peering]:
        return [Peering(**p) for _, p in sorted((self.state.get("peerings") or {}).items())]

    def offloading(self) -> StepResult:
        manifests = self.manifests()
        base = [m for m in manifests if m.get("kind") in ("Namespace", "NamespaceOffloading")]
        result: Deployment = self.federation.deploy(self.ref, self.peerings(), base)
        if not result.done:
            self.progress(result.message or "NamespaceOffloading in progress")
            return self.wait_or_timeout()
        return self.go(P.DEPLOYING, "OffloadingReady",
                       f"Namespace {result.namespace} offloaded to the contracted cluster", namespace=result.namespace)

    def deploying(self) -> StepResult:
        result: Deployment = self.federation.deploy(self.ref, self.peerings(), self.manifests())
        if not result.done:
            self.progress(result.message or "Applying workload objects")
            return self.wait_or_timeout()
        observation = self.federation.observe(self.ref)
        if observation.state == "failed":
            raise Failed(observation.message or "workload failed to start", observation.reason or "WorkloadFailed")
        if observation.state in ("running", "succeeded"):
            return self.go(P.RUNNING, "WorkloadRunning", observation.message or "Workload is running",
                           workload_url=observation.workload_url or "",
                           gpu_utilization=observation.gpu_utilization)
        self.progress(observation.message or "Waiting for the workload to become ready")
        return self.wait_or_timeout()

    def running(self) -> StepResult:
        intent = self.intent
        observation = self.federation.observe(self.ref)
        self.accrue()
        if observation.gpu_utilization is not None and observation.gpu_utilization != intent.gpu_utilization:
            lifecycle.update_fields(intent, gpu_utilization=observation.gpu_utilization)
        budget = budget_breach(intent)
        if budget:
            self.teardown("BudgetExceeded")
            return self.go(P.FAILED, "BudgetExceeded", budget, event_type="Warning", again=None)
        deadline = deadline_breach(intent)
        if deadline:
            self.teardown("DeadlineExceeded")
            return self.go(P.FAILED, "DeadlineExceeded", deadline, event_type="Warning", again=None)
        if observation.state == "succeeded":
            self.teardown("Completed")
            return self.go(P.SUCCEEDED, "Completed", observation.message or "Workload completed", again=None,
                           current_cost=intent.current_cost)
        if observation.state == "failed":
            raise Failed(observation.message or "workload failed", observation.reason or "WorkloadFailed")
        return StepResult(running_poll_seconds())

    def cancelling(self) -> StepResult:
        self.teardown("Cancelled")
        return self.go(P.CANCELLED, "Cancelled", "Cancelled; every reserved resource was released", again=None,
                       current_cost=self.intent.current_cost)


HANDLERS = {
    P.SUBMITTED: Step.submitted,
    P.QUEUED: Step.queued,
    P.DISCOVERING: Step.discovering,
    P.RESERVING: Step.reserving,
    P.PEERING: Step.peering,
    P.OFFLOADING: Step.offloading,
    P.DEPLOYING: Step.deploying,
    P.RUNNING: Step.running,
    P.CANCELLING: Step.cancelling,
}


def expected_release(intent: Intent):
    """Batch work ends by its timeout at the latest; services have no expected end."""
    if intent.workload_type != "batch":
        return None
    timeout = ((intent.document.get("workload") or {}).get("batch") or {}).get("timeout")
    if not timeout:
        return None
    from datetime import timedelta

    from flare_portal.units import parse_duration

    return timezone.now() + timedelta(seconds=parse_duration(timeout))


def running_poll_seconds() -> float:
    return getattr(settings, "FLARE_RUNNING_POLL_SECONDS", 10.0)


def rate_of(allocation: dict, plan: dict) -> Decimal:
    """Agreed price per GPU-hour of one allocation (its hourly cost ÷ its GPUs)."""
    cost = allocation.get("hourly_cost_number")
    if cost is None:
        text = allocation.get("hourly_cost") or "0"
        cost = text.split()[0]
    gpus = max(1, int(allocation.get("gpus") or 1))
    return (Decimal(str(cost)) / gpus).quantize(Decimal("0.0001"))


def alternative_summary(scored) -> dict:
    offer = scored.offer
    return {
        "provider": offer.provider.name, "node": offer.node_name, "model": offer.traits.model,
        "region": offer.traits.region or offer.provider.region,
        "hourly_cost": None if scored.hourly_cost is None else format_money(scored.hourly_cost, offer.traits.currency,
                                                                            True),
        "hourly_cost_number": None if scored.hourly_cost is None else float(scored.hourly_cost),
        "score": round(float(scored.score), 4), "metrics": scored.metrics(),
    }


def budget_breach(intent: Intent) -> str | None:
    cap = (intent.document.get("constraints") or {}).get("max_total_cost")
    if not cap:
        return None
    from flare_portal.units import parse_money

    amount, currency = parse_money(cap)
    if intent.current_cost >= amount:
        return (f"Accrued cost {format_money(intent.current_cost, intent.currency)} reached max_total_cost "
                f"{format_money(amount, currency)}; stopped and released")
    return None


def deadline_breach(intent: Intent) -> str | None:
    raw = (intent.document.get("constraints") or {}).get("deadline")
    if not raw:
        return None
    deadline = parse_datetime(raw) if isinstance(raw, str) else None
    if deadline is not None and timezone.now() >= deadline:
        return f"Deadline {raw} passed before the workload finished; stopped and released"
    return None


# --------------------------------------------------------------------------------------------
# The central queue


def window_open(intent: Intent, now=None) -> bool:
    """May the intent start now, as far as its availability window is concerned?"""
    from .availability import start_allowed_at

    availability = (intent.document.get("constraints") or {}).get("availability")
    if not availability:
        return True
    now = now or timezone.now()
    opens = start_allowed_at(availability, now)
    return opens is not None and opens <= now


def wake_queue_after_commit() -> None:
    transaction.on_commit(_enqueue_wake)


def _enqueue_wake() -> None:
    from .tasks import wake_queue

    try:
        wake_queue.delay()
    except Exception:  # noqa: BLE001 - the beat re-drives the queue anyway
        logger.exception("could not enqueue wake_queue")


def refresh_queue_positions() -> None:
    """Positions are global across tenants: write each intent's place in its own schema."""
    from django_tenants.utils import schema_context

    entries = list(QueueEntry.objects.order_by("-priority", "enqueued_at", "id"))
    by_schema: dict[str, list[tuple[str, int]]] = {}
    for position, entry in enumerate(entries, start=1):
        by_schema.setdefault(entry.tenant_schema, []).append((entry.intent_id, position))
    for schema, items in by_schema.items():
        with schema_context(schema):
            for intent_id, position in items:
                Intent.objects.filter(intent_id=intent_id, phase=P.QUEUED).exclude(
                    queue_position=position).update(queue_position=position)


def queue_decisions(federation=None) -> list[tuple[str, str]]:
    """Which queued intents may start now: the head first; later ones only as backfill that
    cannot delay the head (they use no node the head could use)."""
    from django_tenants.utils import schema_context

    federation = federation or get_federation()
    offers = federation.inventory()
    entries = list(QueueEntry.objects.order_by("-priority", "enqueued_at", "id"))
    if not entries:
        return []
    taken: dict[str, int] = {}
    head_usable: set[str] | None = None
    allowed = []
    for entry in entries:
        with schema_context(entry.tenant_schema):
            intent = Intent.objects.filter(intent_id=entry.intent_id).first()
        if intent is None or intent.phase != P.QUEUED:
            QueueEntry.objects.filter(pk=entry.pk).delete()
            continue
        if not window_open(intent):
            continue  # waits for its window: it neither starts nor holds back those behind it
        req = requirements(intent)
        adjusted = [o if o.node_id not in taken else _with_free(o, o.free_gpus - taken[o.node_id]) for o in offers]
        if head_usable is not None:
            # Backfill only on nodes the waiting head could never use.
            adjusted = [o for o in adjusted if o.node_id not in head_usable]
        chosen = placement.plan(adjusted, req, intent.objective) if adjusted else None
        if chosen is not None:
            allowed.append((entry.tenant_schema, entry.intent_id))
            for allocation in chosen.allocations:
                taken[allocation.offer.node_id] = taken.get(allocation.offer.node_id, 0) + allocation.gpus
        elif head_usable is None:
            # The head cannot start: nodes it could ever use are off limits for backfill.
            effective, _ = placement.effective_requirements(offers, req)
            head_usable = {o.node_id for o in offers if not placement.mismatches(o, effective, ignore_capacity=True)}
    return allowed


def head_nodes(schema: str, intent_id: str, offers) -> tuple[set[str], int]:
    """Nodes the head of the queue (the first entry ahead of this intent) could ever use, and how
    many entries are ahead. Empty when nothing is ahead."""
    from django_tenants.utils import schema_context

    entries = list(QueueEntry.objects.order_by("-priority", "enqueued_at", "id"))
    mine = next((i for i, e in enumerate(entries) if e.tenant_schema == schema and e.intent_id == intent_id), None)
    ahead = entries[:mine] if mine is not None else entries
    head_intent = None
    for entry in ahead:  # the first entry ahead that could start now (its window open)
        with schema_context(entry.tenant_schema):
            candidate = Intent.objects.filter(intent_id=entry.intent_id, phase=P.QUEUED).first()
        if candidate is not None and window_open(candidate):
            head_intent = candidate
            break
    if head_intent is None:
        return set(), len(ahead)
    effective, _ = placement.effective_requirements(offers, requirements(head_intent))
    return {o.node_id for o in offers if not placement.mismatches(o, effective, ignore_capacity=True)}, len(ahead)


def backfill(schema: str, intent_id: str, chosen, offers, req, objective):
    """Backfill rule for anyone not at the head of the queue: never take GPUs on a node the head
    could use. A plan that would is re-planned on the other nodes. Returns (plan, why-blocked)."""
    reserved, ahead = head_nodes(schema, intent_id, offers)
    if not reserved or not any(a.offer.node_id in reserved for a in chosen.allocations):
        return chosen, None
    others = [o for o in offers if o.node_id not in reserved]
    alternative = placement.plan(others, req, objective) if others else None
    if alternative is not None:
        return alternative, None
    return None, (f"Queued behind {ahead} earlier intent(s): the free GPUs that fit are on "
                  f"{', '.join(chosen.nodes)}, which the head of the queue is waiting for")


def _with_free(offer, free: int):
    from dataclasses import replace

    return replace(offer, free_gpus=max(0, free))

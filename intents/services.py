"""Every change to an intent from outside the reconciler: submit and cancel.

Each runs in one transaction, writes its IntentEvent and audit entry in it, and schedules the
reconciler with `transaction.on_commit`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from flare_portal.api.errors import FlareAPIException
from flare_portal.units import format_money
from providers import ledger
from providers.federation import get_federation
from providers.models import GpuReservation, QueueEntry
from tenants.models import Tenant
from tenants.services import record_audit

from . import lifecycle, placement
from .availability import START_NOTE, start_allowed_at
from .lifecycle import P
from .models import Intent, IntentEvent, Status
from .schema import IntentValidationError, validate_intent

logger = logging.getLogger("flare.intents")

LIVE_PHASES = [p for p in P.values if p not in (P.SUCCEEDED, P.FAILED, P.CANCELLED)]


@dataclass
class SubmitResult:
    intent: Intent
    assessment: placement.Assessment
    warnings: list[str] = field(default_factory=list)

    @property
    def queued(self) -> bool:
        return self.intent.phase == P.QUEUED


def _enqueue_reconcile(schema: str, intent_id: str) -> None:
    from .tasks import schedule_reconcile

    try:
        schedule_reconcile(schema, intent_id)
    except Exception:  # noqa: BLE001 - the beat re-drives it; submit must not fail on a broker hiccup
        logger.exception("could not enqueue reconcile for %s/%s", schema, intent_id)


def validate_document(payload) -> dict:
    try:
        return validate_intent(payload)
    except IntentValidationError as invalid:
        raise FlareAPIException(400, invalid.error_code, invalid.message, details=invalid.details) from None


def check_quotas(tenant: Tenant, doc: dict, req: placement.Requirements, hourly: Decimal | None) -> None:
    schema = tenant.schema_name
    live = Intent.objects.filter(phase__in=LIVE_PHASES)
    active = live.count()
    if active + 1 > tenant.max_active_intents:
        raise FlareAPIException(429, "QUOTA_EXCEEDED",
                                f"Tenant {tenant.slug} already has {active} active intents (quota "
                                f"{tenant.max_active_intents}); cancel or wait for one to finish.")
    gpus_live = live.aggregate(total=Sum("gpus"))["total"] or 0
    if gpus_live + req.total_gpus > tenant.max_concurrent_gpus:
        raise FlareAPIException(
            429, "QUOTA_EXCEEDED",
            f"This intent needs {req.total_gpus} GPUs; tenant {tenant.slug} holds or waits for {gpus_live} of its "
            f"{tenant.max_concurrent_gpus}-GPU quota.",
            suggestions=[{"alternative": f"Request at most {max(0, tenant.max_concurrent_gpus - gpus_live)} GPUs",
                          "cost_difference": None, "performance_impact": None}])
    usage = ledger.tenant_usage(schema)
    if hourly is not None and usage["hourly_spend"] + hourly > tenant.max_hourly_spend:
        raise FlareAPIException(
            429, "QUOTA_EXCEEDED",
            f"Estimated {format_money(hourly, tenant.currency, True)} on top of the current "
            f"{format_money(usage['hourly_spend'], tenant.currency, True)} exceeds the tenant's hourly spend quota "
            f"of {format_money(tenant.max_hourly_spend, tenant.currency, True)}.")
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spent = Intent.objects.filter(created_at__gte=month_start).aggregate(total=Sum("current_cost"))["total"] or 0
    if spent >= tenant.monthly_budget:
        raise FlareAPIException(
            429, "QUOTA_EXCEEDED",
            f"The tenant has spent {format_money(spent, tenant.currency)} this month, its whole monthly budget of "
            f"{format_money(tenant.monthly_budget, tenant.currency)}.")


def estimate_start(req: placement.Requirements, objective: str, offers, now: datetime) -> datetime | None:
    """When enough GPUs free up for this intent: replay the expected releases of running batch work
    on the nodes it could use. None when the blocking capacity is held by work without an end."""
    req, _ = placement.effective_requirements(offers, req)
    usable = {o.node_id: o for o in offers if not placement.mismatches(o, req, ignore_capacity=True)}
    if not usable:
        return None
    releases = list(
        GpuReservation.objects.filter(node_id__in=[int(n) for n in usable], state__in=GpuReservation.LIVE_STATES,
                                      expected_release_at__isnull=False)
        .order_by("expected_release_at").values_list("node_id", "gpus", "expected_release_at")[:200]
    )
    free = {node_id: offer.free_gpus for node_id, offer in usable.items()}
    from dataclasses import replace

    for node_id, gpus, when in releases:
        key = str(node_id)
        free[key] = free.get(key, 0) + gpus
        candidates = [replace(o, free_gpus=free[o.node_id]) for o in usable.values()]
        if placement.plan(candidates, req, objective) is not None:
            return max(when, now)
    return None


def submit_intent(tenant: Tenant, user, payload, *, federation=None) -> SubmitResult:
    doc = validate_document(payload)
    federation = federation or get_federation()
    schema = tenant.schema_name
    name = doc["workload"]["name"]
    clash = Intent.objects.filter(name=name, phase__in=LIVE_PHASES).values_list("intent_id", flat=True).first()
    if clash:
        raise FlareAPIException(400, "INVALID_FORMAT",
                                f"intent.workload.name: '{name}' is already used by live intent {clash}; names are "
                                "unique among your live intents.",
                                details=[{"field": "intent.workload.name", "message": f"already used by {clash}"}])
    offers = federation.inventory()
    req = placement.Requirements.from_document(doc)
    assessment = placement.assess(offers, req, doc["objective"])
    if assessment.status in ("infeasible", "over_budget"):
        raise FlareAPIException(assessment.http_status or 409, assessment.error_code or "INSUFFICIENT_RESOURCES",
                                assessment.message, suggestions=assessment.suggestions,
                                details=[{"field": assessment.blocking_requirement, "message": assessment.message}]
                                if assessment.blocking_requirement else [])
    estimate = assessment.plan or assessment.estimated_plan
    hourly = estimate.hourly_cost if estimate else None
    currency = estimate.currency if estimate else tenant.currency
    warnings = list(dict.fromkeys([*assessment.warnings, *placement.unevaluable_constraints(doc, offers)]))
    now = timezone.now()
    availability = (doc.get("constraints") or {}).get("availability")
    opens = start_allowed_at(availability, now)
    if opens is None:
        raise FlareAPIException(409, "INSUFFICIENT_RESOURCES",
                                "constraints.availability never lets the workload start in the next 13 months "
                                "(days, blackout dates and maintenance windows leave no time).",
                                details=[{"field": "intent.constraints.availability",
                                          "message": "no start time within the next 13 months"}])
    if availability:
        warnings.append(START_NOTE)
    scaling = doc["workload"].get("scaling") or {}
    if scaling.get("auto_scale") and int(scaling.get("max_replicas", 1)) > int(scaling.get("min_replicas", 1)):
        warnings.append(
            f"scaling.auto_scale: FLARE reserves GPUs for min_replicas ({scaling.get('min_replicas', 1)}); replicas "
            f"the autoscaler adds beyond that (up to {scaling['max_replicas']}) wait until GPUs are reserved for them")

    with transaction.atomic():
        tenant_row = Tenant.objects.select_for_update().get(pk=tenant.pk)  # serialises quota checks per tenant
        connection.set_tenant(tenant_row)
        check_quotas(tenant_row, doc, req, hourly)
        queued = assessment.status == "queue"
        if opens > now:
            queued = True
            assessment.message = f"Waits for its availability window, which opens at {opens.isoformat()}"
        elif not queued and assessment.plan is not None:
            from .reconcile import backfill

            chosen, blocked = backfill(schema, "", assessment.plan, offers, assessment.requirements or req,
                                       doc["objective"])
            if blocked:
                queued = True
                assessment.message = blocked
            elif chosen is not assessment.plan:
                assessment.plan = chosen
                estimate, hourly, currency = chosen, chosen.hourly_cost, chosen.currency
        if opens > now:
            start = opens
        elif not queued:
            start = now
        else:
            start = estimate_start(assessment.requirements or req, doc["objective"], offers, now)
        intent = Intent.objects.create(
            name=name, owner=user if getattr(user, "pk", None) else None,
            owner_username=getattr(user, "username", "") or "", document=doc, objective=doc["objective"],
            workload_type=doc["workload"]["type"], gpus=req.total_gpus,
            phase=P.QUEUED if queued else P.SUBMITTED, status=Status.QUEUED if queued else Status.PENDING,
            message=assessment.message, warnings=warnings, estimated_cost_per_hour=hourly, currency=currency,
            estimated_start_time=start, suggestions=assessment.suggestions if queued else [],
            queue_reason=assessment.message if queued else "",
            conditions=lifecycle.set_condition([], "Accepted", "True", "Validated",
                                               "The intent is valid and the federation can satisfy it", now),
        )
        if queued:
            intent.conditions = lifecycle.set_condition(intent.conditions, "Queued", "True", "InsufficientCapacity",
                                                        assessment.message, now)
            intent.save(update_fields=["conditions"])
        lifecycle.note(intent, kind="submitted", reason="Submitted",
                       message=f"Submitted by {intent.owner_username or 'system'}: {assessment.message}",
                       actor=intent.owner_username or "system",
                       data={"estimated_cost_per_hour": None if hourly is None else str(hourly),
                             "warnings": warnings})
        record_audit(tenant=tenant_row, actor=user, action="intent.submit", target=intent.intent_id,
                     data={"name": name, "objective": doc["objective"], "queued": queued})
        if queued:
            QueueEntry.objects.create(tenant_schema=schema, intent_id=intent.intent_id, priority=intent.priority,
                                      gpus=req.total_gpus, reason=assessment.message, estimated_start_time=start)
            _refresh_positions()
        else:
            transaction.on_commit(lambda: _enqueue_reconcile(schema, intent.intent_id))
    if queued:
        intent.refresh_from_db()
    return SubmitResult(intent=intent, assessment=assessment, warnings=warnings)


def _refresh_positions():
    from .reconcile import refresh_queue_positions

    refresh_queue_positions()


def cancel_intent(tenant: Tenant, user, intent: Intent, *, federation=None) -> Intent:
    """Cancel at any phase. Releases synchronously when it can; otherwise stays `cancelling`
    and the reconciler finishes the release."""
    actor = getattr(user, "username", "") or "system"
    schema = tenant.schema_name
    with transaction.atomic():
        intent = Intent.objects.select_for_update().get(pk=intent.pk)
        if intent.is_terminal or intent.phase == P.CANCELLING:
            return intent
        record_audit(tenant=tenant, actor=user, action="intent.cancel", target=intent.intent_id,
                     data={"phase": intent.phase})
        holds = ledger.live_reservations(schema, intent.intent_id).exists()
        if intent.phase in (P.SUBMITTED, P.QUEUED) and not holds:
            QueueEntry.objects.filter(tenant_schema=schema, intent_id=intent.intent_id).delete()
            lifecycle.transition(intent, P.CANCELLED, reason="Cancelled", actor=actor,
                                 message=f"Cancelled by {actor} before any resource was reserved")
            _refresh_positions()
            return intent
        lifecycle.transition(intent, P.CANCELLING, reason="CancelRequested", actor=actor,
                             message=f"Cancel requested by {actor}; releasing resources")
    # Release right away in its own step (same code path as the reconciler).
    from .reconcile import advance

    try:
        advance(schema, intent.intent_id, federation=federation)
    except Exception:  # noqa: BLE001 - the reconciler retries the release; the API answers `cancelling`
        logger.exception("immediate release of %s failed; the reconciler will retry", intent.intent_id)
        transaction.on_commit(lambda: _enqueue_reconcile(schema, intent.intent_id))
    intent.refresh_from_db()
    if intent.phase == P.CANCELLING:
        _enqueue_reconcile(schema, intent.intent_id)
    return intent


def intent_events(intent: Intent):
    return IntentEvent.objects.filter(intent=intent).order_by("time", "id")



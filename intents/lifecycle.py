"""The intent state machine: one transition table, compare-and-set transitions, one event each.

`Submitted → Discovering → Reserving → Peering → Offloading → Deploying → Running → Succeeded | Failed`,
plus `Queued` (fits the federation, not its free capacity now) and `Cancelling → Cancelled`.

Only this module changes an intent's phase. A transition is an UPDATE … WHERE phase = <expected>
that must touch exactly one row, plus an IntentEvent in the same transaction; subscribers hear
about it after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from flare_portal.middleware import current_request_id

from .models import Intent, IntentEvent, Phase, Status

logger = logging.getLogger("flare.lifecycle")

P = Phase
ACTIVE_STEPS = (P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING)

# The one transition table. Retries go back to Discovering with a fresh attempt.
TRANSITIONS: dict[str, set[str]] = {
    P.SUBMITTED: {P.DISCOVERING, P.QUEUED, P.FAILED, P.CANCELLING, P.CANCELLED},
    P.QUEUED: {P.DISCOVERING, P.FAILED, P.CANCELLING, P.CANCELLED},
    P.DISCOVERING: {P.RESERVING, P.QUEUED, P.DISCOVERING, P.FAILED, P.CANCELLING},
    P.RESERVING: {P.PEERING, P.DISCOVERING, P.QUEUED, P.FAILED, P.CANCELLING},
    P.PEERING: {P.OFFLOADING, P.DISCOVERING, P.FAILED, P.CANCELLING},
    P.OFFLOADING: {P.DEPLOYING, P.DISCOVERING, P.FAILED, P.CANCELLING},
    P.DEPLOYING: {P.RUNNING, P.DISCOVERING, P.FAILED, P.CANCELLING},
    P.RUNNING: {P.SUCCEEDED, P.FAILED, P.DISCOVERING, P.CANCELLING},
    P.CANCELLING: {P.CANCELLED},
    P.SUCCEEDED: set(),
    P.FAILED: set(),
    P.CANCELLED: set(),
}

STATUS_OF_PHASE = {
    P.SUBMITTED: Status.PENDING,
    P.QUEUED: Status.QUEUED,
    P.DISCOVERING: Status.PENDING,
    P.RESERVING: Status.PENDING,
    P.PEERING: Status.PENDING,
    P.OFFLOADING: Status.PENDING,
    P.DEPLOYING: Status.PENDING,
    P.RUNNING: Status.RUNNING,
    P.SUCCEEDED: Status.COMPLETED,
    P.FAILED: Status.FAILED,
    P.CANCELLING: Status.CANCELLING,
    P.CANCELLED: Status.CANCELLED,
}

# The condition a phase works towards (Unknown while in it, True when it is left forwards).
CONDITION_OF_PHASE = {
    P.DISCOVERING: "Discovered",
    P.RESERVING: "Reserved",
    P.PEERING: "Peered",
    P.OFFLOADING: "Offloaded",
    P.DEPLOYING: "Deployed",
    P.RUNNING: "Ready",
}
FORWARD = [P.SUBMITTED, P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING, P.RUNNING, P.SUCCEEDED]

# The API's phase enum has no Queued/Cancelling: a queued intent is still "Submitted", a
# cancelling one shows the phase it was in (its status says the rest).
API_PHASE = {P.QUEUED: P.SUBMITTED}


class InvalidTransition(Exception):
    pass


class StaleIntent(Exception):
    """Someone else moved the intent first (compare-and-set found no row)."""


def api_phase(intent: Intent) -> str:
    if intent.phase == P.CANCELLING:
        return API_PHASE.get(intent.previous_phase, intent.previous_phase) or P.SUBMITTED
    return API_PHASE.get(intent.phase, intent.phase)


def can_transition(from_phase: str, to_phase: str) -> bool:
    return to_phase in TRANSITIONS.get(from_phase, set())


def set_condition(conditions: list, type_: str, status: str, reason: str, message: str, now=None) -> list:
    now = (now or timezone.now()).isoformat().replace("+00:00", "Z")
    result = [dict(c) for c in conditions]
    for condition in result:
        if condition["type"] == type_:
            if (condition["status"], condition["reason"], condition["message"]) != (status, reason, message):
                if condition["status"] != status:
                    condition["last_transition_time"] = now
                condition.update(status=status, reason=reason, message=message)
            return result
    result.append({"type": type_, "status": status, "reason": reason, "message": message,
                   "last_transition_time": now})
    return result


def _conditions_for(intent: Intent, to_phase: str, reason: str, message: str, now) -> list:
    conditions = intent.conditions or []
    from_phase = intent.phase
    left = CONDITION_OF_PHASE.get(from_phase)
    forward = (from_phase in FORWARD and to_phase in FORWARD
               and FORWARD.index(to_phase) > FORWARD.index(from_phase))
    if left and forward:
        conditions = set_condition(conditions, left, "True", reason, message, now)
    if to_phase == P.DISCOVERING and from_phase not in (P.SUBMITTED, P.QUEUED):
        # A fresh attempt: everything it had achieved is void.
        for type_ in CONDITION_OF_PHASE.values():
            if any(c["type"] == type_ for c in conditions):
                conditions = set_condition(conditions, type_, "False", reason, message, now)
    entering = CONDITION_OF_PHASE.get(to_phase)
    if entering and to_phase != P.RUNNING:
        conditions = set_condition(conditions, entering, "Unknown", "InProgress", message, now)
    if to_phase == P.RUNNING:
        conditions = set_condition(conditions, "Ready", "True", reason, message, now)
    if to_phase == P.QUEUED:
        conditions = set_condition(conditions, "Queued", "True", reason, message, now)
    elif any(c["type"] == "Queued" and c["status"] == "True" for c in conditions):
        conditions = set_condition(conditions, "Queued", "False", "Dequeued", message, now)
    if to_phase == P.SUCCEEDED:
        conditions = set_condition(conditions, "Ready", "False", reason, message, now)
        conditions = set_condition(conditions, "Completed", "True", reason, message, now)
    if to_phase == P.FAILED:
        if left and left != "Ready":
            conditions = set_condition(conditions, left, "False", reason, message, now)
        conditions = set_condition(conditions, "Ready", "False", reason, message, now)
        conditions = set_condition(conditions, "Failed", "True", reason, message, now)
    if to_phase in (P.CANCELLING, P.CANCELLED):
        conditions = set_condition(conditions, "Ready", "False", reason, message, now)
        conditions = set_condition(conditions, "Cancelled", "True" if to_phase == P.CANCELLED else "Unknown",
                                   reason, message, now)
    return conditions


def transition(intent: Intent, to_phase: str, *, reason: str, message: str, actor: str = "system",
               event_type: str = "Normal", data: dict | None = None, **fields) -> IntentEvent:
    """Move `intent` to `to_phase` (compare-and-set on its current phase) and record the event.

    Must run inside a transaction; `intent` is updated in place on success.
    """
    if not can_transition(intent.phase, to_phase):
        raise InvalidTransition(f"{intent.intent_id}: {intent.phase} → {to_phase} is not allowed")
    now = timezone.now()
    status = STATUS_OF_PHASE[to_phase]
    changes = {
        "phase": to_phase,
        "previous_phase": intent.phase,
        "status": status,
        "message": message,
        "step_started_at": now,
        "updated_at": now,
        "conditions": _conditions_for(intent, to_phase, reason, message, now),
        **fields,
    }
    if to_phase == P.RUNNING and intent.started_at is None:
        changes.setdefault("started_at", now)
    if to_phase in (P.SUCCEEDED, P.FAILED, P.CANCELLED):
        changes.setdefault("finished_at", now)
        changes.setdefault("queue_position", None)
    if to_phase != P.QUEUED and intent.phase == P.QUEUED:
        changes.setdefault("queue_position", None)
    updated = Intent.objects.filter(pk=intent.pk, phase=intent.phase).update(**changes)
    if updated != 1:
        raise StaleIntent(f"{intent.intent_id} is no longer in {intent.phase}")
    event = IntentEvent.objects.create(
        intent=intent, time=now, actor=actor, request_id=current_request_id() if current_request_id() != "-" else "",
        type=event_type, kind="transition", from_phase=intent.phase, phase=to_phase, from_status=intent.status,
        status=status, reason=reason, message=message, data=data or {},
    )
    for key, value in changes.items():
        setattr(intent, key, value)
    _publish_after_commit(event)
    return event


def note(intent: Intent, *, kind: str, reason: str, message: str, event_type: str = "Normal", actor: str = "system",
         data: dict | None = None) -> IntentEvent:
    """An event that is not a transition (progress inside a phase, cost milestones, warnings)."""
    event = IntentEvent.objects.create(
        intent=intent, actor=actor, request_id=current_request_id() if current_request_id() != "-" else "",
        type=event_type, kind=kind, from_phase=intent.phase, phase=intent.phase, from_status=intent.status,
        status=intent.status, reason=reason, message=message, data=data or {},
    )
    _publish_after_commit(event)
    return event


def update_fields(intent: Intent, **fields) -> None:
    """Non-phase updates (cost, utilisation, progress message) guarded by the current phase."""
    fields["updated_at"] = timezone.now()
    if Intent.objects.filter(pk=intent.pk, phase=intent.phase).update(**fields) != 1:
        raise StaleIntent(f"{intent.intent_id} is no longer in {intent.phase}")
    for key, value in fields.items():
        setattr(intent, key, value)


def _publish_after_commit(event: IntentEvent) -> None:
    from django.db import connection

    schema = connection.schema_name
    event_id = event.pk
    transaction.on_commit(lambda: _publish(schema, event_id))


def _publish(schema: str, event_id: int) -> None:
    from .events import publish_event

    try:
        publish_event(schema, event_id)
    except Exception:  # noqa: BLE001 - a push failure must never undo a committed transition
        logger.exception("publishing event %s of %s failed", event_id, schema)


@dataclass
class StepResult:
    """What the reconciler should do next: run again after `again` seconds, or stop (None)."""

    again: float | None
    progressed: bool = False

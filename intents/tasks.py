"""Celery tasks: thin — unpack ids, enter the tenant schema, call the service.

Each live intent has exactly one polling chain. Scheduling a step writes a lease (a token with a
TTL) in Redis and passes the token to the task; a task whose token is no longer the lease was
superseded and exits. The beat re-drives only intents whose lease has expired — a lost message
or a killed worker — so re-driving never multiplies chains.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

import redis
from celery import shared_task
from django.conf import settings
from django_tenants.utils import schema_context

logger = logging.getLogger("flare.tasks")

LEASE_GRACE_SECONDS = 60.0


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def lease_key(schema: str, intent_id: str) -> str:
    return f"flare:reconcile:{settings.CELERY_TASK_DEFAULT_QUEUE}:{schema}:{intent_id}"


def schedule_reconcile(schema: str, intent_id: str, countdown: float = 0.0, *, dequeue: bool = False) -> str:
    """Start (or take over) the intent's polling chain."""
    token = uuid.uuid4().hex
    _redis().set(lease_key(schema, intent_id), token, ex=int(countdown + LEASE_GRACE_SECONDS))
    reconcile_intent.apply_async((schema, intent_id, dequeue, token), countdown=countdown,
                                 expires=countdown + LEASE_GRACE_SECONDS * 4)
    return token


def has_lease(schema: str, intent_id: str) -> bool:
    return _redis().exists(lease_key(schema, intent_id)) == 1


@shared_task(name="intents.reconcile_intent", ignore_result=True, acks_late=True)
def reconcile_intent(schema: str, intent_id: str, dequeue: bool = False, token: str | None = None) -> None:
    from .reconcile import advance

    key = lease_key(schema, intent_id)
    if token is not None:
        current = _redis().get(key)
        if current is not None and current.decode() != token:
            return  # superseded by a newer chain
    with schema_context(schema):
        result = advance(schema, intent_id, dequeue=dequeue)
    if result.again is not None:
        schedule_reconcile(schema, intent_id, result.again)
    elif token is not None:
        _redis().delete(key)


@shared_task(name="intents.redrive_intents", ignore_result=True)
def redrive_intents() -> int:
    """Beat: restart the chain of every live intent that has none (lost message, dead worker)."""
    from tenants.models import Tenant

    from .models import Intent, Phase

    live = [p for p in Phase.values if p not in ("Succeeded", "Failed", "Cancelled", "Queued")]
    count = 0
    for schema in Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True):
        with schema_context(schema):
            ids = list(Intent.objects.filter(phase__in=live).values_list("intent_id", flat=True))
        for intent_id in ids:
            if not has_lease(schema, intent_id):
                schedule_reconcile(schema, intent_id)
                count += 1
    wake_queue.apply_async(expires=settings.FLARE_REDRIVE_SECONDS)
    return count


@shared_task(name="intents.wake_queue", ignore_result=True)
def wake_queue() -> int:
    """GPUs were released (or the beat asks): start the queued intents that may start now."""
    from .reconcile import queue_decisions, refresh_queue_positions

    allowed = queue_decisions()
    for schema, intent_id in allowed:
        schedule_reconcile(schema, intent_id, dequeue=True)
    refresh_queue_positions()
    return len(allowed)


@shared_task(name="intents.refresh_inventory", ignore_result=True)
def refresh_inventory() -> int:
    """Beat: keep the inventory (and so submit's feasibility answers) current with what the
    federation advertises. The simulated backend reads the database directly and has nothing to do;
    the Kubernetes backend runs its inventory Discovery and reads every PeeringCandidate."""
    from providers.federation import get_federation

    federation = get_federation()
    probe = getattr(federation, "probe_inventory", None)
    refresh = getattr(federation, "refresh_inventory", None)
    if probe is None or refresh is None:
        return 0
    probe()
    return refresh()

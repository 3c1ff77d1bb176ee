"""Celery tasks: thin — unpack ids, enter the tenant schema, call the service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django_tenants.utils import schema_context

logger = logging.getLogger("flare.tasks")


@shared_task(name="intents.reconcile_intent", ignore_result=True, acks_late=True)
def reconcile_intent(schema: str, intent_id: str, dequeue: bool = False) -> None:
    from .reconcile import advance

    with schema_context(schema):
        result = advance(schema, intent_id, dequeue=dequeue)
    if result.again is not None:
        reconcile_intent.apply_async((schema, intent_id), countdown=result.again,
                                     expires=max(60.0, result.again * 4))


@shared_task(name="intents.redrive_intents", ignore_result=True)
def redrive_intents() -> int:
    """Beat: re-drive every live intent of every tenant, so a lost message loses nothing."""
    from tenants.models import Tenant

    from .models import Intent, Phase

    live = [p for p in Phase.values if p not in ("Succeeded", "Failed", "Cancelled", "Queued")]
    count = 0
    for schema in Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True):
        with schema_context(schema):
            ids = list(Intent.objects.filter(phase__in=live).values_list("intent_id", flat=True))
        for intent_id in ids:
            reconcile_intent.apply_async((schema, intent_id), expires=settings.FLARE_REDRIVE_SECONDS)
            count += 1
    wake_queue.apply_async(expires=settings.FLARE_REDRIVE_SECONDS)
    return count


@shared_task(name="intents.wake_queue", ignore_result=True)
def wake_queue() -> int:
    """GPUs were released (or the beat asks): start the queued intents that may start now."""
    from .reconcile import queue_decisions, refresh_queue_positions

    allowed = queue_decisions()
    for schema, intent_id in allowed:
        reconcile_intent.delay(schema, intent_id, True)
    refresh_queue_positions()
    return len(allowed)

"""After-commit fan-out of intent events: the tenant's websocket group (and webhooks)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django_tenants.utils import schema_context

from .models import IntentEvent

logger = logging.getLogger("flare.events")


def group_name(schema: str) -> str:
    return f"tenant.{schema}.intents"


def event_payload(event: IntentEvent) -> dict:
    from .lifecycle import API_PHASE

    intent = event.intent
    return {
        "event_id": event.pk,
        "intent_id": intent.intent_id,
        "name": intent.name,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "type": event.type,
        "kind": event.kind,
        "phase": API_PHASE.get(event.phase, event.phase),
        "from_phase": API_PHASE.get(event.from_phase, event.from_phase),
        "status": event.status,
        "from_status": event.from_status,
        "reason": event.reason,
        "message": event.message,
        "data": event.data,
    }


def publish_event(schema: str, event_id: int) -> None:
    with schema_context(schema):
        event = IntentEvent.objects.select_related("intent").filter(pk=event_id).first()
        if event is None:
            return
        payload = event_payload(event)
        snapshot = intent_snapshot(event.intent)
    layer = get_channel_layer()
    if layer is not None:
        try:
            async_to_sync(layer.group_send)(group_name(schema), {"type": "intent.event", "event": payload,
                                                                 "intent": snapshot})
        except Exception:  # noqa: BLE001 - Redis down must not break reconciliation
            logger.warning("channel layer publish failed for %s/%s", schema, event_id, exc_info=True)
    for hook in _subscribers:
        hook(schema, payload)


def intent_snapshot(intent) -> dict:
    from .api.serializers import intent_status

    return intent_status(intent)


_subscribers: list = []


def subscribe(callback) -> None:
    """Other parts (webhooks) hear every event after commit: callback(schema, payload)."""
    if callback not in _subscribers:
        _subscribers.append(callback)

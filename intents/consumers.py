"""Live intent events over a websocket: `/ws/intents/`.

Authentication, resolved once in `connect()`:
- an API token (`?token=flr_…` or `Authorization: Bearer flr_…`) with `intents:read`, or
- the portal session (the logged-in user's membership). Session connections must come from one of
  our own origins (cookies ride along with cross-site websocket requests; tokens do not).

The consumer then joins `tenant.<schema>.intents`, sends a snapshot of the tenant's live intents
(and again on `{"type": "resync"}`), and forwards every published event as JSON.
Failures answer `{"type": "error", "error_code", "message"}` and close with 4401 (no or bad
credential) or 4403 (no permission / no tenant).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import validate_host
from django_tenants.utils import schema_context

from .events import group_name

logger = logging.getLogger("flare.consumers")

RECENT_FINISHED = 20


class Rejected(Exception):
    def __init__(self, close_code: int, error_code: str, message: str):
        super().__init__(message)
        self.close_code = close_code
        self.error_code = error_code
        self.message = message


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin1")
    return None


def credential_secret(scope) -> str | None:
    """The token secret from `?token=` or `Authorization: Bearer`; None when neither is given."""
    query = parse_qs((scope.get("query_string") or b"").decode("latin1"))
    if query.get("token"):
        return query["token"][0].strip()
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return None


def same_origin(scope) -> bool:
    origin = _header(scope, b"origin")
    if not origin:
        return False
    host = urlparse(origin).hostname
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


@database_sync_to_async
def tenant_for_token(secret: str) -> tuple[str, str]:
    from tenants.services import TokenRejected, authenticate_secret

    try:
        token = authenticate_secret(secret)
    except TokenRejected as rejected:
        raise Rejected(4401, rejected.code, rejected.message) from None
    if not token.has_permission("intents:read"):
        raise Rejected(4403, "INSUFFICIENT_PERMISSIONS", "This token lacks the 'intents:read' permission.")
    return token.tenant.schema_name, token.tenant.slug


@database_sync_to_async
def tenant_for_user(user) -> tuple[str, str]:
    from tenants.models import Membership

    if user is None or not user.is_authenticated:
        raise Rejected(4401, "AUTHENTICATION_FAILED",
                       "Authentication required: log in, or pass an API token as ?token= or a Bearer header.")
    membership = Membership.objects.select_related("tenant").filter(user_id=user.pk).first()
    if membership is None or not membership.tenant.is_active:
        raise Rejected(4403, "INSUFFICIENT_PERMISSIONS", "This account belongs to no tenant.")
    return membership.tenant.schema_name, membership.tenant.slug


@database_sync_to_async
def live_snapshot(schema: str) -> dict:
    from django.utils import timezone

    from .api.serializers import accrued_costs, intent_status
    from .models import Intent, TERMINAL_PHASES

    with schema_context(schema):
        live = list(Intent.objects.exclude(phase__in=TERMINAL_PHASES).order_by("-created_at", "-id")[:500])
        recent = list(Intent.objects.filter(phase__in=TERMINAL_PHASES)
                      .order_by("-finished_at", "-id")[:RECENT_FINISHED])
        costs = accrued_costs(live + recent, schema=schema)
        return {
            "type": "snapshot",
            "time": timezone.now().isoformat().replace("+00:00", "Z"),
            "intents": [intent_status(i, costs.get(i.intent_id)) for i in live],
            "recent": [intent_status(i, costs.get(i.intent_id)) for i in recent],
        }


class IntentEventConsumer(AsyncJsonWebsocketConsumer):
    schema: str | None = None
    group: str | None = None
    secret: str | None = None
    checked_at: float = 0.0

    async def connect(self):
        await self.accept()
        try:
            secret = credential_secret(self.scope)
            if secret is not None:
                self.schema, slug = await tenant_for_token(secret)
                self.auth = "token"
                self.secret = secret
            else:
                if not same_origin(self.scope):
                    raise Rejected(4403, "INSUFFICIENT_PERMISSIONS",
                                   "Session websockets must come from the portal's own origin.")
                self.schema, slug = await tenant_for_user(self.scope.get("user"))
                self.auth = "session"
        except Rejected as rejected:
            await self.send_json({"type": "error", "status": 401 if rejected.close_code == 4401 else 403,
                                  "error_code": rejected.error_code, "message": rejected.message})
            await self.close(code=rejected.close_code)
            return
        self.tenant_slug = slug
        self.checked_at = time.monotonic()
        self.group = group_name(self.schema)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "hello", "tenant": slug, "auth": self.auth, "group": self.group})
        await self.send_snapshot()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def still_allowed(self) -> bool:
        """Re-check the credential now and then: a revoked or expired token, or a member removed
        from the tenant, stops receiving events (the socket closes with the API's error code)."""
        interval = float(getattr(settings, "FLARE_WS_RECHECK_SECONDS", 30.0))
        if time.monotonic() - self.checked_at < interval:
            return True
        try:
            if self.auth == "token":
                schema, _ = await tenant_for_token(self.secret)
            else:
                schema, _ = await tenant_for_user(self.scope.get("user"))
            if schema != self.schema:
                raise Rejected(4403, "INSUFFICIENT_PERMISSIONS", "This credential now belongs to another tenant.")
        except Rejected as rejected:
            await self.send_json({"type": "error", "status": 401 if rejected.close_code == 4401 else 403,
                                  "error_code": rejected.error_code, "message": rejected.message})
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.schema = self.group = None
            await self.close(code=rejected.close_code)
            return False
        self.checked_at = time.monotonic()
        return True

    async def receive_json(self, content, **kwargs):
        if not self.schema:
            return
        if not await self.still_allowed():
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resync":
            await self.send_snapshot()
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "status": 400, "error_code": "INVALID_FORMAT",
                                  "message": "Send {\"type\": \"resync\"} or {\"type\": \"ping\"}."})

    async def send_snapshot(self):
        await self.send_json(await live_snapshot(self.schema))

    async def intent_event(self, message):
        """Group message from intents.events.publish_event."""
        if not self.schema or not await self.still_allowed():
            return
        await self.send_json({"type": "intent.event", "event": message["event"], "intent": message["intent"]})

    @classmethod
    async def decode_json(cls, text_data):
        import json

        try:
            return json.loads(text_data)
        except ValueError:
            return None

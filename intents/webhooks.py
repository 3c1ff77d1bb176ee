"""Webhooks: a tenant admin's HTTPS endpoints hear intent events, signed and retried.

- `create_webhook` / `delete_webhook` are the services (audited, in the tenant's schema).
- `on_event` subscribes to `intents.events`: every published event creates one `WebhookDelivery`
  per matching active webhook and enqueues `intents.deliver_webhook(schema, delivery_id)`.
- `deliver_webhook` POSTs the JSON body once per call, records a `WebhookAttempt` (status code,
  latency, error) and re-enqueues itself with exponential backoff until it succeeds or gives up.

Signature: `X-Flare-Signature: sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>`.
The body carries the same `timestamp` as `X-Flare-Timestamp`, so the signature covers it and a
receiver can refuse stale replays; `X-Flare-Delivery` is stable across retries (deduplicate on it).

SSRF: a URL whose host resolves to any private, loopback, link-local, multicast, reserved or
otherwise non-global address is refused at creation and again at every delivery (re-resolved,
and the connection is pinned to the address that was checked, so DNS cannot change it in
between). `settings.FLARE_WEBHOOKS_ALLOW_PRIVATE = True` lifts this for development.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from requests.adapters import HTTPAdapter

from tenants.services import ServiceError, record_audit

from .models import WEBHOOK_EVENT_KINDS, Webhook, WebhookAttempt, WebhookDelivery

logger = logging.getLogger("flare.webhooks")

SECRET_PREFIX = "whsec_"
USER_AGENT = "FLARE-Webhooks/1.0"
# Statuses of a transition that have a kind of their own (so "running" means "became running").
_STATUS_KINDS = {"queued", "running", "completed", "failed", "cancelled"}


# --- configuration (settings override; defaults: 5 attempts, 10 s × 3ⁿ, 10 s timeout) -----------


def max_attempts() -> int:
    return max(1, int(getattr(settings, "FLARE_WEBHOOK_MAX_ATTEMPTS", 5)))


def backoff_seconds(attempt: int) -> float:
    """Delay before attempt `attempt + 1`, after `attempt` failed: 10, 30, 90, 270 s by default."""
    base = float(getattr(settings, "FLARE_WEBHOOK_BACKOFF_SECONDS", 10.0))
    factor = float(getattr(settings, "FLARE_WEBHOOK_BACKOFF_FACTOR", 3.0))
    return base * factor ** max(0, attempt - 1)


def request_timeout() -> float:
    return float(getattr(settings, "FLARE_WEBHOOK_TIMEOUT", 10.0))


def allow_private() -> bool:
    return bool(getattr(settings, "FLARE_WEBHOOKS_ALLOW_PRIVATE", False))


# --- SSRF guard ------------------------------------------------------------------------------------


class WebhookRefused(Exception):
    """The destination is not allowed (or cannot be resolved)."""


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _blocked(ip: ipaddress._BaseAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label, flag in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                        ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
                        ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if flag:
            return label
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges, …
        return "non-public"
    return None


def resolve_destination(url: str) -> Destination:
    """Parse and resolve `url`; refuse it unless every address it resolves to is public."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookRefused("A webhook needs a URL.")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("Webhook URLs must start with https:// (or http://).")
    if not parts.hostname:
        raise WebhookRefused("The webhook URL has no host name.")
    if parts.username or parts.password:
        raise WebhookRefused("Put credentials in the receiver's configuration, not in the webhook URL.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookRefused("The webhook URL has an invalid port.") from None
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise WebhookRefused(f"The host {host!r} cannot be resolved ({error}).") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise WebhookRefused(f"The host {host!r} resolves to no address.")
    if not allow_private():
        for address in addresses:
            reason = _blocked(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise WebhookRefused(
                    f"The host {host!r} resolves to {address}, a {reason} address; webhooks may only call public "
                    "addresses.")
    return Destination(url=url, scheme=parts.scheme, host=host, port=port, addresses=addresses)


class _PinnedAdapter(HTTPAdapter):
    """Connect to the address we checked while TLS still verifies (and SNI names) the real host."""

    def __init__(self, host: str, **kwargs):
        self._host = host
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self._host
        kwargs["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kwargs)


def _pinned_url(destination: Destination, address: str) -> str:
    parts = urlsplit(destination.url)
    literal = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, f"{literal}:{destination.port}", parts.path or "/", parts.query, ""))


def _host_header(destination: Destination) -> str:
    default = 443 if destination.scheme == "https" else 80
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    return host if destination.port == default else f"{host}:{destination.port}"


# --- signing ---------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (also used by our tests)."""
    return hmac.compare_digest(sign(secret, body), header or "")


# --- services --------------------------------------------------------------------------------------


def _clean_kinds(event_kinds) -> list[str]:
    kinds = list(dict.fromkeys(event_kinds or []))
    unknown = sorted(set(kinds) - set(WEBHOOK_EVENT_KINDS))
    if unknown:
        raise ServiceError(f"unknown event kind(s) {', '.join(unknown)}; valid: {', '.join(WEBHOOK_EVENT_KINDS)}",
                           field="event_kinds")
    return kinds


def create_webhook(*, tenant, actor, url: str, event_kinds=None) -> tuple[Webhook, str]:
    """Register an endpoint; returns (webhook, secret). The secret is shown to the admin once."""
    if tenant is None or tenant.is_public:
        raise ServiceError("webhooks belong to a tenant; this account has none", code="INSUFFICIENT_PERMISSIONS",
                           status=403)
    kinds = _clean_kinds(event_kinds)
    if len((url or "").strip()) > 500:
        raise ServiceError("the URL may be at most 500 characters", field="url")
    try:
        destination = resolve_destination(url)
    except WebhookRefused as refused:
        raise ServiceError(str(refused), field="url") from None
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with schema_context(tenant.schema_name), transaction.atomic():
        webhook = Webhook.objects.create(url=destination.url, event_kinds=kinds, secret=secret,
                                         created_by=getattr(actor, "username", "") or "system")
        record_audit(tenant=tenant, actor=actor, action="webhook.create", target=destination.url,
                     data={"webhook_id": webhook.pk, "event_kinds": kinds})
    return webhook, secret


def delete_webhook(*, tenant, actor, webhook: Webhook) -> None:
    with schema_context(tenant.schema_name), transaction.atomic():
        deleted, _ = Webhook.objects.filter(pk=webhook.pk).delete()
        if deleted:
            record_audit(tenant=tenant, actor=actor, action="webhook.delete", target=webhook.url,
                         data={"webhook_id": webhook.pk})


# --- fan-out ---------------------------------------------------------------------------------------


def event_kinds_of(payload: dict) -> list[str]:
    """The kinds an event counts as: its own, plus the status a transition reached."""
    kind = payload.get("kind") or "note"
    kinds = [kind if kind in WEBHOOK_EVENT_KINDS else "note"]
    if kind == "transition" and payload.get("status") in _STATUS_KINDS and payload.get("status") != payload.get(
            "from_status"):
        kinds.append(payload["status"])
    return kinds


def on_event(schema: str, payload: dict) -> None:
    """intents.events subscriber: one delivery per matching webhook, each enqueued after commit."""
    try:
        _fan_out(schema, payload)
    except Exception:  # noqa: BLE001 - a webhook problem must never disturb the publisher
        logger.exception("webhook fan-out failed for %s event %s", schema, payload.get("event_id"))


def _fan_out(schema: str, payload: dict) -> list[int]:
    kinds = event_kinds_of(payload)
    primary = kinds[-1]
    created: list[int] = []
    with schema_context(schema), transaction.atomic():
        for webhook in Webhook.objects.filter(active=True):
            if not any(webhook.wants(kind) for kind in kinds):
                continue
            delivery = WebhookDelivery.objects.create(
                webhook=webhook, event_id=payload.get("event_id"), intent_id=payload.get("intent_id") or "",
                kind=primary, payload=payload, next_attempt_at=timezone.now(),
            )
            created.append(delivery.pk)
        for delivery_id in created:
            transaction.on_commit(lambda delivery_id=delivery_id: _enqueue(schema, delivery_id))
    return created


def _enqueue(schema: str, delivery_id: int, countdown: float | None = None) -> None:
    try:
        if countdown:
            deliver_webhook.apply_async((schema, delivery_id), countdown=countdown,
                                        expires=countdown + 3600)
        else:
            deliver_webhook.delay(schema, delivery_id)
    except Exception:  # noqa: BLE001 - broker down: the delivery stays pending and visible
        logger.exception("could not enqueue webhook delivery %s/%s", schema, delivery_id)


def _tenant_slug(schema: str) -> str:
    from tenants.models import Tenant

    return Tenant.objects.filter(schema_name=schema).values_list("slug", flat=True).first() or schema


def request_body(schema: str, delivery: WebhookDelivery, timestamp: int) -> bytes:
    body = {
        "type": "intent.event",
        "kind": delivery.kind,
        "delivery_id": delivery.pk,
        "attempt": delivery.attempts,
        "timestamp": timestamp,
        "tenant": _tenant_slug(schema),
        "event": delivery.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class AttemptResult:
    status_code: int | None
    latency_ms: float | None
    error: str
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(webhook: Webhook, body: bytes, headers: dict) -> AttemptResult:
    """One POST to the (re-resolved, pinned) destination. Never follows redirects."""
    try:
        destination = resolve_destination(webhook.url)
    except WebhookRefused as refused:
        return AttemptResult(None, None, f"Refused: {refused}", permanent=True)
    address = destination.addresses[0]
    session = requests.Session()
    session.trust_env = False  # a proxy would resolve the host itself, defeating the pinning
    if destination.scheme == "https":
        session.mount("https://", _PinnedAdapter(destination.host))
    headers = {**headers, "Host": _host_header(destination)}
    started = time.perf_counter()
    try:
        response = session.post(_pinned_url(destination, address), data=body, headers=headers,
                                timeout=request_timeout(), allow_redirects=False)
    except requests.RequestException as error:
        latency = (time.perf_counter() - started) * 1000
        return AttemptResult(None, round(latency, 1), f"{type(error).__name__}: {error}"[:1000])
    finally:
        session.close()
    latency = (time.perf_counter() - started) * 1000
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}: {response.text[:300]}"
    return AttemptResult(response.status_code, round(latency, 1), error)


@shared_task(name="intents.deliver_webhook", ignore_result=True, acks_late=True)
def deliver_webhook(schema: str, delivery_id: int) -> str:
    """One delivery attempt; schedules the next one with backoff when it fails."""
    with schema_context(schema):
        return _attempt(schema, delivery_id)


def _attempt(schema: str, delivery_id: int) -> str:
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.state != WebhookDelivery.STATE_PENDING:
        return "skipped"
    if not delivery.webhook.active:
        WebhookDelivery.objects.filter(pk=delivery.pk, state=WebhookDelivery.STATE_PENDING).update(
            state=WebhookDelivery.STATE_FAILED)
        return "webhook disabled"
    now = timezone.now()
    if delivery.next_attempt_at and delivery.next_attempt_at - now > timedelta(seconds=1):
        return "not due"  # a duplicate message arrived early; the scheduled one will run
    number = delivery.attempts + 1
    # Compare-and-set: of two workers holding the same message, only one makes this attempt.
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts,
                                             state=WebhookDelivery.STATE_PENDING).update(
        attempts=number, last_attempt_at=now, next_attempt_at=None)
    if claimed != 1:
        return "skipped"
    delivery.attempts = number
    timestamp = int(now.timestamp())
    body = request_body(schema, delivery, timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Flare-Event": delivery.kind,
        "X-Flare-Delivery": str(delivery.pk),
        "X-Flare-Timestamp": str(timestamp),
        "X-Flare-Attempt": str(number),
        "X-Flare-Signature": sign(delivery.webhook.secret, body),
    }
    result = send(delivery.webhook, body, headers)
    WebhookAttempt.objects.create(delivery=delivery, number=number, time=now, status_code=result.status_code,
                                  latency_ms=result.latency_ms, error=result.error)
    if result.ok:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=WebhookDelivery.STATE_SUCCEEDED)
        return "succeeded"
    if result.permanent or number >= max_attempts():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=WebhookDelivery.STATE_FAILED)
        logger.warning("webhook delivery %s/%s gave up after %s attempt(s): %s", schema, delivery.pk, number,
                       result.error)
        return "failed"
    delay = backoff_seconds(number)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + timedelta(seconds=delay))
    _enqueue(schema, delivery.pk, countdown=delay)
    return f"retry in {delay:g}s"


def register() -> None:
    from .events import subscribe

    subscribe(on_event)


__all__ = ["WebhookRefused", "backoff_seconds", "create_webhook", "delete_webhook", "deliver_webhook",
           "event_kinds_of", "max_attempts", "on_event", "resolve_destination", "sign", "verify_signature"]

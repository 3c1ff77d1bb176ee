"""Webhooks: SSRF refusal, fan-out from real intent events, signed delivery to a real local HTTP
server, retries with exponential backoff, every attempt recorded; the portal pages; audit."""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from intents import webhooks
from intents.models import Webhook, WebhookAttempt, WebhookDelivery
from intents.services import submit_intent
from tenants.models import AuditEntry
from tenants.services import ServiceError

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.215.14/flare-hook"  # an IP literal: no DNS needed, and public


class Receiver:
    """A real HTTP server on 127.0.0.1 answering with the scripted status codes, in a thread."""

    def __init__(self, statuses, delay: float = 0.0):
        self.statuses = list(statuses)
        self.delay = delay
        self.requests: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                try:
                    self.send_response(status)
                    if status in (301, 302):
                        self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"receiver says no")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/flare?x=1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would go to Celery: (schema, delivery_id, countdown)."""
    calls: list[tuple] = []
    monkeypatch.setattr(webhooks.deliver_webhook, "delay", lambda *args: calls.append((*args, None)))
    monkeypatch.setattr(webhooks.deliver_webhook, "apply_async",
                        lambda args, countdown=None, **kw: calls.append((*args, countdown)))
    return calls


@pytest.fixture
def allow_private(settings):
    settings.FLARE_WEBHOOKS_ALLOW_PRIVATE = True


def job(name: str) -> dict:
    return {"intent": {"objective": "Cost_Minimization",
                       "workload": {"type": "batch", "name": name, "image": "busybox", "commands": ["true"],
                                    "resources": {"gpu": {"model": "nvidia-a100"}}, "batch": {"timeout": "1h"}}}}


def fire_submit(tenant, user, name, capture):
    """Submit a real intent; its events are published after commit (→ webhook fan-out)."""
    with capture(execute=True):
        with schema_context(tenant.schema_name):
            intent = submit_intent(tenant, user, job(name)).intent
    connection.set_schema_to_public()
    return intent


def make_due(schema, delivery_id):
    """Time passes until the scheduled retry."""
    with schema_context(schema):
        WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- SSRF ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://127.1.2.3:8080/hook", "http://10.0.0.7/hook", "http://172.16.4.1/hook",
    "http://192.168.1.10/hook", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/hook",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://[fe80::1]/hook", "http://0.0.0.0/hook",
    "http://224.0.0.1/hook", "http://localhost/hook", "http://localhost:9000/hook",
])
def test_private_destinations_are_refused(tenant_a, user_a, url):
    with pytest.raises(ServiceError) as refused:
        webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=url, event_kinds=["running"])
    assert refused.value.field == "url"
    assert "address" in refused.value.message
    with schema_context(tenant_a.schema_name):
        assert not Webhook.objects.exists()
    assert not AuditEntry.objects.filter(action="webhook.create").exists()


@pytest.mark.parametrize("url,fragment", [
    ("ftp://93.184.215.14/x", "https://"), ("https://user:pw@93.184.215.14/x", "credentials"),
    ("https://no-such-host.invalid/hook", "cannot be resolved"), ("", "needs a URL"),
])
def test_malformed_destinations_are_refused(tenant_a, user_a, url, fragment):
    with pytest.raises(ServiceError) as refused:
        webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=url)
    assert fragment in refused.value.message


def test_private_destinations_allowed_when_configured(tenant_a, user_a, allow_private):
    webhook, secret = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url="http://127.0.0.1:9/hook")
    assert webhook.pk and secret.startswith("whsec_")


def test_create_and_delete_are_audited(tenant_a, user_a):
    webhook, secret = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=PUBLIC_URL,
                                              event_kinds=["running", "failed"])
    assert secret.startswith("whsec_") and len(secret) > 40
    created = AuditEntry.objects.get(action="webhook.create")
    assert created.tenant == tenant_a and created.actor == user_a and created.target == PUBLIC_URL
    assert created.data == {"webhook_id": webhook.pk, "event_kinds": ["running", "failed"]}
    assert secret not in json.dumps(created.data)
    with pytest.raises(ServiceError):
        webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=PUBLIC_URL, event_kinds=["exploded"])
    webhooks.delete_webhook(tenant=tenant_a, actor=user_a, webhook=webhook)
    assert AuditEntry.objects.filter(action="webhook.delete", target=PUBLIC_URL, tenant=tenant_a).exists()
    with schema_context(tenant_a.schema_name):
        assert not Webhook.objects.exists()


# --- fan-out ---------------------------------------------------------------------------------------


def test_event_kinds():
    assert webhooks.event_kinds_of({"kind": "submitted", "status": "pending"}) == ["submitted"]
    assert webhooks.event_kinds_of({"kind": "transition", "from_status": "pending", "status": "running"}) == [
        "transition", "running"]
    assert webhooks.event_kinds_of({"kind": "transition", "from_status": "pending", "status": "pending"}) == [
        "transition"]
    assert webhooks.event_kinds_of({"kind": "cost"}) == ["note"]


def test_fan_out_matches_kinds_and_skips_inactive(tenant_a, user_a, enqueued, allow_private):
    everything, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url="http://127.0.0.1:9/all")
    running, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url="http://127.0.0.1:9/run",
                                         event_kinds=["running"])
    off, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url="http://127.0.0.1:9/off")
    with schema_context(tenant_a.schema_name):
        Webhook.objects.filter(pk=off.pk).update(active=False)
    schema = tenant_a.schema_name
    base = {"event_id": 1, "intent_id": "intent-aaaaaaaaaaaa", "name": "x"}
    with schema_context(schema):
        webhooks._fan_out(schema, {**base, "kind": "transition", "from_status": "pending", "status": "pending"})
        webhooks._fan_out(schema, {**base, "kind": "transition", "from_status": "pending", "status": "running"})
        deliveries = sorted(WebhookDelivery.objects.values_list("webhook_id", "kind"))
    assert deliveries == sorted([(everything.pk, "transition"), (everything.pk, "running"), (running.pk, "running")])


def test_real_events_create_deliveries_in_the_tenant_schema(tenant_a, tenant_b, user_a, user_b, demo_federation,
                                                          enqueued, allow_private,
                                                          django_capture_on_commit_callbacks):
    hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url="http://127.0.0.1:9/a")
    intent = fire_submit(tenant_a, user_a, "hooked", django_capture_on_commit_callbacks)
    fire_submit(tenant_b, user_b, "not-hooked", django_capture_on_commit_callbacks)
    with schema_context(tenant_a.schema_name):
        delivery = WebhookDelivery.objects.get()
    assert delivery.webhook_id == hook.pk and delivery.kind == "submitted" and delivery.intent_id == intent.intent_id
    assert delivery.payload["intent_id"] == intent.intent_id and delivery.state == "pending"
    assert enqueued == [(tenant_a.schema_name, delivery.pk, None)]
    with schema_context(tenant_b.schema_name):
        assert not WebhookDelivery.objects.exists()


# --- delivery --------------------------------------------------------------------------------------


def test_signed_delivery_retried_with_backoff(tenant_a, user_a, demo_federation, enqueued, allow_private,
                                              django_capture_on_commit_callbacks):
    schema = tenant_a.schema_name
    with Receiver([500, 200]) as receiver:
        hook, secret = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=receiver.url,
                                               event_kinds=["submitted"])
        intent = fire_submit(tenant_a, user_a, "signed-job", django_capture_on_commit_callbacks)
        (_, delivery_id, _), = enqueued

        assert webhooks.deliver_webhook(schema, delivery_id) == "retry in 10s"
        assert enqueued[-1] == (schema, delivery_id, 10.0)
        assert webhooks.deliver_webhook(schema, delivery_id) == "not due"  # a duplicate message, early
        make_due(schema, delivery_id)
        assert webhooks.deliver_webhook(schema, delivery_id) == "succeeded"
        assert webhooks.deliver_webhook(schema, delivery_id) == "skipped"

    assert len(receiver.requests) == 2
    for number, request in enumerate(receiver.requests, start=1):
        headers, body = request["headers"], request["body"]
        assert request["path"] == "/hooks/flare?x=1"
        assert webhooks.verify_signature(secret, body, headers["X-Flare-Signature"])
        assert headers["X-Flare-Signature"].startswith("sha256=")
        assert headers["X-Flare-Event"] == "submitted" and headers["X-Flare-Delivery"] == str(delivery_id)
        assert headers["X-Flare-Attempt"] == str(number) and headers["Content-Type"] == "application/json"
        document = json.loads(body)
        assert document["timestamp"] == int(headers["X-Flare-Timestamp"])
        assert document["event"]["intent_id"] == intent.intent_id and document["tenant"] == "acme"
        assert document["delivery_id"] == delivery_id and document["attempt"] == number
    assert not webhooks.verify_signature("whsec_wrong", receiver.requests[0]["body"],
                                         receiver.requests[0]["headers"]["X-Flare-Signature"])
    with schema_context(schema):
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert delivery.state == "succeeded" and delivery.attempts == 2
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert "receiver says no" in attempts[0].error and attempts[1].error == ""
    assert all(a.latency_ms is not None and a.latency_ms > 0 for a in attempts)


def test_backoff_schedule_and_giving_up(tenant_a, user_a, enqueued, allow_private, settings):
    assert [webhooks.backoff_seconds(n) for n in range(1, 5)] == [10, 30, 90, 270]
    settings.FLARE_WEBHOOK_MAX_ATTEMPTS = 3
    schema = tenant_a.schema_name
    with Receiver([503]) as receiver:
        hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=receiver.url)
        with schema_context(schema):
            delivery = WebhookDelivery.objects.create(webhook=hook, kind="note", payload={"kind": "note"})
        results = []
        for _ in range(4):
            results.append(webhooks.deliver_webhook(schema, delivery.pk))
            make_due(schema, delivery.pk)
    assert results == ["retry in 10s", "retry in 30s", "failed", "skipped"]
    assert [c[2] for c in enqueued] == [10.0, 30.0]
    assert len(receiver.requests) == 3
    with schema_context(schema):
        delivery.refresh_from_db()
        codes = list(delivery.attempt_log.values_list("status_code", flat=True))
    assert delivery.state == "failed" and codes == [503, 503, 503]


def test_connection_errors_timeouts_and_redirects_are_recorded(tenant_a, user_a, enqueued, allow_private, settings):
    settings.FLARE_WEBHOOK_TIMEOUT = 0.3
    schema = tenant_a.schema_name
    with Receiver([200], delay=1.0) as slow, Receiver([302]) as redirecting:
        slow_hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=slow.url)
        moved_hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=redirecting.url)
        closed = Receiver([200])  # bound then closed: nothing listens on its port
        closed.server.server_close()
        dead_hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=closed.url)
        with schema_context(schema):
            ids = [WebhookDelivery.objects.create(webhook=h, kind="note", payload={}).pk
                   for h in (slow_hook, moved_hook, dead_hook)]
        for delivery_id in ids:
            assert webhooks.deliver_webhook(schema, delivery_id) == "retry in 10s"
    with schema_context(schema):
        slow_try, moved_try, dead_try = (WebhookAttempt.objects.get(delivery_id=i) for i in ids)
    assert slow_try.status_code is None and "Timeout" in slow_try.error
    assert moved_try.status_code == 302  # redirects are not followed (they could point anywhere)
    assert len(redirecting.requests) == 1
    assert dead_try.status_code is None and "ConnectionError" in dead_try.error


def test_delivery_re_resolves_and_refuses_private_targets(tenant_a, user_a, enqueued, settings):
    settings.FLARE_WEBHOOKS_ALLOW_PRIVATE = True
    schema = tenant_a.schema_name
    with Receiver([200]) as receiver:
        hook, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=receiver.url)
        settings.FLARE_WEBHOOKS_ALLOW_PRIVATE = False  # e.g. the host now resolves somewhere private
        with schema_context(schema):
            delivery = WebhookDelivery.objects.create(webhook=hook, kind="note", payload={})
        assert webhooks.deliver_webhook(schema, delivery.pk) == "failed"
    assert receiver.requests == []
    with schema_context(schema):
        attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and attempt.error.startswith("Refused:") and "loopback" in attempt.error
    assert enqueued == []


def test_deliver_webhook_is_a_registered_task():
    from flare_portal.celery import app

    assert "intents.deliver_webhook" in app.tasks


# --- portal pages ------------------------------------------------------------------------------------


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_portal_webhook_pages(tenant_a, user_a, member_a, enqueued, settings):
    client = login(user_a)
    refused = client.post("/webhooks", {"url": "http://169.254.169.254/latest/meta-data"})
    assert refused.status_code == 400
    assert "link-local" in refused.context["form"].errors["url"][0]

    created = client.post("/webhooks", {"url": PUBLIC_URL, "event_kinds": ["running", "failed"]})
    assert created.status_code == 201
    webhook, secret = created.context["created"]
    assert secret in created.content.decode()
    listing = client.get("/webhooks").content.decode()
    assert PUBLIC_URL in listing and secret not in listing

    settings.FLARE_WEBHOOKS_ALLOW_PRIVATE = True
    schema = tenant_a.schema_name
    with Receiver([500, 204]) as receiver:
        local, _ = webhooks.create_webhook(tenant=tenant_a, actor=user_a, url=receiver.url)
        with schema_context(schema):
            delivery = WebhookDelivery.objects.create(webhook=local, kind="running", intent_id="intent-abcdefghijkl",
                                                      payload={"kind": "transition"})
        webhooks.deliver_webhook(schema, delivery.pk)
        make_due(schema, delivery.pk)
        webhooks.deliver_webhook(schema, delivery.pk)
    detail = client.get(f"/webhooks/{local.pk}")
    html = detail.content.decode()
    assert detail.status_code == 200 and "500" in html and "204" in html and " ms" in html
    assert "receiver says no" in html and "succeeded" in html

    assert login(member_a).post(f"/webhooks/{webhook.pk}/delete").status_code == 403
    assert client.post(f"/webhooks/{webhook.pk}/delete").status_code == 302
    assert AuditEntry.objects.filter(action="webhook.delete", target=PUBLIC_URL, actor=user_a).exists()
    assert client.get("/webhooks/999999").status_code == 404

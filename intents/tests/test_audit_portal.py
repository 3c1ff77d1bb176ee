"""Every change made through the portal lands in the audit log, with actor, tenant and request id."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from intents import forms
from intents.models import Intent, Webhook
from tenants.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db


def test_portal_changes_are_audited(user_a, tenant_a, demo_federation, monkeypatch):
    from intents import webhooks

    monkeypatch.setattr(webhooks.deliver_webhook, "delay", lambda *args: None)
    client = Client()
    client.force_login(user_a)
    steps = []

    def act(path, data, action):
        response = client.post(path, data)
        assert response.status_code in (200, 201, 302), (path, response.status_code)
        steps.append((action, response["X-Request-ID"]))
        return response

    act("/intents/new", {"document": json.dumps(forms.template_document("jupyter_service"))}, "intent.submit")
    with schema_context(tenant_a.schema_name):
        intent = Intent.objects.get(name="gpu-jupyter-lab")
    act(f"/intents/{intent.intent_id}/cancel", {}, "intent.cancel")
    act("/tokens", {"name": "ci", "expires_in": "7d", "permissions": ["intents:read"]}, "token.issue")
    token = ApiToken.objects.get(name="ci")
    act(f"/tokens/{token.token_id}/revoke", {}, "token.revoke")
    act("/members", {"username": "erin", "role": "member", "password": "a-long-password"}, "member.upsert")
    act("/webhooks", {"url": "https://93.184.215.14/hook", "event_kinds": ["failed"]}, "webhook.create")
    with schema_context(tenant_a.schema_name):
        hook = Webhook.objects.get()
    act(f"/webhooks/{hook.pk}/delete", {}, "webhook.delete")

    entries = list(AuditEntry.objects.filter(tenant=tenant_a, actor=user_a).order_by("time", "id"))
    recorded = [(e.action, e.request_id) for e in entries]
    assert recorded == steps
    assert all(e.actor_label == "alice" for e in entries)
    targets = {e.action: e.target for e in entries}
    assert targets["intent.submit"] == targets["intent.cancel"] == intent.intent_id
    assert targets["token.issue"] == targets["token.revoke"] == token.token_id
    assert targets["member.upsert"] == "erin"
    assert targets["webhook.create"] == targets["webhook.delete"] == "https://93.184.215.14/hook"

    # The admin sees all of it on the audit page.
    page = client.get("/audit").content.decode()
    for action, request_id in steps:
        assert action in page and request_id in page


def test_reads_and_refusals_are_not_audited(user_a, member_a, tenant_a):
    before = AuditEntry.objects.count()
    client = Client()
    client.force_login(member_a)
    for path in ("/", "/tokens", "/resources", "/intents/new"):
        client.get(path)
    client.post("/members", {"username": "mallory", "role": "admin"})  # not an admin: 403
    client.post("/webhooks", {"url": "https://93.184.215.14/hook"})
    assert AuditEntry.objects.count() == before

"""The `/ws/intents/` consumer through the real ASGI application: session and token auth,
refusals, snapshot/resync, and tenant isolation of events published by the lifecycle.

The tests are sync functions that run their websocket scenario with `async_to_sync`, so the
consumer's `database_sync_to_async` calls run on this thread, inside the test's transaction.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from flare_portal.asgi import application
from intents import routing
from intents.models import Intent
from intents.reconcile import advance
from intents.services import submit_intent
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(autouse=True)
def memory_layer(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # database_sync_to_async closes "obsolete" connections around each call, which inside the
    # test's transaction would mark it for rollback. Production keeps that behaviour.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


def session_headers(user, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode())]
    if origin:
        headers.append(origin)
    return headers


def job(name: str) -> dict:
    return {"intent": {"objective": "Cost_Minimization",
                       "workload": {"type": "batch", "name": name, "image": "busybox", "commands": ["true"],
                                    "resources": {"gpu": {"model": "nvidia-a100"}}, "batch": {"timeout": "1h"}}}}


async def open_socket(path="/ws/intents/", headers=None, app=application) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(app, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def expect_refusal(communicator, close_code: int, error_code: str):
    message = await communicator.receive_json_from()
    assert message["type"] == "error" and message["error_code"] == error_code
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": close_code}


async def expect_welcome(communicator, tenant_slug: str, auth: str) -> dict:
    hello = await communicator.receive_json_from()
    assert hello == {"type": "hello", "tenant": tenant_slug, "auth": auth, "group": hello["group"]}
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot"
    return snapshot


def test_session_auth_sends_a_snapshot_of_live_intents(user_a, tenant_a, demo_federation):
    with schema_context(tenant_a.schema_name):
        live = submit_intent(tenant_a, user_a, job("live-one")).intent
    connection.set_schema_to_public()
    headers = session_headers(user_a)

    async def scenario():
        ws = await open_socket(headers=headers)
        snapshot = await expect_welcome(ws, "acme", "session")
        assert [i["intent_id"] for i in snapshot["intents"]] == [live.intent_id]
        assert snapshot["intents"][0]["status"] == "pending" and snapshot["recent"] == []
        await ws.send_json_to({"type": "resync"})
        again = await ws.receive_json_from()
        assert again["type"] == "snapshot" and again["intents"][0]["intent_id"] == live.intent_id
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        await ws.send_to(text_data="not json")
        assert (await ws.receive_json_from())["error_code"] == "INVALID_FORMAT"
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("how", ["query", "header"])
def test_token_auth(user_a, tenant_a, issue, how):
    _, secret = issue(user_a, tenant_a, ["intents:read"], name="ws-reader")

    async def scenario():
        if how == "query":
            ws = await open_socket(f"/ws/intents/?token={secret}", headers=[ORIGIN])
        else:
            ws = await open_socket(headers=[ORIGIN, (b"authorization", f"Bearer {secret}".encode())])
        await expect_welcome(ws, "acme", "token")
        await ws.disconnect()
        # API clients usually send no Origin header at all: a token is enough.
        bare = await open_socket(headers=[(b"authorization", f"Bearer {secret}".encode())])
        await expect_welcome(bare, "acme", "token")
        await bare.disconnect()

    async_to_sync(scenario)()


def test_refusals(user_a, tenant_a, issue, staff_user):
    _, no_read = issue(user_a, tenant_a, ["resources:read"], name="no-read")
    revoked, revoked_secret = issue(user_a, tenant_a, ["intents:read"], name="gone")
    tenant_services.revoke_token(token=revoked, actor=user_a)
    staff_headers = session_headers(staff_user)

    async def scenario():
        await expect_refusal(await open_socket(headers=[ORIGIN]), 4401, "AUTHENTICATION_FAILED")
        await expect_refusal(await open_socket("/ws/intents/?token=flr_" + "x" * 40, headers=[ORIGIN]),
                             4401, "INVALID_TOKEN")
        await expect_refusal(await open_socket(f"/ws/intents/?token={revoked_secret}", headers=[ORIGIN]),
                             4401, "TOKEN_REVOKED")
        await expect_refusal(await open_socket(headers=[ORIGIN, (b"authorization", b"Basic abc")]),
                             4401, "INVALID_TOKEN")
        await expect_refusal(await open_socket(f"/ws/intents/?token={no_read}", headers=[ORIGIN]),
                             4403, "INSUFFICIENT_PERMISSIONS")
        # A provider administrator has no tenant: nothing to subscribe to.
        await expect_refusal(await open_socket(headers=staff_headers), 4403, "INSUFFICIENT_PERMISSIONS")

    async_to_sync(scenario)()


def test_session_socket_from_a_foreign_origin_is_refused(user_a):
    evil = session_headers(user_a, origin=(b"origin", b"https://evil.example"))
    bare = SessionMiddlewareStack(URLRouter(routing.websocket_urlpatterns))

    async def scenario():
        # The consumer refuses cookie auth from a foreign origin (the production stack has no
        # origin validator, so that token clients without an Origin header can connect)…
        await expect_refusal(await open_socket(headers=evil), 4403, "INSUFFICIENT_PERMISSIONS")
        await expect_refusal(await open_socket(headers=evil, app=bare), 4403, "INSUFFICIENT_PERMISSIONS")

    async_to_sync(scenario)()


def test_events_reach_only_their_tenant(user_a, user_b, tenant_a, tenant_b, demo_federation,
                                        django_capture_on_commit_callbacks):
    headers_a, headers_b = session_headers(user_a), session_headers(user_b)

    def submit_and_advance(tenant, user, name, steps):
        with django_capture_on_commit_callbacks(execute=True):
            with schema_context(tenant.schema_name):
                intent = submit_intent(tenant, user, job(name)).intent
        for _ in range(steps):
            with django_capture_on_commit_callbacks(execute=True):
                with schema_context(tenant.schema_name):
                    advance(tenant.schema_name, intent.intent_id)
        connection.set_schema_to_public()
        return intent.intent_id

    async def scenario():
        ws_a = await open_socket(headers=headers_a)
        ws_b = await open_socket(headers=headers_b)
        await expect_welcome(ws_a, "acme", "session")
        await expect_welcome(ws_b, "globex", "session")

        intent_id = await database_sync_to_async(submit_and_advance)(tenant_a, user_a, "acme-events", 2)
        submitted = await ws_a.receive_json_from()
        assert submitted["type"] == "intent.event"
        assert submitted["event"]["kind"] == "submitted" and submitted["event"]["intent_id"] == intent_id
        assert submitted["intent"]["intent_id"] == intent_id and submitted["intent"]["status"] == "pending"
        first = await ws_a.receive_json_from()
        assert (first["event"]["from_phase"], first["event"]["phase"]) == ("Submitted", "Discovering")
        second = await ws_a.receive_json_from()
        assert (second["event"]["from_phase"], second["event"]["phase"]) == ("Discovering", "Reserving")
        assert second["intent"]["phase"] == "Reserving"
        assert await ws_b.receive_nothing(timeout=0.3)

        other_id = await database_sync_to_async(submit_and_advance)(tenant_b, user_b, "globex-events", 0)
        event_b = await ws_b.receive_json_from()
        assert event_b["event"]["intent_id"] == other_id and event_b["intent"]["name"] == "globex-events"
        assert await ws_a.receive_nothing(timeout=0.3)
        await ws_a.disconnect()
        await ws_b.disconnect()

    async_to_sync(scenario)()
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.filter(name="acme-events").exists()


def test_revoked_token_stops_receiving_events(user_a, tenant_a, issue, demo_federation, settings,
                                              django_capture_on_commit_callbacks):
    settings.FLARE_WS_RECHECK_SECONDS = 0  # re-check the credential on every event
    token, secret = issue(user_a, tenant_a, ["intents:read"], name="ws-revoked")

    def submit(name):
        with django_capture_on_commit_callbacks(execute=True):
            with schema_context(tenant_a.schema_name):
                intent_id = submit_intent(tenant_a, user_a, job(name)).intent.intent_id
        connection.set_schema_to_public()
        return intent_id

    def revoke():
        tenant_services.revoke_token(token=token, actor=user_a)

    async def scenario():
        ws = await open_socket(headers=[(b"authorization", f"Bearer {secret}".encode())])
        await expect_welcome(ws, "acme", "token")
        first = await database_sync_to_async(submit)("before-revoke")
        event = await ws.receive_json_from()
        assert event["event"]["intent_id"] == first
        await database_sync_to_async(revoke)()
        await database_sync_to_async(submit)("after-revoke")
        await expect_refusal(ws, 4401, "TOKEN_REVOKED")

    async_to_sync(scenario)()

"""End to end in a real browser: Debian's Chromium (Playwright, sync API) against the ASGI app
(daphne in a subprocess: HTTP + websockets) on the test database.

Log in, submit an intent from a template, watch it move through its phases on the dashboard
without a reload (the reconciler is driven from this test, one `advance()` at a time, in a
helper thread), survive a server restart (the page reconnects and resyncs), open the timeline,
cancel it.

Set FLARE_SCREENSHOT=<path> to save a screenshot of the dashboard at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from intents.lifecycle import api_phase  # noqa: E402
from intents.models import Intent, Webhook  # noqa: E402

from .asgi_settings import channel_layers  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AsgiServer:
    """daphne serving flare_portal.asgi on the test database, restartable on the same port."""

    def __init__(self, database: str, prefix: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.browser.asgi_settings",
            "FLARE_DB_NAME": database,
            "FLARE_E2E_CHANNELS_PREFIX": prefix,
            # Submissions enqueue reconcile tasks; nobody consumes this in-memory broker: the test
            # itself drives the reconciler so it can check every phase on the page.
            "FLARE_CELERY_BROKER_URL": "memory://",
            "FLARE_SIM_STEP_DELAY": "0",
            "FLARE_SIM_FAULT_RATE": "0",
            "FLARE_TESTING": "true",
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "flare_portal.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer within {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Reconciler:
    """Runs `intents.reconcile.advance` in its own thread (Playwright's sync API owns this one)."""

    def __init__(self, schema: str):
        self.schema = schema
        self.pool = ThreadPoolExecutor(max_workers=1)

    def _phase(self, intent_id):
        with schema_context(self.schema):
            return Intent.objects.get(intent_id=intent_id)

    def step(self, intent_id: str, max_calls: int = 20) -> Intent:
        """Advance until the phase changes; returns the intent in its new phase."""

        def run():
            from intents.reconcile import advance

            before = self._phase(intent_id).phase
            for _ in range(max_calls):
                with schema_context(self.schema):
                    advance(self.schema, intent_id)
                intent = self._phase(intent_id)
                if intent.phase != before:
                    return intent
            raise AssertionError(f"{intent_id} stayed in {before}: {intent.message}")

        return self.pool.submit(run).result(timeout=60)

    def close(self):
        self.pool.submit(connections.close_all).result()
        self.pool.shutdown()


@pytest.fixture
def clean_tenant_rows(tenant_a):
    """A transactional test's flush empties the public schema only; tenant rows are ours to remove."""
    yield
    for schema in ("t_acme", "t_globex"):
        with schema_context(schema):
            Webhook.objects.all().delete()
            Intent.objects.all().delete()
    connection.set_schema_to_public()


@pytest.fixture
def server(tenant_a, user_a, demo_federation, settings, tmp_path, monkeypatch, clean_tenant_rows):
    prefix = f"flare-e2e-{uuid.uuid4().hex[:10]}"
    # This process publishes the reconciler's events; the server's consumers must hear them.
    settings.CHANNEL_LAYERS = channel_layers(prefix)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    asgi = AsgiServer(connection.settings_dict["NAME"], prefix, tmp_path / "daphne.log")
    asgi.start()
    yield asgi
    asgi.stop()


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
        context.set_default_timeout(15000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        context.close()
        browser.close()
        # Playwright's sync API runs us in a greenlet with its own context, hence its own DB
        # connection (asgiref.local): close it, or the test database cannot be dropped.
        connections.close_all()


def test_submit_watch_live_and_cancel(server, browser_page, tenant_a):
    page, js_errors = browser_page
    reconciler = Reconciler(tenant_a.schema_name)
    started = time.monotonic()
    try:
        # Log in: the dashboard sends us to the login page first.
        page.goto(server.url + "/")
        expect(page).to_have_url(f"{server.url}/accounts/login/?next=/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "pw-acme")
        page.click("button[type=submit]")
        expect(page).to_have_url(server.url + "/")
        expect(page.locator("#live-state")).to_have_text("live")

        # Submit from the notebook template, overriding the name.
        page.click("nav >> text=Submit")
        page.select_option("#id_template", "jupyter_service")
        expect(page.locator("#id_name")).to_have_value("gpu-jupyter-lab")
        expect(page.locator("#id_gpu_model")).to_have_value("nvidia-rtx-4090")
        page.fill("#id_name", "e2e-notebook")
        assert '"name": "e2e-notebook"' in page.input_value("#id_document")
        page.click("text=Submit intent")
        expect(page.locator("h1")).to_contain_text("e2e-notebook")
        intent_id = page.url.rsplit("/", 1)[1]
        assert intent_id.startswith("intent-")

        # The dashboard follows it through every phase without a reload.
        page.click("nav >> text=Dashboard")
        row = page.locator(f'tr[data-intent-id="{intent_id}"]')
        expect(row.locator('[data-field="phase"]')).to_have_text("Submitted")
        expect(page.locator("#live-state")).to_have_text("live")
        page.evaluate("window.__sameDocument = true")
        seen = []
        while True:
            intent = reconciler.step(intent_id)
            phase = api_phase(intent)
            seen.append(phase)
            expect(row.locator('[data-field="phase"]')).to_have_text(phase)
            expect(row.locator('[data-field="status"]')).to_have_text(intent.status)
            if phase == "Reserving":
                # Drop the connection: the server goes away, the intent moves on meanwhile.
                server.stop()
                expect(page.locator("#live-state")).not_to_have_text("live")
                intent = reconciler.step(intent_id)
                seen.append(api_phase(intent))
                server.start()
                # The page reconnects with backoff and resyncs from the snapshot.
                expect(page.locator("#live-state")).to_have_text("live", timeout=30000)
                expect(row.locator('[data-field="phase"]')).to_have_text(api_phase(intent))
            if intent.phase == "Running":
                break
        assert seen == ["Discovering", "Reserving", "Peering", "Offloading", "Deploying", "Running"]
        assert page.evaluate("window.__sameDocument") is True
        expect(row.locator('[data-field="provider"]')).to_have_text(intent.provider)
        expect(page.locator("#feed li").first).to_contain_text("e2e-notebook")
        expect(page.locator('.gauge[data-key="gpus"] [data-field="text"]')).to_contain_text(f"{intent.gpus} of")

        # Its timeline, conditions, placement and Solver.
        row.locator("a.intent-name").click()
        expect(page.locator("#intent-status")).to_have_text("running")
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("Deploying → Running")
        expect(timeline).to_contain_text("WorkloadRunning")
        expect(timeline).to_contain_text("Submitted by alice")
        expect(page.locator(".stepper li.current")).to_have_text("Running")
        expect(page.locator("#solver-yaml")).to_contain_text("kind: Solver")
        expect(page.locator(".chosen-box")).to_contain_text(intent.placement["chosen"]["allocations"][0]["node"])

        # Cancel it.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("text=Cancel intent")
        expect(page.locator("#intent-status")).to_have_text("cancelled")
        expect(page.locator(".messages")).to_contain_text("cancelled")
        expect(timeline).to_contain_text("CancelRequested")
        expect(page.locator("#cancel-form")).to_have_count(0)
        page.click("nav >> text=Dashboard")
        expect(row.locator('[data-field="status"]')).to_have_text("cancelled")

        shot = os.environ.get("FLARE_SCREENSHOT")
        if shot:
            page.wait_for_timeout(1500)
            page.screenshot(path=shot, full_page=True)
        assert js_errors == []
    finally:
        reconciler.close()
    print(f"browser scenario took {time.monotonic() - started:.1f}s")

    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(intent_id=intent_id).phase == "Cancelled"

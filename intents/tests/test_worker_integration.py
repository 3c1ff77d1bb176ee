"""A real Celery worker (Redis broker) drives intents to completion; a lost message is recovered
by the beat's re-drive. Transactional: the worker's threads use their own connections."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from intents.models import Intent

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def celery_worker():
    from celery.contrib.testing.worker import start_worker

    from flare_portal.celery import app

    app.conf.task_always_eager = False
    # Messages left in this run's queue by earlier tests must not run against this module's data.
    with app.connection_for_write() as connection:
        app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE].bind(connection.default_channel).purge()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                      queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=10) as worker:
        yield worker


@pytest.fixture
def clean_tenant_rows(tenant_a):
    """Committed rows in tenant schemas survive a transactional flush: remove them ourselves."""
    yield
    for schema in ("t_acme", "t_globex"):
        with schema_context(schema):
            Intent.objects.all().delete()


def wait_for(tenant, intent_id, phases, timeout=45.0) -> Intent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with schema_context(tenant.schema_name):
            intent = Intent.objects.get(intent_id=intent_id)
        if intent.phase in phases:
            return intent
        time.sleep(0.2)
    raise AssertionError(f"{intent_id} stuck in {intent.phase}: {intent.message}")


def batch(name):
    return {"intent": {"objective": "Cost_Minimization",
                       "workload": {"type": "batch", "name": name, "image": "busybox", "commands": ["true"],
                                    "resources": {"gpu": {"model": "nvidia-t4"}}, "batch": {"timeout": "1h"}}}}


def test_worker_runs_intent_to_completion(celery_worker, client_a, demo_federation, tenant_a, settings,
                                          clean_tenant_rows):
    settings.FLARE_SIM_BATCH_SECONDS = 0
    settings.FLARE_POLL_SECONDS = 0.1
    response = client_a.post("/api/v1/intents", batch("worker-job"), format="json")
    assert response.status_code == 201, response.content
    intent = wait_for(tenant_a, response.json()["intent_id"], {"Succeeded", "Failed"})
    assert intent.phase == "Succeeded", intent.message
    assert intent.provider and intent.started_at and intent.finished_at


def test_lost_message_is_recovered_by_redrive(celery_worker, client_a, demo_federation, tenant_a, settings,
                                              clean_tenant_rows, monkeypatch):
    settings.FLARE_SIM_BATCH_SECONDS = 0
    settings.FLARE_POLL_SECONDS = 0.1
    from intents import services, tasks

    monkeypatch.setattr(services, "_enqueue_reconcile", lambda schema, intent_id: None)  # the message is lost
    response = client_a.post("/api/v1/intents", batch("lost-job"), format="json")
    intent_id = response.json()["intent_id"]
    time.sleep(0.5)
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(intent_id=intent_id).phase == "Submitted"
    assert tasks.redrive_intents() >= 1  # what beat runs every FLARE_REDRIVE_SECONDS
    intent = wait_for(tenant_a, intent_id, {"Succeeded", "Failed"})
    assert intent.phase == "Succeeded", intent.message


def test_redrive_never_doubles_a_live_chain(client_a, demo_federation, tenant_a, clean_tenant_rows, monkeypatch):
    """Each intent has one polling chain: the beat only restarts intents whose lease expired."""
    from intents import tasks

    started = []
    monkeypatch.setattr(tasks.reconcile_intent, "apply_async",
                        lambda args, **kwargs: started.append((args, kwargs)))
    response = client_a.post("/api/v1/intents", batch("one-chain"), format="json")
    intent_id = response.json()["intent_id"]
    assert tasks.has_lease(tenant_a.schema_name, intent_id)          # submit started the chain
    assert tasks.redrive_intents() == 0                               # alive: nothing to re-drive
    tasks._redis().delete(tasks.lease_key(tenant_a.schema_name, intent_id))   # the chain died
    assert tasks.redrive_intents() == 1
    assert len([s for s in started if s[0][1] == intent_id]) == 2
    # A superseded task exits without doing anything.
    tasks.reconcile_intent(tenant_a.schema_name, intent_id, False, "stale-token")
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(intent_id=intent_id).phase == "Submitted"

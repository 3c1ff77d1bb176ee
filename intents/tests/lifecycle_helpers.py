"""What the lifecycle suites (simulated and Kubernetes backends) share: intent documents, submit,
and reading an intent and its history back from its tenant schema."""

from __future__ import annotations

from django_tenants.utils import schema_context

from intents.models import Intent, IntentEvent


def job(name="job", model="nvidia-a100", count=1, tasks=1, timeout="2h", **constraints) -> dict:
    return {"intent": {
        "objective": "Cost_Minimization",
        "workload": {"type": "batch", "name": name, "image": "busybox", "commands": ["echo hi"],
                     "resources": {"cpu": "2", "memory": "8Gi", "gpu": {"model": model, "count": count}},
                     "batch": {"parallel_tasks": tasks, "timeout": timeout}},
        "constraints": constraints,
    }}


def service(name="svc", model="nvidia-l40s", count=1, replicas=1, **constraints) -> dict:
    return {"intent": {
        "objective": "Cost_Minimization",
        "workload": {"type": "service", "name": name, "image": "nginx", "ports": [{"port": 80}],
                     "resources": {"cpu": "2", "memory": "8Gi", "gpu": {"model": model, "count": count}},
                     "scaling": {"min_replicas": replicas, "max_replicas": max(replicas, 2)}},
        "constraints": constraints,
    }}


def submit(client, doc) -> str:
    response = client.post("/api/v1/intents", doc, format="json")
    assert response.status_code in (201, 202), response.content
    return response.json()["intent_id"]


def get(tenant, intent_id) -> Intent:
    with schema_context(tenant.schema_name):
        return Intent.objects.get(intent_id=intent_id)


def phases(tenant, intent_id) -> list[str]:
    with schema_context(tenant.schema_name):
        return list(IntentEvent.objects.filter(intent__intent_id=intent_id, kind="transition")
                    .order_by("time", "id").values_list("phase", flat=True))

"""The intents API end to end against the seeded demo federation (simulated backend, no delays)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from intents.examples import EXAMPLES, load_example
from intents.models import Intent, IntentEvent
from providers.models import QueueEntry
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


def future(doc: dict) -> dict:
    """The published examples carry deadlines from December 2024; move them into the future."""
    constraints = doc["intent"].get("constraints") or {}
    if "deadline" in constraints:
        constraints["deadline"] = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def small_job(name="train-small", **gpu) -> dict:
    return {"intent": {
        "objective": "Cost_Minimization",
        "workload": {"type": "batch", "name": name, "image": "pytorch/pytorch:2.4.0-cuda12.1",
                     "commands": ["python train.py"], "resources": {"cpu": "4", "memory": "16Gi",
                                                                    "gpu": {"model": "nvidia-a100", **gpu}},
                     "batch": {"timeout": "2h"}},
        "constraints": {"location": "EU"},
    }}


def check_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and body["error_code"] == code
    return body


@pytest.mark.parametrize("name", EXAMPLES)
def test_published_examples_are_accepted_with_sensible_estimates(client_a, demo_federation, name):
    response = client_a.post("/api/v1/intents", future(load_example(name)), format="json")
    assert response.status_code in (201, 202), response.content
    body = response.json()
    assert body["intent_id"].startswith("intent-") and len(body["intent_id"]) == 19
    assert body["status"] in ("pending", "queued")
    assert body["estimated_cost_per_hour"] > 0
    assert body["estimated_cost"].endswith("EUR/hour")
    assert body["estimated_start_time"] is not None or body["status"] == "queued"
    assert isinstance(body["warnings"], list)
    cap = load_example(name)["intent"].get("constraints", {}).get("max_hourly_cost")
    if cap:
        assert body["estimated_cost_per_hour"] <= float(cap.split()[0])


def test_example_with_one_mistake_is_rejected_precisely(client_a, demo_federation):
    doc = future(load_example("llm_inference"))
    doc["intent"]["workload"]["resources"]["gpu"]["modle"] = "nvidia-h100"
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 400, "INVALID_FORMAT")
    assert any(d["field"] == "intent.workload.resources.gpu.modle" and "model" in d["message"]
               for d in body["details"])
    assert Intent.objects.count() == 0


def test_missing_required_field(client_a, demo_federation):
    doc = small_job()
    del doc["intent"]["objective"]
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 400, "MISSING_REQUIRED_FIELD")
    assert body["details"][0]["field"] == "intent.objective"


@pytest.mark.parametrize("change,code,status", [
    ({"model": "nvidia-b200"}, "GPU_MODEL_UNAVAILABLE", 409),
    ({"memory_min": "500Gi"}, "GPU_MEMORY_INSUFFICIENT", 409),
    ({"count": 64}, "GPU_COUNT_INSUFFICIENT", 409),
])
def test_infeasible_gpu_requirements(client_a, demo_federation, change, code, status):
    body = check_error(client_a.post("/api/v1/intents", small_job(**change), format="json"), status, code)
    assert body["message"]
    assert Intent.objects.count() == 0


def test_region_unavailable(client_a, demo_federation):
    doc = small_job()
    doc["intent"]["constraints"]["location"] = "Brazil"
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 409, "REGION_UNAVAILABLE")
    assert body["suggestions"], "another region should be suggested"


def test_cost_limit_exceeded_with_suggestions(client_a, demo_federation):
    doc = small_job()
    doc["intent"]["workload"]["resources"]["gpu"] = {"model": "nvidia-h100", "count": 8}
    doc["intent"]["constraints"]["max_hourly_cost"] = "1 EUR"
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 402, "COST_LIMIT_EXCEEDED")
    assert body["suggestions"]
    for suggestion in body["suggestions"]:
        assert {"alternative", "cost_difference", "performance_impact"} <= set(suggestion)


def test_quota_exceeded(client_a, demo_federation, tenant_a):
    tenant_a.max_concurrent_gpus = 2
    tenant_a.save(update_fields=["max_concurrent_gpus"])
    body = check_error(client_a.post("/api/v1/intents", small_job(count=4), format="json"), 429, "QUOTA_EXCEEDED")
    assert "quota" in body["message"]


def test_submit_get_list_events_solver(client_a, demo_federation, tenant_a):
    created = client_a.post("/api/v1/intents", small_job(count=2), format="json")
    assert created.status_code == 201, created.content
    intent_id = created.json()["intent_id"]
    assert created["Location"] == f"/api/v1/intents/{intent_id}"

    status = client_a.get(f"/api/v1/intents/{intent_id}").json()
    assert status["status"] == "pending" and status["phase"] == "Submitted"
    assert status["name"] == "train-small" and status["objective"] == "Cost_Minimization"
    assert status["current_cost"] == "0.00 EUR" and status["gpus"] == 2
    assert {c["type"] for c in status["conditions"]} >= {"Accepted"}

    listing = client_a.get("/api/v1/intents?status=pending").json()
    assert [i["intent_id"] for i in listing["intents"]] == [intent_id] and listing["count"] == 1
    assert client_a.get("/api/v1/intents?status=running").json()["count"] == 0
    check_error(client_a.get("/api/v1/intents?status=bogus"), 400, "INVALID_FORMAT")

    events = client_a.get(f"/api/v1/intents/{intent_id}/events").json()["events"]
    assert events[0]["reason"] == "Submitted" and {"time", "type", "phase", "reason", "message"} <= set(events[0])

    solver = client_a.get(f"/api/v1/intents/{intent_id}/solver").json()
    assert solver["kind"] == "Solver" and solver["metadata"]["namespace"] == "fluidos"
    assert solver["metadata"]["labels"]["flare.io/intent-id"] == intent_id
    yaml_text = client_a.get(f"/api/v1/intents/{intent_id}/solver?format=yaml")
    assert yaml_text["Content-Type"].startswith("application/yaml") and b"kind: Solver" in yaml_text.content
    assert AuditEntry.objects.filter(action="intent.submit", target=intent_id, tenant=tenant_a).exists()


def test_live_names_are_unique(client_a, demo_federation):
    assert client_a.post("/api/v1/intents", small_job(), format="json").status_code == 201
    body = check_error(client_a.post("/api/v1/intents", small_job(), format="json"), 400, "INVALID_FORMAT")
    assert body["details"][0]["field"] == "intent.workload.name"


def test_cancel_pending_intent(client_a, demo_federation, tenant_a):
    intent_id = client_a.post("/api/v1/intents", small_job(), format="json").json()["intent_id"]
    response = client_a.delete(f"/api/v1/intents/{intent_id}")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled" and response.json()["phase"] == "Cancelled"
    assert client_a.delete(f"/api/v1/intents/{intent_id}").json()["status"] == "cancelled"  # idempotent
    # The name is free again once the intent is no longer live.
    assert client_a.post("/api/v1/intents", small_job(), format="json").status_code == 201
    assert AuditEntry.objects.filter(action="intent.cancel", target=intent_id).exists()


def test_queued_when_the_federation_is_full(client_a, demo_federation, tenant_a):
    from providers import ledger
    from providers.models import GpuNode

    h100 = list(GpuNode.objects.filter(model="nvidia-h100"))
    for node in h100:  # another tenant holds every H100
        ledger.reserve("t_globex", f"intent-hold{node.pk}", [ledger.Hold(node.pk, node.count, node.hourly_rate)])
    doc = small_job(name="needs-h100")
    doc["intent"]["workload"]["resources"]["gpu"] = {"model": "nvidia-h100", "count": 1}
    doc["intent"]["constraints"] = {}
    response = client_a.post("/api/v1/intents", doc, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["queue_position"] == 1
    assert body["suggestions"], "a queued intent gets alternatives"
    assert QueueEntry.objects.filter(intent_id=body["intent_id"]).exists()
    status = client_a.get(f"/api/v1/intents/{body['intent_id']}").json()
    assert status["status"] == "queued" and status["phase"] == "Submitted" and status["queue_position"] == 1


def test_fallback_fail_refuses_instead_of_queueing(client_a, demo_federation):
    from providers import ledger
    from providers.models import GpuNode

    for node in GpuNode.objects.filter(model="nvidia-h100"):
        ledger.reserve("t_globex", f"intent-hold{node.pk}", [ledger.Hold(node.pk, node.count, node.hourly_rate)])
    doc = small_job(name="no-wait")
    doc["intent"]["workload"]["resources"]["gpu"] = {"model": "nvidia-h100"}
    doc["intent"]["constraints"] = {"negotiation": {"fallback_strategy": "fail"}}
    check_error(client_a.post("/api/v1/intents", doc, format="json"), 409, "INSUFFICIENT_RESOURCES")


def test_tenant_isolation(client_a, client_b, demo_federation, tenant_a):
    intent_id = client_a.post("/api/v1/intents", small_job(), format="json").json()["intent_id"]
    assert client_b.get("/api/v1/intents").json()["count"] == 0
    for path in (f"/api/v1/intents/{intent_id}", f"/api/v1/intents/{intent_id}/events",
                 f"/api/v1/intents/{intent_id}/solver"):
        check_error(client_b.get(path), 404, "NOT_FOUND")
    check_error(client_b.delete(f"/api/v1/intents/{intent_id}"), 404, "NOT_FOUND")
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(intent_id=intent_id).status == "pending"
    # Same name in another tenant is fine.
    assert client_b.post("/api/v1/intents", small_job(), format="json").status_code == 201


@pytest.mark.parametrize("perms,method,path,ok", [
    (["intents:read"], "post", "/api/v1/intents", False),
    (["intents:write"], "get", "/api/v1/intents", False),
    (["intents:read"], "get", "/api/v1/intents", True),
    (["intents:read"], "get", "/api/v1/resources", False),
    (["resources:read"], "get", "/api/v1/resources", True),
])
def test_permissions(api, issue, user_a, tenant_a, demo_federation, perms, method, path, ok):
    _, secret = issue(user_a, tenant_a, perms)
    client = api(secret)
    response = getattr(client, method)(path, small_job() if method == "post" else None, format="json")
    if ok:
        assert response.status_code == 200
    else:
        check_error(response, 403, "INSUFFICIENT_PERMISSIONS")


def test_delete_needs_delete_permission(api, issue, user_a, tenant_a, client_a, demo_federation):
    intent_id = client_a.post("/api/v1/intents", small_job(), format="json").json()["intent_id"]
    _, secret = issue(user_a, tenant_a, ["intents:read", "intents:write"])
    check_error(api(secret).delete(f"/api/v1/intents/{intent_id}"), 403, "INSUFFICIENT_PERMISSIONS")


def test_list_query_count_is_bounded(client_a, demo_federation, django_assert_max_num_queries):
    for index in range(6):
        client_a.post("/api/v1/intents", small_job(name=f"job-{index}"), format="json")
    with django_assert_max_num_queries(8):
        body = client_a.get("/api/v1/intents").json()
    assert body["count"] == 6


def test_bad_documents_change_nothing(client_a, demo_federation):
    for payload in ([], "x", {"intent": None}, {"intent": {"objective": 5}}, {"intent": copy.deepcopy({})}):
        response = client_a.post("/api/v1/intents", payload, format="json")
        assert response.status_code == 400, (payload, response.content)
    assert Intent.objects.count() == 0 and IntentEvent.objects.count() == 0


def test_cpu_and_memory_of_one_unit_must_fit_a_node(client_a, demo_federation):
    doc = small_job(name="too-many-cpus")
    doc["intent"]["workload"]["resources"]["cpu"] = "4096"
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 409, "INSUFFICIENT_RESOURCES")
    assert "CPU" in body["message"]
    doc["intent"]["workload"]["resources"]["cpu"] = "4"
    doc["intent"]["workload"]["resources"]["memory"] = "64Ti"
    body = check_error(client_a.post("/api/v1/intents", doc, format="json"), 409, "INSUFFICIENT_RESOURCES")
    assert "memory" in body["message"]


def test_autoscaling_beyond_reserved_gpus_is_announced(client_a, demo_federation):
    doc = future(load_example("llm_inference"))   # auto_scale with min 2, max 10 replicas
    body = client_a.post("/api/v1/intents", doc, format="json").json()
    assert any(w.startswith("scaling.auto_scale: FLARE reserves GPUs for min_replicas (2)") for w in body["warnings"])

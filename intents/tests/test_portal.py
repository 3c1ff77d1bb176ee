"""Portal pages: login, tenant scoping, roles, submit/cancel through the services, detail page."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from intents import forms
from intents.models import Intent
from intents.reconcile import advance
from intents.services import submit_intent
from tenants.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db

PAGES = ["/", "/intents/new", "/resources", "/tokens", "/members", "/webhooks", "/audit", "/dashboard/usage.json"]


def small_job(name="train-small", model="nvidia-a100", count=1, **constraints) -> dict:
    return {"intent": {
        "objective": "Cost_Minimization",
        "workload": {"type": "batch", "name": name, "image": "pytorch/pytorch:2.4.0-cuda12.1",
                     "commands": ["python train.py"],
                     "resources": {"cpu": "4", "memory": "16Gi", "gpu": {"model": model, "count": count}},
                     "batch": {"timeout": "2h"}},
        "constraints": {"location": "EU", **constraints},
    }}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def submit(tenant, user, doc) -> Intent:
    with schema_context(tenant.schema_name):
        intent = submit_intent(tenant, user, doc).intent
    connection.set_schema_to_public()
    return intent


def drive(tenant, intent_id, until: str, max_steps: int = 40) -> Intent:
    for _ in range(max_steps):
        with schema_context(tenant.schema_name):
            intent = Intent.objects.get(intent_id=intent_id)
            if intent.phase == until:
                break
            advance(tenant.schema_name, intent_id)
    with schema_context(tenant.schema_name):
        intent = Intent.objects.get(intent_id=intent_id)
    connection.set_schema_to_public()
    return intent


@pytest.mark.parametrize("path", PAGES)
def test_every_page_requires_login(client, tenant_a, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_and_sign_in(client, user_a):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Sign in" in page.content and b"portal.css" in page.content
    bad = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 200 and b"alert-error" in bad.content
    good = client.post("/accounts/login/", {"username": "alice", "password": "pw-acme"})
    assert good.status_code == 302 and good["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200 and b"Acme AI" in dashboard.content


def test_logout_is_a_post(user_a):
    client = login(user_a)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_dashboard_lists_only_the_tenants_intents(demo_federation, tenant_a, tenant_b, user_a, user_b):
    mine = submit(tenant_a, user_a, small_job("acme-train"))
    theirs = submit(tenant_b, user_b, small_job("globex-secret-train"))
    response = login(user_a).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert mine.intent_id in html and "acme-train" in html
    assert theirs.intent_id not in html and "globex-secret-train" not in html
    rows = json.loads(re.search(r'<script id="intent-data" type="application/json">(.*?)</script>', html, re.S)[1])
    assert [r["intent_id"] for r in rows] == [mine.intent_id]
    for label in ("GPUs in use", "Hourly spend", "Active intents", "Spent this month"):
        assert label in html


def test_another_tenants_intent_is_404(demo_federation, tenant_a, tenant_b, user_a, user_b):
    theirs = submit(tenant_b, user_b, small_job("globex-train"))
    client = login(user_a)
    assert client.get(f"/intents/{theirs.intent_id}").status_code == 404
    assert client.post(f"/intents/{theirs.intent_id}/cancel").status_code == 404
    with schema_context(tenant_b.schema_name):
        assert Intent.objects.get(intent_id=theirs.intent_id).status == "pending"


def test_staff_without_tenant_sees_a_clear_message(demo_federation, tenant_a, user_a, staff_user):
    submit(tenant_a, user_a, small_job("acme-private"))
    client = login(staff_user)
    for path in ("/", "/intents/new", "/tokens", "/resources", "/members", "/webhooks", "/dashboard/usage.json"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert b"belongs to no tenant" in response.content
        assert b"acme-private" not in response.content
    audit = client.get("/audit")
    assert audit.status_code == 200
    assert b"intent.submit" in audit.content and b"acme" in audit.content


def test_a_bearer_header_cannot_switch_the_portal_to_another_tenant(demo_federation, tenant_a, tenant_b, user_a,
                                                                    user_b, issue):
    _, bob_reader = issue(user_b, tenant_b, ["intents:read"], name="bob-reader")
    theirs = submit(tenant_b, user_b, small_job("globex-only"))
    client = login(user_a)
    header = {"HTTP_AUTHORIZATION": f"Bearer {bob_reader}"}
    for path in ("/", "/members", "/webhooks", f"/intents/{theirs.intent_id}", "/dashboard/usage.json"):
        response = client.get(path, **header)
        assert response.status_code == 403, path
        assert b"globex-only" not in response.content
    refused = client.post("/members", {"username": "intruder", "role": "admin", "password": "long-enough-pw"}, **header)
    assert refused.status_code == 403
    assert not AuditEntry.objects.filter(target="intruder").exists()
    assert client.get("/").status_code == 200  # without the header, alice's own tenant as usual


def test_member_cannot_open_admin_pages(member_a, user_a):
    member = login(member_a)
    for path in ("/members", "/webhooks", "/audit"):
        response = member.get(path)
        assert response.status_code == 403, path
        assert b"Not allowed" in response.content
    assert b'href="/members"' not in member.get("/").content
    admin = login(user_a)
    for path in ("/members", "/webhooks", "/audit"):
        assert admin.get(path).status_code == 200, path


def test_submit_page_offers_the_published_templates(user_a, demo_federation):
    response = login(user_a).get("/intents/new?template=llm_inference")
    assert response.status_code == 200
    html = response.content.decode()
    templates = json.loads(re.search(r'id="intent-templates" type="application/json">(.*?)</script>', html, re.S)[1])
    assert set(templates) >= {"llm_inference", "distributed_training", "jupyter_service"}
    assert templates["jupyter_service"]["intent"]["workload"]["name"] == "gpu-jupyter-lab"
    assert "deepseek-r1-inference" in html  # the chosen template pre-fills the editor
    assert 'list="gpu-models"' in html and "nvidia-h100" in html


def test_submit_from_a_template_with_field_overrides(user_a, tenant_a, demo_federation):
    document = json.dumps(forms.template_document("jupyter_service"))
    response = login(user_a).post("/intents/new", {"document": document, "name": "my-notebook", "gpu_count": "1"})
    assert response.status_code == 302, response.content.decode()[:2000]
    with schema_context(tenant_a.schema_name):
        intent = Intent.objects.get(name="my-notebook")
        assert intent.document["workload"]["image"] == "jupyter/tensorflow-notebook:latest"
        assert intent.owner_username == "alice"
    assert response["Location"] == f"/intents/{intent.intent_id}"
    assert AuditEntry.objects.filter(tenant=tenant_a, action="intent.submit", target=intent.intent_id).exists()


def test_submit_from_fields_only(user_a, tenant_a, demo_federation):
    response = login(user_a).post("/intents/new", {
        "name": "fields-only", "workload_type": "batch", "image": "busybox", "commands": "echo one\necho two",
        "gpu_model": "nvidia-a100", "gpu_count": "2", "gpu_memory": "40Gi", "objective": "Cost_Minimization",
        "location": "EU", "max_hourly_cost": "40 EUR", "document": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    with schema_context(tenant_a.schema_name):
        doc = Intent.objects.get(name="fields-only").document
    assert doc["workload"]["commands"] == ["echo one", "echo two"]
    assert doc["workload"]["resources"]["gpu"]["count"] == 2
    assert doc["constraints"]["location"] == "EU"


def test_validation_errors_are_shown_next_to_their_fields(user_a, tenant_a, demo_federation):
    client = login(user_a)
    document = forms.template_document("jupyter_service")
    document["intent"]["workload"]["resources"]["gpu"]["modle"] = "x"
    response = client.post("/intents/new", {"document": json.dumps(document), "name": "Not_A_DNS_Label"})
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["name"]
    assert any("intent.workload.resources.gpu.modle" in e for e in form.errors["document"])
    html = response.content.decode()
    assert 'data-field-name="name"' in html and "has-error" in html

    missing = client.post("/intents/new", {"document": json.dumps({"intent": {"workload": {"name": "x"}}})})
    assert missing.status_code == 400
    assert missing.context["form"].errors["objective"]

    unavailable = client.post("/intents/new", {"document": json.dumps(forms.template_document("jupyter_service")),
                                               "gpu_model": "nvidia-b200"})
    assert unavailable.status_code == 400
    assert unavailable.context["problem"]["code"] == "GPU_MODEL_UNAVAILABLE"
    assert unavailable.context["form"].errors["gpu_model"]
    assert b"GPU_MODEL_UNAVAILABLE" in unavailable.content

    broken = client.post("/intents/new", {"document": "{not json"})
    assert broken.status_code == 400 and "Not valid JSON" in broken.context["form"].errors["document"][0]
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.count() == 0


@pytest.mark.parametrize("path,field", [
    ("intent.workload.name", "name"), ("intent.workload.commands[0]", "commands"),
    ("intent.workload.resources.gpu.memory", "gpu_memory"), ("gpu.count", "gpu_count"),
    ("constraints.max_hourly_cost", "max_hourly_cost"), ("intent.constraints.location", "location"),
    ("intent.workload.storage.volumes[0].size", None),
])
def test_envelope_paths_map_to_form_fields(path, field):
    assert forms.field_for_path(path) == field


def test_detail_page_timeline_solver_placement(user_a, tenant_a, demo_federation):
    intent = submit(tenant_a, user_a, small_job("detail-job"))
    intent = drive(tenant_a, intent.intent_id, "Running")
    assert intent.phase == "Running"
    response = login(user_a).get(f"/intents/{intent.intent_id}")
    assert response.status_code == 200
    html = response.content.decode()
    for reason in ("Submitted", "SolverCreated", "CandidateChosen", "ReservationSolved", "WorkloadRunning"):
        assert reason in html
    assert "Discovering → Reserving" in html
    assert "kind: Solver" in html and "apiVersion: nodecore.fluidos.eu" in html
    chosen = intent.placement["chosen"]["allocations"][0]
    assert chosen["node"] in html and "Alternatives it beat" in html
    alternative = intent.placement["alternatives"][0]
    assert alternative["node"] in html and alternative["hourly_cost"] in html
    assert "Cancel intent" in html
    assert response.context["steps"][6] == {"phase": "Running", "state": "current"}


def test_queued_intent_shows_its_queue_position_and_suggestions(user_a, tenant_a, make_node):
    make_node("Solo", model="nvidia-a100", count=2, rate="2.00")
    make_node("Other", model="nvidia-l40s", count=4, rate="1.00")
    first = submit(tenant_a, user_a, small_job("first-job", count=2))
    assert drive(tenant_a, first.intent_id, "Running").phase == "Running"
    second = submit(tenant_a, user_a, small_job("second-job", count=2))
    assert second.phase == "Queued"
    response = login(user_a).get(f"/intents/{second.intent_id}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Queued" in html and "Start sooner" in html
    assert second.suggestions and second.suggestions[0]["alternative"] in html
    assert "Not placed yet" in html


def test_cancel_from_the_portal(user_a, tenant_a, demo_federation):
    intent = submit(tenant_a, user_a, small_job("cancel-me"))
    intent = drive(tenant_a, intent.intent_id, "Running")
    client = login(user_a)
    response = client.post(f"/intents/{intent.intent_id}/cancel")
    assert response.status_code == 302 and response["Location"] == f"/intents/{intent.intent_id}"
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(pk=intent.pk).phase == "Cancelled"
    assert AuditEntry.objects.filter(tenant=tenant_a, action="intent.cancel", target=intent.intent_id).exists()
    page = client.get(response["Location"])
    assert b"cancelled" in page.content and b"Cancel intent" not in page.content
    assert client.get(f"/intents/{intent.intent_id}/cancel").status_code == 405


def test_cancel_needs_csrf(user_a, tenant_a, demo_federation):
    intent = submit(tenant_a, user_a, small_job("csrf-job"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_a)
    assert client.post(f"/intents/{intent.intent_id}/cancel").status_code == 403
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(pk=intent.pk).phase != "Cancelled"


def test_resources_filter(user_a, demo_federation):
    client = login(user_a)
    everything = client.get("/resources").context["rows"]
    assert {r["model"] for r in everything} >= {"nvidia-h100", "nvidia-a100"}
    h100 = client.get("/resources?model=nvidia-h100&location=EU").context["rows"]
    assert h100 and all(r["model"] == "nvidia-h100" for r in h100)
    cheap = client.get("/resources?max_price=1.00").context["rows"]
    assert all(r["cost_per_hour_value"] <= 1.0 for r in cheap)
    bad = client.get("/resources?min_memory=lots")
    assert bad.status_code == 200 and bad.context["form"].errors["min_memory"]


def test_tokens_secret_shown_once_then_revoked(user_a, tenant_a, member_a):
    client = login(user_a)
    created = client.post("/tokens", {"name": "alice-workstation", "expires_in": "30d",
                                      "permissions": ["intents:read", "intents:write"]})
    assert created.status_code == 201
    secret = created.context["issued"].secret
    assert secret.startswith("flr_") and secret in created.content.decode()
    listing = client.get("/tokens").content.decode()
    assert "alice-workstation" in listing and secret not in listing
    token = ApiToken.objects.get(name="alice-workstation", tenant=tenant_a)
    assert AuditEntry.objects.filter(action="token.issue", target=token.token_id).exists()

    # A member sees only their own tokens and cannot revoke an admin's.
    member = login(member_a)
    assert "alice-workstation" not in member.get("/tokens").content.decode()
    assert member.post(f"/tokens/{token.token_id}/revoke").status_code == 404
    # …nor grant what they do not hold.
    refused = member.post("/tokens", {"name": "x", "expires_in": "30d", "permissions": ["tokens:manage"]})
    assert refused.status_code == 400

    assert client.post(f"/tokens/{token.token_id}/revoke").status_code == 302
    token.refresh_from_db()
    assert token.status == "revoked"
    assert AuditEntry.objects.filter(action="token.revoke", target=token.token_id).exists()


def test_admin_adds_a_member_with_a_generated_password(user_a, tenant_a):
    client = login(user_a)
    response = client.post("/members", {"username": "dave", "role": "member", "email": "dave@example.com"})
    assert response.status_code == 200
    username, password = response.context["created_password"]
    assert username == "dave" and password in response.content.decode()
    entry = AuditEntry.objects.get(action="member.upsert", target="dave")
    assert entry.tenant == tenant_a and entry.actor == user_a
    dave = Client()
    assert dave.login(username="dave", password=password)
    assert dave.get("/").status_code == 200

    promoted = client.post("/members", {"username": "dave", "role": "admin"})
    assert promoted.status_code == 302
    assert AuditEntry.objects.filter(action="member.upsert", target="dave", data__role="admin").exists()


def test_members_page_guards(user_a, user_b, tenant_a, staff_user):
    client = login(user_a)
    last_admin = client.post("/members", {"username": "alice", "role": "member"})
    assert last_admin.status_code == 400 and last_admin.context["form"].errors["role"]
    other_tenant = client.post("/members", {"username": "bob", "role": "member"})
    assert other_tenant.status_code == 400 and "another tenant" in other_tenant.context["form"].errors["username"][0]
    staff = client.post("/members", {"username": "pat", "role": "member"})
    assert staff.status_code == 400 and staff.context["form"].errors["username"]
    assert not AuditEntry.objects.filter(action="member.upsert", target__in=["alice", "bob", "pat"],
                                         actor=user_a).exists()


def test_audit_page_scoping(demo_federation, tenant_a, tenant_b, user_a, user_b, staff_user):
    mine = submit(tenant_a, user_a, small_job("acme-audited"))
    theirs = submit(tenant_b, user_b, small_job("globex-audited"))
    html = login(user_a).get("/audit").content.decode()
    assert mine.intent_id in html and theirs.intent_id not in html
    staff = login(staff_user).get("/audit").content.decode()
    assert mine.intent_id in staff and theirs.intent_id in staff
    filtered = login(staff_user).get("/audit?tenant=globex").content.decode()
    assert theirs.intent_id in filtered and mine.intent_id not in filtered

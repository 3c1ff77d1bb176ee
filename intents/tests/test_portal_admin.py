"""The intents admin exists only inside a tenant's schema, is read-only, and acts through services."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from intents.models import Intent
from tenants.models import AuditEntry

from .test_portal import small_job, submit

pytestmark = pytest.mark.django_db


def test_staff_without_tenant_never_sees_tenant_models(staff_user, tenant_a, user_a, demo_federation):
    submit(tenant_a, user_a, small_job("admin-hidden"))
    client = Client()
    client.force_login(staff_user)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"/admin/intents/" not in index.content
    assert client.get("/admin/intents/intent/").status_code in (403, 404)
    assert client.get("/admin/intents/webhook/").status_code in (403, 404)


def test_tenant_staff_browses_and_cancels_through_the_service(tenant_a, user_a, demo_federation):
    user_a.is_staff = user_a.is_superuser = True
    user_a.save()
    intent = submit(tenant_a, user_a, small_job("admin-visible"))
    client = Client()
    client.force_login(user_a)
    listing = client.get("/admin/intents/intent/")
    assert listing.status_code == 200 and b"admin-visible" in listing.content
    assert client.get("/admin/intents/intent/add/").status_code == 403
    with schema_context(tenant_a.schema_name):
        pk = Intent.objects.get(intent_id=intent.intent_id).pk
    assert client.get(f"/admin/intents/intent/{pk}/change/").status_code == 200
    response = client.post("/admin/intents/intent/", {"action": "cancel_selected", "_selected_action": [pk]})
    assert response.status_code == 302
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.get(pk=pk).phase == "Cancelled"
    assert AuditEntry.objects.filter(action="intent.cancel", target=intent.intent_id, actor=user_a).exists()

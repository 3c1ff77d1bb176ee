"""create_tenant, issue_token and demo_setup as an operator runs them."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from tenants.models import ApiToken, Membership, Tenant
from tenants.services import hash_secret

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_tenant_is_idempotent_and_makes_its_first_admin(tenant_a):
    first = run("create_tenant", "Acme AI", "--slug", "acme", "--admin", "alice")
    assert "Found tenant acme" in first and "already exists" in first
    assert Tenant.objects.filter(slug="acme").count() == 1
    assert Membership.objects.get(user__username="alice").role == "admin"


def test_create_tenant_refuses_a_user_of_another_tenant(tenant_a, tenant_b):
    with pytest.raises(CommandError, match="already belongs to tenant"):
        run("create_tenant", "Acme AI", "--slug", "acme", "--admin", "bob")


def test_issue_token_prints_the_secret_once_and_stores_its_hash(user_a):
    output = run("issue_token", "alice", "--name", "laptop", "--permissions", "intents:read")
    secret = re.search(r"flr_[A-Za-z0-9_-]+", output).group(0)
    token = ApiToken.objects.get(name="laptop")
    assert token.secret_hash == hash_secret(secret) and token.permissions == ["intents:read"]
    again = run("issue_token", "alice", "--name", "laptop", "--reuse")
    assert "already exists" in again and secret not in again
    assert not re.search(r"flr_[A-Za-z0-9_-]{20,}", again)  # only the 8-character prefix is shown


def test_issue_token_for_a_stranger_fails(db):
    with pytest.raises(CommandError, match="not a member"):
        run("issue_token", "nobody")


def test_demo_setup_prints_a_working_token_and_submits_samples(client, demo_federation):
    from rest_framework.test import APIClient

    from intents.models import Intent

    output = run("demo_setup", "--tenant", "demo")
    secret = re.search(r"Token:\s+(flr_[A-Za-z0-9_-]+)", output).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    verified = api.get("/api/v1/auth/verify").json()
    assert verified["tenant"] == "demo" and verified["status"] == "authenticated"
    with schema_context("t_demo"):
        assert Intent.objects.count() == 3
    # Running it again revokes the previous demo token and keeps the tenant's intents.
    second = run("demo_setup", "--tenant", "demo")
    assert api.get("/api/v1/auth/verify").json()["error_code"] == "TOKEN_REVOKED"
    assert "Submitted sample" not in second


# --- members ---------------------------------------------------------------------------------


def test_remove_member_revokes_tokens_and_closes_the_account(tenant_a, user_a, member_a, issue, api):
    from tenants.models import AuditEntry
    from tenants.services import remove_member

    _, secret = issue(member_a, tenant_a, ["intents:read"])
    remove_member(tenant=tenant_a, username="carol", actor=user_a)
    member_a.refresh_from_db()
    assert member_a.is_active is False and not Membership.objects.filter(user=member_a).exists()
    assert api(secret).get("/api/v1/auth/verify").json()["error_code"] == "TOKEN_REVOKED"
    assert AuditEntry.objects.filter(action="member.remove", target="carol", tenant=tenant_a).exists()


def test_the_last_admin_can_be_neither_demoted_nor_removed(tenant_a, user_a, member_a, staff_user):
    from tenants.services import ServiceError, add_member, remove_member

    with pytest.raises(ServiceError, match="at least one admin"):
        add_member(tenant=tenant_a, username="alice", role="member", actor=user_a)
    with pytest.raises(ServiceError, match="at least one admin"):
        remove_member(tenant=tenant_a, username="alice", actor=staff_user)
    with pytest.raises(ServiceError, match="yourself"):
        remove_member(tenant=tenant_a, username="alice", actor=user_a)
    assert Membership.objects.get(user=user_a).role == "admin"


def test_portal_removes_a_member_and_refuses_a_foreign_one(client, tenant_a, tenant_b, user_a, user_b, member_a):
    client.force_login(user_a)
    response = client.post("/members/bob/remove", follow=True)
    assert "not a member" in response.content.decode()
    assert Membership.objects.filter(user=user_b, tenant=tenant_b).exists()
    response = client.post("/members/carol/remove", follow=True)
    assert "carol was removed" in response.content.decode()
    assert not Membership.objects.filter(user__username="carol").exists()


def test_a_provider_staff_account_cannot_join_a_tenant(tenant_a, user_a, staff_user):
    from tenants.services import ServiceError, add_member

    with pytest.raises(ServiceError, match="provider staff account"):
        add_member(tenant=tenant_a, username=staff_user.username, role="member", actor=user_a)
    assert not Membership.objects.filter(user=staff_user).exists()

"""Shared fixtures: real PostgreSQL schemas for two tenants, and a standing cast.

Tenant schemas are created once per session (STACK.md: ~0.4 s each); ordinary tests run in
the `db` fixture's rolled-back transaction and find the tenants with idempotent lookups.
"""

from __future__ import annotations

import os

os.environ.setdefault("FLARE_TESTING", "true")
os.environ.setdefault("FLARE_API_RATE", "100000/min")

import pytest  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

TENANTS = {
    "acme": {"name": "Acme AI", "admin": "alice"},
    "globex": {"name": "Globex Research", "admin": "bob"},
}


def _setup_tenants():
    from tenants import services

    services.ensure_public_tenant()
    for slug, spec in TENANTS.items():
        services.create_tenant(name=spec["name"], slug=slug, admin_username=spec["admin"], admin_password="pw-" + slug)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _setup_tenants()
    yield


@pytest.fixture(autouse=True)
def _public_schema_after_test():
    yield
    connection.set_schema_to_public()


@pytest.fixture
def tenant_a(db):
    from tenants.models import Tenant

    return Tenant.objects.get(slug="acme")


@pytest.fixture
def tenant_b(db):
    from tenants.models import Tenant

    return Tenant.objects.get(slug="globex")


@pytest.fixture
def user_a(tenant_a):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="alice")


@pytest.fixture
def user_b(tenant_b):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bob")


@pytest.fixture
def member_a(tenant_a):
    from tenants import services

    return services.add_member(tenant=tenant_a, username="carol", role="member", password="pw-carol").user


@pytest.fixture
def staff_user(db):
    """A provider administrator: staff, no tenant."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(
        username="pat", defaults={"is_staff": True, "is_superuser": True, "email": "pat@example.com"}
    )
    if created:
        user.set_password("pw-pat")
        user.save()
    return user


@pytest.fixture
def issue(db):
    """issue(user, tenant, permissions=None, **kw) → (ApiToken, secret)."""
    from tenants import services

    def _issue(user, tenant, permissions=None, name="test", **kwargs):
        issued = services.issue_token(tenant=tenant, creator=user, name=name, permissions=permissions, **kwargs)
        return issued.token, issued.secret

    return _issue


@pytest.fixture
def api(db):
    """api(secret=None) → a DRF APIClient with the bearer header set."""

    def _client(secret: str | None = None) -> APIClient:
        client = APIClient()
        if secret:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return _client


ALL_PERMS = ["intents:read", "intents:write", "intents:delete", "resources:read", "tokens:manage"]


@pytest.fixture
def client_a(api, issue, user_a, tenant_a):
    _, secret = issue(user_a, tenant_a, ALL_PERMS, name="a-all")
    return api(secret)


@pytest.fixture
def client_b(api, issue, user_b, tenant_b):
    _, secret = issue(user_b, tenant_b, ALL_PERMS, name="b-all")
    return api(secret)

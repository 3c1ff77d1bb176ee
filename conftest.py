"""Shared fixtures: real PostgreSQL schemas for two tenants, and a standing cast.

Tenant schemas are created once per session (STACK.md: ~0.4 s each); ordinary tests run in
the `db` fixture's rolled-back transaction and find the tenants with idempotent lookups.
"""

from __future__ import annotations

import os

pytest_plugins = ["tests.k8s.fixtures"]

import pytest  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

TENANTS = {
    "acme": {"name": "Acme AI", "admin": "alice"},
    "globex": {"name": "Globex Research", "admin": "bob"},
}


def _setup_tenants():
    """Idempotent: schemas survive a transactional test's flush, rows are recreated cheaply."""
    from tenants import services

    services.ensure_public_tenant()
    for slug, spec in TENANTS.items():
        services.create_tenant(name=spec["name"], slug=slug, admin_username=spec["admin"], admin_password="pw-" + slug)


def _tenant(slug: str):
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:  # a transactional test flushed the public rows
        _setup_tenants()
        tenant = Tenant.objects.get(slug=slug)
    return tenant


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
    return _tenant("acme")


@pytest.fixture
def tenant_b(db):
    return _tenant("globex")


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


# --- inventory ---------------------------------------------------------------------------------


@pytest.fixture
def make_node(db):
    """make_node(provider_name="Neo", model="nvidia-h100", count=8, rate="2.50", **traits) → GpuNode."""
    from decimal import Decimal

    from providers.gpu_catalog import lookup
    from providers.models import GpuNode, Provider

    counter = {"n": 0}

    def _make(provider_name="NeoCloud", model="nvidia-h100", count=8, rate="2.50", region="eu-west-1",
              provider_attrs=None, **traits):
        provider, _ = Provider.objects.get_or_create(
            name=provider_name,
            defaults={"fluidos_domain": provider_name.lower().replace(" ", "-") + ".fluidos.example",
                      "fluidos_node_id": provider_name.lower().replace(" ", "-"), "region": region,
                      "location_group": "EU" if region.startswith("eu") else "US",
                      "latency_ms": 10, "carbon_intensity": 200, "pue": 1.3, "renewable_share": 0.5,
                      **(provider_attrs or {})},
        )
        spec = lookup(model)
        counter["n"] += 1
        values = {
            "vendor": spec.vendor if spec else "nvidia", "model": model, "count": count,
            "memory_per_gpu": spec.memory_bytes if spec else 80 * 2**30,
            "cores_per_gpu": spec.cores if spec else 10000,
            "architecture": spec.architecture if spec else "hopper", "tier": spec.tier if spec else "premium",
            "fp32_tflops": spec.fp32_tflops if spec else 60.0,
            "compute_capability": (spec.compute_capability if spec else "9.0") or "",
            "interconnect": spec.interconnect if spec else "nvlink", "multi_gpu_efficiency": 0.9,
            "hourly_rate": Decimal(rate) if rate is not None else None, "currency": "EUR", "region": region,
            "zone": region + "a",
        }
        values.update(traits)
        name = values.pop("name", f"{model}-{counter['n']}")
        return GpuNode.objects.create(provider=provider, name=name, cpu="64", memory="512Gi", pods=110, **values)

    return _make


@pytest.fixture
def demo_federation(db):
    """The realistic demo federation (7 providers, 79 nodes) in the inventory."""
    from providers.demo_data import generate_federation
    from providers.services import seed_federation

    report = seed_federation(generate_federation())
    assert not report.errors, report.errors
    return report


@pytest.fixture(autouse=True)
def _fresh_federation_backend(settings):
    """Each test gets a fresh backend instance built from its (possibly overridden) settings."""
    settings.FLARE_SIM_STEP_DELAY = 0
    settings.FLARE_SIM_FAULT_RATE = 0
    try:
        from providers.federation import reset_federation
    except ImportError:
        yield
        return
    reset_federation()
    yield
    reset_federation()

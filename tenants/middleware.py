"""Tenant routing by credential (STACK.md): the bearer token, else the session user, else public.

Never from a hostname, URL or body field. Runs after session and authentication middleware;
nothing before it touches tenant tables.
"""

from __future__ import annotations

from django.db import connection
from django_tenants.middleware.main import TenantMainMiddleware

from flare_portal.middleware import set_log_schema

from .models import Tenant
from .services import TokenRejected, authenticate_secret


def bearer_secret(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()


def public_tenant() -> Tenant:
    return Tenant.objects.filter(schema_name="public").first() or Tenant(schema_name="public", name="Public", slug="public")


# Probes must answer from their own checks, never fail on the tenant lookup (a database outage
# would otherwise restart healthy pods, and /readyz could not report it in its own words).
PROBE_PATHS = ("/healthz", "/readyz")


class CredentialTenantMiddleware(TenantMainMiddleware):
    def process_request(self, request):
        connection.set_schema_to_public()
        request.api_token = None
        request.api_auth_error = None
        if request.path in PROBE_PATHS:
            return None
        tenant = None
        secret = bearer_secret(request)
        if secret is not None:
            try:
                token = authenticate_secret(secret)
            except TokenRejected as rejected:
                request.api_auth_error = rejected
            else:
                request.api_token = token
                tenant = token.tenant
        else:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                membership = getattr(user, "membership", None) if hasattr(user, "membership") else None
                if membership is not None and membership.tenant.is_active:
                    tenant = membership.tenant
        if tenant is None:
            tenant = public_tenant()
        request.tenant = tenant
        connection.set_tenant(tenant)
        set_log_schema(tenant.schema_name)

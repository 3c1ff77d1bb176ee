"""DRF authentication: only reads what `CredentialTenantMiddleware` already resolved."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from flare_portal.api.errors import FlareAPIException


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        django_request = request._request
        error = getattr(django_request, "api_auth_error", None)
        if error is not None:
            raise FlareAPIException(401, error.code, error.message)
        token = getattr(django_request, "api_token", None)
        if token is None:
            return None
        return (token.user, token)

    def authenticate_header(self, request):
        return 'Bearer realm="flare"'


class SessionTenantAuthentication(authentication.SessionAuthentication):
    """The portal's own calls (same origin, CSRF-checked) authenticate by session."""


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "flr_…"}


__all__ = ["BearerTokenAuthentication", "SessionTenantAuthentication", "exceptions"]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.SessionTenantAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}

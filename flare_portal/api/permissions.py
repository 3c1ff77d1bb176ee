"""Permissions: a token's permission set, and a tenant that fails closed."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from .errors import FlareAPIException


class HasTokenPermission(BasePermission):
    """The view names what it needs: `required_permissions = {"GET": "intents:read", ...}`.

    A view without a mapping only needs an authenticated caller. Authentication is checked
    here too so a missing credential answers 401 (not 403).
    """

    def has_permission(self, request, view) -> bool:
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise FlareAPIException(401, "AUTHENTICATION_FAILED",
                                    "Authentication required: send 'Authorization: Bearer <token>'.")
        needed = required_permission(view, request)
        if needed is None:
            return True
        token = request.auth
        if token is None:  # session-authenticated portal call: the member's role decides
            membership = getattr(request.user, "membership", None)
            allowed = membership.permissions if membership else frozenset()
        else:
            allowed = token.effective_permissions
        if needed not in allowed:
            raise FlareAPIException(403, "INSUFFICIENT_PERMISSIONS",
                                    f"This token lacks the '{needed}' permission.")
        return True


def required_permission(view, request) -> str | None:
    mapping = getattr(view, "required_permissions", None) or {}
    action = getattr(view, "action", None)
    if action and action in mapping:
        return mapping[action]
    return mapping.get(request.method)


class TenantRequired(BasePermission):
    """Tenant endpoints need a real tenant: a staff user without one gets a clean 403."""

    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.schema_name == "public":
            raise FlareAPIException(403, "INSUFFICIENT_PERMISSIONS",
                                    "This account belongs to no tenant; tenant endpoints are not available to it.")
        return True

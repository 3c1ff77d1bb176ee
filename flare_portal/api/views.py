"""The tenant-scoped base for every API view: auth, permission, tenant check, list envelope."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import generics, viewsets
from rest_framework.views import APIView

from tenants.authentication import BearerTokenAuthentication, SessionTenantAuthentication

from .permissions import HasTokenPermission, TenantRequired

AUTHENTICATION = [BearerTokenAuthentication, SessionTenantAuthentication]
PERMISSIONS = [HasTokenPermission, TenantRequired]


class TenantAPIView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    required_permissions: dict = {}


class TenantListMixin:
    """Lists answer `{"<results_key>": [...], "count", "next", "previous"}`."""

    results_key = "results"

    def get_paginated_response(self, data):
        return self.paginator.get_paginated_response_for(self.results_key, data)

    def get_paginated_response_schema(self, schema):  # pragma: no cover - schema generation only
        return self.paginator.get_paginated_response_schema_for(self.results_key, schema)


class TenantGenericAPIView(TenantListMixin, generics.GenericAPIView):
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    required_permissions: dict = {}


class TenantViewSet(TenantListMixin, viewsets.GenericViewSet):
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    required_permissions: dict = {}


_ERROR_CODES = {
    400: "INVALID_FORMAT / MISSING_REQUIRED_FIELD",
    401: "INVALID_TOKEN / TOKEN_EXPIRED / TOKEN_REVOKED / AUTHENTICATION_FAILED",
    402: "COST_LIMIT_EXCEEDED",
    403: "INSUFFICIENT_PERMISSIONS",
    404: "NOT_FOUND",
    409: "GPU_MODEL_UNAVAILABLE / GPU_MEMORY_INSUFFICIENT / GPU_COUNT_INSUFFICIENT / REGION_UNAVAILABLE / "
         "INSUFFICIENT_RESOURCES",
    429: "RATE_LIMITED",
}


def error_responses(*codes: int, **overrides: str) -> dict:
    """OpenAPI error responses (all in the API.md envelope) for `extend_schema(responses=…)`."""
    codes = codes or (400, 401, 403, 404, 429)
    return {code: OpenApiResponse(description=overrides.get(f"e{code}", _ERROR_CODES[code])) for code in codes}

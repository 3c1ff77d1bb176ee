"""The tenant-scoped base for every API view: auth, permission, tenant check, list envelope."""

from __future__ import annotations

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

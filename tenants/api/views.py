from __future__ import annotations

from django.contrib.auth import get_user_model

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from flare_portal.api.errors import FlareAPIException
from flare_portal.api.views import TenantAPIView, TenantGenericAPIView, error_responses
from tenants import services
from tenants.filtersets import ApiTokenFilterSet
from tenants.models import ApiToken

from .serializers import (
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenRevokedSerializer,
    TokenSerializer,
    VerifySerializer,
)

ERRORS = error_responses()


def caller_can_manage(request) -> bool:
    if request.auth is not None:
        return request.auth.has_permission("tokens:manage")
    membership = getattr(request.user, "membership", None)
    return bool(membership and "tokens:manage" in membership.permissions)


def raise_service_error(error: services.ServiceError):
    details = [{"field": error.field, "message": error.message}] if error.field else []
    raise FlareAPIException(error.status, error.code, error.message, details=details)


class TokenListCreateView(TenantGenericAPIView):
    """Your API tokens (all of the tenant's with `tokens:manage`); create one (secret shown once)."""

    serializer_class = TokenSerializer
    filterset_class = ApiTokenFilterSet
    results_key = "tokens"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        queryset = ApiToken.objects.filter(tenant=self.request.tenant).select_related("user")
        if not caller_can_manage(self.request):
            queryset = queryset.filter(user=self.request.user)
        return queryset.order_by("-created_at", "token_id")

    @extend_schema(summary="List API tokens", responses={200: TokenSerializer(many=True), **ERRORS})
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(TokenSerializer(page, many=True).data)

    @extend_schema(summary="Create an API token (the secret is shown once)", request=TokenCreateSerializer,
                   responses={201: TokenCreatedSerializer, **ERRORS})
    def post(self, request):
        if request.auth is not None and not request.auth.has_permission("tokens:manage"):
            raise FlareAPIException(403, "INSUFFICIENT_PERMISSIONS",
                                    "Creating tokens with a token needs the 'tokens:manage' permission.")
        payload = TokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        for_user = None
        if "user_id" in data:
            if not caller_can_manage(request):
                raise FlareAPIException(403, "INSUFFICIENT_PERMISSIONS", "user_id requires the tokens:manage permission.")
            for_user = get_user_model().objects.filter(
                pk=data["user_id"], membership__tenant=request.tenant
            ).first()
            if for_user is None:
                raise FlareAPIException(404, "NOT_FOUND", "user_id does not name a user of your tenant.",
                                        details=[{"field": "user_id", "message": "No such user in your tenant."}])
        try:
            issued = services.issue_token(
                tenant=request.tenant, creator=request.user, name=data["name"], permissions=data.get("permissions"),
                expires_in=data.get("expires_in"), for_user=for_user, creator_token=request.auth,
            )
        except services.ServiceError as error:
            raise_service_error(error)
        body = TokenCreatedSerializer(issued.token).data | {
            "token": issued.secret,
            "message": "Store this token now: it will not be shown again.",
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(TenantAPIView):
    """Revoke a token: its owner, or a caller with `tokens:manage`."""

    @extend_schema(summary="Revoke an API token", request=None, responses={200: TokenRevokedSerializer, **ERRORS})
    def delete(self, request, token_id: str):
        queryset = ApiToken.objects.filter(tenant=request.tenant, token_id=token_id)
        if not caller_can_manage(request):
            queryset = queryset.filter(user=request.user)
        token = queryset.first()
        if token is None:
            raise FlareAPIException(404, "NOT_FOUND", f"No token {token_id!r} in your tenant.")
        token = services.revoke_token(token=token, actor=request.user)
        return Response({"message": "Token revoked successfully", "token_id": token.token_id,
                         "revoked_at": token.revoked_at})


class VerifyView(TenantAPIView):
    """Who the bearer token belongs to, and what it may do."""

    @extend_schema(summary="Check the bearer token", responses={200: VerifySerializer, **ERRORS})
    def get(self, request):
        token = request.auth
        if token is None:
            raise FlareAPIException(401, "AUTHENTICATION_FAILED", "Send 'Authorization: Bearer <token>'.")
        return Response({
            "status": "authenticated",
            "user": token.user.username,
            "tenant": token.tenant.slug,
            "token_id": token.token_id,
            "permissions": sorted(token.permissions),
            "expires_at": token.expires_at,
        })




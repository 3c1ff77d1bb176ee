from __future__ import annotations

import yaml
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from flare_portal.api.errors import FlareAPIException
from flare_portal.api.views import TenantAPIView, TenantGenericAPIView, error_responses

from .. import services
from ..filtersets import IntentFilterSet
from ..models import Intent, IntentEvent
from .serializers import (
    IntentDetailSerializer,
    IntentEventSerializer,
    IntentStatusSerializer,
    SubmitRequestSerializer,
    SubmitResponseSerializer,
    accrued_costs,
    intent_status,
    submit_response,
)

ERRORS = error_responses(e429="QUOTA_EXCEEDED / RATE_LIMITED")
SUBMIT_ERRORS = error_responses(400, 401, 402, 403, 409, 429, e429="QUOTA_EXCEEDED / RATE_LIMITED")


def get_intent(intent_id: str) -> Intent:
    intent = Intent.objects.filter(intent_id=intent_id).first()
    if intent is None:
        raise FlareAPIException(404, "NOT_FOUND", f"No intent {intent_id!r}.")
    return intent


class IntentListCreateView(TenantGenericAPIView):
    """Submit an intent, or list your tenant's intents (filter by status, objective, name)."""

    required_permissions = {"GET": "intents:read", "POST": "intents:write"}
    filterset_class = IntentFilterSet
    serializer_class = IntentStatusSerializer
    results_key = "intents"

    def get_queryset(self):
        return Intent.objects.order_by("-created_at", "-id")

    @extend_schema(summary="List intents", responses={200: IntentStatusSerializer(many=True), **ERRORS})
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        costs = accrued_costs(page)
        return self.get_paginated_response([intent_status(i, costs.get(i.intent_id)) for i in page])

    @extend_schema(summary="Submit an intent", request=SubmitRequestSerializer,
                   responses={201: SubmitResponseSerializer, 202: SubmitResponseSerializer, **SUBMIT_ERRORS})
    def post(self, request):
        result = services.submit_intent(request.tenant, request.user, request.data)
        code = status.HTTP_202_ACCEPTED if result.queued else status.HTTP_201_CREATED
        return Response(submit_response(result), status=code,
                        headers={"Location": f"/api/v1/intents/{result.intent.intent_id}"})


class IntentDetailView(TenantAPIView):
    """One intent's status; DELETE cancels it (releasing everything it holds)."""

    required_permissions = {"GET": "intents:read", "DELETE": "intents:delete"}

    @extend_schema(summary="Get an intent", responses={200: IntentDetailSerializer, **ERRORS})
    def get(self, request, intent_id: str):
        intent = get_intent(intent_id)
        cost = accrued_costs([intent]).get(intent.intent_id)
        return Response(intent_status(intent, cost, detail=True))

    @extend_schema(summary="Cancel an intent", request=None, responses={202: IntentStatusSerializer, **ERRORS})
    def delete(self, request, intent_id: str):
        intent = services.cancel_intent(request.tenant, request.user, get_intent(intent_id))
        cost = accrued_costs([intent]).get(intent.intent_id)
        return Response(intent_status(intent, cost), status=status.HTTP_202_ACCEPTED)


class IntentEventsView(TenantGenericAPIView):
    """The intent's history: every transition and notable step."""

    required_permissions = {"GET": "intents:read"}
    serializer_class = IntentEventSerializer
    results_key = "events"
    pagination_class = None
    queryset = IntentEvent.objects.none()

    @extend_schema(summary="Intent events", responses={200: IntentEventSerializer(many=True), **ERRORS})
    def get(self, request, intent_id: str):
        intent = get_intent(intent_id)
        events = services.intent_events(intent)
        return Response({"events": IntentEventSerializer(events, many=True).data})


class IntentSolverView(TenantAPIView):
    """The FLUIDOS Solver manifest generated for this intent (JSON, or YAML with ?format=yaml)."""

    required_permissions = {"GET": "intents:read"}

    @extend_schema(summary="Generated Solver manifest",
                   parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "yaml"], required=False)],
                   responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request, intent_id: str):
        from ..reconcile import intent_ref

        intent = get_intent(intent_id)
        wanted = request.query_params.get("format", "json")
        if wanted not in ("json", "yaml"):
            raise FlareAPIException(400, "INVALID_FORMAT", "format must be 'json' or 'yaml'.",
                                    details=[{"field": "format", "message": "expected json or yaml"}])
        manifest = intent_ref(intent).solver_manifest
        if wanted == "yaml":
            return HttpResponse(yaml.safe_dump(manifest, sort_keys=False), content_type="application/yaml")
        return Response(manifest)

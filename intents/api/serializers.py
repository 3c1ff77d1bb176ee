"""IntentStatus and friends, exactly as API.md names them."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.utils import timezone
from rest_framework import serializers

from flare_portal.units import format_duration, format_money
from providers.models import GpuReservation

from ..lifecycle import api_phase
from ..models import Intent, IntentEvent, Status


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def accrued_costs(intents, schema: str | None = None, now=None) -> dict[str, Decimal]:
    """Live accrued cost per intent (one query for a whole page)."""
    schema = schema or connection.schema_name
    now = now or timezone.now()
    ids = [i.intent_id for i in intents]
    totals: dict[str, Decimal] = {}
    rows = GpuReservation.objects.filter(tenant_schema=schema, intent_id__in=ids, activated_at__isnull=False)
    for row in rows.only("intent_id", "gpus", "price_per_gpu_hour", "activated_at", "released_at"):
        seconds = Decimal(max(0.0, ((row.released_at or now) - row.activated_at).total_seconds()))
        totals[row.intent_id] = totals.get(row.intent_id, Decimal(0)) + seconds / 3600 * row.price_per_gpu_hour * row.gpus
    return totals


def intent_status(intent: Intent, cost: Decimal | None = None, *, detail: bool = False) -> dict:
    now = timezone.now()
    if cost is None:
        cost = intent.current_cost or Decimal(0)
    runtime = None
    if intent.started_at:
        runtime = format_duration(((intent.finished_at or now) - intent.started_at).total_seconds())
    hourly = intent.agreed_cost_per_hour if intent.agreed_cost_per_hour is not None else intent.estimated_cost_per_hour
    data = {
        "intent_id": intent.intent_id,
        "name": intent.name,
        "objective": intent.objective,
        "status": intent.status,
        "phase": api_phase(intent),
        "conditions": intent.conditions,
        "message": intent.message,
        "provider": intent.provider or None,
        "node": intent.node or None,
        "flavor": intent.flavor or None,
        "namespace": intent.namespace or None,
        "workload_url": intent.workload_url or None,
        "gpus": intent.gpus,
        "estimated_cost": format_money(intent.estimated_cost_per_hour, intent.currency, True)
        if intent.estimated_cost_per_hour is not None else None,
        "estimated_cost_per_hour": float(intent.estimated_cost_per_hour)
        if intent.estimated_cost_per_hour is not None else None,
        "cost_per_hour": float(hourly) if hourly is not None else None,
        "current_cost": format_money(cost, intent.currency),
        "current_cost_value": float(Decimal(cost).quantize(Decimal("0.0001"))),
        "currency": intent.currency,
        "runtime": runtime,
        "gpu_utilization": f"{round(intent.gpu_utilization * 100)}%" if intent.gpu_utilization is not None else None,
        "attempt": intent.attempt,
        "warnings": intent.warnings,
        "estimated_start_time": _iso(intent.estimated_start_time),
        "created_at": _iso(intent.created_at),
        "started_at": _iso(intent.started_at),
        "finished_at": _iso(intent.finished_at),
    }
    if intent.status == Status.QUEUED:
        data["queue_position"] = intent.queue_position
        data["queue_reason"] = intent.queue_reason
        data["suggestions"] = intent.suggestions
    elif intent.suggestions:
        data["suggestions"] = intent.suggestions
    if detail:
        data["placement"] = intent.placement or {}
        data["document"] = intent.document
    return data


class ConditionSerializer(serializers.Serializer):
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=["True", "False", "Unknown"])
    reason = serializers.CharField()
    message = serializers.CharField()
    last_transition_time = serializers.DateTimeField()


class SuggestionSerializer(serializers.Serializer):
    alternative = serializers.CharField()
    cost_difference = serializers.CharField(allow_null=True)
    performance_impact = serializers.CharField(allow_null=True)


class IntentStatusSerializer(serializers.Serializer):
    """Documentation of IntentStatus (responses are built by `intent_status`)."""

    intent_id = serializers.CharField()
    name = serializers.CharField()
    objective = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.values)
    phase = serializers.ChoiceField(choices=["Submitted", "Discovering", "Reserving", "Peering", "Offloading",
                                             "Deploying", "Running", "Succeeded", "Failed", "Cancelled"])
    conditions = ConditionSerializer(many=True)
    message = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    node = serializers.CharField(allow_null=True)
    flavor = serializers.CharField(allow_null=True)
    namespace = serializers.CharField(allow_null=True)
    workload_url = serializers.CharField(allow_null=True)
    gpus = serializers.IntegerField()
    estimated_cost = serializers.CharField(allow_null=True)
    estimated_cost_per_hour = serializers.FloatField(allow_null=True)
    cost_per_hour = serializers.FloatField(allow_null=True)
    current_cost = serializers.CharField()
    current_cost_value = serializers.FloatField()
    currency = serializers.CharField()
    runtime = serializers.CharField(allow_null=True)
    gpu_utilization = serializers.CharField(allow_null=True)
    attempt = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField())
    queue_position = serializers.IntegerField(required=False, allow_null=True)
    queue_reason = serializers.CharField(required=False)
    suggestions = SuggestionSerializer(many=True, required=False)
    estimated_start_time = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class IntentDetailSerializer(IntentStatusSerializer):
    placement = serializers.DictField()
    document = serializers.DictField()


class SubmitRequestSerializer(serializers.Serializer):
    """`{"intent": {"objective", "workload", "constraints"?, "sla"?}}` — see API.md for every field."""

    intent = serializers.DictField()


class SubmitResponseSerializer(serializers.Serializer):
    intent_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "queued"])
    message = serializers.CharField()
    estimated_cost = serializers.CharField(allow_null=True)
    estimated_cost_per_hour = serializers.FloatField(allow_null=True)
    currency = serializers.CharField()
    estimated_start_time = serializers.DateTimeField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    suggestions = SuggestionSerializer(many=True, required=False)
    queue_position = serializers.IntegerField(required=False, allow_null=True)


class IntentEventSerializer(serializers.ModelSerializer):
    phase = serializers.SerializerMethodField()

    class Meta:
        model = IntentEvent
        fields = ["time", "type", "phase", "reason", "message", "kind", "status", "actor", "request_id"]

    def get_phase(self, event) -> str:
        from ..lifecycle import API_PHASE

        return API_PHASE.get(event.phase, event.phase)


def submit_response(result) -> dict:
    intent = result.intent
    body = {
        "intent_id": intent.intent_id,
        "status": intent.status,
        "message": intent.message,
        "estimated_cost": format_money(intent.estimated_cost_per_hour, intent.currency, True)
        if intent.estimated_cost_per_hour is not None else None,
        "estimated_cost_per_hour": float(intent.estimated_cost_per_hour)
        if intent.estimated_cost_per_hour is not None else None,
        "currency": intent.currency,
        "estimated_start_time": _iso(intent.estimated_start_time),
        "warnings": result.warnings,
    }
    if result.queued:
        body["suggestions"] = intent.suggestions
        body["queue_position"] = intent.queue_position
    return body

"""Demand (tenant schema): intents, their event history, webhooks."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def new_intent_id() -> str:
    return "intent-" + "".join(secrets.choice(_BASE32) for _ in range(12))


class Status(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class Phase(models.TextChoices):
    SUBMITTED = "Submitted"
    QUEUED = "Queued"
    DISCOVERING = "Discovering"
    RESERVING = "Reserving"
    PEERING = "Peering"
    OFFLOADING = "Offloading"
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"


TERMINAL_PHASES = {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}


class Intent(models.Model):
    intent_id = models.CharField(max_length=40, unique=True, default=new_intent_id)
    name = models.CharField(max_length=63, db_index=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                              db_constraint=False)
    owner_username = models.CharField(max_length=150, blank=True)
    document = models.JSONField(help_text="the normalised intent document")
    objective = models.CharField(max_length=40, db_index=True)
    workload_type = models.CharField(max_length=10)
    priority = models.IntegerField(default=0)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.SUBMITTED)
    previous_phase = models.CharField(max_length=12, blank=True)
    conditions = models.JSONField(default=list)
    message = models.TextField(blank=True)
    warnings = models.JSONField(default=list)
    attempt = models.PositiveIntegerField(default=1)
    step_started_at = models.DateTimeField(default=timezone.now)

    gpus = models.PositiveIntegerField(default=0, help_text="GPUs for the whole intent (count × units)")
    provider = models.CharField(max_length=100, blank=True)
    node = models.CharField(max_length=253, blank=True)
    flavor = models.CharField(max_length=200, blank=True)
    namespace = models.CharField(max_length=63, blank=True)
    workload_url = models.CharField(max_length=300, blank=True)
    solver_name = models.CharField(max_length=100, blank=True)
    federation_state = models.JSONField(default=dict, help_text="backend handles: reservation, contract, peering")
    placement = models.JSONField(default=dict, help_text="chosen plan and the alternatives it beat")
    gpu_utilization = models.FloatField(null=True, blank=True)

    currency = models.CharField(max_length=3, default="EUR")
    estimated_cost_per_hour = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    agreed_cost_per_hour = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    current_cost = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    estimated_start_time = models.DateTimeField(null=True, blank=True)

    queue_position = models.PositiveIntegerField(null=True, blank=True)
    queue_reason = models.TextField(blank=True)
    suggestions = models.JSONField(default=list)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.intent_id} ({self.name})"

    @property
    def is_terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


class IntentEvent(models.Model):
    """History and audit trail: one row per transition and per notable step."""

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, default="system")
    request_id = models.CharField(max_length=64, blank=True)
    type = models.CharField(max_length=10, default="Normal", help_text="Normal | Warning")
    kind = models.CharField(max_length=40, help_text="submitted, transition, cancelled, cost, …")
    from_phase = models.CharField(max_length=12, blank=True)
    phase = models.CharField(max_length=12)
    from_status = models.CharField(max_length=12, blank=True)
    status = models.CharField(max_length=12)
    reason = models.CharField(max_length=80, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["time", "id"]

    def __str__(self) -> str:
        return f"{self.time:%H:%M:%S} {self.intent_id_display} {self.from_phase}→{self.phase} {self.reason}"

    @property
    def intent_id_display(self) -> str:
        return self.intent.intent_id if self.intent_id else "?"


WEBHOOK_EVENT_KINDS = ["submitted", "transition", "queued", "running", "completed", "failed", "cancelled", "note"]


class Webhook(models.Model):
    """A tenant admin's endpoint that receives intent events, signed with HMAC-SHA256."""

    url = models.URLField(max_length=500)
    event_kinds = models.JSONField(default=list, blank=True, help_text="empty = every event")
    secret = models.CharField(max_length=80, help_text="HMAC-SHA256 key; shown once on creation")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return self.active and (not self.event_kinds or kind in self.event_kinds)


class WebhookDelivery(models.Model):
    STATE_PENDING = "pending"
    STATE_SUCCEEDED = "succeeded"
    STATE_FAILED = "failed"          # gave up after the last retry
    STATES = [(STATE_PENDING, "Pending"), (STATE_SUCCEEDED, "Succeeded"), (STATE_FAILED, "Failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.BigIntegerField(null=True, blank=True)
    intent_id = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=STATES, default=STATE_PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class WebhookAttempt(models.Model):
    """Each delivery attempt: status code, latency, error — visible in the portal."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    time = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

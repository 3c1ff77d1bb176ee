"""Admin for the tenant-schema models: only when the signed-in user has a tenant.

Intents and webhooks live in each tenant's schema; the admin runs in the request's schema, so a
provider administrator without a tenant (public schema) does not see these models at all — they
have no tables there, and a staff user never browses another tenant's data through the admin.
State changes go through services (cancel, webhook delete); everything else is read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages

from . import services, webhooks
from .models import Intent, IntentEvent, Webhook, WebhookAttempt, WebhookDelivery


class TenantSchemaAdmin(admin.ModelAdmin):
    def _in_tenant(self, request) -> bool:
        tenant = getattr(request, "tenant", None)
        membership = getattr(request.user, "membership", None) if hasattr(request.user, "membership") else None
        # The signed-in user's own tenant only (never one a bearer header selected).
        return (tenant is not None and not tenant.is_public and membership is not None
                and membership.tenant_id == tenant.pk)

    def has_module_permission(self, request):
        return self._in_tenant(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._in_tenant(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class IntentEventInline(admin.TabularInline):
    model = IntentEvent
    extra = 0
    can_delete = False
    fields = ["time", "type", "kind", "from_phase", "phase", "reason", "message", "actor"]
    readonly_fields = fields
    ordering = ["time", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Intent)
class IntentAdmin(TenantSchemaAdmin):
    list_display = ["intent_id", "name", "status", "phase", "objective", "provider", "gpus", "current_cost",
                    "owner_username", "created_at"]
    list_filter = ["status", "phase", "objective", "workload_type"]
    search_fields = ["intent_id", "name", "owner_username", "provider", "node"]
    readonly_fields = [f.name for f in Intent._meta.fields]
    raw_id_fields = ["owner"]
    inlines = [IntentEventInline]
    actions = ["cancel_selected"]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected intents (releases their GPUs)")
    def cancel_selected(self, request, queryset):
        done = 0
        for intent in queryset:
            if not intent.is_terminal:
                services.cancel_intent(request.tenant, request.user, intent)
                done += 1
        self.message_user(request, f"Cancelled {done} intent(s).", messages.SUCCESS)


@admin.register(IntentEvent)
class IntentEventAdmin(TenantSchemaAdmin):
    list_display = ["time", "intent", "kind", "from_phase", "phase", "type", "reason", "actor"]
    list_filter = ["kind", "type", "phase"]
    search_fields = ["intent__intent_id", "intent__name", "reason", "message"]
    list_select_related = ["intent"]
    readonly_fields = [f.name for f in IntentEvent._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "time", "status_code", "latency_ms", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Webhook)
class WebhookAdmin(TenantSchemaAdmin):
    list_display = ["url", "active", "event_kinds", "created_by", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "created_by"]
    exclude = ["secret"]  # shown once at creation, never again
    readonly_fields = ["url", "event_kinds", "active", "created_by", "created_at"]
    actions = ["delete_through_service"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Delete selected webhooks (audited)")
    def delete_through_service(self, request, queryset):
        for webhook in queryset:
            webhooks.delete_webhook(tenant=request.tenant, actor=request.user, webhook=webhook)
        self.message_user(request, "Deleted.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantSchemaAdmin):
    list_display = ["created_at", "webhook", "kind", "intent_id", "state", "attempts", "last_attempt_at"]
    list_filter = ["state", "kind"]
    search_fields = ["intent_id", "webhook__url"]
    list_select_related = ["webhook"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]

    def has_delete_permission(self, request, obj=None):
        return False

from django.contrib import admin
from django_tenants.admin import TenantAdminMixin

from .models import ApiToken, AuditEntry, Domain, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "schema_name", "is_active", "max_concurrent_gpus", "max_hourly_spend",
                    "max_active_intents", "monthly_budget", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "schema_name"]
    readonly_fields = ["schema_name", "created_at"]
    inlines = [MembershipInline]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    list_filter = ["is_primary"]
    search_fields = ["domain"]
    list_select_related = ["tenant"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    list_select_related = ["user", "tenant"]
    raw_id_fields = ["user"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["token_id", "name", "prefix", "tenant", "user", "status", "created_at", "expires_at",
                    "last_used", "revoked_at"]
    list_filter = ["tenant", "revoked_at"]
    search_fields = ["token_id", "name", "prefix", "user__username"]
    list_select_related = ["tenant", "user"]
    raw_id_fields = ["user", "created_by"]
    readonly_fields = ["token_id", "secret_hash", "prefix", "created_at", "last_used", "revoked_at"]

    def has_add_permission(self, request):
        return False  # secrets are issued by the service (portal, API or `issue_token`), shown once


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["time", "tenant", "actor_label", "action", "target", "request_id"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_label", "action", "target", "request_id"]
    list_select_related = ["tenant"]
    readonly_fields = ["time", "tenant", "actor", "actor_label", "action", "target", "request_id", "data"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

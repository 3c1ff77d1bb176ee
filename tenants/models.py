"""Who: tenants (a PostgreSQL schema each), their members, and API tokens (public schema)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

PERMISSIONS = (
    "intents:read",
    "intents:write",
    "intents:delete",
    "resources:read",
    "tokens:manage",
    "admin:*",
)
ALL_CONCRETE_PERMISSIONS = frozenset(p for p in PERMISSIONS if p != "admin:*")
DEFAULT_TOKEN_PERMISSIONS = ("intents:read", "intents:write")


def expand_permissions(perms) -> frozenset[str]:
    """`admin:*` stands for every permission."""
    perms = set(perms or ())
    if "admin:*" in perms:
        return ALL_CONCRETE_PERMISSIONS | {"admin:*"}
    return frozenset(perms)


class Tenant(TenantMixin):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True)
    is_active = models.BooleanField(default=True)
    max_concurrent_gpus = models.PositiveIntegerField(default=64)
    max_hourly_spend = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("200.00"))
    max_active_intents = models.PositiveIntegerField(default=50)
    monthly_budget = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("20000.00"))
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(default=timezone.now)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    """Required by django-tenants; FLARE routes by credential, so only the public row matters."""


class Membership(models.Model):
    ROLE_ADMIN = "admin"
    ROLE_MEMBER = "member"
    ROLES = [(ROLE_ADMIN, "Admin"), (ROLE_MEMBER, "Member")]

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLES, default=ROLE_MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.ROLE_ADMIN

    @property
    def permissions(self) -> frozenset[str]:
        """What a member may grant to a token: admins everything, members no token management."""
        if self.is_admin:
            return expand_permissions(["admin:*"])
        return frozenset({"intents:read", "intents:write", "intents:delete", "resources:read"})


class ApiToken(models.Model):
    token_id = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    secret_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    permissions = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "token_id"]
        indexes = [models.Index(fields=["tenant", "user"])]

    def __str__(self) -> str:
        return f"{self.token_id} ({self.name})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def effective_permissions(self) -> frozenset[str]:
        return expand_permissions(self.permissions)

    def has_permission(self, permission: str) -> bool:
        return permission in self.effective_permissions


class AuditEntry(models.Model):
    """Who changed what, when, under which request: tenant admins see theirs, staff see all."""

    time = models.DateTimeField(default=timezone.now, db_index=True)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, default="system")
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target}"

"""Every change of tenant, membership and token state goes through here.

Each service runs in one transaction and writes its audit entry in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from flare_portal.middleware import current_request_id

from .models import (
    ALL_CONCRETE_PERMISSIONS,
    DEFAULT_TOKEN_PERMISSIONS,
    PERMISSIONS,
    ApiToken,
    AuditEntry,
    Domain,
    Membership,
    Tenant,
    expand_permissions,
)

User = get_user_model()

SECRET_PREFIX = "flr_"
TOKEN_ID_PREFIX = "tok_"
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_EXPIRY = re.compile(r"^(?P<n>[1-9]\d{0,4})(?P<unit>[hdwy])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7, "y": 24 * 365}
MAX_EXPIRY = timedelta(days=5 * 365)


class ServiceError(Exception):
    """A refused request. Carries the API error code so every entry point reports it alike."""

    def __init__(self, message: str, *, code: str = "INVALID_FORMAT", status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def random_id(length: int = 12) -> str:
    return "".join(secrets.choice(_BASE32) for _ in range(length))


def parse_expiry(value: str | None) -> timedelta:
    """`30d`, `12h`, `2w`, `1y` → timedelta (default from settings, 90d)."""
    raw = settings.FLARE_TOKEN_DEFAULT_EXPIRY if value in (None, "") else value
    match = _EXPIRY.match(str(raw).strip()) if isinstance(raw, str) else None
    if not match:
        raise ServiceError(
            f"expires_in must be a number followed by h, d, w or y (for example '30d' or '12h'), got {raw!r}.",
            field="expires_in",
        )
    delta = timedelta(hours=int(match["n"]) * _UNIT_HOURS[match["unit"]])
    if delta > MAX_EXPIRY:
        raise ServiceError("expires_in may be at most 5y.", field="expires_in")
    return delta


def record_audit(*, tenant: Tenant | None, actor, action: str, target: str = "", data: dict | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        tenant=tenant if tenant is not None and not tenant.is_public else None,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=str(actor) if actor is not None else "system",
        action=action,
        target=target,
        request_id=current_request_id(),
        data=data or {},
    )


# --- tenants and members -------------------------------------------------------------------


def ensure_public_tenant() -> Tenant:
    """django-tenants needs the public tenant row and a Domain; FLARE never routes by it."""
    tenant, _ = Tenant.objects.get_or_create(
        schema_name="public", defaults={"name": "Public", "slug": "public"}
    )
    Domain.objects.get_or_create(domain="public.flare.local", defaults={"tenant": tenant, "is_primary": True})
    return tenant


@dataclass
class TenantSetup:
    tenant: Tenant
    admin: object
    created_tenant: bool
    created_user: bool
    password: str | None


def create_tenant(
    *, name: str, slug: str | None = None, admin_username: str, admin_email: str = "", admin_password: str | None = None,
    quotas: dict | None = None, actor=None,
) -> TenantSetup:
    """Create (or find) a tenant, its schema and its first admin. Idempotent by slug/username."""
    slug = slugify(slug or name)[:40].strip("-")
    if not re.match(r"^[a-z][a-z0-9-]*$", slug or ""):
        raise ServiceError(f"tenant slug must start with a letter and contain a-z, 0-9 and '-', got {slug!r}")
    if slug == "public":
        raise ServiceError("'public' is reserved")
    ensure_public_tenant()
    schema = "t_" + slug.replace("-", "_")
    with transaction.atomic():
        tenant = Tenant.objects.filter(slug=slug).first()
        created_tenant = tenant is None
        if created_tenant:
            tenant = Tenant(name=name, slug=slug, schema_name=schema, **(quotas or {}))
            tenant.save()  # creates and migrates the schema
            Domain.objects.create(domain=f"{slug}.flare.local", tenant=tenant, is_primary=True)
        elif quotas:
            for key, value in quotas.items():
                setattr(tenant, key, value)
            tenant.save(update_fields=list(quotas))
        user = User.objects.filter(username=admin_username).first()
        created_user = user is None
        password = None
        if created_user:
            password = admin_password or secrets.token_urlsafe(12)
            user = User.objects.create_user(username=admin_username, email=admin_email, password=password)
        elif admin_password:
            user.set_password(admin_password)
            user.save(update_fields=["password"])
            password = admin_password
        membership = Membership.objects.filter(user=user).first()
        if membership is None:
            Membership.objects.create(user=user, tenant=tenant, role=Membership.ROLE_ADMIN)
        elif membership.tenant_id != tenant.pk:
            raise ServiceError(f"user {admin_username!r} already belongs to tenant {membership.tenant.slug!r}")
        if created_tenant:
            record_audit(tenant=tenant, actor=actor, action="tenant.create", target=slug)
    return TenantSetup(tenant, user, created_tenant, created_user, password)


def add_member(*, tenant: Tenant, username: str, role: str = Membership.ROLE_MEMBER, password: str | None = None,
               email: str = "", actor=None) -> Membership:
    if role not in dict(Membership.ROLES):
        raise ServiceError(f"role must be 'admin' or 'member', got {role!r}", field="role")
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if not created and (user.is_staff or user.is_superuser) and not Membership.objects.filter(user=user).exists():
            raise ServiceError("This is a provider staff account; it cannot join a tenant.", field="username")
        if created:
            user.set_password(password or secrets.token_urlsafe(12))
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.get_or_create(user=user, defaults={"tenant": tenant, "role": role})
        if membership.tenant_id != tenant.pk:
            raise ServiceError(f"user {username!r} belongs to another tenant", code="INVALID_FORMAT")
        if membership.is_admin and role != Membership.ROLE_ADMIN and _last_admin(membership):
            raise ServiceError("A tenant needs at least one admin; promote someone else first.", field="role")
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        record_audit(tenant=tenant, actor=actor, action="member.upsert", target=username, data={"role": role})
    return membership


def _last_admin(membership: Membership) -> bool:
    others = Membership.objects.filter(tenant_id=membership.tenant_id, role=Membership.ROLE_ADMIN)
    return membership.is_admin and not others.exclude(pk=membership.pk).exists()


def remove_member(*, tenant: Tenant, username: str, actor=None) -> None:
    """Take a member out of the tenant: their tokens are revoked and their account closed
    (a user belongs to one tenant). Their intents and the audit trail stay."""
    with transaction.atomic():
        membership = (Membership.objects.select_for_update().select_related("user")
                      .filter(tenant=tenant, user__username=username).first())
        if membership is None:
            raise ServiceError(f"{username!r} is not a member of {tenant.slug}", code="NOT_FOUND", status=404,
                               field="username")
        if actor is not None and membership.user_id == getattr(actor, "pk", None):
            raise ServiceError("You cannot remove yourself; ask another admin.", field="username")
        if _last_admin(membership):
            raise ServiceError("A tenant needs at least one admin; promote someone else first.", field="username")
        user = membership.user
        revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        membership.delete()
        user.is_active = False
        user.save(update_fields=["is_active"])
        record_audit(tenant=tenant, actor=actor, action="member.remove", target=username,
                     data={"tokens_revoked": revoked})


# --- API tokens -------------------------------------------------------------------------------


@dataclass
class IssuedToken:
    token: ApiToken
    secret: str


def _grantable(user, tenant: Tenant, creator_token: ApiToken | None) -> frozenset[str]:
    """A token never grants more than its creator holds: the creator's role, narrowed by its token."""
    if user.is_superuser:
        held = expand_permissions(["admin:*"])
    else:
        membership = Membership.objects.filter(user=user, tenant=tenant).first()
        held = membership.permissions if membership else frozenset()
    if creator_token is not None:
        held = held & creator_token.effective_permissions
    return held


def issue_token(
    *, tenant: Tenant, creator, name: str, permissions=None, expires_in: str | None = None,
    for_user=None, creator_token: ApiToken | None = None,
) -> IssuedToken:
    if tenant is None or tenant.is_public:
        raise ServiceError("tokens belong to a tenant; this account has none", code="INSUFFICIENT_PERMISSIONS", status=403)
    name = (name or "").strip()
    if not name:
        raise ServiceError("name is required", code="MISSING_REQUIRED_FIELD", field="name")
    if len(name) > 100:
        raise ServiceError("name may be at most 100 characters", field="name")
    requested = list(DEFAULT_TOKEN_PERMISSIONS if permissions is None else permissions)
    if not isinstance(requested, list) or not all(isinstance(p, str) for p in requested):
        raise ServiceError("permissions must be a list of permission names", field="permissions")
    unknown = sorted(set(requested) - set(PERMISSIONS))
    if unknown:
        raise ServiceError(
            f"unknown permission(s) {', '.join(unknown)}; valid ones are {', '.join(PERMISSIONS)}",
            field="permissions",
        )
    if not requested:
        raise ServiceError("a token needs at least one permission", field="permissions")
    lifetime = parse_expiry(expires_in)

    holder = creator
    if for_user is not None and for_user != creator:
        if not _grantable(creator, tenant, creator_token) >= {"tokens:manage"}:
            raise ServiceError("user_id requires the tokens:manage permission", code="INSUFFICIENT_PERMISSIONS", status=403)
        if not Membership.objects.filter(user=for_user, tenant=tenant).exists():
            raise ServiceError("user_id must name a user of your tenant", code="NOT_FOUND", status=404, field="user_id")
        holder = for_user

    wanted = expand_permissions(requested)
    grantable = _grantable(creator, tenant, creator_token)
    if holder is not creator:
        grantable = grantable & _grantable(holder, tenant, None)
    excess = sorted(wanted - grantable)
    if excess:
        raise ServiceError(
            f"cannot grant permission(s) you do not hold: {', '.join(excess)}",
            code="INSUFFICIENT_PERMISSIONS",
            status=403,
            field="permissions",
        )

    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            token_id=TOKEN_ID_PREFIX + random_id(12),
            name=name,
            secret_hash=hash_secret(secret),
            prefix=secret[:8],
            tenant=tenant,
            user=holder,
            created_by=creator,
            permissions=sorted(set(requested)),
            expires_at=timezone.now() + lifetime,
        )
        record_audit(tenant=tenant, actor=creator, action="token.issue", target=token.token_id,
                     data={"name": name, "permissions": token.permissions, "user": str(holder)})
    return IssuedToken(token, secret)


def revoke_token(*, token: ApiToken, actor) -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db()
        if updated:
            record_audit(tenant=token.tenant, actor=actor, action="token.revoke", target=token.token_id)
    return token


class TokenRejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def authenticate_secret(secret: str) -> ApiToken:
    """Bearer secret → live token, or TokenRejected with the API's error code."""
    if not secret or not secret.startswith(SECRET_PREFIX) or len(secret) < 36 or len(secret) > 200:
        raise TokenRejected("INVALID_TOKEN", "The bearer token is malformed; FLARE tokens start with 'flr_'.")
    if not set(secret[len(SECRET_PREFIX):]) <= set(string.ascii_letters + string.digits + "-_"):
        raise TokenRejected("INVALID_TOKEN", "The bearer token is malformed; FLARE tokens start with 'flr_'.")
    token = (
        ApiToken.objects.select_related("tenant", "user", "user__membership")
        .filter(secret_hash=hash_secret(secret))
        .first()
    )
    if token is None:
        raise TokenRejected("INVALID_TOKEN", "The bearer token is not valid.")
    if token.revoked_at is not None:
        raise TokenRejected("TOKEN_REVOKED", f"Token {token.token_id} was revoked at {token.revoked_at.isoformat()}.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise TokenRejected("TOKEN_EXPIRED", f"Token {token.token_id} expired at {token.expires_at.isoformat()}.")
    if not token.user.is_active or not token.tenant.is_active:
        raise TokenRejected("AUTHENTICATION_FAILED", "The account behind this token is disabled.")
    touch_token(token)
    return token


def touch_token(token: ApiToken) -> None:
    """Record use at most once per interval, so a busy client does not write on every request."""
    now = timezone.now()
    interval = timedelta(seconds=settings.FLARE_TOKEN_LAST_USED_INTERVAL)
    if token.last_used is None or now - token.last_used >= interval:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


__all__ = [
    "ALL_CONCRETE_PERMISSIONS",
    "IssuedToken",
    "ServiceError",
    "TokenRejected",
    "add_member",
    "remove_member",
    "authenticate_secret",
    "create_tenant",
    "ensure_public_tenant",
    "issue_token",
    "parse_expiry",
    "record_audit",
    "revoke_token",
]

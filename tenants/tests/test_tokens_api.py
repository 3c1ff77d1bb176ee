from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.models import ApiToken, AuditEntry
from tenants.services import hash_secret

pytestmark = pytest.mark.django_db


def assert_envelope(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["suggestions"], list)
    assert isinstance(body["details"], list)
    assert response["X-Request-ID"]
    return body


def test_issue_token_shows_secret_once_and_stores_only_a_hash(client_a, tenant_a):
    response = client_a.post("/api/v1/auth/tokens", {"name": "ci", "permissions": ["intents:read"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["token"]
    assert secret.startswith("flr_") and len(secret) >= 36
    assert body["token_id"].startswith("tok_") and len(body["token_id"]) == 16
    assert body["prefix"] == secret[:8]
    assert body["permissions"] == ["intents:read"]
    stored = ApiToken.objects.get(token_id=body["token_id"])
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in str(ApiToken.objects.filter(pk=stored.pk).values().first())
    # Default expiry is 90 days.
    assert abs((stored.expires_at - timezone.now()) - timedelta(days=90)) < timedelta(minutes=1)

    listing = client_a.get("/api/v1/auth/tokens").json()
    listed = next(t for t in listing["tokens"] if t["token_id"] == body["token_id"])
    assert "token" not in listed and secret not in str(listing)
    assert listed["prefix"] == secret[:8] and listed["status"] == "active"
    assert AuditEntry.objects.filter(action="token.issue", target=body["token_id"], tenant=tenant_a).exists()


@pytest.mark.parametrize("expires_in,delta", [("12h", timedelta(hours=12)), ("30d", timedelta(days=30)),
                                              ("2w", timedelta(weeks=2)), ("1y", timedelta(days=365))])
def test_expires_in_units(client_a, expires_in, delta):
    body = client_a.post("/api/v1/auth/tokens", {"name": "t", "expires_in": expires_in}, format="json").json()
    expires = ApiToken.objects.get(token_id=body["token_id"]).expires_at
    assert abs((expires - timezone.now()) - delta) < timedelta(minutes=1)


@pytest.mark.parametrize("bad", ["10", "3x", "-1d", "0d", "999999d", "1.5h"])
def test_bad_expiry_is_invalid_format_and_changes_nothing(client_a, bad):
    before = ApiToken.objects.count()
    body = assert_envelope(client_a.post("/api/v1/auth/tokens", {"name": "t", "expires_in": bad}, format="json"),
                           400, "INVALID_FORMAT")
    assert body["details"][0]["field"] == "expires_in"
    assert ApiToken.objects.count() == before


def test_verify_reports_identity(api, issue, user_a, tenant_a):
    token, secret = issue(user_a, tenant_a, ["intents:read"])
    body = api(secret).get("/api/v1/auth/verify").json()
    assert body == {"status": "authenticated", "user": "alice", "tenant": "acme", "token_id": token.token_id,
                    "permissions": ["intents:read"], "expires_at": body["expires_at"]}
    assert body["expires_at"].startswith(str(token.expires_at.year))


def test_expired_token_rejected_with_its_own_code(api, issue, user_a, tenant_a):
    token, secret = issue(user_a, tenant_a, ["intents:read"], expires_in="1h")
    assert api(secret).get("/api/v1/auth/verify").status_code == 200
    # Move time, don't sleep: the token's clock is its expires_at.
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_envelope(api(secret).get("/api/v1/auth/verify"), 401, "TOKEN_EXPIRED")


def test_revoke_then_rejected(client_a, api, issue, user_a, tenant_a):
    token, secret = issue(user_a, tenant_a, ["intents:read"])
    response = client_a.delete(f"/api/v1/auth/tokens/{token.token_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Token revoked successfully" and body["token_id"] == token.token_id
    assert body["revoked_at"]
    assert_envelope(api(secret).get("/api/v1/auth/verify"), 401, "TOKEN_REVOKED")
    listed = {t["token_id"]: t for t in client_a.get("/api/v1/auth/tokens").json()["tokens"]}
    assert listed[token.token_id]["status"] == "revoked"
    assert AuditEntry.objects.filter(action="token.revoke", target=token.token_id).exists()


@pytest.mark.parametrize("header,code", [
    ("Bearer flr_" + "x" * 40, "INVALID_TOKEN"),
    ("Bearer nonsense", "INVALID_TOKEN"),
    ("Basic YWxpY2U6cHc=", "INVALID_TOKEN"),
    ("Bearer ", "INVALID_TOKEN"),
])
def test_bad_credentials(api, header, code):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_envelope(client.get("/api/v1/auth/verify"), 401, code)


def test_no_credentials(api):
    response = api().get("/api/v1/auth/tokens")
    assert_envelope(response, 401, "AUTHENTICATION_FAILED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_member_listing_shows_own_tokens_manager_sees_all(api, issue, user_a, member_a, tenant_a):
    own, member_secret = issue(member_a, tenant_a, ["intents:read"], name="mine")
    admin_token, admin_secret = issue(user_a, tenant_a, ["tokens:manage"], name="admin")
    member_view = {t["token_id"] for t in api(member_secret).get("/api/v1/auth/tokens").json()["tokens"]}
    assert own.token_id in member_view and admin_token.token_id not in member_view
    admin_view = {t["token_id"] for t in api(admin_secret).get("/api/v1/auth/tokens").json()["tokens"]}
    assert {own.token_id, admin_token.token_id} <= admin_view


def test_token_without_manage_cannot_create_tokens(api, issue, user_a, tenant_a):
    _, secret = issue(user_a, tenant_a, ["intents:read", "intents:write"])
    assert_envelope(api(secret).post("/api/v1/auth/tokens", {"name": "x"}, format="json"),
                    403, "INSUFFICIENT_PERMISSIONS")


def test_no_privilege_escalation(api, issue, user_a, tenant_a, member_a):
    # A tokens:manage token cannot mint a token with more than it holds.
    _, secret = issue(user_a, tenant_a, ["tokens:manage", "intents:read"])
    before = ApiToken.objects.count()
    body = assert_envelope(
        api(secret).post("/api/v1/auth/tokens", {"name": "x", "permissions": ["intents:delete"]}, format="json"),
        403, "INSUFFICIENT_PERMISSIONS")
    assert "intents:delete" in body["message"]
    assert_envelope(api(secret).post("/api/v1/auth/tokens", {"name": "x", "permissions": ["admin:*"]},
                                     format="json"), 403, "INSUFFICIENT_PERMISSIONS")
    assert ApiToken.objects.count() == before
    # A member (no tokens:manage by role) cannot obtain it even through the service.
    from tenants.services import ServiceError, issue_token

    with pytest.raises(ServiceError) as refused:
        issue_token(tenant=tenant_a, creator=member_a, name="x", permissions=["tokens:manage"])
    assert refused.value.code == "INSUFFICIENT_PERMISSIONS"


def test_user_id_needs_manage_and_same_tenant(api, issue, user_a, member_a, user_b, tenant_a):
    _, manage_secret = issue(user_a, tenant_a, ["tokens:manage", "intents:read"])
    created = api(manage_secret).post("/api/v1/auth/tokens",
                                      {"name": "for-carol", "permissions": ["intents:read"], "user_id": member_a.pk},
                                      format="json")
    assert created.status_code == 201, created.content
    assert created.json()["user"] == "carol"
    # Another tenant's user: 404, never a token for them.
    assert_envelope(api(manage_secret).post("/api/v1/auth/tokens", {"name": "x", "user_id": user_b.pk},
                                            format="json"), 404, "NOT_FOUND")
    # A session member without tokens:manage cannot name another user.
    from rest_framework.test import APIClient

    session = APIClient()
    session.force_login(member_a)
    assert_envelope(session.post("/api/v1/auth/tokens", {"name": "x", "user_id": user_a.pk}, format="json"),
                    403, "INSUFFICIENT_PERMISSIONS")


def test_session_user_can_create_first_token(member_a):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(member_a)
    response = client.post("/api/v1/auth/tokens", {"name": "laptop"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["permissions"] == ["intents:read", "intents:write"]


def test_tenant_isolation_of_tokens(client_a, api, issue, user_b, tenant_b):
    foreign, _ = issue(user_b, tenant_b, ["intents:read"], name="b-secret")
    listing = client_a.get("/api/v1/auth/tokens").json()
    assert foreign.token_id not in {t["token_id"] for t in listing["tokens"]}
    assert_envelope(client_a.delete(f"/api/v1/auth/tokens/{foreign.token_id}"), 404, "NOT_FOUND")
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_member_cannot_revoke_someone_elses_token(api, issue, user_a, member_a, tenant_a):
    admins, _ = issue(user_a, tenant_a, ["intents:read"])
    _, member_secret = issue(member_a, tenant_a, ["intents:read"])
    assert_envelope(api(member_secret).delete(f"/api/v1/auth/tokens/{admins.token_id}"), 404, "NOT_FOUND")


def test_last_used_written_at_most_once_per_interval(api, issue, user_a, tenant_a, settings,
                                                     django_assert_num_queries):
    token, secret = issue(user_a, tenant_a, ["intents:read"])
    client = api(secret)
    client.get("/api/v1/auth/verify")
    token.refresh_from_db()
    first = token.last_used
    assert first is not None
    client.get("/api/v1/auth/verify")
    token.refresh_from_db()
    assert token.last_used == first
    ApiToken.objects.filter(pk=token.pk).update(last_used=first - timedelta(seconds=settings.FLARE_TOKEN_LAST_USED_INTERVAL))
    client.get("/api/v1/auth/verify")
    token.refresh_from_db()
    assert token.last_used > first


def test_staff_without_tenant_gets_clean_error(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(staff_user)
    assert_envelope(client.get("/api/v1/auth/tokens"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_envelope(client.post("/api/v1/auth/tokens", {"name": "x"}, format="json"), 403, "INSUFFICIENT_PERMISSIONS")


def test_unknown_fields_and_missing_name(client_a):
    body = assert_envelope(client_a.post("/api/v1/auth/tokens", {"nmae": "x"}, format="json"),
                           400, "INVALID_FORMAT")
    fields = {d["field"] for d in body["details"]}
    assert {"nmae", "name"} <= fields
    body = assert_envelope(client_a.post("/api/v1/auth/tokens", {}, format="json"), 400, "MISSING_REQUIRED_FIELD")
    assert body["details"] == [{"field": "name", "message": "This field is required."}]


def test_unknown_permission(client_a):
    body = assert_envelope(client_a.post("/api/v1/auth/tokens", {"name": "x", "permissions": ["root"]},
                                         format="json"), 400, "INVALID_FORMAT")
    assert body["details"][0]["field"] == "permissions[0]"

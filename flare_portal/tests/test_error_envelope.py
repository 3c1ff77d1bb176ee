"""Every error class the API can produce answers in the envelope of API.md."""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.django_db


def check(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"status", "error_code", "message", "suggestions", "details"}
    assert body["status"] == status and body["error_code"] == code and body["message"]
    assert response["X-Request-ID"] == body["request_id"]
    return body


def test_malformed_json(client_a):
    response = client_a.post("/api/v1/auth/tokens", data='{"name": ', content_type="application/json")
    body = check(response, 400, "INVALID_FORMAT")
    assert "JSON" in body["message"]


def test_non_object_json(client_a):
    check(client_a.post("/api/v1/auth/tokens", data="[1, 2]", content_type="application/json"), 400, "INVALID_FORMAT")
    check(client_a.post("/api/v1/auth/tokens", data="null", content_type="application/json"), 400, "INVALID_FORMAT")


def test_nan_is_not_json(client_a):
    check(client_a.post("/api/v1/auth/tokens", data='{"name": NaN}', content_type="application/json"),
          400, "INVALID_FORMAT")


def test_charset_is_accepted(client_a):
    response = client_a.post("/api/v1/auth/tokens", data='{"name": "x"}', content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_wrong_content_type(client_a):
    check(client_a.post("/api/v1/auth/tokens", data="name=x", content_type="application/x-www-form-urlencoded"),
          415, "UNSUPPORTED_MEDIA_TYPE")
    check(client_a.post("/api/v1/auth/tokens", data="<x/>", content_type="text/xml"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_oversized_body(client_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client_a.post("/api/v1/auth/tokens", data='{"name": "' + "x" * 5000 + '"}',
                             content_type="application/json")
    check(response, 413, "PAYLOAD_TOO_LARGE")


def test_method_not_allowed(client_a):
    check(client_a.put("/api/v1/auth/verify", {}, format="json"), 405, "METHOD_NOT_ALLOWED")


def test_unknown_api_path(client_a):
    check(client_a.get("/api/v1/no-such-thing"), 404, "NOT_FOUND")


def test_throttling(client_a, settings):
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    from flare_portal.api.throttling import TokenRateThrottle

    cache.clear()
    old = TokenRateThrottle.THROTTLE_RATES
    TokenRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "token": "2/min"}
    try:
        client_a.get("/api/v1/auth/verify")
        client_a.get("/api/v1/auth/verify")
        response = client_a.get("/api/v1/auth/verify")
        check(response, 429, "RATE_LIMITED")
        assert int(response["Retry-After"]) > 0
    finally:
        TokenRateThrottle.THROTTLE_RATES = old
        cache.clear()


def test_unexpected_exception_is_a_logged_500_in_the_envelope(client_a, monkeypatch, caplog):
    from tenants.api import views

    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.VerifyView, "get", explode)
    with caplog.at_level(logging.ERROR, logger="flare.api"):
        response = client_a.get("/api/v1/auth/verify", HTTP_X_REQUEST_ID="trace-123")
    body = check(response, 500, "INTERNAL_ERROR")
    assert body["request_id"] == "trace-123"
    assert "boom" not in body["message"]
    record = next(r for r in caplog.records if r.name == "flare.api")
    assert record.request_id == "trace-123"


def test_request_id_generated_and_sanitised(client_a):
    generated = client_a.get("/api/v1/auth/verify")
    assert generated["X-Request-ID"].startswith("req_")
    hostile = client_a.get("/api/v1/auth/verify", HTTP_X_REQUEST_ID="x" * 500 + "\n")
    assert hostile["X-Request-ID"].startswith("req_")


def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] and ready.json()["checks"]["redis"]["ok"]


def test_readyz_reports_a_dead_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False


def test_openapi_schema_served_and_docs(client):
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/auth/tokens" in paths and "/api/v1/auth/verify" in paths
    assert "bearerAuth" in schema.json()["components"]["securitySchemes"]
    assert client.get("/api/v1/docs/").status_code == 200


def test_schema_validates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")

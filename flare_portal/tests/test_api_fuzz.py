"""Fuzz every operation of our own OpenAPI schema: no input may produce a 500, and every error
answers in the envelope. Cases come from schemathesis; requests go through Django's test client
with a real token of tenant A against the seeded demo federation."""

from __future__ import annotations

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

API_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(API_SCHEMA)

ERROR_KEYS = {"status", "error_code", "message", "suggestions", "details"}


@pytest.fixture
def fuzz_client(client_a, demo_federation):
    return client_a


def send(client, case):
    from schemathesis.core import NotSet

    path = case.formatted_path
    query = {k: v for k, v in (case.query or {}).items()}
    method = case.method.lower()
    kwargs = {}
    if isinstance(case.body, NotSet):
        pass
    elif case.body is not None and not isinstance(case.body, (bytes, str)):
        kwargs = {"data": json.dumps(case.body), "content_type": "application/json"}
    elif case.body is not None:
        kwargs = {"data": case.body, "content_type": case.media_type or "application/json"}
    if query:
        from urllib.parse import urlencode

        path = f"{path}?{urlencode(query, doseq=True)}"
    if method in ("get", "post", "put", "patch", "delete", "head", "options"):
        return getattr(client, method)(path, **kwargs)
    return client.generic(case.method.upper(), path, kwargs.get("data", ""),
                          kwargs.get("content_type", "application/octet-stream"))


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, fuzz_client):
    response = send(fuzz_client, case)
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, case.body,
                                        response.content[:500])
    if response.status_code >= 400 and response["Content-Type"].startswith("application/json"):
        assert ERROR_KEYS <= set(response.json()), response.content[:500]

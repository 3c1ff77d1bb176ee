"""Property: no document, however mangled, makes POST /intents answer 500; refusals use the
envelope and change nothing. Documents are published examples with one field replaced by
arbitrary JSON (the cases a real client gets wrong), plus arbitrary JSON bodies."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intents.examples import EXAMPLES, load_example

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**12, max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield prefix + (index,)
            yield from paths(value, prefix + (index,))


def with_future_deadline(doc):
    constraints = doc["intent"].get("constraints") or {}
    if "deadline" in constraints:
        constraints["deadline"] = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


BASES = [with_future_deadline(load_example(name)) for name in EXAMPLES]


@st.composite
def mutated_documents(draw):
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    options = list(paths(doc))
    path = draw(st.sampled_from(options))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = draw(json_values)
    return doc


def check(response):
    assert response.status_code < 500, response.content[:400]
    if response.status_code >= 400:
        body = response.json()
        assert {"status", "error_code", "message", "suggestions", "details"} <= set(body)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=mutated_documents())
def test_mutated_documents_never_500(client_a, demo_federation, doc):
    response = client_a.post("/api/v1/intents", doc, format="json")
    check(response)
    if response.status_code in (201, 202):
        client_a.delete(f"/api/v1/intents/{response.json()['intent_id']}")


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=json_values)
def test_arbitrary_bodies_never_500(client_a, demo_federation, tenant_a, body):
    from django_tenants.utils import schema_context

    from intents.models import Intent

    with schema_context(tenant_a.schema_name):
        before = Intent.objects.count()
    check(client_a.post("/api/v1/intents", body, format="json"))
    with schema_context(tenant_a.schema_name):
        assert Intent.objects.count() == before

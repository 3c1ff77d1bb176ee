"""Any JSON-like input: `validate_intent` returns a normalised document or raises
IntentValidationError — never anything else — and a normalised document validates to itself."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intents.examples import EXAMPLES, load_example
from intents.schema import (
    INVALID_FORMAT,
    MISSING_REQUIRED_FIELD,
    IntentValidationError,
    document_gpus,
    validate_intent,
)

NOW = datetime(2024, 11, 1, tzinfo=timezone.utc)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "any", "80Gi", "9", "2h", "10 EUR", "EU", "job", "batch", "service", "TCP",
                      "2024-12-15T00:00:00Z", "09:00", "Europe/Berlin", "50ms", "99.9%", "10.0.0.0/8",
                      "nvidia-h100", "A=b=c", "/data", "1e400", "NaN", "-1", "0"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(payload) -> dict | None:
    """The whole contract of validate_intent for one input."""
    try:
        doc = validate_intent(payload, now=NOW)
    except IntentValidationError as exc:
        assert exc.errors, "an IntentValidationError lists at least one problem"
        for error in exc.errors:
            assert set(error) == {"field", "message", "code"}
            assert isinstance(error["field"], str) and error["field"]
            assert isinstance(error["message"], str) and error["message"]
            assert error["code"] in (INVALID_FORMAT, MISSING_REQUIRED_FIELD)
        assert exc.error_code in (INVALID_FORMAT, MISSING_REQUIRED_FIELD)
        assert isinstance(exc.message, str) and exc.message
        return None
    assert set(doc) == {"objective", "workload", "constraints", "sla"}
    json.loads(json.dumps(doc, allow_nan=False))  # strict JSON, no NaN/Infinity
    assert validate_intent({"intent": copy.deepcopy(doc)}, now=NOW) == doc
    assert document_gpus(doc) >= 1
    return doc


@FUZZ
@given(json_values)
def test_arbitrary_json_body(payload):
    check(payload)


@FUZZ
@given(json_values)
def test_arbitrary_json_intent(intent):
    check({"intent": intent})


@FUZZ
@given(st.dictionaries(st.sampled_from(["objective", "workload", "constraints", "sla", "extra"]), json_values))
def test_arbitrary_sections(intent):
    check({"intent": intent})


def _paths(value, prefix=()):
    """Every (path) to a value inside a JSON document, containers included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _parent(doc, path):
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


@FUZZ
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutated_examples(name, data):
    body = load_example(name)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = _parent(body, path)
        action = data.draw(st.sampled_from(["replace", "delete", "add", "wrap"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif action == "delete":
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12), label="key")] = data.draw(json_values, label="value")
        else:
            parent.append(data.draw(json_values, label="value"))
    check(body)


@FUZZ
@given(st.sampled_from(EXAMPLES), st.sampled_from(["objective", "type", "model", "tier", "location", "count",
                                                   "memory_min", "cpu", "timeout", "max_hourly_cost"]),
       scalars)
def test_examples_with_one_scalar_replaced(name, key, value):
    body = load_example(name)
    for path in list(_paths(body)):
        if path and path[-1] == key:
            _parent(body, path)[key] = value
    check(body)


def test_every_example_survives_the_contract():
    for name in EXAMPLES:
        assert check(load_example(name)) is not None

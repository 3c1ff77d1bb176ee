"""Intent → FLUIDOS Solver: the CRD, the filter language of FLUIDOS.md §2, every GPU requirement."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_portal.crds import validate_custom_resource
from flare_portal.units import parse_quantity
from intents.examples import EXAMPLES, load_example
from intents.schema import gpu_field_names, validate_intent
from intents.solver import label_value, solver_manifest, solver_name, solver_yaml

NOW = datetime(2024, 11, 1, tzinfo=timezone.utc)
INTENT_ID = "intent-abcdefghij23"

# FLUIDOS.md §1: the types of the Flavor's `gpu` fields.
FLAVOR_GPU_TYPES = {
    **{f: "string" for f in ("model", "vendor", "tier", "architecture", "compute_capability", "interconnect",
                             "topology", "sharing_strategy", "multi_gpu_efficiency", "network_tier", "provider",
                             "region", "zone")},
    **{f: "int" for f in ("count", "network_latency_ms")},
    **{f: "float" for f in ("fp32_tflops", "hourly_rate", "training_score", "inference_score", "hpc_score",
                            "graphics_score")},
    **{f: "bool" for f in ("multi_instance", "shared", "dedicated", "interruptible", "pre_emptible")},
    **{f: "quantity" for f in ("memory", "cores", "clock_speed", "network_bandwidth", "interconnect_bandwidth")},
}
K8S_QUANTITY = re.compile(
    r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)


def doc_of(body) -> dict:
    return validate_intent(body, now=NOW)


def manifest_of(body, **kwargs) -> dict:
    kwargs.setdefault("intent_id", INTENT_ID)
    kwargs.setdefault("tenant", "acme")
    kwargs.setdefault("user", "alice")
    return solver_manifest(doc_of(body), **kwargs)


def gpu_body(**gpu) -> dict:
    return {"intent": {"objective": "Performance_Maximization", "workload": {
        "type": "service", "name": "svc", "image": "nginx", "resources": {"cpu": "4", "memory": "16Gi", "gpu": gpu}}}}


def gpu_filters(manifest) -> list[dict]:
    return manifest["spec"]["selector"]["filters"]["gpuFilters"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range(data, parse) -> None:
    assert isinstance(data, dict) and data and set(data) <= {"min", "max"}, data
    bounds = {k: parse(v) for k, v in data.items()}
    if len(bounds) == 2:
        assert bounds["min"] <= bounds["max"], data


def _quantity(value) -> Decimal:
    assert isinstance(value, str) and K8S_QUANTITY.fullmatch(value), value
    return parse_quantity(value)


def _number(value):
    assert _is_number(value), value
    return value


def check_fluidos_filters(filters: dict, *, marker: str | None = None) -> None:
    """The semantic checks the CRD cannot make (FLUIDOS.md §2), for filters FLARE writes."""
    assert set(filters) <= {"cpuFilter", "memoryFilter", "podsFilter", "architectureFilter", "gpuFilters"}
    assert "storageFilter" not in filters
    for key in ("cpuFilter", "memoryFilter"):
        if key in filters:
            assert set(filters[key]) == {"name", "data"} and filters[key]["name"] == "Range"
            _range(filters[key]["data"], _quantity)
    entries = filters["gpuFilters"]
    assert isinstance(entries, list)
    fields = [entry["field"] for entry in entries]
    assert len(fields) == len(set(fields)), f"a field twice: only the last one would count: {fields}"
    if marker is not None:
        assert entries[-1] == {"field": "flare_discovery", "filter": "StringFilter", "data": {"value": marker}}
        entries = entries[:-1]
    for entry in entries:
        assert set(entry) == {"field", "filter", "data"}, entry
        kind = FLAVOR_GPU_TYPES.get(entry["field"])
        assert kind, f"unknown field {entry['field']!r} rejects every GPU Flavor"
        name, data = entry["filter"], entry["data"]
        if name == "StringFilter":
            assert kind == "string" and set(data) == {"value"} and isinstance(data["value"], str)
            assert data["value"] and data["value"].lower() != "any", "StringFilter {value: Any} matches nothing"
        elif name == "StringRangeSelector":
            assert kind == "string" and set(data) == {"regex"} and isinstance(data["regex"], str)
        elif name in ("NumberRangeFilter", "NumberMatchFilter"):
            assert kind in ("int", "float"), f"a Number filter on the string {entry['field']!r} rejects everything"
            if name == "NumberMatchFilter":
                assert set(data) == {"value"} and _is_number(data["value"])
            else:
                _range(data, _number)
        elif name in ("ResourceRangeSelector", "ResourceMatchSelector"):
            assert kind in ("quantity", "string"), \
                f"a Resource filter on the float {entry['field']!r} rejects everything"
            if name == "ResourceMatchSelector":
                assert set(data) == {"value"}
                _quantity(data["value"])
            else:
                _range(data, _quantity)
        elif name == "BooleanFilter":
            assert kind == "bool" and isinstance(data, bool)
        else:
            pytest.fail(f"unknown filter {name!r} would be dropped silently")


def cluster_accepts(traits: dict, entry: dict) -> bool:
    """How the FLUIDOS consumer evaluates one GPU filter on a PeeringCandidate (FLUIDOS.md §2)."""
    field, name, data = entry["field"], entry["filter"], entry["data"]
    if field not in traits:
        return False
    value = traits[field]
    if name == "StringFilter":
        return isinstance(value, str) and value == data["value"]
    if name == "NumberRangeFilter":
        if isinstance(value, str):
            return False
        return data.get("min", value) <= value <= data.get("max", value)
    if name == "ResourceRangeSelector":
        if isinstance(value, float):
            return False
        amount = parse_quantity(value)
        return parse_quantity(data.get("min", value)) <= amount <= parse_quantity(data.get("max", value))
    if name == "BooleanFilter":
        return (not data) and value is True
    raise AssertionError(name)


def assert_valid(manifest: dict, *, marker: str | None = None) -> None:
    assert validate_custom_resource(manifest) == []
    check_fluidos_filters(manifest["spec"]["selector"]["filters"], marker=marker)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("marker", [False, True])
def test_example_manifests_match_the_crd_and_the_filter_language(name, marker):
    manifest = manifest_of(load_example(name), discovery_marker=marker)
    assert_valid(manifest, marker=manifest["metadata"]["name"] if marker else None)


def test_manifest_shape():
    manifest = manifest_of(load_example("llm_inference"), attempt=2)
    assert manifest["apiVersion"] == "nodecore.fluidos.eu/v1alpha1"
    assert manifest["kind"] == "Solver"
    assert manifest["metadata"]["name"] == f"flare-{INTENT_ID}-2"
    assert manifest["metadata"]["namespace"] == "fluidos"
    assert manifest["metadata"]["labels"] == {"flare.io/intent-id": INTENT_ID, "flare.io/tenant": "acme",
                                              "flare.io/user": "alice", "intentID": INTENT_ID}
    spec = manifest["spec"]
    assert (spec["intentID"], spec["findCandidate"], spec["reserveAndBuy"], spec["establishPeering"]) == \
        (INTENT_ID, True, False, False)
    assert spec["selector"]["flavorType"] == "K8Slice"
    filters = spec["selector"]["filters"]
    assert filters["cpuFilter"] == {"name": "Range", "data": {"min": "8"}}
    assert filters["memoryFilter"] == {"name": "Range", "data": {"min": "32Gi"}}
    assert gpu_filters(manifest) == [
        {"field": "model", "filter": "StringFilter", "data": {"value": "nvidia-h100"}},
        {"field": "vendor", "filter": "StringFilter", "data": {"value": "nvidia"}},
        {"field": "count", "filter": "NumberRangeFilter", "data": {"min": 2}},
        {"field": "memory", "filter": "ResourceRangeSelector", "data": {"min": "160Gi"}},
        {"field": "tier", "filter": "StringFilter", "data": {"value": "premium"}},
    ]


def test_explicit_name_and_discovery_marker():
    manifest = manifest_of(load_example("video_batch"), name="custom-solver", discovery_marker=True)
    assert manifest["metadata"]["name"] == "custom-solver"
    assert gpu_filters(manifest)[-1] == {"field": "flare_discovery", "filter": "StringFilter",
                                         "data": {"value": "custom-solver"}}
    plain = manifest_of(load_example("video_batch"), name="custom-solver")
    assert all(e["field"] != "flare_discovery" for e in gpu_filters(plain))
    assert gpu_filters(manifest)[:-1] == gpu_filters(plain)


def test_marker_is_the_only_difference():
    body = load_example("distributed_training")
    a = manifest_of(body, discovery_marker=True)
    b = manifest_of(body)
    a["spec"]["selector"]["filters"]["gpuFilters"].pop()
    assert a == b


def test_manifest_does_not_change_the_document():
    doc = doc_of(load_example("llm_inference"))
    before = copy.deepcopy(doc)
    solver_manifest(doc, intent_id=INTENT_ID, tenant="acme", user="alice", discovery_marker=True)
    assert doc == before


def test_no_storage_filter_even_with_volumes():
    filters = manifest_of(load_example("distributed_training"))["spec"]["selector"]["filters"]
    assert "storageFilter" not in filters


def test_no_cpu_or_memory_filter_when_not_requested():
    body = gpu_body(model="nvidia-t4")
    body["intent"]["workload"]["resources"] = {"gpu": {"model": "nvidia-t4"}}
    filters = manifest_of(body)["spec"]["selector"]["filters"]
    assert set(filters) == {"gpuFilters"}


def test_any_and_absent_write_nothing():
    body = gpu_body(model="any", tier="any", architecture="any", interconnect="any", topology="any",
                    compute_capability="any")
    assert gpu_filters(manifest_of(body)) == [{"field": "count", "filter": "NumberRangeFilter", "data": {"min": 1}}]


def test_false_booleans_write_nothing():
    body = gpu_body(shared=False, interruptible=False, multi_instance=False, dedicated=False)
    assert [e["field"] for e in gpu_filters(manifest_of(body))] == ["count"]


def test_memory_and_cores_are_node_totals_for_the_requested_gpus():
    body = gpu_body(count=4, memory_min="40Gi", memory_max="1.5Ti", cores_min=6912, cores_max=7000,
                    clock_speed_min="1.41G")
    entries = {e["field"]: e for e in gpu_filters(manifest_of(body))}
    assert entries["memory"]["data"] == {"min": "160Gi", "max": "6Ti"}
    assert entries["cores"]["data"] == {"min": "27648", "max": "28000"}
    assert entries["clock_speed"]["data"] == {"min": "1.41G"}  # a clock is per GPU, never summed


# Every GPU field of the document: an example value and the filters it must produce (count 1).
GPU_FIELD_CASES = {
    "model": ("nvidia-h100", [("model", "StringFilter", {"value": "nvidia-h100"}),
                              ("vendor", "StringFilter", {"value": "nvidia"})]),
    "count": (4, [("count", "NumberRangeFilter", {"min": 4})]),
    "memory_min": ("80Gi", [("memory", "ResourceRangeSelector", {"min": "80Gi"})]),
    "memory_max": ("96Gi", [("memory", "ResourceRangeSelector", {"max": "96Gi"})]),
    "cores_min": (16896, [("cores", "ResourceRangeSelector", {"min": "16896"})]),
    "cores_max": (20000, [("cores", "ResourceRangeSelector", {"max": "20000"})]),
    "clock_speed_min": ("1.98G", [("clock_speed", "ResourceRangeSelector", {"min": "1.98G"})]),
    "compute_capability": ("9", [("compute_capability", "StringFilter", {"value": "9.0"})]),
    "architecture": ("Hopper", [("architecture", "StringFilter", {"value": "hopper"})]),
    "tier": ("premium", [("tier", "StringFilter", {"value": "premium"})]),
    "interconnect": ("nvlink", [("interconnect", "StringFilter", {"value": "nvlink"})]),
    "topology": ("ring", [("topology", "StringFilter", {"value": "ring"})]),
    "fp32_tflops": (60, [("fp32_tflops", "NumberRangeFilter", {"min": 60.0})]),
    "multi_gpu_efficiency": (0.9, [("multi_gpu_efficiency", "ResourceRangeSelector", {"min": "0.9"})]),
    "shared": (True, [("shared", "BooleanFilter", False)]),
    "interruptible": (True, [("interruptible", "BooleanFilter", False)]),
    "multi_instance": (True, [("multi_instance", "BooleanFilter", False)]),
    "dedicated": (True, [("dedicated", "BooleanFilter", False)]),
}


def test_the_cases_cover_every_gpu_field_of_the_schema():
    assert set(GPU_FIELD_CASES) == set(gpu_field_names())


@pytest.mark.parametrize("field", gpu_field_names())
def test_every_gpu_field_reaches_the_solver(field):
    value, expected = GPU_FIELD_CASES[field]
    baseline = gpu_filters(manifest_of(gpu_body()))
    entries = gpu_filters(manifest_of(gpu_body(**{field: value})))
    added = [(e["field"], e["filter"], e["data"]) for e in entries if e not in baseline]
    if field == "count":
        assert [(e["field"], e["filter"], e["data"]) for e in entries] == expected
    else:
        assert added == expected


def test_all_gpu_fields_together():
    gpu = {field: value for field, (value, _) in GPU_FIELD_CASES.items()}
    manifest = manifest_of(gpu_body(**gpu), discovery_marker=True)
    assert_valid(manifest, marker=manifest["metadata"]["name"])
    fields = {e["field"] for e in gpu_filters(manifest)}
    assert fields == {"model", "vendor", "count", "memory", "cores", "clock_speed", "compute_capability",
                      "architecture", "tier", "interconnect", "topology", "fp32_tflops", "multi_gpu_efficiency",
                      "shared", "interruptible", "multi_instance", "dedicated", "flare_discovery"}


def test_filters_select_the_right_flavors_under_fluidos_semantics():
    body = gpu_body(model="nvidia-h100", count=2, memory_min="80Gi", cores_min=16000, clock_speed_min="1.5G",
                    compute_capability="9.0", architecture="hopper", tier="premium", interconnect="nvswitch",
                    topology="nvswitch", fp32_tflops=60, multi_gpu_efficiency=0.9, shared=True, dedicated=True)
    entries = gpu_filters(manifest_of(body))
    # A Flavor's gpu as FLUIDOS publishes it: node totals, false booleans dropped, efficiency a string.
    h100 = {"model": "nvidia-h100", "vendor": "nvidia", "count": 2, "memory": "160Gi", "cores": "33792",
            "clock_speed": "1.98G", "compute_capability": "9.0", "architecture": "hopper", "tier": "premium",
            "interconnect": "nvswitch", "topology": "nvswitch", "fp32_tflops": 67.0,
            "multi_gpu_efficiency": "0.95", "shared": True, "dedicated": True}
    assert all(cluster_accepts(h100, e) for e in entries)
    for field, other in [("model", "nvidia-a100"), ("memory", "80Gi"), ("fp32_tflops", 19.5),
                         ("multi_gpu_efficiency", "0.85"), ("count", 1), ("clock_speed", "1.2G")]:
        assert not all(cluster_accepts({**h100, field: other}, e) for e in entries), field
    for dropped in ("shared", "dedicated", "compute_capability"):
        assert not all(cluster_accepts({k: v for k, v in h100.items() if k != dropped}, e) for e in entries)


def test_yaml_round_trip():
    manifest = manifest_of(load_example("jupyter_service"), discovery_marker=True)
    text = solver_yaml(manifest)
    assert yaml.safe_load(text) == manifest
    assert text.startswith("apiVersion: nodecore.fluidos.eu/v1alpha1\nkind: Solver\n")


@pytest.mark.parametrize("raw, expected", [
    ("alice", "alice"), ("alice@example.com", "alice-example.com"), ("Ünïcode user", "n-code-user"),
    ("-edge-", "edge"), ("", ""),
])
def test_label_values_are_label_safe(raw, expected):
    assert label_value(raw) == expected


def test_long_label_values_are_shortened_uniquely():
    a, b = label_value("x" * 100 + "a"), label_value("x" * 100 + "b")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    manifest = manifest_of(load_example("llm_inference"), tenant="t" * 80, user="someone@example.com")
    assert validate_custom_resource(manifest) == []
    assert all(len(v) <= 63 for v in manifest["metadata"]["labels"].values())


def test_solver_name():
    assert solver_name("intent-abc", 3) == "flare-intent-abc-3"
    assert solver_name("Intent_ABC") == "flare-intent-abc-1"


GPU_SECTIONS = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["nvidia-h100", "amd-mi300x", "any", "NVIDIA-A100", "nvidia-rtx-a6000", "acme-x1"]),
    "count": st.integers(min_value=1, max_value=16),
    "memory_min": st.sampled_from(["16Gi", "24Gi", "40G", "80Gi", 8589934592, "1.5Ti"]),
    "memory": st.sampled_from(["16Gi", "80Gi"]),
    "cores_min": st.integers(min_value=1, max_value=20000),
    "clock_speed_min": st.sampled_from(["1.5G", "1410M", 1500000000, "2G"]),
    "compute_capability": st.sampled_from(["9", "8.6", 7.5, "any", 8]),
    "architecture": st.sampled_from(["hopper", "AMPERE", "any", "cdna3"]),
    "tier": st.sampled_from(["premium", "budget", "any"]),
    "interconnect": st.sampled_from(["nvlink", "pcie", "infinity-fabric", "any"]),
    "topology": st.sampled_from(["ring", "mesh", "all-to-all"]),
    "fp32_tflops": st.floats(min_value=0.1, max_value=200, allow_nan=False),
    "multi_gpu_efficiency": st.floats(min_value=0, max_value=1, allow_nan=False),
    "shared": st.booleans(), "interruptible": st.booleans(),
    "multi_instance": st.booleans(), "dedicated": st.booleans(),
})


@settings(max_examples=200, deadline=None)
@given(GPU_SECTIONS, st.booleans(), st.sampled_from(["4", "0.5", 16, "250m"]), st.sampled_from(["1Gi", "512Mi"]))
def test_any_valid_gpu_section_gives_a_valid_solver(gpu, marker, cpu, memory):
    if "memory" in gpu and "memory_min" in gpu:
        del gpu["memory"]
    body = gpu_body(**gpu)
    body["intent"]["workload"]["resources"].update(cpu=cpu, memory=memory)
    manifest = manifest_of(body, discovery_marker=marker)
    assert_valid(manifest, marker=manifest["metadata"]["name"] if marker else None)
    doc = doc_of(body)
    entries = {e["field"]: e for e in gpu_filters(manifest)}
    assert entries["count"]["data"] == {"min": doc["workload"]["resources"]["gpu"]["count"]}
    for boolean in ("shared", "interruptible", "multi_instance", "dedicated"):
        assert (boolean in entries) == doc["workload"]["resources"]["gpu"][boolean]

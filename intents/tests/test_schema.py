"""The intent document: every section, defaults, published aliases, errors (API.md)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from intents.examples import EXAMPLES, load_example
from intents.schema import (
    INVALID_FORMAT,
    MISSING_REQUIRED_FIELD,
    IntentValidationError,
    document_gpus,
    validate_intent,
)

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=timezone.utc)


def service(**workload) -> dict:
    body = {"intent": {"objective": "Cost_Minimization", "workload": {
        "type": "service", "name": "web", "image": "nginx:1.27", "resources": {"gpu": {"model": "nvidia-t4"}},
    }}}
    body["intent"]["workload"].update(workload)
    return body


def batch(**workload) -> dict:
    body = service(**workload)
    body["intent"]["workload"].setdefault("type", "batch")
    if "type" not in workload:
        body["intent"]["workload"]["type"] = "batch"
    return body


def with_constraints(**constraints) -> dict:
    body = service()
    body["intent"]["constraints"] = constraints
    return body


def with_gpu(**gpu) -> dict:
    return service(resources={"gpu": gpu})


def ok(body, now=NOW) -> dict:
    return validate_intent(body, now=now)


def rejected(body, now=NOW) -> IntentValidationError:
    with pytest.raises(IntentValidationError) as info:
        validate_intent(body, now=now)
    return info.value


def only_error(body, now=NOW) -> dict:
    exc = rejected(body, now)
    assert len(exc.errors) == 1, exc.errors
    return exc.errors[0]


def fields_of(exc: IntentValidationError) -> set[str]:
    return {e["field"] for e in exc.errors}


# --------------------------------------------------------------------------------------------
# The published examples.


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_published_example_is_accepted(name):
    doc = ok(load_example(name))
    assert set(doc) == {"objective", "workload", "constraints", "sla"}
    json.dumps(doc)  # JSON-serialisable as stored


@pytest.mark.parametrize("name", EXAMPLES)
def test_normalised_example_validates_to_itself(name):
    doc = ok(load_example(name))
    assert ok({"intent": copy.deepcopy(doc)}) == doc


def test_published_aliases_in_examples_are_normalised():
    video = ok(load_example("video_batch"))
    assert "job" not in video["workload"]
    assert video["workload"]["batch"] == {"parallel_tasks": 20, "max_retries": 2, "timeout": "6h",
                                          "completion_policy": "All"}
    comm = ok(load_example("communication_aware_training"))
    assert comm["constraints"]["max_latency_ms"] == 50
    assert "max_network_latency" not in comm["constraints"]
    assert comm["workload"]["batch"]["parallel_tasks"] == 1  # default filled


def test_older_published_spellings_normalise_like_the_current_ones():
    # The first published revision wrote `"type": "job"` and `gpu.memory`.
    current = load_example("distributed_training")
    older = copy.deepcopy(current)
    older["intent"]["workload"]["type"] = "job"
    gpu = older["intent"]["workload"]["resources"]["gpu"]
    gpu["memory"] = gpu.pop("memory_min")
    assert ok(older) == ok(current)


def test_published_deadlines_are_in_the_past_today():
    exc = rejected(load_example("video_batch"), now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [(e["field"], e["code"]) for e in exc.errors] == [("intent.constraints.deadline", INVALID_FORMAT)]


@pytest.mark.parametrize("name, mutate, field, code, words", [
    ("llm_inference", lambda i: i["workload"]["resources"]["gpu"].__setitem__("modle", "nvidia-h100"),
     "intent.workload.resources.gpu.modle", INVALID_FORMAT, "'model'"),
    ("video_batch", lambda i: i["workload"]["job"].__setitem__("parallel_tasks", "20"),
     "intent.workload.job.parallel_tasks", INVALID_FORMAT, "whole number"),
    ("distributed_training", lambda i: i["workload"]["storage"]["volumes"][1].__setitem__("name", "training-data"),
     "intent.workload.storage.volumes[1].name", INVALID_FORMAT, "volumes[0]"),
    ("spark_etl", lambda i: i["workload"]["secrets"][1].pop("env"),
     "intent.workload.secrets[1].env", MISSING_REQUIRED_FIELD, "required"),
    ("jupyter_service", lambda i: i["workload"]["scaling"].__setitem__("min_replicas", 2),
     "intent.workload.scaling.max_replicas", INVALID_FORMAT, "smaller than min_replicas"),
    ("communication_aware_training", lambda i: i["constraints"].__setitem__("max_network_latency", "fast"),
     "intent.constraints.max_network_latency", INVALID_FORMAT, "latency"),
])
def test_each_example_with_one_mistake_is_rejected_precisely(name, mutate, field, code, words):
    body = load_example(name)
    mutate(body["intent"])
    exc = rejected(body)
    assert [(e["field"], e["code"]) for e in exc.errors] == [(field, code)]
    assert words in exc.errors[0]["message"]
    assert exc.error_code == code


# --------------------------------------------------------------------------------------------
# Defaults.


def test_service_defaults():
    doc = ok(service())
    workload = doc["workload"]
    assert workload["resources"]["gpu"] == {"model": "nvidia-t4", "count": 1, "shared": False,
                                            "interruptible": False, "multi_instance": False, "dedicated": False}
    assert workload["scaling"] == {"min_replicas": 1, "max_replicas": 10, "auto_scale": False,
                                   "target_cpu_percent": 70, "target_gpu_percent": 80}
    assert "batch" not in workload
    assert doc["constraints"] == {
        "max_latency_ms": 100, "preemptible": False,
        "negotiation": {"max_negotiation_rounds": 3, "price_flexibility": 0.15, "resource_flexibility": 0.10,
                        "timeout_seconds": 300, "fallback_strategy": "queue", "auto_accept_threshold": 0.05},
    }
    assert doc["sla"] == {}


def test_batch_defaults():
    workload = ok(batch())["workload"]
    assert workload["batch"] == {"parallel_tasks": 1, "max_retries": 3, "completion_policy": "All"}
    assert "scaling" not in workload


def test_gpu_section_absent_means_one_gpu():
    body = service(resources={"cpu": "2"})
    assert ok(body)["workload"]["resources"]["gpu"]["count"] == 1


def test_port_defaults():
    port = ok(service(ports=[{"port": 8080}]))["workload"]["ports"][0]
    assert port == {"port": 8080, "protocol": "TCP", "expose": False}


def test_section_defaults_when_section_is_given():
    c = ok(with_constraints(energy={}, security={}, compliance={},
                            availability={"maintenance_windows": [{"start": "2024-01-15T02:00:00Z",
                                                                   "end": "2024-01-15T04:00:00Z"}]}))["constraints"]
    assert c["energy"] == {"renewable_energy_only": False, "power_usage_effectiveness": 2.0,
                           "green_certified_only": False}
    assert c["security"]["network_isolation"] == "public"
    assert c["compliance"]["gdpr_compliant"] is False
    assert c["availability"]["maintenance_windows"][0]["frequency"] == "weekly"


def test_null_optional_fields_take_their_defaults():
    body = service(scaling=None, ports=None)
    body["intent"]["constraints"] = {"max_latency_ms": None, "negotiation": None}
    body["intent"]["sla"] = None
    doc = ok(body)
    assert doc["constraints"]["max_latency_ms"] == 100
    assert doc["workload"]["scaling"]["max_replicas"] == 10
    assert doc["sla"] == {}


# --------------------------------------------------------------------------------------------
# Aliases.


def test_alias_type_job_is_batch():
    assert ok(service(type="job"))["workload"]["type"] == "batch"


def test_alias_workload_job_is_batch():
    doc = ok(batch(job={"parallel_tasks": 3}))
    assert doc["workload"]["batch"]["parallel_tasks"] == 3


def test_alias_gpu_memory_is_memory_min():
    assert ok(with_gpu(memory="24Gi"))["workload"]["resources"]["gpu"]["memory_min"] == "24Gi"


@pytest.mark.parametrize("value, ms", [("50ms", 50), ("50 ms", 50), ("0.05s", 50), ("2s", 2000), (50, 50), ("75", 75)])
def test_alias_max_network_latency(value, ms):
    assert ok(with_constraints(max_network_latency=value))["constraints"]["max_latency_ms"] == ms


def test_alias_flexibile():
    assert ok(service(deployment_strategy="flexibile"))["workload"]["deployment_strategy"] == "flexible"


def test_provider_names_keep_their_case_and_compare_without_it():
    assert ok(with_constraints(providers=["AWS", "gcp"]))["constraints"]["providers"] == ["AWS", "gcp"]
    error = only_error(with_constraints(providers=["AWS", "aws"]))
    assert error["field"] == "intent.constraints.providers[1]"


@pytest.mark.parametrize("body, field", [
    (with_gpu(memory="24Gi", memory_min="24Gi"), "intent.workload.resources.gpu.memory"),
    (with_constraints(max_latency_ms=50, max_network_latency="50ms"), "intent.constraints.max_network_latency"),
    (batch(batch={}, job={}), "intent.workload.job"),
])
def test_alias_and_canonical_together_are_rejected(body, field):
    error = only_error(body)
    assert error["field"] == field
    assert "give only one" in error["message"]


def test_enum_values_are_case_insensitive_and_canonical():
    body = service(ports=[{"port": 53, "protocol": "udp"}], communication_pattern="ALL-REDUCE")
    body["intent"]["objective"] = "performance_maximization"
    body["intent"]["constraints"] = {"location": "eu", "energy": {"energy_efficiency_rating": "b"}}
    doc = ok(body)
    assert doc["objective"] == "Performance_Maximization"
    assert doc["workload"]["ports"][0]["protocol"] == "UDP"
    assert doc["workload"]["communication_pattern"] == "all-reduce"
    assert doc["constraints"]["location"] == "EU"
    assert doc["constraints"]["energy"]["energy_efficiency_rating"] == "B"


# --------------------------------------------------------------------------------------------
# Unknown fields.


@pytest.mark.parametrize("mutate, field, suggestion", [
    (lambda b: b["intent"].__setitem__("objectiv", "x"), "intent.objectiv", "objective"),
    (lambda b: b["intent"]["workload"].__setitem__("imagee", "x"), "intent.workload.imagee", "image"),
    (lambda b: b["intent"]["workload"]["resources"]["gpu"].__setitem__("modle", "x"),
     "intent.workload.resources.gpu.modle", "model"),
    (lambda b: b["intent"]["workload"]["resources"]["gpu"].__setitem__("Memory_Min", "x"),
     "intent.workload.resources.gpu.Memory_Min", "memory_min"),
    (lambda b: b["intent"].__setitem__("constraints", {"max_hourly_costs": "1 EUR"}),
     "intent.constraints.max_hourly_costs", "max_hourly_cost"),
    (lambda b: b["intent"].__setitem__("constraints", {"negotiation": {"fallback_stratgy": "queue"}}),
     "intent.constraints.negotiation.fallback_stratgy", "fallback_strategy"),
    (lambda b: b["intent"]["workload"].__setitem__("ports", [{"port": 80, "protocl": "TCP"}]),
     "intent.workload.ports[0].protocl", "protocol"),
    (lambda b: b["intent"]["workload"].__setitem__("jobb", {}), "intent.workload.jobb", "batch"),
    (lambda b: b.__setitem__("intnt", {}), "intnt", "intent"),
])
def test_unknown_field_names_its_path_and_the_closest_known_field(mutate, field, suggestion):
    body = service()
    mutate(body)
    error = only_error(body)
    assert error == {"field": field, "code": INVALID_FORMAT, "message": error["message"]}
    assert f"Did you mean '{suggestion}'?" in error["message"]


def test_unknown_field_without_a_close_match_lists_the_known_fields():
    body = with_gpu(zzzzzz=1)
    error = only_error(body)
    assert error["field"] == "intent.workload.resources.gpu.zzzzzz"
    assert "Known fields:" in error["message"] and "memory_min" in error["message"]


def test_published_but_unlisted_spellings_are_unknown_fields():
    # The first published reference also wrote gpu.cores/clock_speed; API.md does not accept them.
    exc = rejected(with_gpu(cores=1024, clock_speed="1.5G"))
    messages = {e["field"]: e["message"] for e in exc.errors}
    assert "Did you mean 'cores_min'?" in messages["intent.workload.resources.gpu.cores"]
    assert "Did you mean 'clock_speed_min'?" in messages["intent.workload.resources.gpu.clock_speed"]


# --------------------------------------------------------------------------------------------
# Error codes, summaries, every problem at once.


def test_missing_required_fields_are_named():
    exc = rejected({"intent": {"workload": {"type": "service"}}})
    assert fields_of(exc) == {"intent.objective", "intent.workload.name", "intent.workload.image",
                              "intent.workload.resources"}
    assert exc.error_code == MISSING_REQUIRED_FIELD
    assert all(e["code"] == MISSING_REQUIRED_FIELD for e in exc.errors)
    assert "intent.objective" in exc.message and "intent.workload.name" in exc.message
    assert any("'name' is required" in e["message"] for e in exc.errors)


def test_missing_intent_and_bare_document():
    assert only_error({})["field"] == "intent"
    error = only_error(service()["intent"])
    assert (error["field"], error["code"]) == ("intent", MISSING_REQUIRED_FIELD)
    assert "wrapped" in error["message"]


def test_null_required_field_is_missing():
    body = service(name=None)
    error = only_error(body)
    assert (error["field"], error["code"]) == ("intent.workload.name", MISSING_REQUIRED_FIELD)


def test_mixed_errors_report_invalid_format():
    body = service(name="Bad Name")
    del body["intent"]["objective"]
    exc = rejected(body)
    assert exc.error_code == INVALID_FORMAT
    assert {e["code"] for e in exc.errors} == {INVALID_FORMAT, MISSING_REQUIRED_FIELD}
    assert exc.message.startswith("The intent document is invalid:")
    assert "1 more problem" in exc.message
    assert exc.details == [{"field": e["field"], "message": e["message"]} for e in exc.errors]


def test_every_problem_is_listed():
    body = service(name="UPPER", ports=[{"port": 70000}], env=["=x"], batch={})
    body["intent"]["objective"] = "Cheapest"
    body["intent"]["workload"]["resources"] = {"cpu": "lots", "gpu": {"modle": "x", "count": 0}}
    body["intent"]["constraints"] = {"location": "Mars", "deadline": "2020-01-01T00:00:00Z"}
    body["intent"]["sla"] = {"availability": "200%"}
    exc = rejected(body)
    assert fields_of(exc) == {
        "intent.objective", "intent.workload.name", "intent.workload.env[0]", "intent.workload.ports[0].port",
        "intent.workload.resources.cpu", "intent.workload.resources.gpu.modle",
        "intent.workload.resources.gpu.count", "intent.workload.batch", "intent.constraints.location",
        "intent.constraints.deadline", "intent.sla.availability",
    }
    assert exc.error_code == INVALID_FORMAT


def test_bad_enum_suggests_the_closest_value():
    error = only_error(with_gpu(architecture="hoper"))
    assert error["field"] == "intent.workload.resources.gpu.architecture"
    assert "Did you mean 'hopper'?" in error["message"]


@pytest.mark.parametrize("payload", [None, [], "intent", 42, 3.5, True, [{"intent": {}}]])
def test_wrong_top_level_types(payload):
    error = only_error(payload)
    assert (error["field"], error["code"]) == ("$", INVALID_FORMAT)


@pytest.mark.parametrize("value", [[], "text", 1, None])
def test_intent_must_be_an_object(value):
    error = only_error({"intent": value})
    assert error["field"] == "intent"


def test_validation_error_is_an_exception_with_a_message():
    exc = rejected({"intent": {}})
    assert isinstance(exc, Exception)
    assert str(exc) == exc.message


# --------------------------------------------------------------------------------------------
# workload.


@pytest.mark.parametrize("name", ["Web", "-web", "web-", "web_app", "a" * 64, "", "web.app"])
def test_workload_name_is_a_dns_label(name):
    assert only_error(service(name=name))["field"] == "intent.workload.name"


def test_workload_name_of_63_characters_is_fine():
    assert ok(service(name="a" * 63))["workload"]["name"] == "a" * 63


@pytest.mark.parametrize("image", ["not an image", "library/UPPER", "repo:tag:tag", "", "x@sha256:123"])
def test_invalid_images(image):
    assert only_error(service(image=image))["field"] == "intent.workload.image"


@pytest.mark.parametrize("image", ["nginx", "nvcr.io/nvidia/pytorch:24.01-py3", "localhost:5000/team/app:v1",
                                   "ghcr.io/huggingface/text-generation-inference:2.0.2",
                                   "busybox@sha256:" + "a" * 64])
def test_valid_images(image):
    assert ok(service(image=image))["workload"]["image"] == image


def test_env_values_may_contain_equals_signs():
    env = ["OPTS=--a=1 --b=2", "EMPTY=", "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:512"]
    assert ok(service(env=env))["workload"]["env"] == env


@pytest.mark.parametrize("item", ["NOEQUALS", "=value", "1ABC=x", "A B=x", 5])
def test_invalid_env_items(item):
    assert only_error(service(env=["OK=1", item]))["field"] == "intent.workload.env[1]"


def test_duplicate_env_and_secret_variables():
    exc = rejected(service(env=["A=1", "A=2"], secrets=[{"name": "s", "env": "A"}, {"name": "t", "env": "B"},
                                                        {"name": "u", "env": "B"}]))
    assert fields_of(exc) == {"intent.workload.env[1]", "intent.workload.secrets[0].env",
                              "intent.workload.secrets[2].env"}


def test_commands_are_strings():
    assert ok(service(commands=["a --b", "c"]))["workload"]["commands"] == ["a --b", "c"]
    assert only_error(service(commands=["ok", 3]))["field"] == "intent.workload.commands[1]"
    assert only_error(service(commands="python app.py"))["field"] == "intent.workload.commands"


@pytest.mark.parametrize("ports, field", [
    ([{"port": 0}], "intent.workload.ports[0].port"),
    ([{"port": 65536}], "intent.workload.ports[0].port"),
    ([{"port": "80"}], "intent.workload.ports[0].port"),
    ([{"port": 80, "protocol": "SCTP"}], "intent.workload.ports[0].protocol"),
    ([{"port": 80, "expose": "yes"}], "intent.workload.ports[0].expose"),
    ([{"port": 80, "domain": "not a domain"}], "intent.workload.ports[0].domain"),
    ([{"protocol": "TCP"}], "intent.workload.ports[0].port"),
    ([{"port": 80}, {"port": 80, "protocol": "tcp"}], "intent.workload.ports[1].port"),
    ({"port": 80}, "intent.workload.ports"),
])
def test_invalid_ports(ports, field):
    assert only_error(service(ports=ports))["field"] == field


def test_same_port_number_on_two_protocols_is_fine():
    ports = ok(service(ports=[{"port": 53}, {"port": 53, "protocol": "UDP", "domain": "DNS.Example.com"}]))
    assert ports["workload"]["ports"][1]["domain"] == "dns.example.com"


@pytest.mark.parametrize("cpu, normalised", [("8", "8"), ("4.5", "4.5"), (8, "8"), (4.5, "4.5"), ("500m", "500m")])
def test_cpu_quantities(cpu, normalised):
    assert ok(service(resources={"cpu": cpu}))["workload"]["resources"]["cpu"] == normalised


@pytest.mark.parametrize("resources, field", [
    ({"cpu": "lots"}, "intent.workload.resources.cpu"),
    ({"cpu": "0"}, "intent.workload.resources.cpu"),
    ({"cpu": "-2"}, "intent.workload.resources.cpu"),
    ({"cpu": True}, "intent.workload.resources.cpu"),
    ({"memory": "32GB"}, "intent.workload.resources.memory"),
    ({"memory": "1e400"}, "intent.workload.resources.memory"),
    ({"memory": float("nan")}, "intent.workload.resources.memory"),
    ({"gpu": []}, "intent.workload.resources.gpu"),
])
def test_invalid_resources(resources, field):
    assert only_error(service(resources=resources))["field"] == field


def test_resources_are_required():
    body = service()
    del body["intent"]["workload"]["resources"]
    error = only_error(body)
    assert (error["field"], error["code"]) == ("intent.workload.resources", MISSING_REQUIRED_FIELD)


def test_storage_volumes():
    volumes = [
        {"name": "in", "size": "500Gi", "type": "temporary", "path": "/data/in",
         "source": {"type": "s3", "uri": "s3://bucket/raw/", "credentials": "aws-readonly"}},
        {"name": "gcs", "size": "1Ti", "type": "persistent", "path": "/data/gcs",
         "source": {"type": "GCS", "uri": "gs://bucket/x", "credentials": "gcp"}},
        {"name": "az", "size": "1Ti", "type": "persistent", "path": "/data/az",
         "source": {"type": "azure", "uri": "https://acct.blob.core.windows.net/c", "credentials": "az"}},
    ]
    doc = ok(service(storage={"volumes": volumes}))
    assert doc["workload"]["storage"]["volumes"][1]["source"]["type"] == "gcs"


@pytest.mark.parametrize("volume, field", [
    ({"size": "1Gi", "type": "persistent", "path": "/x"}, "intent.workload.storage.volumes[0].name"),
    ({"name": "v", "size": "big", "type": "persistent", "path": "/x"}, "intent.workload.storage.volumes[0].size"),
    ({"name": "v", "size": "1Gi", "type": "forever", "path": "/x"}, "intent.workload.storage.volumes[0].type"),
    ({"name": "v", "size": "1Gi", "type": "persistent", "path": "relative"}, "intent.workload.storage.volumes[0].path"),
    ({"name": "v", "size": "1Gi", "type": "persistent", "path": "/a/../b"}, "intent.workload.storage.volumes[0].path"),
    ({"name": "v", "size": "1Gi", "type": "persistent", "path": "/x", "source": {"type": "ftp", "uri": "ftp://x",
                                                                                  "credentials": "c"}},
     "intent.workload.storage.volumes[0].source.type"),
    ({"name": "v", "size": "1Gi", "type": "persistent", "path": "/x", "source": {"type": "s3", "uri": "gs://x",
                                                                                  "credentials": "c"}},
     "intent.workload.storage.volumes[0].source.uri"),
    ({"name": "v", "size": "1Gi", "type": "persistent", "path": "/x", "source": {"type": "s3", "uri": "s3://x"}},
     "intent.workload.storage.volumes[0].source.credentials"),
])
def test_invalid_volumes(volume, field):
    assert only_error(service(storage={"volumes": [volume]}))["field"] == field


def test_volume_names_and_paths_are_unique():
    volumes = [{"name": "a", "size": "1Gi", "type": "persistent", "path": "/a"},
               {"name": "a", "size": "1Gi", "type": "persistent", "path": "/a"}]
    exc = rejected(service(storage={"volumes": volumes}))
    assert fields_of(exc) == {"intent.workload.storage.volumes[1].name", "intent.workload.storage.volumes[1].path"}


def test_secrets():
    doc = ok(service(secrets=[{"name": "hf-token", "env": "HF_TOKEN"}]))
    assert doc["workload"]["secrets"] == [{"name": "hf-token", "env": "HF_TOKEN"}]
    error = only_error(service(secrets=[{"name": "HF", "env": "HF_TOKEN"}]))
    assert error["field"] == "intent.workload.secrets[0].name"
    assert only_error(service(secrets=[{"name": "hf"}]))["code"] == MISSING_REQUIRED_FIELD


def test_deployment_strategy_and_communication_pattern():
    doc = ok(service(deployment_strategy="Distributed", communication_pattern="pipeline"))
    assert doc["workload"]["deployment_strategy"] == "distributed"
    assert only_error(service(deployment_strategy="spread"))["field"] == "intent.workload.deployment_strategy"
    assert only_error(service(communication_pattern="broadcast"))["field"] == "intent.workload.communication_pattern"


def test_scaling_is_only_for_services_and_batch_only_for_batch():
    error = only_error(batch(scaling={"min_replicas": 2}))
    assert error["field"] == "intent.workload.scaling"
    error = only_error(service(batch={"parallel_tasks": 2}))
    assert error["field"] == "intent.workload.batch"
    error = only_error(service(job={"parallel_tasks": 2}))
    assert error["field"] == "intent.workload.job"


def test_scaling_rules():
    assert ok(service(scaling={"min_replicas": 20}))["workload"]["scaling"]["max_replicas"] == 20
    assert ok(service(scaling={"min_replicas": 3, "max_replicas": 3}))["workload"]["scaling"]["max_replicas"] == 3
    error = only_error(service(scaling={"min_replicas": 4, "max_replicas": 2}))
    assert error["field"] == "intent.workload.scaling.max_replicas"
    assert only_error(service(scaling={"min_replicas": 0}))["field"] == "intent.workload.scaling.min_replicas"
    assert only_error(service(scaling={"target_gpu_percent": 101}))["field"] == \
        "intent.workload.scaling.target_gpu_percent"
    assert only_error(service(scaling={"auto_scale": 1}))["field"] == "intent.workload.scaling.auto_scale"


def test_batch_settings():
    doc = ok(batch(batch={"parallel_tasks": 4, "max_retries": 0, "timeout": "1h30m", "completion_policy": "any"}))
    assert doc["workload"]["batch"] == {"parallel_tasks": 4, "max_retries": 0, "timeout": "1h30m",
                                        "completion_policy": "Any"}
    assert only_error(batch(batch={"timeout": "forever"}))["field"] == "intent.workload.batch.timeout"
    assert only_error(batch(batch={"timeout": 7200}))["field"] == "intent.workload.batch.timeout"
    assert only_error(batch(batch={"parallel_tasks": 0}))["field"] == "intent.workload.batch.parallel_tasks"
    assert only_error(batch(batch={"completion_policy": "Most"}))["field"] == \
        "intent.workload.batch.completion_policy"


def test_workload_type_is_required_and_closed():
    body = service()
    del body["intent"]["workload"]["type"]
    assert only_error(body)["code"] == MISSING_REQUIRED_FIELD
    assert only_error(service(type="daemon"))["field"] == "intent.workload.type"


# --------------------------------------------------------------------------------------------
# resources.gpu.


def test_gpu_full_section():
    gpu = ok(with_gpu(model="NVIDIA-H100", count=8, memory_min="80Gi", memory_max="96Gi", cores_min=16000,
                      cores_max=17000, clock_speed_min="1.5G", compute_capability="9", architecture="Hopper",
                      tier="PREMIUM", interconnect="NVSwitch", topology="all-to-all", fp32_tflops=60,
                      multi_gpu_efficiency=0.9, shared=False, interruptible=True, multi_instance=True,
                      dedicated=True))["workload"]["resources"]["gpu"]
    assert gpu == {"model": "nvidia-h100", "count": 8, "memory_min": "80Gi", "memory_max": "96Gi",
                   "cores_min": 16000, "cores_max": 17000, "clock_speed_min": "1.5G", "compute_capability": "9.0",
                   "architecture": "hopper", "tier": "premium", "interconnect": "nvswitch",
                   "topology": "all-to-all", "fp32_tflops": 60.0, "multi_gpu_efficiency": 0.9, "shared": False,
                   "interruptible": True, "multi_instance": True, "dedicated": True}


def test_gpu_model_is_free_form_but_well_formed():
    assert ok(with_gpu(model="nvidia-b200"))["workload"]["resources"]["gpu"]["model"] == "nvidia-b200"
    assert ok(with_gpu(model="any"))["workload"]["resources"]["gpu"]["model"] == "any"
    error = only_error(with_gpu(model="NVIDIA H100"))
    assert error["field"] == "intent.workload.resources.gpu.model"
    assert "did you mean 'nvidia-h100'" in error["message"]
    assert only_error(with_gpu(model="nvidia--h100"))["field"] == "intent.workload.resources.gpu.model"


@pytest.mark.parametrize("value, normalised", [("9", "9.0"), ("9.0", "9.0"), (9, "9.0"), (8.6, "8.6"),
                                               ("8.9", "8.9"), ("ANY", "any"), ("10.0", "10.0")])
def test_compute_capability_is_normalised(value, normalised):
    gpu = ok(with_gpu(compute_capability=value))["workload"]["resources"]["gpu"]
    assert gpu["compute_capability"] == normalised


@pytest.mark.parametrize("value", ["9.0.1", "nine", "", True, [9], "9.10", -1])
def test_invalid_compute_capability(value):
    assert only_error(with_gpu(compute_capability=value))["field"] == "intent.workload.resources.gpu.compute_capability"


@pytest.mark.parametrize("gpu, field", [
    ({"count": 0}, "count"), ({"count": "2"}, "count"), ({"count": 1.5}, "count"), ({"count": True}, "count"),
    ({"count": 10**400}, "count"),
    ({"memory_min": "80Gi", "memory_max": "40Gi"}, "memory_max"),
    ({"memory_min": "80GB"}, "memory_min"),
    ({"cores_min": 2048, "cores_max": 1024}, "cores_max"),
    ({"cores_min": "1024"}, "cores_min"),
    ({"clock_speed_min": "fast"}, "clock_speed_min"),
    ({"architecture": "pascal"}, "architecture"),
    ({"tier": "gold"}, "tier"),
    ({"interconnect": "ethernet"}, "interconnect"),
    ({"topology": "star"}, "topology"),
    ({"fp32_tflops": 0}, "fp32_tflops"),
    ({"fp32_tflops": "lots"}, "fp32_tflops"),
    ({"fp32_tflops": float("inf")}, "fp32_tflops"),
    ({"multi_gpu_efficiency": 1.5}, "multi_gpu_efficiency"),
    ({"multi_gpu_efficiency": -0.1}, "multi_gpu_efficiency"),
    ({"multi_gpu_efficiency": float("nan")}, "multi_gpu_efficiency"),
    ({"shared": "true"}, "shared"),
    ({"dedicated": 1}, "dedicated"),
])
def test_invalid_gpu_fields(gpu, field):
    assert only_error(with_gpu(**gpu))["field"] == f"intent.workload.resources.gpu.{field}"


def test_gpu_numbers_published_as_strings_are_accepted():
    gpu = ok(with_gpu(fp32_tflops="83.0", multi_gpu_efficiency="0.95", count=2.0))["workload"]["resources"]["gpu"]
    assert (gpu["fp32_tflops"], gpu["multi_gpu_efficiency"], gpu["count"]) == (83.0, 0.95, 2)


def test_memory_bounds_compare_units():
    assert ok(with_gpu(memory_min="80G", memory_max="80Gi"))  # 80 GB < 80 GiB
    assert only_error(with_gpu(memory_min="80Gi", memory_max="80G"))["field"] == \
        "intent.workload.resources.gpu.memory_max"


# --------------------------------------------------------------------------------------------
# constraints.


@pytest.mark.parametrize("value, normalised", [("10 EUR", "10 EUR"), ("8.50 usd", "8.50 USD"), ("12", "12 EUR"),
                                               (12.5, "12.5 EUR"), ("4.5 EUR/hour", "4.5 EUR")])
def test_money(value, normalised):
    assert ok(with_constraints(max_hourly_cost=value))["constraints"]["max_hourly_cost"] == normalised


@pytest.mark.parametrize("value", ["ten euros", "10 XYZ", "0 EUR", "-5 EUR", True, float("nan"), [10], 1e36,
                                   "0.0000001 EUR", 1e-300])
def test_invalid_money(value):
    assert only_error(with_constraints(max_total_cost=value))["field"] == "intent.constraints.max_total_cost"


def test_location_and_zone():
    c = ok(with_constraints(location="asia", availability_zone="ap-southeast-1a"))["constraints"]
    assert (c["location"], c["availability_zone"]) == ("Asia", "ap-southeast-1a")
    assert only_error(with_constraints(location="Mars"))["field"] == "intent.constraints.location"
    assert only_error(with_constraints(availability_zone="zone a"))["field"] == "intent.constraints.availability_zone"


def test_latency_and_preemptible():
    c = ok(with_constraints(max_latency_ms=20, preemptible=True))["constraints"]
    assert (c["max_latency_ms"], c["preemptible"]) == (20, True)
    assert only_error(with_constraints(max_latency_ms=0))["field"] == "intent.constraints.max_latency_ms"
    assert only_error(with_constraints(max_latency_ms=1.5))["field"] == "intent.constraints.max_latency_ms"
    assert only_error(with_constraints(preemptible="no"))["field"] == "intent.constraints.preemptible"


def test_deadline():
    future = (NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ok(with_constraints(deadline=future))["constraints"]["deadline"] == future
    assert ok(with_constraints(deadline="2024-12-15T08:00:00+01:00"))["constraints"]["deadline"] == \
        "2024-12-15T08:00:00+01:00"
    assert ok(with_constraints(deadline="2024-12-15t08:00:00.123z"))["constraints"]["deadline"] == \
        "2024-12-15T08:00:00.123000Z"
    for bad in ["2024-12-15", "2024-12-15T08:00:00", "tomorrow", "2024-13-01T00:00:00Z", 1734220800]:
        assert only_error(with_constraints(deadline=bad))["field"] == "intent.constraints.deadline"
    error = only_error(with_constraints(deadline="2024-10-01T00:00:00Z"))
    assert "not in the future" in error["message"]


def test_deadline_uses_the_current_time_by_default():
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(IntentValidationError):
        validate_intent(with_constraints(deadline=past))
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert validate_intent(with_constraints(deadline=future))["constraints"]["deadline"] == future


def test_availability():
    a = ok(with_constraints(availability={
        "window_start": "9:00", "window_end": "17:30", "timezone": "Europe/Berlin",
        "days_of_week": ["mon", "Tuesday", "FRI"], "blackout_dates": ["2024-12-25"],
        "maintenance_windows": [{"start": "2024-01-15T02:00:00Z", "end": "2024-01-15T04:00:00Z",
                                 "frequency": "Monthly"}]}))["constraints"]["availability"]
    assert a == {"window_start": "09:00", "window_end": "17:30", "timezone": "Europe/Berlin",
                 "days_of_week": ["Mon", "Tue", "Fri"], "blackout_dates": ["2024-12-25"],
                 "maintenance_windows": [{"start": "2024-01-15T02:00:00Z", "end": "2024-01-15T04:00:00Z",
                                          "frequency": "monthly"}]}


@pytest.mark.parametrize("availability, field, code", [
    ({"window_start": "09:00", "window_end": "09:00"}, "window_end", INVALID_FORMAT),
    ({"window_start": "25:00", "window_end": "09:00"}, "window_start", INVALID_FORMAT),
    ({"window_start": "09:00"}, "window_end", MISSING_REQUIRED_FIELD),
    ({"timezone": "Mars/Olympus"}, "timezone", INVALID_FORMAT),
    ({"timezone": "../../etc/passwd"}, "timezone", INVALID_FORMAT),
    ({"days_of_week": ["Funday"]}, "days_of_week[0]", INVALID_FORMAT),
    ({"days_of_week": ["Mon", "monday"]}, "days_of_week[1]", INVALID_FORMAT),
    ({"blackout_dates": ["2024-02-30"]}, "blackout_dates[0]", INVALID_FORMAT),
    ({"blackout_dates": ["25/12/2024"]}, "blackout_dates[0]", INVALID_FORMAT),
    ({"maintenance_windows": [{"start": "2024-01-15T04:00:00Z", "end": "2024-01-15T02:00:00Z"}]},
     "maintenance_windows[0].end", INVALID_FORMAT),
    ({"maintenance_windows": [{"start": "2024-01-15T04:00:00Z"}]}, "maintenance_windows[0].end",
     MISSING_REQUIRED_FIELD),
    ({"maintenance_windows": [{"start": "2024-01-15T02:00:00Z", "end": "2024-01-15T04:00:00Z",
                               "frequency": "daily"}]}, "maintenance_windows[0].frequency", INVALID_FORMAT),
])
def test_invalid_availability(availability, field, code):
    error = only_error(with_constraints(availability=availability))
    assert (error["field"], error["code"]) == (f"intent.constraints.availability.{field}", code)


def test_energy():
    e = ok(with_constraints(energy={"max_carbon_footprint": "50g CO2/h", "renewable_energy_only": True,
                                    "energy_efficiency_rating": "A", "power_usage_effectiveness": 1.4,
                                    "green_certified_only": True}))["constraints"]["energy"]
    assert e["max_carbon_footprint"] == "50g CO2/h" and e["power_usage_effectiveness"] == 1.4
    for energy, field in [({"max_carbon_footprint": "50 CO2"}, "max_carbon_footprint"),
                          ({"energy_efficiency_rating": "G"}, "energy_efficiency_rating"),
                          ({"power_usage_effectiveness": 0.5}, "power_usage_effectiveness")]:
        assert only_error(with_constraints(energy=energy))["field"] == f"intent.constraints.energy.{field}"


def test_security():
    s = ok(with_constraints(security={"network_isolation": "Private", "firewall_rules": [
        {"port": 22, "protocol": "tcp", "source": "10.0.0.0/8", "action": "Allow"},
        {"port": 443, "protocol": "TCP", "source": "2001:db8::/32", "action": "deny"},
        {"port": 53, "protocol": "UDP", "source": "192.0.2.1", "action": "allow"}],
        "vpn_access": True}))["constraints"]["security"]
    assert s["network_isolation"] == "private"
    assert [r["source"] for r in s["firewall_rules"]] == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]
    assert s["firewall_rules"][0] == {"port": 22, "protocol": "TCP", "source": "10.0.0.0/8", "action": "allow"}
    assert s["bastion_host"] is False


@pytest.mark.parametrize("rule, field, code", [
    ({"port": 22, "protocol": "TCP", "source": "10.0.0.1/8", "action": "allow"}, "source", INVALID_FORMAT),
    ({"port": 22, "protocol": "TCP", "source": "everyone", "action": "allow"}, "source", INVALID_FORMAT),
    ({"port": 22, "protocol": "TCP", "source": "10.0.0.0/33", "action": "allow"}, "source", INVALID_FORMAT),
    ({"port": 22, "protocol": "TCP", "source": "10.0.0.0/8", "action": "reject"}, "action", INVALID_FORMAT),
    ({"port": 22, "protocol": "TCP", "source": "10.0.0.0/8"}, "action", MISSING_REQUIRED_FIELD),
    ({"port": 0, "protocol": "TCP", "source": "10.0.0.0/8", "action": "allow"}, "port", INVALID_FORMAT),
])
def test_invalid_firewall_rules(rule, field, code):
    error = only_error(with_constraints(security={"firewall_rules": [rule]}))
    assert (error["field"], error["code"]) == (f"intent.constraints.security.firewall_rules[0].{field}", code)


def test_performance():
    p = ok(with_constraints(performance={"min_network_bandwidth": "10Gbps", "max_jitter_ms": 10,
                                         "min_uptime_percent": 99.9, "max_cold_start_time": "30s",
                                         "gpu_utilization_target": 0.8, "memory_utilization_target": 0.8}))
    assert p["constraints"]["performance"]["min_network_bandwidth"] == "10Gbps"
    for performance, field in [({"min_network_bandwidth": "fast"}, "min_network_bandwidth"),
                               ({"min_network_bandwidth": "10GB"}, "min_network_bandwidth"),
                               ({"max_cold_start_time": "soon"}, "max_cold_start_time"),
                               ({"min_uptime_percent": 120}, "min_uptime_percent"),
                               ({"gpu_utilization_target": 80}, "gpu_utilization_target"),
                               ({"max_jitter_ms": -1}, "max_jitter_ms")]:
        assert only_error(with_constraints(performance=performance))["field"] == \
            f"intent.constraints.performance.{field}"


def test_compliance():
    c = ok(with_constraints(compliance={"data_residency": ["eu", "eu-west-1"], "certifications": ["iso27001", "SOC2"],
                                        "gdpr_compliant": True}))["constraints"]["compliance"]
    assert c["data_residency"] == ["EU", "eu-west-1"]
    assert c["certifications"] == ["ISO27001", "SOC2"]
    assert c["hipaa_compliant"] is False
    assert only_error(with_constraints(compliance={"certifications": "SOC2"}))["field"] == \
        "intent.constraints.compliance.certifications"


def test_negotiation():
    n = ok(with_constraints(negotiation={"fallback_strategy": "FAIL", "price_flexibility": 0.3}))
    assert n["constraints"]["negotiation"]["fallback_strategy"] == "fail"
    assert n["constraints"]["negotiation"]["price_flexibility"] == 0.3
    assert n["constraints"]["negotiation"]["max_negotiation_rounds"] == 3
    for negotiation, field in [({"fallback_strategy": "retry"}, "fallback_strategy"),
                               ({"price_flexibility": 2}, "price_flexibility"),
                               ({"max_negotiation_rounds": 0}, "max_negotiation_rounds"),
                               ({"timeout_seconds": "300"}, "timeout_seconds")]:
        assert only_error(with_constraints(negotiation=negotiation))["field"] == \
            f"intent.constraints.negotiation.{field}"


def test_constraints_must_be_an_object():
    body = service()
    body["intent"]["constraints"] = ["EU"]
    assert only_error(body)["field"] == "intent.constraints"


# --------------------------------------------------------------------------------------------
# sla and objective.


def test_sla():
    body = service()
    body["intent"]["sla"] = {"availability": 99.9, "max_interruption_time": "5m", "backup_strategy": "checkpoint"}
    assert ok(body)["sla"] == {"availability": "99.9%", "max_interruption_time": "5m", "backup_strategy": "checkpoint"}
    for sla, field in [({"availability": "101%"}, "availability"), ({"availability": "high"}, "availability"),
                       ({"max_interruption_time": "5 minutes please"}, "max_interruption_time"),
                       ({"backup_strategy": ""}, "backup_strategy")]:
        body["intent"]["sla"] = sla
        assert only_error(body)["field"] == f"intent.sla.{field}"


@pytest.mark.parametrize("objective", ["Performance_Maximization", "Cost_Minimization", "Latency_Minimization",
                                       "Energy_Efficiency", "Balanced_Optimization"])
def test_every_objective(objective):
    body = service()
    body["intent"]["objective"] = objective
    assert ok(body)["objective"] == objective


def test_bad_objective():
    body = service()
    body["intent"]["objective"] = "Cost_Minimisation"
    error = only_error(body)
    assert error["field"] == "intent.objective" and "Did you mean 'Cost_Minimization'?" in error["message"]


# --------------------------------------------------------------------------------------------
# Odd input.


def test_huge_numbers_and_nan_are_reported_not_raised():
    for gpu in ({"count": 10**1000}, {"fp32_tflops": 10**1000}, {"multi_gpu_efficiency": float("nan")},
                {"memory_min": 10**1000}, {"compute_capability": 10**1000}, {"cores_min": float("-inf")}):
        exc = rejected(with_gpu(**gpu))
        assert exc.errors and exc.errors[0]["field"].startswith("intent.workload.resources.gpu.")
    assert rejected(with_constraints(max_latency_ms=10**1000, max_hourly_cost=10**1000))


def test_deeply_nested_values_are_reported_not_raised():
    deep: list = []
    for _ in range(100000):
        deep = [deep]
    body = service(name=deep, commands=deep, env=[deep])
    body["intent"]["objective"] = deep
    body["intent"]["constraints"] = {"location": deep, "providers": deep, "surprise": deep}
    exc = rejected(body)
    assert "intent.workload.name" in fields_of(exc)
    assert "intent.constraints.surprise" in fields_of(exc)


def test_non_string_keys_and_long_keys():
    body = service()
    body["intent"]["workload"][1] = "x"
    body["intent"]["workload"]["k" * 10000] = "x"
    exc = rejected(body)
    assert len(exc.errors) == 2
    assert all(len(e["field"]) < 120 for e in exc.errors)


# --------------------------------------------------------------------------------------------
# document_gpus.


@pytest.mark.parametrize("name, gpus", [("llm_inference", 4), ("video_batch", 20), ("distributed_training", 8),
                                        ("spark_etl", 10), ("jupyter_service", 1),
                                        ("communication_aware_training", 4)])
def test_document_gpus(name, gpus):
    doc = ok(load_example(name))
    assert document_gpus(doc) == gpus
    assert document_gpus({"intent": doc}) == gpus


def test_null_section_of_the_other_workload_type_is_just_absent():
    assert "scaling" not in ok(batch(scaling=None))["workload"]
    assert "batch" not in ok(service(batch=None, job=None))["workload"]
    availability = ok(with_constraints(availability={"window_start": None, "timezone": "UTC"}))
    assert availability["constraints"]["availability"] == {"timezone": "UTC"}

import copy
import re
from decimal import Decimal

import pytest

from flare_portal.crds import assert_valid_custom_resource, validate_custom_resource
from providers.annotations import parse_annotations
from providers.flavor import (
    FlavorError,
    flavor_manifest,
    flavor_name,
    format_quantity,
    gpu_characteristics,
    strict_quantity,
    traits_from_flavor,
)
from providers.gpu_catalog import CATALOG, GIB
from providers.traits import GpuTraits

OWNER = {"domain": "nebula.fluidos.eu", "nodeID": "k7x2p9q4zw", "ip": "172.18.0.3:30000"}

FULL = GpuTraits(
    vendor="nvidia", model="nvidia-h100", count=8, memory_per_gpu=80 * GIB, cores_per_gpu=16896,
    clock_speed=1_980_000_000, compute_capability="9.0", architecture="hopper", tier="premium",
    interconnect="nvlink", interconnect_bandwidth_gbps=7200.0, topology="all-to-all", multi_gpu_efficiency=0.95,
    fp32_tflops=67.0, sharing_strategy="mig", shared=True, dedicated=True, interruptible=True,
    multi_instance=True, training_score=0.95, inference_score=0.9, hpc_score=0.85, graphics_score=0.2,
    hourly_rate=Decimal("4.5"), region="eu-west-1", zone="zone-a", provider="nebula-cloud",
    preemptible=True, network_bandwidth_gbps=100.0, network_latency_ms=5, network_tier="premium",
)


def _flavor(traits, **changes):
    arguments = dict(name=flavor_name(OWNER["domain"], "gpu-node-1"), provider_id=OWNER["nodeID"], owner=OWNER,
                     cpu="64", memory="512Gi", pods="110")
    arguments.update(changes)
    return flavor_manifest(traits, **arguments)


def _gpu(manifest):
    return manifest["spec"]["flavorType"]["typeData"]["characteristics"]["gpu"]


def test_flavor_shape():
    manifest = _flavor(FULL)
    assert manifest["apiVersion"] == "nodecore.fluidos.eu/v1alpha1"
    assert manifest["kind"] == "Flavor"
    assert manifest["metadata"] == {"name": "nebula.fluidos.eu-k8slice-" + manifest["metadata"]["name"][-4:],
                                    "namespace": "fluidos"}
    spec = manifest["spec"]
    assert spec["providerID"] == "k7x2p9q4zw"
    assert spec["owner"] == OWNER
    assert spec["price"] == {"amount": "", "currency": "", "period": ""}
    assert spec["availability"] is True
    assert spec["flavorType"]["typeIdentifier"] == "K8Slice"
    characteristics = spec["flavorType"]["typeData"]["characteristics"]
    assert {key: characteristics[key] for key in ("architecture", "cpu", "memory", "pods")} == {
        "architecture": "amd64", "cpu": "64", "memory": "512Gi", "pods": "110",
    }
    assert "ownerReferences" not in manifest["metadata"]


@pytest.mark.parametrize("model_id", sorted(CATALOG))
def test_flavors_are_valid_against_the_crd(model_id):
    assert_valid_custom_resource(_flavor(CATALOG[model_id].traits(4, region="eu-west-1")))


def test_flavor_without_gpu_and_sold_flavor_are_valid():
    manifest = _flavor(None, available=False, storage="100Gi", architecture="arm64")
    assert_valid_custom_resource(manifest)
    assert "gpu" not in manifest["spec"]["flavorType"]["typeData"]["characteristics"]
    assert manifest["spec"]["flavorType"]["typeData"]["characteristics"]["storage"] == "100Gi"
    assert manifest["spec"]["availability"] is False


def test_a_peering_candidate_embedding_the_flavor_is_valid():
    candidate = {
        "apiVersion": "advertisement.fluidos.eu/v1alpha1",
        "kind": "PeeringCandidate",
        "metadata": {"name": "peeringcandidate-nebula.fluidos.eu-k8slice-1a2b", "namespace": "fluidos"},
        "spec": {"flavor": _flavor(FULL), "available": True, "interestedSolverIDs": ["flare-x-1"]},
    }
    assert validate_custom_resource(candidate) == []
    assert traits_from_flavor(candidate) == FULL


def test_gpu_types_are_strict():
    gpu = _gpu(_flavor(FULL))
    assert type(gpu["count"]) is int and gpu["count"] == 8
    assert type(gpu["network_latency_ms"]) is int
    for key in ("fp32_tflops", "hourly_rate", "training_score", "inference_score", "hpc_score", "graphics_score"):
        assert type(gpu[key]) is float, key
    for key in ("multi_instance", "shared", "dedicated", "interruptible", "pre_emptible"):
        assert gpu[key] is True, key
    for key in ("model", "vendor", "tier", "architecture", "compute_capability", "interconnect", "topology",
                "sharing_strategy", "multi_gpu_efficiency", "network_tier", "provider", "region", "zone"):
        assert type(gpu[key]) is str, key
    assert gpu["multi_gpu_efficiency"] == "0.95"
    assert gpu["compute_capability"] == "9.0"
    assert gpu["hourly_rate"] == 4.5


def test_quantities_are_node_totals():
    gpu = _gpu(_flavor(FULL))
    assert gpu["memory"] == "640Gi"                     # 8 × 80Gi
    assert gpu["cores"] == "135168"                     # 8 × 16896
    assert gpu["clock_speed"] == "1980M"
    assert gpu["network_bandwidth"] == "100"
    assert gpu["interconnect_bandwidth"] == "7200"
    for key in ("memory", "cores", "clock_speed", "network_bandwidth", "interconnect_bandwidth"):
        assert isinstance(gpu[key], str)
        strict_quantity(gpu[key])


def test_region_and_zone_are_swapped_like_the_cluster():
    gpu = _gpu(_flavor(FULL))
    # gpu.zone holds location.fluidos.eu/region (the real region), gpu.region holds the zone.
    assert gpu["zone"] == "eu-west-1"
    assert gpu["region"] == "zone-a"


def test_swap_from_annotations_to_flavor():
    traits = parse_annotations({
        "gpu.fluidos.eu/vendor": "amd", "gpu.fluidos.eu/model": "amd-mi300x", "gpu.fluidos.eu/count": "8",
        "gpu.fluidos.eu/memory-per-gpu": "192Gi", "location.fluidos.eu/region": "us-east-1",
        "location.fluidos.eu/zone": "us-east-1a",
    }).traits
    gpu = _gpu(_flavor(traits))
    assert (gpu["zone"], gpu["region"]) == ("us-east-1", "us-east-1a")
    assert gpu["memory"] == "1536Gi"


def test_empty_fields_are_dropped_but_model_vendor_and_quantities_stay():
    traits = GpuTraits(vendor="nvidia", model="nvidia-t4", count=1, memory_per_gpu=16 * GIB)
    gpu = _gpu(_flavor(traits))
    assert gpu == {
        "model": "nvidia-t4", "vendor": "nvidia", "count": 1, "memory": "16Gi", "cores": "0", "clock_speed": "0",
        "network_bandwidth": "0", "interconnect_bandwidth": "0",
    }
    unnamed = _gpu(_flavor(GpuTraits()))
    assert unnamed["model"] == "" and unnamed["vendor"] == ""
    assert "count" not in unnamed


def test_zero_scores_and_false_flags_are_dropped():
    traits = FULL.with_(training_score=0.0, dedicated=False, network_latency_ms=0, multi_gpu_efficiency=0.0,
                        hourly_rate=Decimal(0), tier="")
    gpu = _gpu(_flavor(traits))
    for key in ("training_score", "dedicated", "network_latency_ms", "multi_gpu_efficiency", "hourly_rate", "tier"):
        assert key not in gpu, key


def test_round_trip_through_the_flavor():
    assert traits_from_flavor(_flavor(FULL)) == FULL


@pytest.mark.parametrize("model_id", sorted(CATALOG))
def test_round_trip_of_catalogue_traits(model_id):
    traits = CATALOG[model_id].traits(3, region="eu-central-1", zone="b", hourly_rate=Decimal("2.10"))
    assert traits_from_flavor(_flavor(traits)) == traits


def test_per_gpu_values_are_totals_divided_by_count():
    manifest = _flavor(FULL)
    gpu = _gpu(manifest)
    gpu["memory"] = "320Gi"
    gpu["cores"] = "67584"
    gpu["count"] = 4
    traits = traits_from_flavor(manifest)
    assert (traits.count, traits.memory_per_gpu, traits.cores_per_gpu) == (4, 80 * GIB, 16896)


def test_a_sold_out_remainder_has_no_gpus():
    manifest = _flavor(FULL.with_(count=0))
    assert "count" not in _gpu(manifest)
    assert _gpu(manifest)["memory"] == "0"
    traits = traits_from_flavor(manifest)
    assert (traits.count, traits.memory_per_gpu, traits.cores_per_gpu) == (0, 0, 0)


def test_flavor_without_gpu_reads_as_none():
    assert traits_from_flavor(_flavor(None)) is None


def test_quantities_written_by_hand_are_read():
    manifest = _flavor(FULL)
    _gpu(manifest).update({"memory": "687194767360", "clock_speed": "1.98G", "network_bandwidth": 25})
    traits = traits_from_flavor(manifest)
    assert (traits.memory_per_gpu, traits.clock_speed, traits.network_bandwidth_gbps) == (80 * GIB, 1_980_000_000,
                                                                                          25.0)


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("count", "4", "gpu.count: expected an integer, got '4' (str)"),
        ("count", 4.0, "gpu.count: expected an integer, got 4.0 (float)"),
        ("fp32_tflops", "67", "gpu.fp32_tflops: expected a number, got '67' (str)"),
        ("shared", "true", "gpu.shared: expected true or false, got 'true' (str)"),
        ("multi_gpu_efficiency", 0.95, "gpu.multi_gpu_efficiency: expected a string, got 0.95 (float)"),
        ("multi_gpu_efficiency", "high", "gpu.multi_gpu_efficiency: expected a number between 0 and 1"),
        ("memory", "40GB", "gpu.memory: expected a Kubernetes quantity such as '80Gi', got '40GB' (str)"),
        ("model", 100, "gpu.model: expected a string, got 100 (int)"),
        ("network_latency_ms", True, "gpu.network_latency_ms: expected an integer, got True (bool)"),
    ],
)
def test_flavors_the_cluster_cannot_parse_are_refused(field, value, problem):
    manifest = _flavor(FULL)
    _gpu(manifest)[field] = value
    with pytest.raises(FlavorError) as raised:
        traits_from_flavor(manifest)
    assert any(problem in text for text in raised.value.problems), raised.value.problems


def test_every_problem_is_listed():
    manifest = _flavor(FULL)
    _gpu(manifest).update({"count": "8", "hourly_rate": "4.5", "cores": "many"})
    with pytest.raises(FlavorError) as raised:
        traits_from_flavor(manifest)
    assert len(raised.value.problems) == 3
    assert all(p.startswith("spec.flavorType.typeData.characteristics.gpu.") for p in raised.value.problems)


def test_not_a_k8slice():
    manifest = _flavor(FULL)
    manifest["spec"]["flavorType"]["typeIdentifier"] = "Service"
    with pytest.raises(FlavorError, match="expected K8Slice, got 'Service'"):
        traits_from_flavor(manifest)


def test_broken_flavor_manifest_is_rejected_by_the_crd():
    manifest = copy.deepcopy(_flavor(FULL))
    manifest["spec"]["availability"] = "yes"
    del manifest["spec"]["owner"]["ip"]
    errors = validate_custom_resource(manifest)
    assert "spec.availability: 'yes' is not of type 'boolean'" in errors
    assert "spec.owner: 'ip' is required" in errors


def test_flavor_name():
    name = flavor_name("Nebula.fluidos.eu", "gpu-node-1")
    assert re.fullmatch(r"nebula\.fluidos\.eu-k8slice-[0-9a-f]{4}", name)
    assert name == flavor_name("nebula.fluidos.eu", "gpu-node-1")
    assert name != flavor_name("nebula.fluidos.eu", "gpu-node-2")
    with pytest.raises(ValueError):
        flavor_name("", "gpu-node-1")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"owner": {"domain": "d", "nodeID": "n"}}, "owner: a NodeIdentity needs domain, nodeID and ip; missing ip"),
        ({"cpu": "8 cores"}, "cpu: expected a Kubernetes quantity such as '8' or '32Gi', got '8 cores'"),
        ({"memory": "32GB"}, "memory: expected a Kubernetes quantity such as '8' or '32Gi', got '32GB'"),
        ({"pods": -1}, "pods: a quantity cannot be negative, got -1"),
    ],
)
def test_bad_arguments(changes, message):
    with pytest.raises(ValueError) as raised:
        _flavor(FULL, **changes)
    assert str(raised.value) == message


def test_integer_capacity_is_written_as_a_quantity():
    characteristics = _flavor(FULL, cpu=64, memory=549755813888, pods=110)["spec"]["flavorType"]["typeData"][
        "characteristics"]
    assert (characteristics["cpu"], characteristics["memory"], characteristics["pods"]) == ("64", "549755813888",
                                                                                            "110")


def test_gpu_characteristics_match_the_manifest():
    assert gpu_characteristics(FULL) == _gpu(_flavor(FULL))


@pytest.mark.parametrize(
    "value, binary, expected",
    [
        (0, False, "0"),
        (1_980_000_000, False, "1980M"),
        (1_000, False, "1k"),
        (67584, False, "67584"),
        (12.5, False, "12500m"),
        (Decimal("0.95"), False, "950m"),
        (80 * GIB, True, "80Gi"),
        (640 * GIB, True, "640Gi"),
        (320_000_000_000, True, "320G"),
        (1024, True, "1Ki"),
        (1000, True, "1k"),
        (512, True, "512"),
    ],
)
def test_format_quantity(value, binary, expected):
    assert format_quantity(value, binary=binary) == expected
    assert strict_quantity(expected) == Decimal(str(value))


@pytest.mark.parametrize("text", [" 80Gi", "80Gi ", "1K", "1_000", "Infinity", "NaN", "40GB", "0x10", "", "1.5 G"])
def test_strict_quantity_refuses_what_the_cluster_cannot_parse(text):
    with pytest.raises(ValueError):
        strict_quantity(text)


@pytest.mark.parametrize("text, expected", [("80Gi", 80 * GIB), ("1.98G", 1_980_000_000), ("1e3", 1000),
                                            ("500m", Decimal("0.5")), ("+4", 4), (".5", Decimal("0.5"))])
def test_strict_quantity_accepts_the_kubernetes_grammar(text, expected):
    assert strict_quantity(text) == expected

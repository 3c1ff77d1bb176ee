"""The demo federation: deterministic, realistic, and well-formed for a FLUIDOS cluster."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity

from providers import demo_data, gpu_catalog
from providers.demo_data import generate_federation, iter_nodes, summary
from providers.traits import ProviderProfile

DEFAULT = generate_federation()
SCALED = generate_federation(seed=11, nodes=2000)

# FLUIDOS.md §3.10, written out independently of the generator.
GROUP_PREFIXES = {
    "EU": ("eu-", "europe-"),
    "US": ("us-",),
    "Canada": ("ca-",),
    "Brazil": ("sa-east-", "southamerica-"),
    "India": ("ap-south-", "asia-south"),
    "Japan": ("ap-northeast-1", "ap-northeast-3", "asia-northeast1", "asia-northeast2"),
    "Singapore": ("ap-southeast-1", "asia-southeast1"),
    "Australia": ("ap-southeast-2", "ap-southeast-4", "australia-"),
}
AUSTRALIA = GROUP_PREFIXES["Australia"]


def groups_of(region: str) -> set[str]:
    groups = {g for g, prefixes in GROUP_PREFIXES.items() if region.startswith(prefixes)}
    if region.startswith(("ap-", "asia-", "me-")) and not region.startswith(AUSTRALIA):
        groups.add("Asia")
    return groups


QUANTITY_KEYS = ("gpu.fluidos.eu/memory-per-gpu", "gpu.fluidos.eu/clock-speed",
                 "gpu.fluidos.eu/interconnect-bandwidth-gbps", "network.fluidos.eu/bandwidth-gbps")
INT_KEYS = ("gpu.fluidos.eu/count", "gpu.fluidos.eu/cores", "network.fluidos.eu/latency-ms")
FLOAT_KEYS = ("gpu.fluidos.eu/fp32-tflops", "gpu.fluidos.eu/multi-gpu-efficiency",
              "workload.fluidos.eu/training-score", "workload.fluidos.eu/inference-score",
              "workload.fluidos.eu/hpc-score", "workload.fluidos.eu/graphics-score",
              "cost.fluidos.eu/hourly-rate")
UNIT_FLOATS = FLOAT_KEYS[1:6]
BOOL_KEYS = ("gpu.fluidos.eu/sharing-capable", "gpu.fluidos.eu/dedicated",
             "gpu.fluidos.eu/interruptible", "provider.fluidos.eu/preemptible")
STRING_KEYS = ("gpu.fluidos.eu/vendor", "gpu.fluidos.eu/model", "gpu.fluidos.eu/tier",
               "gpu.fluidos.eu/architecture", "gpu.fluidos.eu/interconnect",
               "gpu.fluidos.eu/sharing-strategy", "cost.fluidos.eu/currency",
               "location.fluidos.eu/region", "location.fluidos.eu/zone",
               "provider.fluidos.eu/name", "network.fluidos.eu/tier")
REQUIRED_KEYS = QUANTITY_KEYS + INT_KEYS + FLOAT_KEYS + BOOL_KEYS + STRING_KEYS
ENUMS = {
    "gpu.fluidos.eu/vendor": {"nvidia", "amd"},
    "gpu.fluidos.eu/tier": {"premium", "standard", "gaming", "inference", "budget"},
    "gpu.fluidos.eu/architecture": {"hopper", "ada-lovelace", "ampere", "turing", "volta",
                                    "cdna3", "cdna2", "rdna3"},
    "gpu.fluidos.eu/interconnect": {"nvlink", "nvswitch", "infiniband", "pcie",
                                    "infinity-fabric"},
    "gpu.fluidos.eu/topology": {"all-to-all", "nvswitch", "ring", "mesh"},
    "gpu.fluidos.eu/sharing-strategy": {"none", "mig", "mps", "time-slicing", "sriov"},
    "network.fluidos.eu/tier": {"premium", "standard", "basic"},
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")

# Published vendor facts, independent of the generator's table.
MODEL_FACTS = {
    # model: (vendor, architecture, compute capability, per-GPU memories in Gi)
    "nvidia-h200": ("nvidia", "hopper", "9.0", {141}),
    "nvidia-h100": ("nvidia", "hopper", "9.0", {80}),
    "nvidia-a100": ("nvidia", "ampere", "8.0", {40, 80}),
    "nvidia-l40s": ("nvidia", "ada-lovelace", "8.9", {48}),
    "nvidia-l4": ("nvidia", "ada-lovelace", "8.9", {24}),
    "nvidia-a10": ("nvidia", "ampere", "8.6", {24}),
    "nvidia-rtx-a6000": ("nvidia", "ampere", "8.6", {48}),
    "nvidia-rtx-4090": ("nvidia", "ada-lovelace", "8.9", {24}),
    "nvidia-rtx-4080": ("nvidia", "ada-lovelace", "8.9", {16}),
    "nvidia-rtx-3090": ("nvidia", "ampere", "8.6", {24}),
    "nvidia-v100": ("nvidia", "volta", "7.0", {16, 32}),
    "nvidia-t4": ("nvidia", "turing", "7.5", {16}),
    "amd-mi300x": ("amd", "cdna3", "", {192}),
    "amd-mi250x": ("amd", "cdna2", "", {128}),
    "amd-rx-7900xtx": ("amd", "rdna3", "", {24}),
}
MIG_MODELS = {"nvidia-a100", "nvidia-h100", "nvidia-h200"}


def nodes_of(federation):
    return [node for _, node in iter_nodes(federation)]


def variant(node) -> tuple[str, str, str]:
    a = node.annotations
    return (a["gpu.fluidos.eu/model"], a["gpu.fluidos.eu/memory-per-gpu"],
            a["gpu.fluidos.eu/interconnect"])


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_federation():
    assert generate_federation() == DEFAULT
    assert generate_federation(seed=7) == DEFAULT
    assert generate_federation(seed=11, nodes=2000) == SCALED


def test_other_seed_other_details_same_shape():
    other = generate_federation(seed=8)
    assert other != DEFAULT
    assert [p.name for p in other] == [p.name for p in DEFAULT]
    assert [len(p.nodes) for p in other] == [len(p.nodes) for p in DEFAULT]
    assert [p.fluidos_node_id for p in other] != [p.fluidos_node_id for p in DEFAULT]


def test_generated_objects_are_fresh():
    first = generate_federation()
    first[0].nodes[0].annotations["gpu.fluidos.eu/count"] = "99"
    first[0].nodes.clear()
    assert generate_federation() == DEFAULT


def test_scaling_keeps_the_default_providers_first():
    big = generate_federation(nodes=500)
    assert big[: len(DEFAULT)] == DEFAULT


def test_scaling_down_keeps_a_subset_of_the_default_nodes():
    small = generate_federation(nodes=30)
    default_nodes = {(p.name, n.name): n.annotations for p, n in iter_nodes(DEFAULT)}
    for provider, node in iter_nodes(small):
        assert default_nodes[(provider.name, node.name)] == node.annotations
    assert len({p.kind for p in small}) == 4


# --------------------------------------------------------------------------- counts

def test_default_federation_shape():
    assert 6 <= len(DEFAULT) <= 8
    nodes = nodes_of(DEFAULT)
    assert 60 <= len(nodes) <= 100
    assert {p.kind for p in DEFAULT} == {"hyperscaler", "neocloud", "marketplace", "on-premise"}
    assert sum(p.kind == "neocloud" for p in DEFAULT) >= 2
    groups = set().union(*(groups_of(p.region) for p in DEFAULT))
    assert {"EU", "US", "Asia"} <= groups
    assert {n.gpu_count for n in nodes} >= {1, 2, 4, 8}
    assert {n.model for n in nodes} >= set(MODEL_FACTS)
    assert any(n.model == "nvidia-h200" for n in nodes)


def test_default_federation_has_the_interesting_cases():
    nodes = nodes_of(DEFAULT)
    strategies = {n.annotations["gpu.fluidos.eu/sharing-strategy"] for n in nodes}
    assert {"none", "mig", "time-slicing"} <= strategies
    assert sum(n.interruptible for n in nodes) >= 5
    assert 2 <= sum(not n.available for n in nodes) <= 4
    marketplace = next(p for p in DEFAULT if p.kind == "marketplace")
    # A marketplace sells spare consumer cards: mostly interruptible or time-sliced, rarely dedicated.
    spare = sum(n.interruptible or n.annotations.get("gpu.fluidos.eu/sharing-capable") == "true"
                for n in marketplace.nodes)
    assert spare > len(marketplace.nodes) / 2
    assert min(p.latency_ms for p in DEFAULT if p.kind == "marketplace") > min(
        p.latency_ms for p in DEFAULT if p.kind == "neocloud" and p.location_group == "EU")


@pytest.mark.parametrize("n", [0, 1, 3, 7, 40, 79, 80, 81, 1000, 10_000])
def test_exact_node_count(n):
    federation = generate_federation(nodes=n)
    assert sum(len(p.nodes) for p in federation) == n
    assert all(p.nodes for p in federation)


def test_ten_thousand_nodes_are_fast():
    started = time.perf_counter()
    federation = generate_federation(seed=3, nodes=10_000)
    elapsed = time.perf_counter() - started
    assert sum(len(p.nodes) for p in federation) == 10_000
    assert elapsed < 2.0


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_identities_are_unique(federation):
    names = [p.name for p in federation]
    assert len(set(names)) == len(names)
    assert len({p.fluidos_domain for p in federation}) == len(federation)
    assert len({p.fluidos_node_id for p in federation}) == len(federation)
    for provider in federation:
        node_names = [n.name for n in provider.nodes]
        assert len(set(node_names)) == len(node_names)
        assert re.fullmatch(r"[a-z0-9]{10}", provider.fluidos_node_id)
        assert re.fullmatch(r"[a-z0-9.-]+\.fluidos\.example", provider.fluidos_domain)
        assert re.fullmatch(r"10(\.\d{1,3}){3}:30000", provider.fluidos_ip)


def test_bad_node_counts_are_rejected():
    with pytest.raises(ValueError):
        generate_federation(nodes=-1)
    with pytest.raises(TypeError):
        generate_federation(nodes="100")


# --------------------------------------------------------------------------- prices

def on_demand(federation, kind, model):
    return [n.hourly_rate for p, n in iter_nodes(federation)
            if p.kind == kind and n.model == model and not n.interruptible]


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
@pytest.mark.parametrize("model", ["nvidia-h100", "nvidia-a100"])
def test_hyperscalers_cost_several_times_the_cheapest_neocloud(federation, model):
    hyperscaler = min(on_demand(federation, "hyperscaler", model))
    neocloud = min(on_demand(federation, "neocloud", model))
    assert hyperscaler >= 3 * neocloud


def test_every_hyperscaler_price_is_above_every_neocloud_price():
    models = {n.model for n in nodes_of(DEFAULT)}
    compared = 0
    for model in models:
        hyper, neo = on_demand(DEFAULT, "hyperscaler", model), on_demand(DEFAULT, "neocloud", model)
        if hyper and neo:
            assert min(hyper) > max(neo), model
            compared += 1
    assert compared >= 4


def test_market_price_ranges():
    # EUR per GPU-hour, on-demand, 2025–2026 market.
    expected = {
        ("hyperscaler", "nvidia-h100"): ("6", "12"),
        ("neocloud", "nvidia-h100"): ("1.5", "3.5"),
        ("neocloud", "nvidia-a100"): ("0.8", "2.2"),
        ("hyperscaler", "nvidia-a100"): ("2.5", "5"),
        ("marketplace", "nvidia-rtx-4090"): ("0.3", "0.8"),
        ("hyperscaler", "nvidia-t4"): ("0.3", "0.6"),
        ("neocloud", "amd-mi300x"): ("1.3", "2.5"),
    }
    for (kind, model), (low, high) in expected.items():
        rates = on_demand(DEFAULT, kind, model)
        assert rates, (kind, model)
        assert Decimal(low) <= min(rates) and max(rates) <= Decimal(high), (kind, model, rates)
    on_prem = [n.hourly_rate for p, n in iter_nodes(DEFAULT) if p.kind == "on-premise"]
    assert max(on_prem) < Decimal("1")


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_spot_is_cheaper_than_on_demand_for_the_same_gpu(federation):
    compared = 0
    for provider in federation:
        rates = defaultdict(lambda: {True: [], False: []})
        for node in provider.nodes:
            rates[variant(node)][node.interruptible].append(node.hourly_rate)
        for key, by_spot in rates.items():
            if by_spot[True] and by_spot[False]:
                assert max(by_spot[True]) < min(by_spot[False]), (provider.name, key)
                if provider.kind == "hyperscaler":   # list prices: at least 35 % off
                    assert max(by_spot[True]) <= Decimal("0.65") * min(by_spot[False])
                compared += 1
    assert compared >= 3


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_spot_only_where_offered(federation):
    for provider, node in iter_nodes(federation):
        if node.interruptible:
            assert provider.offers_spot, (provider.name, node.name)


# --------------------------------------------------------------------------- well-formed

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_annotations_are_well_formed(federation):
    for provider, node in iter_nodes(federation):
        a = node.annotations
        where = (provider.name, node.name)
        assert set(REQUIRED_KEYS) <= set(a), (where, set(REQUIRED_KEYS) - set(a))
        for key, value in a.items():
            assert isinstance(value, str) and value != "", (where, key)
            prefix, _, name = key.partition("/")
            assert prefix.endswith(".fluidos.eu") and DNS_LABEL.match(name), (where, key)
        for key in QUANTITY_KEYS:
            assert parse_quantity(a[key]) > 0, (where, key)
        assert a["gpu.fluidos.eu/memory-per-gpu"].endswith("Gi")
        assert a["gpu.fluidos.eu/clock-speed"].endswith("G")
        for key in INT_KEYS:
            assert str(int(a[key])) == a[key] and int(a[key]) > 0, (where, key)
        for key in FLOAT_KEYS:
            assert float(a[key]) > 0, (where, key)
        for key in UNIT_FLOATS:
            assert 0 < float(a[key]) <= 1, (where, key)
        assert Decimal(a["cost.fluidos.eu/hourly-rate"]).as_tuple().exponent == -2
        for key in BOOL_KEYS + ("nvidia.fluidos.eu/mig-capable",):
            if key in a:
                assert a[key] in ("true", "false"), (where, key)
        for key, allowed in ENUMS.items():
            if key in a:
                assert a[key] in allowed, (where, key, a[key])
        if "gpu.fluidos.eu/compute-capability" in a:
            assert re.fullmatch(r"\d+\.\d", a["gpu.fluidos.eu/compute-capability"])
        assert a["cost.fluidos.eu/currency"] == provider.currency == "EUR"
        assert a["provider.fluidos.eu/name"] == provider.name
        assert a["location.fluidos.eu/region"] == provider.region
        assert a["location.fluidos.eu/zone"].startswith(provider.region)
        assert int(a["network.fluidos.eu/latency-ms"]) >= provider.latency_ms


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_nodes_are_valid_kubernetes_nodes(federation):
    for provider, node in iter_nodes(federation):
        assert DNS_LABEL.match(node.name), node.name
        assert node.labels["node-role.fluidos.eu/resources"] == "true"
        assert node.labels["kubernetes.io/hostname"] == node.name
        assert node.labels["topology.kubernetes.io/region"] == provider.region
        for key, value in node.labels.items():
            assert LABEL_VALUE.match(value) and len(value) <= 63, (node.name, key, value)
        assert int(node.cpu) >= 4 and int(node.pods) >= 110
        host_memory = parse_quantity(node.memory)
        gpu_memory = parse_quantity(node.annotations["gpu.fluidos.eu/memory-per-gpu"])
        assert host_memory >= gpu_memory * node.gpu_count, node.name
        assert isinstance(node.available, bool)


# --------------------------------------------------------------------------- locations

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_region_prefixes_match_location_groups(federation):
    seen = set()
    for provider in federation:
        groups = groups_of(provider.region)
        assert provider.location_group in groups, (provider.name, provider.region)
        specific = groups - {"Asia"}
        if specific:
            assert provider.location_group in specific, (provider.name, provider.region)
        assert provider.zone.startswith(provider.region)
        assert provider.country
        seen.add(provider.location_group)
    if federation is SCALED:
        assert len(seen) >= 7


def test_provider_zones():
    hyperion = next(p for p in DEFAULT if p.name == "aws-eu")
    assert len({n.annotations["location.fluidos.eu/zone"] for n in hyperion.nodes}) == 3
    fjord = next(p for p in DEFAULT if p.name == "Fjord Compute")
    assert {n.annotations["location.fluidos.eu/zone"] for n in fjord.nodes} == {fjord.zone}


# --------------------------------------------------------------------------- model traits

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_model_traits_are_physically_consistent(federation):
    for node in nodes_of(federation):
        a, labels = node.annotations, node.labels
        vendor, arch, cc, memories = MODEL_FACTS[node.model]
        assert a["gpu.fluidos.eu/vendor"] == vendor
        assert a["gpu.fluidos.eu/architecture"] == arch
        assert a.get("gpu.fluidos.eu/compute-capability", "") == cc
        memory_gi = parse_quantity(a["gpu.fluidos.eu/memory-per-gpu"]) / 2**30
        assert memory_gi in memories, (node.name, memory_gi)

        # FP32 peak = FMA (2 ops) × cores × boost clock, ×2 for RDNA 3 dual issue.
        cores = int(a["gpu.fluidos.eu/cores"])
        clock = float(parse_quantity(a["gpu.fluidos.eu/clock-speed"]))
        tflops = float(a["gpu.fluidos.eu/fp32-tflops"])
        lanes = 2 if node.model == "amd-rx-7900xtx" else 1
        assert tflops == pytest.approx(2 * lanes * cores * clock / 1e12, rel=0.015), node.name

        interconnect = a["gpu.fluidos.eu/interconnect"]
        bandwidth = int(a["gpu.fluidos.eu/interconnect-bandwidth-gbps"])
        # Total bidirectional Gbps (catalogue unit): PCIe 3/4/5 x16, NVLink 2/3/4.
        if interconnect == "pcie":
            assert bandwidth in (256, 512, 1024)
        elif interconnect == "nvlink":
            assert bandwidth in (2400, 4800, 7200)
        if arch == "hopper" and interconnect == "nvlink":
            assert bandwidth == 7200
        if a["gpu.fluidos.eu/cores"] == "14592":          # H100 PCIe is a PCIe 5.0 card
            assert interconnect == "pcie" and bandwidth == 1024
        if node.model in ("nvidia-rtx-4090", "nvidia-rtx-4080", "nvidia-rtx-3090", "nvidia-t4",
                          "nvidia-l4", "nvidia-a10", "nvidia-l40s", "amd-rx-7900xtx"):
            assert interconnect == "pcie"

        topology = a.get("gpu.fluidos.eu/topology")
        efficiency = float(a["gpu.fluidos.eu/multi-gpu-efficiency"])
        if node.gpu_count == 1:
            assert topology is None and efficiency == 1.0
        else:
            assert topology and efficiency < 1.0
        if topology == "nvswitch":
            assert interconnect == "nvlink" and node.gpu_count == 8

        strategy = a["gpu.fluidos.eu/sharing-strategy"]
        shared = a["gpu.fluidos.eu/sharing-capable"] == "true"
        assert shared == (strategy != "none")
        assert a["gpu.fluidos.eu/dedicated"] == ("false" if shared else "true")
        mig = a.get("nvidia.fluidos.eu/mig-capable")
        assert (mig is not None) == (vendor == "nvidia")
        if vendor == "nvidia":
            assert (mig == "true") == (node.model in MIG_MODELS)
        if strategy == "mig":
            assert mig == "true"
        if strategy == "sriov":
            assert vendor == "amd" and labels["amd.com/sriov.capable"] == "true"
        assert a["gpu.fluidos.eu/interruptible"] == a["provider.fluidos.eu/preemptible"]

        if node.model in ("nvidia-rtx-4090", "nvidia-rtx-4080", "nvidia-rtx-3090",
                          "amd-rx-7900xtx"):
            assert a["gpu.fluidos.eu/tier"] == "gaming"
        if arch == "hopper" or node.model == "amd-mi300x":
            assert a["gpu.fluidos.eu/tier"] == "premium"


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_operator_labels_agree_with_annotations(federation):
    for node in nodes_of(federation):
        a, labels = node.annotations, node.labels
        vendor = a["gpu.fluidos.eu/vendor"]
        domain = "nvidia.com" if vendor == "nvidia" else "amd.com"
        assert labels[f"{domain}/gpu.count"] == a["gpu.fluidos.eu/count"]
        assert labels[f"{domain}/gpu.family"] == a["gpu.fluidos.eu/architecture"]
        product = labels[f"{domain}/gpu.product"].lower().replace("-", "")
        assert node.model.split("-", 1)[1].replace("-", "") in product, node.name
        unit = 1024 if vendor == "nvidia" else 1000
        label_gi = int(labels[f"{domain}/gpu.memory"]) / unit
        annotated_gi = parse_quantity(a["gpu.fluidos.eu/memory-per-gpu"]) / 2**30
        assert label_gi == pytest.approx(float(annotated_gi), rel=0.07), node.name
        if vendor == "nvidia":
            cc = f'{labels["nvidia.com/gpu.compute.major"]}.{labels["nvidia.com/gpu.compute.minor"]}'
            assert cc == a["gpu.fluidos.eu/compute-capability"]
            assert labels["nvidia.com/mig.capable"] == a["nvidia.fluidos.eu/mig-capable"]


# --------------------------------------------------------------------------- providers

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_provider_attributes_are_plausible(federation):
    for p in federation:
        assert p.kind in demo_data.KINDS
        assert 0 <= p.renewable_share <= 1
        assert 1.0 < p.pue <= 2.0
        assert 10 <= p.carbon_intensity <= 800
        assert p.energy_rating in "ABCDEF" and len(p.energy_rating) == 1
        if p.green_certified:
            assert p.renewable_share >= 0.8 and p.pue <= 1.25
        assert p.latency_ms > 0 and p.bandwidth_gbps > 0
        assert all(re.fullmatch(r"[A-Za-z0-9-]+", c) for c in p.certifications)
        if p.location_group == "EU" and p.kind != "on-premise":
            assert "GDPR" in p.certifications


def test_grid_carbon_follows_the_region():
    by_name = {p.name: p for p in DEFAULT}
    fjord = by_name["Fjord Compute"]
    assert fjord.carbon_intensity < 60 and fjord.green_certified and fjord.energy_rating == "A"
    assert by_name["aws-eu"].carbon_intensity == pytest.approx(350, abs=30)
    assert by_name["aws"].carbon_intensity == pytest.approx(380, abs=30)
    assert by_name["Sakura GPU Cloud"].carbon_intensity >= 420
    assert min(p.carbon_intensity for p in DEFAULT) == fjord.carbon_intensity
    for p in SCALED:
        if p.location_group == "India":
            assert p.carbon_intensity > 550
        if p.region in ("eu-north-1", "ca-central-1", "eu-central-2"):
            assert p.carbon_intensity < 60


def test_profile_matches_provider():
    for p in DEFAULT:
        profile = p.profile()
        assert isinstance(profile, ProviderProfile)
        assert (profile.name, profile.kind, profile.region, profile.location_group) == (
            p.name, p.kind, p.region, p.location_group)
        assert profile.certifications == p.certifications
        assert profile.carbon_intensity == p.carbon_intensity


# --------------------------------------------------------------------------- summary

def test_summary_counts_and_ranges():
    s = summary(DEFAULT)
    nodes = nodes_of(DEFAULT)
    assert s["providers"] == len(DEFAULT)
    assert s["nodes"] == len(nodes)
    assert s["available_nodes"] == sum(n.available for n in nodes)
    assert s["gpus"] == sum(n.gpu_count for n in nodes) == sum(s["gpus_by_model"].values())
    assert sum(s["nodes_by_kind"].values()) == len(nodes)
    assert s["currencies"] == ["EUR"]
    for model, rng in s["price_ranges"].items():
        assert Decimal(rng["min"]) <= Decimal(rng["max"]), model
        assert rng["currency"] == "EUR"
    h100 = s["price_ranges"]["nvidia-h100"]
    assert Decimal(h100["max"]) > 3 * Decimal(h100["min"])
    assert summary([]) == {
        "providers": 0, "nodes": 0, "available_nodes": 0, "gpus": 0, "gpus_by_model": {},
        "nodes_by_kind": {}, "nodes_by_location_group": {}, "price_ranges": {},
        "currencies": [],
    }


def test_iter_nodes_pairs_each_node_with_its_provider():
    pairs = list(iter_nodes(DEFAULT))
    assert len(pairs) == sum(len(p.nodes) for p in DEFAULT)
    for provider, node in pairs:
        assert node in provider.nodes


# --------------------------------------------------------------------------- catalogue

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_nodes_agree_with_the_gpu_catalogue(federation):
    for node in nodes_of(federation):
        a = node.annotations
        memory = int(parse_quantity(a["gpu.fluidos.eu/memory-per-gpu"]))
        model = gpu_catalog.lookup(node.model, memory)
        assert model is not None and model.id == node.model and model.memory_bytes == memory
        assert a["gpu.fluidos.eu/vendor"] == model.vendor
        assert a["gpu.fluidos.eu/architecture"] == model.architecture
        assert a["gpu.fluidos.eu/tier"] == model.tier
        assert a.get("gpu.fluidos.eu/compute-capability", "") == model.compute_capability
        assert float(a["workload.fluidos.eu/training-score"]) == model.training_score
        assert float(a["workload.fluidos.eu/hpc-score"]) == model.hpc_score
        if a["gpu.fluidos.eu/interconnect"] == model.interconnect:      # the catalogue's board
            assert int(a["gpu.fluidos.eu/cores"]) == model.cores
            assert float(a["gpu.fluidos.eu/fp32-tflops"]) == model.fp32_tflops
            assert int(parse_quantity(a["gpu.fluidos.eu/clock-speed"])) == model.boost_clock_hz
            assert int(a["gpu.fluidos.eu/interconnect-bandwidth-gbps"]) == (
                model.interconnect_bandwidth_gbps)
        vendor_domain = "nvidia.com" if model.vendor == "nvidia" else "amd.com"
        product = node.labels[f"{vendor_domain}/gpu.product"]
        assert gpu_catalog.canonical_model(product) == node.model, product


def test_every_sku_is_a_catalogue_variant():
    for sku in demo_data.SKUS.values():
        model = gpu_catalog.lookup(sku.model, sku.memory_gi << 30)
        assert model.memory_bytes == sku.memory_gi << 30
        assert gpu_catalog.canonical_model(sku.product) == sku.model
        assert sku.clock.endswith("G") and int(parse_quantity(sku.clock)) == sku.clock_hz


# --------------------------------------------------------------------------- annotations.py

@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_every_node_parses_without_errors_or_warnings(federation):
    from providers.annotations import parse_annotations

    for provider, node in iter_nodes(federation):
        result = parse_annotations(node.annotations)
        assert result.errors == [], (provider.name, node.name, [str(e) for e in result.errors])
        assert result.warnings == [], (provider.name, node.name, result.warnings)
        assert result.inferred == {}, (node.name, result.inferred)   # every trait is published
        traits = result.traits
        assert (traits.model, traits.count) == (node.model, node.gpu_count)
        assert traits.memory_per_gpu == parse_quantity(
            node.annotations["gpu.fluidos.eu/memory-per-gpu"])
        assert traits.hourly_rate == node.hourly_rate and traits.currency == provider.currency
        assert (traits.region, traits.provider) == (provider.region, provider.name)
        assert traits.interruptible == traits.preemptible == node.interruptible


@pytest.mark.parametrize("federation", [DEFAULT, SCALED], ids=["default", "scaled"])
def test_every_node_parses_with_its_operator_labels(federation):
    pytest.importorskip("providers.gpu_labels")    # annotations.py reads labels through it
    from providers.annotations import parse_annotations

    for provider, node in iter_nodes(federation):
        result = parse_annotations(node.annotations, node.labels)
        assert result.errors == [], (provider.name, node.name, [str(e) for e in result.errors])
        assert result.traits.model == node.model

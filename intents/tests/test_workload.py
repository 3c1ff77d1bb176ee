"""Workload manifests: schema-valid for the cluster they are applied to, and what the intent asked for.

Built-in kinds are validated with `kubernetes_validate` (strict: unknown fields fail) against the
Kubernetes version the pinned client targets (client 37 ↔ Kubernetes 1.37). The NamespaceOffloading
and the Namespace's reference to the Capsule Tenant are checked against the vendored CRDs in
`deploy/crds/` with `flare_portal.crds`. JSON schemas do not check names, label syntax or
quantities; `assert_api_rules` checks the API-server rules a wrong manifest would trip over.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from datetime import datetime, timezone
from functools import lru_cache

import kubernetes
import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_validate.utils import all_versions, major_minor
from packaging.version import Version

from flare_portal.crds import load_crds, validate_custom_resource
from flare_portal.units import parse_quantity
from intents import workload as wl
from intents.examples import EXAMPLES, load_example
from intents.schema import validate_intent
from intents.workload import manifests_yaml, release_order, workload_manifests, workload_url

INTENT = "intent-abcdefghijkl"
CLUSTER = "b9c1c1a4-6d2e-4c3f-9d7e-0a1b2c3d4e5f"

# --- Representative intents (normalised, as intents.schema hands them over) ---------------------

LLM_INFERENCE = {
    "objective": "Latency_Minimization",
    "workload": {
        "type": "service",
        "name": "llama-70b-chat",
        "image": "vllm/vllm-openai:v0.6.3",
        "commands": [
            "pip install --no-cache-dir hf_transfer",
            "python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-70B-Instruct "
            "--tensor-parallel-size 2 --port 8000",
        ],
        "env": ["HF_HUB_ENABLE_HF_TRANSFER=1", "VLLM_EXTRA=--max-model-len=8192", "HF_HOME=/models"],
        "ports": [{"port": 8000, "protocol": "TCP", "expose": True, "domain": "llama.acme.example"}],
        "resources": {"cpu": "16", "memory": "128Gi",
                      "gpu": {"model": "nvidia-h100", "count": 2, "memory_min": "80Gi"}},
        "storage": {"volumes": [{"name": "models", "size": "200Gi", "type": "temporary", "path": "/models"}]},
        "secrets": [{"name": "huggingface", "env": "HF_TOKEN"}],
        "scaling": {"min_replicas": 1, "max_replicas": 4, "auto_scale": True, "target_cpu_percent": 60,
                    "target_gpu_percent": 85},
    },
    "constraints": {"location": "EU", "max_hourly_cost": "20 EUR"},
    "sla": {"availability": "99.9%"},
}

VIDEO_BATCH = {
    "objective": "Cost_Minimization",
    "workload": {
        "type": "batch",
        "name": "video-transcode",
        "image": "ghcr.io/acme/transcoder:2.4",
        "commands": ["transcode --shard $JOB_COMPLETION_INDEX --shards 8 --in /input --out /scratch"],
        "env": ["FFMPEG_ARGS=-preset=slow -crf=20"],
        "resources": {"cpu": "8", "memory": "32Gi", "gpu": {"model": "nvidia-t4", "count": 1}},
        "storage": {
            "volumes": [
                {"name": "input", "size": "500Gi", "type": "temporary", "path": "/input",
                 "source": {"type": "s3", "uri": "s3://acme-media/raw/2025/", "credentials": "aws-media"}},
                {"name": "scratch", "size": "50Gi", "type": "temporary", "path": "/scratch"},
            ]
        },
        "batch": {"parallel_tasks": 8, "max_retries": 2, "timeout": "1h30m", "completion_policy": "All"},
    },
    "constraints": {"preemptible": True},
}

JUPYTER = {
    "objective": "Balanced_Optimization",
    "workload": {
        "type": "service",
        "name": "notebook",
        "image": "quay.io/jupyter/pytorch-notebook:cuda12-2024-10-07",
        "commands": ["start-notebook.py --IdentityProvider.token=$JUPYTER_TOKEN "
                     "--ServerApp.root_dir=/home/jovyan/work"],
        "ports": [{"port": 8888, "protocol": "TCP", "expose": False}],
        "resources": {"cpu": "4", "memory": "16Gi", "gpu": {"model": "nvidia-rtx-4090", "count": 1}},
        "storage": {"volumes": [{"name": "work", "size": "100Gi", "type": "persistent", "path": "/home/jovyan/work"}]},
        "secrets": [{"name": "jupyter", "env": "JUPYTER_TOKEN"}],
        "scaling": {"min_replicas": 1, "max_replicas": 1, "auto_scale": False},
    },
}


def build(doc, **kwargs):
    kwargs.setdefault("intent_id", INTENT)
    kwargs.setdefault("tenant", "acme")
    kwargs.setdefault("remote_cluster_ids", [CLUSTER])
    kwargs.setdefault("capsule_tenant_uid", "5f0c3a8e-1111-4222-8333-944455556666")
    return workload_manifests(copy.deepcopy(doc), **kwargs)


def by_kind(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


def one(manifests, kind):
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def pod_spec(manifests):
    workload = next(m for m in manifests if m["kind"] in ("Deployment", "Job"))
    return workload["spec"]["template"]["spec"]


def main_container(manifests):
    return pod_spec(manifests)["containers"][0]


def env_of(manifests):
    return {e["name"]: e for e in main_container(manifests).get("env", [])}


# --- Schema validation --------------------------------------------------------------------------


def kubernetes_schema_version() -> str:
    """The Kubernetes minor the pinned client targets (client 37 ↔ 1.37), or the newest shipped below it."""
    wanted = Version(f"1.{kubernetes.__version__.split('.')[0]}")
    shipped = [Version(major_minor(v)) for v in all_versions()]
    return str(max(v for v in shipped if v <= wanted))


K8S_VERSION = kubernetes_schema_version()


@pytest.fixture(autouse=True, scope="module")
def _parse_each_schema_file_once():
    """`kubernetes_validate.validate` re-reads its 1.8 MB definitions file on every call; the files
    are immutable package data, so parse each once for this module (the property test runs ~7x faster)."""
    original = kubernetes_validate.utils.schema_contents
    cached = lru_cache(maxsize=None)(original)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents", cached)
        yield


def test_schema_version_matches_the_client():
    assert K8S_VERSION == "1.37"


def assert_schema_valid(manifest):
    crd = load_crds().get((manifest["apiVersion"], manifest["kind"]))
    if crd is not None:
        # Custom resources against the vendored CRDs (closed objects, metadata rules): flare_portal.crds.
        assert crd.namespaced == ("namespace" in manifest["metadata"])
        errors = validate_custom_resource(manifest)
        assert not errors, errors
        return
    try:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = f"{manifest['kind']}/{manifest['metadata']['name']} at {list(exc.path)}"
        raise AssertionError(f"{where} (Kubernetes {exc.version}): {exc.message}") from None


def test_custom_kinds_are_checked_against_their_crd():
    offloading = one(build(LLM_INFERENCE), "NamespaceOffloading")
    assert ("offloading.liqo.io/v1beta1", "NamespaceOffloading") in load_crds()
    broken = copy.deepcopy(offloading)
    broken["spec"]["podOffloadingStrategy"] = "Everywhere"
    broken["spec"]["clusterSelector"]["nodeSelectorTerms"][0]["matchExpressions"][0].pop("operator")
    broken["spec"]["mappingStrategy"] = "DefaultName"
    with pytest.raises(AssertionError) as failure:
        assert_schema_valid(broken)
    text = str(failure.value)
    assert "podOffloadingStrategy" in text and "operator" in text and "mappingStrategy" in text


def assert_tenant_reference_valid(namespace):
    """The ownerReference names a kind and version the Capsule CRD serves, and a cluster-scoped owner
    (a Namespace cannot be owned by a namespaced object)."""
    refs = namespace["metadata"]["ownerReferences"]
    assert len(refs) == 1
    ref = refs[0]
    crd = load_crds().get((ref["apiVersion"], ref["kind"]))
    assert crd is not None, f"no served CRD for {ref['kind']} in {ref['apiVersion']}"
    assert crd.group == "capsule.clastix.io" and crd.kind == "Tenant" and not crd.namespaced
    assert ref["controller"] is True and ref["uid"]
    # The Tenant it points at is a valid Tenant object, and forceTenantPrefix holds for the namespace.
    tenant = {
        "apiVersion": ref["apiVersion"],
        "kind": "Tenant",
        "metadata": {"name": ref["name"]},
        "spec": {"owners": [{"kind": "User", "name": "flare"}], "forceTenantPrefix": True},
    }
    assert not validate_custom_resource(tenant)
    assert namespace["metadata"]["name"].startswith(ref["name"] + "-")
    assert namespace["metadata"]["labels"]["capsule.clastix.io/tenant"] == ref["name"]


# --- API-server rules the JSON schemas leave out -----------------------------------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
NAMESPACED = {"NamespaceOffloading", "PersistentVolumeClaim", "Service", "Deployment", "Job",
              "HorizontalPodAutoscaler", "Ingress"}


def is_label(value, pattern, max_len=63):
    return isinstance(value, str) and len(value) <= max_len and bool(pattern.match(value))


def assert_labels_valid(labels):
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        assert not prefix or (len(prefix) <= 253 and DNS_SUBDOMAIN.match(prefix)), key
        assert is_label(name, LABEL_NAME), key
        assert is_label(value, LABEL_VALUE), (key, value)


def assert_quantity(value):
    assert isinstance(value, str), value
    try:
        parse_quantity(value)
    except ValueError as exc:
        raise AssertionError(str(exc)) from None


def assert_pod_template_valid(template, kind):
    assert_labels_valid(template["metadata"]["labels"])
    spec = template["spec"]
    volumes = {v["name"] for v in spec.get("volumes", [])}
    assert len(volumes) == len(spec.get("volumes", []))
    for volume in spec.get("volumes", []):
        assert is_label(volume["name"], DNS_LABEL)
        if "emptyDir" in volume and "sizeLimit" in volume["emptyDir"]:
            assert_quantity(volume["emptyDir"]["sizeLimit"])
    containers = spec.get("initContainers", []) + spec["containers"]
    names = [c["name"] for c in containers]
    assert len(set(names)) == len(names)
    for container in containers:
        assert is_label(container["name"], DNS_LABEL)
        assert container["image"]
        for section in container.get("resources", {}).values():
            for quantity in section.values():
                assert_quantity(quantity)
        requests = container.get("resources", {}).get("requests", {})
        limits = container.get("resources", {}).get("limits", {})
        for resource in set(requests) & set(limits):
            assert parse_quantity(requests[resource]) <= parse_quantity(limits[resource])
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes and mount["mountPath"].startswith("/")
        mount_paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert len(set(mount_paths)) == len(mount_paths)
        port_names = [p["name"] for p in container.get("ports", [])]
        assert len(set(port_names)) == len(port_names)
        for port in container.get("ports", []):
            assert is_label(port["name"], IANA_SVC_NAME, 15) and re.search("[a-z]", port["name"])
            assert 1 <= port["containerPort"] <= 65535
        for env in container.get("env", []):
            assert env["name"] and "=" not in env["name"]
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert is_label(ref["name"], DNS_SUBDOMAIN, 253) and SECRET_KEY.match(ref["key"])
    if kind == "Job":
        assert spec["restartPolicy"] in ("Never", "OnFailure")


def assert_api_rules(manifests, namespace):
    names_by_kind = {}
    for manifest in manifests:
        kind, meta = manifest["kind"], manifest["metadata"]
        names_by_kind.setdefault(kind, set()).add(meta["name"])
        assert_labels_valid(meta["labels"])
        for key, value in meta.get("annotations", {}).items():
            assert isinstance(value, str), key
        if kind in NAMESPACED:
            assert meta["namespace"] == namespace
        else:
            assert "namespace" not in meta
        if kind in ("Namespace", "Job"):
            assert is_label(meta["name"], DNS_LABEL), meta["name"]
        elif kind == "Service":
            assert is_label(meta["name"], DNS_1035), meta["name"]
        else:
            assert is_label(meta["name"], DNS_SUBDOMAIN, 253), meta["name"]
    for kind, names in names_by_kind.items():
        assert len(names) == len(by_kind(manifests, kind)), f"duplicate {kind} names"

    for manifest in manifests:
        kind, spec = manifest["kind"], manifest.get("spec", {})
        if kind == "Deployment":
            labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= labels.items()
            assert spec["template"]["spec"].get("restartPolicy", "Always") == "Always"
            assert_pod_template_valid(spec["template"], kind)
        elif kind == "Job":
            assert "selector" not in spec  # generated by the Job controller
            assert_pod_template_valid(spec["template"], kind)
            hostname = f"{manifest['metadata']['name']}-{spec['completions'] - 1}"
            assert is_label(hostname, DNS_LABEL), hostname
            if "successPolicy" in spec:
                assert spec["completionMode"] == "Indexed"
                for rule in spec["successPolicy"]["rules"]:
                    assert 1 <= rule["succeededCount"] <= spec["completions"]
            if "podFailurePolicy" in spec:
                assert spec["template"]["spec"]["restartPolicy"] == "Never"
        elif kind == "PersistentVolumeClaim":
            assert_quantity(spec["resources"]["requests"]["storage"])
            assert parse_quantity(spec["resources"]["requests"]["storage"]) > 0
        elif kind == "Service":
            pods = [m for m in manifests if m["kind"] in ("Deployment", "Job")]
            assert spec["selector"].items() <= pods[0]["spec"]["template"]["metadata"]["labels"].items()
            keys = [(p["port"], p["protocol"]) for p in spec["ports"]]
            assert len(set(keys)) == len(keys)
            container_ports = {(p["containerPort"], p["protocol"]) for p in main_container(manifests)["ports"]}
            for port in spec["ports"]:
                assert is_label(port["name"], IANA_SVC_NAME, 15)
                assert (port["targetPort"], port["protocol"]) in container_ports
        elif kind == "HorizontalPodAutoscaler":
            assert spec["scaleTargetRef"]["name"] in names_by_kind["Deployment"]
            assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        elif kind == "Ingress":
            service = one(manifests, "Service")
            service_ports = {p["port"] for p in service["spec"]["ports"] if p["protocol"] == "TCP"}
            hosts = [rule["host"] for rule in spec["rules"]]
            assert len(set(hosts)) == len(hosts)
            for rule in spec["rules"]:
                assert is_label(rule["host"], DNS_SUBDOMAIN, 253)
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    assert backend["name"] == service["metadata"]["name"]
                    assert backend["port"]["number"] in service_ports


COMMON_LABELS = ("flare.io/intent-id", "flare.io/tenant", "app.kubernetes.io/managed-by", "app.kubernetes.io/name")


def assert_all_valid(manifests, *, tenant="acme", intent_id=INTENT, capsule_uid=True):
    namespace = manifests[0]
    assert namespace["kind"] == "Namespace"
    name = namespace["metadata"]["name"]
    for manifest in manifests:
        assert_schema_valid(manifest)
        labels = manifest["metadata"]["labels"]
        assert labels["flare.io/intent-id"] == intent_id
        assert labels["flare.io/tenant"] == tenant
        assert labels["app.kubernetes.io/managed-by"] == "flare"
    assert_api_rules(manifests, name)
    if capsule_uid:
        assert_tenant_reference_valid(namespace)
    assert list(yaml.safe_load_all(manifests_yaml(manifests))) == manifests


# --- The representative intents -----------------------------------------------------------------


@pytest.mark.parametrize("doc", [LLM_INFERENCE, VIDEO_BATCH, JUPYTER], ids=["llm", "video", "jupyter"])
def test_representative_intents_are_valid(doc):
    manifests = build(doc)
    assert_all_valid(manifests)
    workload = doc["workload"]
    for manifest in manifests:
        assert manifest["metadata"]["labels"]["app.kubernetes.io/name"] == workload["name"]
    assert manifests[0]["metadata"]["name"] == f"flare-acme-{workload['name']}"


def test_llm_inference_service():
    manifests = build(LLM_INFERENCE)
    assert [m["kind"] for m in manifests] == [
        "Namespace", "NamespaceOffloading", "Service", "Deployment", "HorizontalPodAutoscaler", "Ingress",
    ]
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # A rollout never needs more GPUs than were reserved.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    limits = main_container(manifests)["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    assert limits["memory"] == "128Gi"
    assert main_container(manifests)["resources"]["requests"] == {"cpu": "16", "memory": "128Gi"}
    assert "cpu" not in limits
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    assert hpa["metadata"]["annotations"]["flare.io/target-gpu-percent"] == "85"
    ingress = one(manifests, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "llama.acme.example"
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "llama-70b-chat", "port": {"number": 8000}}
    assert ingress["spec"]["tls"] == [{"hosts": ["llama.acme.example"]}]
    assert workload_url(LLM_INFERENCE, manifests[0]["metadata"]["name"]) == "https://llama.acme.example"


def test_video_batch_job():
    manifests = build(VIDEO_BATCH)
    assert [m["kind"] for m in manifests] == ["Namespace", "NamespaceOffloading", "Job"]
    job = one(manifests, "Job")
    spec = job["spec"]
    assert spec["parallelism"] == 8 and spec["completions"] == 8
    assert spec["completionMode"] == "Indexed"  # JOB_COMPLETION_INDEX picks the shard
    assert "successPolicy" not in spec
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 5400
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert main_container(manifests)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert env_of(manifests)["FFMPEG_ARGS"]["value"] == "-preset=slow -crf=20"
    assert workload_url(VIDEO_BATCH, manifests[0]["metadata"]["name"]) == ""


def test_jupyter_notebook_with_persistent_volume():
    manifests = build(JUPYTER, storage_class="liqo")
    assert [m["kind"] for m in manifests] == [
        "Namespace", "NamespaceOffloading", "PersistentVolumeClaim", "Service", "Deployment",
    ]
    pvc = one(manifests, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == "work"
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "liqo",
    }
    spec = pod_spec(manifests)
    assert {"name": "work", "persistentVolumeClaim": {"claimName": "work"}} in spec["volumes"]
    assert {"name": "work", "mountPath": "/home/jovyan/work"} in main_container(manifests)["volumeMounts"]
    assert not by_kind(manifests, "Ingress") and not by_kind(manifests, "HorizontalPodAutoscaler")
    namespace = manifests[0]["metadata"]["name"]
    assert workload_url(JUPYTER, namespace) == f"http://notebook.{namespace}.svc.cluster.local:8888"


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("vendor", ["nvidia", "amd"])
def test_published_examples_through_the_intent_schema(name, vendor):
    # The published examples' deadlines lie in 2024: validate them as of then.
    doc = validate_intent(load_example(name), now=datetime(2024, 1, 1, tzinfo=timezone.utc))
    manifests = build(doc, gpu_vendor=vendor)
    assert_all_valid(manifests)
    gpus = doc["workload"]["resources"]["gpu"]["count"]
    assert main_container(manifests)["resources"]["limits"][f"{vendor}.com/gpu"] == str(gpus)


# --- Namespace, Capsule and Liqo ----------------------------------------------------------------


def test_namespace_belongs_to_the_capsule_tenant():
    namespace = build(JUPYTER, tenant="globex", capsule_tenant_uid="uid-1")[0]
    assert namespace["metadata"]["name"] == "flare-globex-notebook"
    assert namespace["metadata"]["labels"]["capsule.clastix.io/tenant"] == "flare-globex"
    assert namespace["metadata"]["labels"]["flare.io/tenant"] == "globex"
    assert namespace["metadata"]["labels"]["flare.io/intent-id"] == INTENT
    assert namespace["metadata"]["ownerReferences"] == [
        {"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant", "name": "flare-globex", "uid": "uid-1",
         "controller": True}
    ]


def test_namespace_without_tenant_uid_has_no_owner_reference():
    manifests = build(JUPYTER, capsule_tenant_uid="")
    assert "ownerReferences" not in manifests[0]["metadata"]
    assert manifests[0]["metadata"]["labels"]["capsule.clastix.io/tenant"] == "flare-acme"
    assert_all_valid(manifests, capsule_uid=False)


def test_namespaced_children_carry_no_owner_references():
    # They cannot point across namespaces; they are collected with their Namespace.
    for manifest in build(LLM_INFERENCE)[1:]:
        assert "ownerReferences" not in manifest["metadata"]


def test_long_names_are_truncated_with_a_stable_suffix():
    long_a = "a" * 40 + "-inference-service-one"
    long_b = "a" * 40 + "-inference-service-two"
    ns_a = wl.namespace_name("acme", long_a)
    ns_b = wl.namespace_name("acme", long_b)
    assert len(ns_a) <= 63 and len(ns_b) <= 63
    assert DNS_LABEL.match(ns_a) and DNS_LABEL.match(ns_b)
    assert ns_a.startswith("flare-acme-a") and ns_b.startswith("flare-acme-a")
    assert ns_a != ns_b  # the hash suffix keeps them apart
    assert ns_a == wl.namespace_name("acme", long_a)  # deterministic
    assert wl.namespace_name("acme", "notebook") == "flare-acme-notebook"
    exact = "n" * (63 - len("flare-acme-"))
    assert wl.namespace_name("acme", exact) == "flare-acme-" + exact  # fits: untouched


def test_tenant_slugs_become_dns_names():
    assert wl.capsule_tenant_name("Acme_Labs") == "flare-acme-labs"
    assert wl.namespace_name("Acme_Labs", "nb") == "flare-acme-labs-nb"
    manifests = build(JUPYTER, tenant="Acme_Labs")
    assert manifests[0]["metadata"]["labels"]["flare.io/tenant"] == "Acme_Labs"
    assert_all_valid(manifests, tenant="Acme_Labs")
    # A 40-character slug (the model's maximum) still leaves room for the disambiguator.
    slug = "t" * 40
    assert len(wl.namespace_name(slug, "x" * 63)) <= 63
    with pytest.raises(ValueError):
        wl.capsule_tenant_name("t" * 60)
    with pytest.raises(ValueError):
        wl.capsule_tenant_name("__")


def test_namespace_offloading_targets_the_bought_clusters():
    manifests = build(LLM_INFERENCE, remote_cluster_ids=[CLUSTER, "other-id", CLUSTER, ""])
    offloading = one(manifests, "NamespaceOffloading")
    assert offloading["metadata"] == {
        "name": "offloading", "namespace": "flare-acme-llama-70b-chat", "labels": offloading["metadata"]["labels"],
    }
    assert offloading["spec"] == {
        "namespaceMappingStrategy": "DefaultName",
        "podOffloadingStrategy": "Remote",
        "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": [CLUSTER, "other-id"]}
        ]}]},
    }
    affinity = pod_spec(manifests)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity == offloading["spec"]["clusterSelector"]
    assert_all_valid(manifests)


def test_without_cluster_ids_nothing_is_selected():
    manifests = build(LLM_INFERENCE, remote_cluster_ids=[])
    expression = one(manifests, "NamespaceOffloading")["spec"]["clusterSelector"]["nodeSelectorTerms"][0]
    assert expression == {"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "DoesNotExist"}]}
    assert "affinity" not in pod_spec(manifests)
    assert_all_valid(manifests)


def test_pods_tolerate_the_liqo_virtual_node_taint():
    for doc in (LLM_INFERENCE, VIDEO_BATCH, JUPYTER):
        assert {"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"} in (
            pod_spec(build(doc))["tolerations"]
        )


# --- Container ----------------------------------------------------------------------------------


def test_env_splits_on_the_first_equals_sign():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["env"] = ["DSN=postgres://u:p@db/x?sslmode=require&a=b", "EMPTY=", "FLAG", "DUP=1", "DUP=2"]
    env = env_of(build(doc))
    assert env["DSN"] == {"name": "DSN", "value": "postgres://u:p@db/x?sslmode=require&a=b"}
    assert env["EMPTY"]["value"] == "" and env["FLAG"]["value"] == ""
    assert env["DUP"]["value"] == "2"
    names = [e["name"] for e in main_container(build(doc))["env"]]
    assert names.count("DUP") == 1


def test_secrets_are_referenced_never_created():
    manifests = build(LLM_INFERENCE)
    assert not by_kind(manifests, "Secret")
    assert env_of(manifests)["HF_TOKEN"] == {
        "name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "huggingface", "key": "HF_TOKEN"}},
    }


def test_a_secret_wins_over_a_plain_variable_of_the_same_name():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["env"] = ["JUPYTER_TOKEN=insecure", "OTHER=1"]
    container = main_container(build(doc))
    tokens = [e for e in container["env"] if e["name"] == "JUPYTER_TOKEN"]
    assert tokens == [
        {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "jupyter", "key": "JUPYTER_TOKEN"}}}
    ]


def test_commands_run_through_one_shell_script():
    command = main_container(build(LLM_INFERENCE))["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[2] == "set -e\n" + "\n".join(LLM_INFERENCE["workload"]["commands"])
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["commands"] = []
    assert "command" not in main_container(build(doc))  # the image's entrypoint runs


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_the_script_stops_at_the_first_failing_command(tmp_path):
    def run(commands):
        doc = copy.deepcopy(VIDEO_BATCH)
        doc["workload"]["commands"] = commands
        argv = main_container(build(doc))["command"]
        return subprocess.run(["sh", *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=10)

    result = run(["echo one >> out", "false", "echo two >> out"])
    assert result.returncode != 0
    assert (tmp_path / "out").read_text() == "one\n"
    # `a || b` and trailing comments keep their meaning (joining with `&&` would break both).
    (tmp_path / "out").unlink()
    result = run(["false || echo fallback >> out  # tolerated", "echo done >> out &", "wait"])
    assert result.returncode == 0
    assert (tmp_path / "out").read_text().split() == ["fallback", "done"]


@pytest.mark.parametrize("vendor,key", [("nvidia", "nvidia.com/gpu"), ("amd", "amd.com/gpu"), ("AMD", "amd.com/gpu")])
def test_gpu_limit_key_follows_the_vendor(vendor, key):
    manifests = build(LLM_INFERENCE, gpu_vendor=vendor)
    limits = main_container(manifests)["resources"]["limits"]
    assert limits[key] == "2"
    assert not {"nvidia.com/gpu", "amd.com/gpu"} - {key} & set(limits)
    assert_all_valid(manifests)


def test_unknown_gpu_vendor_is_rejected():
    with pytest.raises(ValueError, match="gpu_vendor"):
        build(LLM_INFERENCE, gpu_vendor="matrox")


def test_gpu_workloads_get_a_shared_memory_volume_and_cpu_ones_none():
    spec = pod_spec(build(LLM_INFERENCE))
    assert {"name": "flare-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}} in spec["volumes"]
    assert {"name": "flare-shm", "mountPath": "/dev/shm"} in spec["containers"][0]["volumeMounts"]
    doc = copy.deepcopy(JUPYTER)
    del doc["workload"]["resources"]["gpu"]
    spec = pod_spec(build(doc))
    assert all(v["name"] != "flare-shm" for v in spec["volumes"])
    assert "limits" in spec["containers"][0]["resources"]
    assert not {"nvidia.com/gpu", "amd.com/gpu"} & set(spec["containers"][0]["resources"]["limits"])


def test_gpu_count_defaults_to_one():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["resources"]["gpu"] = {"model": "nvidia-a100"}
    assert main_container(build(doc))["resources"]["limits"]["nvidia.com/gpu"] == "1"


# --- Storage ------------------------------------------------------------------------------------


def test_persistent_volumes_become_claims_and_temporary_ones_empty_dirs():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["storage"]["volumes"].append({"name": "tmp", "size": "20Gi", "type": "temporary", "path": "/tmp/x"})
    manifests = build(doc)
    pvcs = by_kind(manifests, "PersistentVolumeClaim")
    assert [p["metadata"]["name"] for p in pvcs] == ["work"]
    assert pvcs[0]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert "storageClassName" not in pvcs[0]["spec"]  # the cluster default when none is given
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "20Gi"}} in pod_spec(manifests)["volumes"]
    assert_all_valid(manifests)


def test_a_volume_source_is_copied_in_before_the_workload_starts():
    manifests = build(VIDEO_BATCH)
    [sync] = pod_spec(manifests)["initContainers"]
    assert sync["name"] == "sync-input"
    assert sync["command"] == ["rclone", "copy", ":s3,env_auth=true:acme-media/raw/2025/", "/input"]
    assert sync["envFrom"] == [{"secretRef": {"name": "aws-media"}}]
    assert sync["volumeMounts"] == [{"name": "input", "mountPath": "/input"}]


@pytest.mark.parametrize(
    "source,remote",
    [
        ({"type": "gcs", "uri": "gs://bucket/data"}, ":gcs,env_auth=true:bucket/data"),
        ({"type": "azure", "uri": "az://container/dir"}, ":azureblob,env_auth=true:container/dir"),
        ({"type": "azure", "uri": "https://acct.blob.core.windows.net/container/dir"},
         ":azureblob,env_auth=true,account=acct:container/dir"),
        ({"type": "azure", "uri": "abfss://container@acct.dfs.core.windows.net/dir/sub"},
         ":azureblob,env_auth=true,account=acct:container/dir/sub"),
        ({"type": "azure", "uri": "wasbs://container@acct.blob.core.chinacloudapi.cn/dir"},
         ":azureblob,env_auth=true,account=acct,endpoint='https://acct.blob.core.chinacloudapi.cn':container/dir"),
        ({"type": "gcs", "uri": "gcs://bucket"}, ":gcs,env_auth=true:bucket"),
    ],
)
def test_other_object_stores(source, remote):
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["storage"]["volumes"][0]["source"] = source
    manifests = build(doc)
    [sync] = pod_spec(manifests)["initContainers"]
    assert sync["command"][2] == remote
    assert "envFrom" not in sync
    assert_all_valid(manifests)


def test_mismatched_source_uri_is_rejected():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["storage"]["volumes"][0]["source"] = {"type": "s3", "uri": "gs://bucket"}
    with pytest.raises(ValueError, match="s3"):
        build(doc)


def test_persistent_volume_without_size_is_rejected():
    doc = copy.deepcopy(JUPYTER)
    del doc["workload"]["storage"]["volumes"][0]["size"]
    with pytest.raises(ValueError, match="size"):
        build(doc)


# --- Scaling, ports -----------------------------------------------------------------------------


def test_hpa_only_with_auto_scale():
    doc = copy.deepcopy(LLM_INFERENCE)
    doc["workload"]["scaling"]["auto_scale"] = False
    assert not by_kind(build(doc), "HorizontalPodAutoscaler")
    doc["workload"]["scaling"] = {"min_replicas": 3, "max_replicas": 2, "auto_scale": True}
    manifests = build(doc)
    assert one(manifests, "Deployment")["spec"]["replicas"] == 3
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 3)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert_all_valid(manifests)
    # Batch workloads never scale horizontally.
    batch = copy.deepcopy(VIDEO_BATCH)
    batch["workload"]["scaling"] = {"auto_scale": True}
    assert not by_kind(build(batch), "HorizontalPodAutoscaler")


def test_service_only_with_ports_and_ingress_only_for_exposed_domains():
    doc = copy.deepcopy(LLM_INFERENCE)
    doc["workload"]["ports"] = []
    manifests = build(doc)
    assert not by_kind(manifests, "Service") and not by_kind(manifests, "Ingress")
    assert workload_url(doc, "ns") == ""

    doc["workload"]["ports"] = [
        {"port": 8000, "protocol": "TCP", "expose": True},  # exposed, but no domain
        {"port": 9090, "protocol": "TCP", "expose": False, "domain": "metrics.acme.example"},  # domain, not exposed
        {"port": 5353, "protocol": "UDP", "expose": True, "domain": "dns.acme.example"},  # UDP: not HTTP
    ]
    manifests = build(doc)
    service = one(manifests, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("tcp-8000", 8000, "TCP"), ("tcp-9090", 9090, "TCP"), ("udp-5353", 5353, "UDP"),
    ]
    assert not by_kind(manifests, "Ingress")
    assert workload_url(doc, "ns-1") == "http://llama-70b-chat.ns-1.svc.cluster.local:8000"
    assert_all_valid(manifests)


def test_one_ingress_rule_per_domain():
    doc = copy.deepcopy(LLM_INFERENCE)
    doc["workload"]["ports"] = [
        {"port": 8000, "protocol": "TCP", "expose": True, "domain": "api.acme.example"},
        {"port": 8001, "protocol": "TCP", "expose": True, "domain": "API.acme.example"},
        {"port": 3000, "protocol": "TCP", "expose": True, "domain": "ui.acme.example"},
    ]
    manifests = build(doc)
    rules = one(manifests, "Ingress")["spec"]["rules"]
    assert [(r["host"], r["http"]["paths"][0]["backend"]["service"]["port"]["number"]) for r in rules] == [
        ("api.acme.example", 8000), ("ui.acme.example", 3000),
    ]
    assert workload_url(doc, "ns") == "https://api.acme.example"
    assert_all_valid(manifests)


def test_workload_names_starting_with_a_digit_still_make_a_valid_service():
    doc = copy.deepcopy(LLM_INFERENCE)
    doc["workload"]["name"] = "3d-render"
    manifests = build(doc)
    assert one(manifests, "Service")["metadata"]["name"] == "w-3d-render"
    assert main_container(manifests)["name"] == "3d-render"
    assert manifests[0]["metadata"]["name"] == "flare-acme-3d-render"
    assert workload_url({"workload": {**doc["workload"], "ports": [{"port": 80}]}}, "ns") == (
        "http://w-3d-render.ns.svc.cluster.local:80"
    )
    assert_all_valid(manifests)


# --- Batch --------------------------------------------------------------------------------------


def test_any_completion_ends_at_the_first_success():
    doc = copy.deepcopy(VIDEO_BATCH)
    doc["workload"]["batch"]["completion_policy"] = "Any"
    spec = one(build(doc), "Job")["spec"]
    # All eight tasks run at once; the first to succeed completes the Job.
    assert spec["parallelism"] == 8 and spec["completions"] == 8
    assert spec["completionMode"] == "Indexed"
    assert spec["successPolicy"] == {"rules": [{"succeededCount": 1}]}
    assert_all_valid(build(doc))


def test_all_completion_needs_every_task():
    spec = one(build(VIDEO_BATCH), "Job")["spec"]
    assert spec["completions"] == spec["parallelism"] == 8
    assert "successPolicy" not in spec


@pytest.mark.parametrize("timeout,seconds", [("2h", 7200), ("30m", 1800), ("1h30m", 5400), ("45s", 45), ("2d", 172800)])
def test_timeout_becomes_active_deadline(timeout, seconds):
    doc = copy.deepcopy(VIDEO_BATCH)
    doc["workload"]["batch"]["timeout"] = timeout
    assert one(build(doc), "Job")["spec"]["activeDeadlineSeconds"] == seconds


def test_batch_defaults_when_the_section_is_absent():
    doc = copy.deepcopy(VIDEO_BATCH)
    del doc["workload"]["batch"]
    spec = one(build(doc), "Job")["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 3)
    assert "activeDeadlineSeconds" not in spec


def test_disruptions_do_not_spend_retries():
    spec = one(build(VIDEO_BATCH), "Job")["spec"]
    assert spec["podFailurePolicy"] == {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }


def test_job_type_alias_is_batch():
    doc = copy.deepcopy(VIDEO_BATCH)
    doc["workload"]["type"] = "job"
    assert one(build(doc), "Job")


def test_long_job_names_leave_room_for_the_index_hostname():
    doc = copy.deepcopy(VIDEO_BATCH)
    doc["workload"]["name"] = "j" * 63
    doc["workload"]["batch"]["parallel_tasks"] = 100
    manifests = build(doc)
    job = one(manifests, "Job")
    assert len(f"{job['metadata']['name']}-99") <= 63
    assert_all_valid(manifests)


# --- Labels, release order, YAML ----------------------------------------------------------------


@pytest.mark.parametrize("doc", [LLM_INFERENCE, VIDEO_BATCH, JUPYTER], ids=["llm", "video", "jupyter"])
def test_every_object_and_pod_carries_the_flare_labels(doc):
    manifests = build(doc)
    expected = {
        "flare.io/intent-id": INTENT,
        "flare.io/tenant": "acme",
        "app.kubernetes.io/managed-by": "flare",
        "app.kubernetes.io/name": doc["workload"]["name"],
    }
    for manifest in manifests:
        assert expected.items() <= manifest["metadata"]["labels"].items(), manifest["kind"]
    workload = next(m for m in manifests if m["kind"] in ("Deployment", "Job"))
    assert expected.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


def test_release_order_is_reverse_dependency_order():
    manifests = build(JUPYTER) + [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "flare-acme-notebook"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "flare-acme-notebook"}},
    ]
    manifests += [m for m in build(LLM_INFERENCE) if m["kind"] in ("HorizontalPodAutoscaler", "Ingress")]
    order = [m["kind"] for m in release_order(manifests)]
    assert order == [
        "Deployment", "HorizontalPodAutoscaler", "Ingress", "Service", "Secret", "PersistentVolumeClaim",
        "ConfigMap", "NamespaceOffloading", "Namespace",
    ]
    assert sorted(map(id, release_order(manifests))) == sorted(map(id, manifests))
    batch = [m["kind"] for m in release_order(build(VIDEO_BATCH))]
    assert batch == ["Job", "NamespaceOffloading", "Namespace"]


def test_release_order_reverses_objects_of_the_same_kind():
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["storage"]["volumes"].append({"name": "more", "size": "1Gi", "type": "persistent", "path": "/m"})
    pvcs = [m["metadata"]["name"] for m in release_order(build(doc)) if m["kind"] == "PersistentVolumeClaim"]
    assert pvcs == ["more", "work"]


def test_manifests_yaml_is_multi_document_and_readable():
    manifests = build(LLM_INFERENCE)
    text = manifests_yaml(manifests)
    assert text.count("---\n") == len(manifests)
    assert list(yaml.safe_load_all(text)) == manifests
    assert "- |-\n" in text or "- |\n" in text  # the shell script is a block, one command per line


def test_yaml_round_trips_unusual_characters():
    # Found by the property test: PyYAML writes U+0085 raw and reads it back as a line break.
    doc = copy.deepcopy(JUPYTER)
    doc["workload"]["env"] = ["NEL=\x85", "LS=a\u2028b", "ACCENT=héllo wörld", "TRAIL=x  "]
    doc["workload"]["commands"] = ["echo 'ünïcode'  ", "printf 'a\\n'"]
    manifests = build(doc)
    assert list(yaml.safe_load_all(manifests_yaml(manifests))) == manifests


def test_input_document_is_not_mutated():
    doc = copy.deepcopy(LLM_INFERENCE)
    workload_manifests(doc, intent_id=INTENT, tenant="acme")
    assert doc == LLM_INFERENCE


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda w: w.update(name="Not_A_Label"), "workload.name"),
        (lambda w: w.pop("image"), "image"),
        (lambda w: w.update(type="cron"), "workload.type"),
        (lambda w: w["resources"].update(memory="32GB"), "resources.memory"),
        (lambda w: w["storage"]["volumes"][0].update(path="relative"), "path"),
    ],
)
def test_documents_no_cluster_would_accept_are_rejected(change, match):
    doc = copy.deepcopy(JUPYTER)
    change(doc["workload"])
    with pytest.raises(ValueError, match=match):
        build(doc)


def test_bad_label_inputs_are_rejected():
    with pytest.raises(ValueError, match="intent_id"):
        build(JUPYTER, intent_id="intent with spaces")
    with pytest.raises(ValueError, match="tenant"):
        build(JUPYTER, tenant="-acme-")


def test_minimal_document():
    doc = {"objective": "Cost_Minimization", "workload": {"type": "service", "name": "tiny", "image": "nginx:1.27"}}
    manifests = build(doc)
    assert [m["kind"] for m in manifests] == ["Namespace", "NamespaceOffloading", "Deployment"]
    container = main_container(manifests)
    assert container == {"name": "tiny", "image": "nginx:1.27"}
    assert_all_valid(manifests)


# --- Property: any valid-looking document gives schema-valid manifests --------------------------

dns_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z", fullmatch=True)
short_labels = st.from_regex(r"\A[a-z]([-a-z0-9]{0,14}[a-z0-9])?\Z", fullmatch=True)
env_names = st.from_regex(r"\A[A-Za-z_.-][A-Za-z0-9_.-]{0,20}\Z", fullmatch=True)
tenants = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_]{0,38}[A-Za-z0-9])?\Z", fullmatch=True)
domains = st.lists(short_labels, min_size=2, max_size=4).map(".".join)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
quantities_cpu = st.sampled_from(["1", "4.5", "500m", "8", "96", 2, 16])
quantities_memory = st.sampled_from(["512Mi", "32Gi", "1.5Gi", "80G", "1Ti", "64Gi"])
quantities_size = st.sampled_from(["1Gi", "100Gi", "500G", "2Ti", "750Mi"])

ports = st.builds(
    lambda port, protocol, expose, domain: {"port": port, "protocol": protocol, "expose": expose,
                                            **({"domain": domain} if domain else {})},
    st.integers(1, 65535), st.sampled_from(["TCP", "UDP"]), st.booleans(), st.none() | domains,
)


@st.composite
def volumes(draw):
    names = draw(st.lists(short_labels.filter(lambda n: n != "flare-shm"), unique=True, max_size=4))
    result = []
    for name in names:
        volume = {"name": name, "type": draw(st.sampled_from(["persistent", "temporary"])),
                  "path": f"/data/{name}"}
        if volume["type"] == "persistent" or draw(st.booleans()):
            volume["size"] = draw(quantities_size)
        if draw(st.booleans()):
            kind, uri = draw(st.sampled_from([
                ("s3", "s3://{0}/{1}"), ("gcs", "gs://{0}/{1}"), ("gcs", "gcs://{0}"), ("azure", "az://{0}/{1}"),
                ("azure", "https://{0}.blob.core.windows.net/{1}/x"),
                ("azure", "abfss://{1}@{0}.dfs.core.windows.net/x"),
            ]))
            volume["source"] = {"type": kind, "uri": uri.format(draw(short_labels), draw(short_labels))}
            if draw(st.booleans()):
                volume["source"]["credentials"] = draw(short_labels)
        result.append(volume)
    return result


@st.composite
def documents(draw):
    kind = draw(st.sampled_from(["service", "batch"]))
    resources = {}
    if draw(st.booleans()):
        resources["cpu"] = draw(quantities_cpu)
    if draw(st.booleans()):
        resources["memory"] = draw(quantities_memory)
    if draw(st.booleans()):
        gpu = {"model": draw(st.sampled_from(["nvidia-h100", "amd-mi300x", "any"]))}
        if draw(st.booleans()):
            gpu["count"] = draw(st.integers(0, 8))
        resources["gpu"] = gpu
    workload = {
        "type": kind,
        "name": draw(dns_labels),
        "image": draw(st.sampled_from(["nginx:1.27", "ghcr.io/acme/app@sha256:" + "a" * 64, "python:3.12-slim"])),
        "commands": draw(st.lists(text.filter(str.strip), max_size=4)),
        "env": draw(st.lists(st.builds(lambda k, v: f"{k}={v}", env_names, text), max_size=5)),
        # intents.schema rejects a (port, protocol) declared twice.
        "ports": draw(st.lists(ports, max_size=4, unique_by=lambda p: (p["port"], p["protocol"]))),
        "resources": resources,
        "storage": {"volumes": draw(volumes())},
        "secrets": draw(st.lists(st.builds(lambda n, e: {"name": n, "env": e}, short_labels, env_names), max_size=3)),
    }
    if kind == "service":
        low = draw(st.integers(1, 5))
        workload["scaling"] = {"min_replicas": low, "max_replicas": draw(st.integers(low, 20)),
                               "auto_scale": draw(st.booleans()), "target_cpu_percent": draw(st.integers(1, 100)),
                               "target_gpu_percent": draw(st.integers(1, 100))}
    else:
        batch = {"parallel_tasks": draw(st.integers(1, 64)), "max_retries": draw(st.integers(0, 10)),
                 "completion_policy": draw(st.sampled_from(["All", "Any"]))}
        if draw(st.booleans()):
            batch["timeout"] = draw(st.sampled_from(["2h", "30m", "1h30m", "45s", "3d"]))
        workload["batch"] = batch
    return {"objective": "Balanced_Optimization", "workload": workload}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=documents(),
    tenant=tenants,
    vendor=st.sampled_from(["nvidia", "amd"]),
    cluster_ids=st.lists(st.uuids().map(str), max_size=3),
    uid=st.sampled_from(["", "5f0c3a8e-1111-4222-8333-944455556666"]),
    storage_class=st.sampled_from([None, "liqo", "standard-rwo"]),
)
def test_random_documents_give_schema_valid_manifests(doc, tenant, vendor, cluster_ids, uid, storage_class):
    original = copy.deepcopy(doc)
    manifests = workload_manifests(doc, intent_id=INTENT, tenant=tenant, gpu_vendor=vendor,
                                   remote_cluster_ids=cluster_ids, capsule_tenant_uid=uid,
                                   storage_class=storage_class)
    assert doc == original
    assert_all_valid(manifests, tenant=tenant, capsule_uid=bool(uid))
    kinds = [m["kind"] for m in manifests]
    assert kinds[:2] == ["Namespace", "NamespaceOffloading"]
    workload = doc["workload"]
    assert kinds.count("Deployment" if workload["type"] == "service" else "Job") == 1
    assert ("Service" in kinds) == bool(workload["ports"])
    assert ("HorizontalPodAutoscaler" in kinds) == bool(workload.get("scaling", {}).get("auto_scale"))
    assert ("Ingress" in kinds) == any(p["expose"] and p.get("domain") and p["protocol"] == "TCP"
                                       for p in workload["ports"])
    limits = main_container(manifests).get("resources", {}).get("limits", {})
    gpus = workload["resources"].get("gpu")
    expected_gpus = 0 if gpus is None else gpus.get("count", 1)
    assert limits.get(f"{vendor}.com/gpu", "0") == str(expected_gpus)
    assert len(manifests[0]["metadata"]["name"]) <= 63
    order = release_order(manifests)
    assert sorted(map(id, order)) == sorted(map(id, manifests))
    assert order[-1]["kind"] == "Namespace" and order[-2]["kind"] == "NamespaceOffloading"
    url = workload_url(doc, manifests[0]["metadata"]["name"])
    assert url == "" or url.startswith(("https://", "http://"))

"""KubernetesFederation (FLUIDOS.md §6) against the Kubernetes API emulator and the fake FLUIDOS,
Liqo and Capsule controllers of tests/k8s: names, specs, phases, errors, the ledger key, release."""

from __future__ import annotations

import time

import pytest
from kubernetes.utils import parse_quantity

from flare_portal.crds import validate_custom_resource
from intents.schema import validate_intent
from intents.solver import solver_manifest
from intents.workload import workload_manifests
from providers import ledger
from providers.federation.base import Conflict, Failed, IntentRef, Timeout, Unavailable
from providers.federation.kubernetes import (
    ANNOTATION_KEY,
    KubernetesFederation,
    allocation_name,
    contract_name,
    node_name_for,
)
from providers.models import GpuNode, Provider
from tests.k8s.fixtures import A6000, H100
from tests.k8s.fluidos_controllers import make_flavor

pytestmark = [pytest.mark.k8s, pytest.mark.django_db]

NS = "fluidos"
H100_FLAVOR = "provider-a.fluidos.eu-k8slice-7f3a"
A6000_FLAVOR = "provider-b.fluidos.eu-k8slice-c41e"


def document(kind="batch", name="train", model="nvidia-h100", count=1, **workload) -> dict:
    body = {"type": kind, "name": name, "image": "busybox",
            "resources": {"cpu": "2", "memory": "8Gi", "gpu": {"model": model, "count": count}}}
    if kind == "batch":
        body.update(commands=["echo hi"], batch={"parallel_tasks": 1, "timeout": "2h"})
    else:
        body.update(ports=[{"port": 80}], scaling={"min_replicas": 1, "max_replicas": 2})
    body.update(workload)
    return validate_intent({"intent": {"objective": "Cost_Minimization", "workload": body}})


def make_ref(doc=None, intent_id="int-0001", attempt=1, tenant="acme") -> IntentRef:
    doc = doc or document()
    name = f"flare-{intent_id}-{attempt}"
    manifest = solver_manifest(doc, intent_id=intent_id, tenant=tenant, user="alice", name=name, attempt=attempt,
                               discovery_marker=True)
    return IntentRef(schema=f"t_{tenant}", tenant=tenant, intent_id=intent_id, user="alice", attempt=attempt,
                     document=doc, solver_manifest=manifest)


@pytest.fixture
def fed(kube_api_client):
    return KubernetesFederation(kube_api_client, backoff=0.01, max_backoff=0.05, request_timeout=10)


@pytest.fixture
def custom(kube_api_client):
    from kubernetes import client

    return client.CustomObjectsApi(kube_api_client)


def settle(fluidos):
    fluidos.run_until_idle()


def discover(fed, fluidos, ref, max_rounds=10):
    for _ in range(max_rounds):
        result = fed.discover(ref)
        if result.done:
            return result
        settle(fluidos)
    return result


def reserve(fed, fluidos, ref, offer, gpus):
    for _ in range(10):
        result = fed.reserve(ref, offer, gpus)
        if result.done:
            return result
        settle(fluidos)
    return result


def peer(fed, fluidos, ref, reservation):
    for _ in range(10):
        result = fed.peer(ref, reservation)
        if result.done:
            return result
        settle(fluidos)
    return result


def offer_for(discovery, model):
    return next(o for o in discovery.candidates if o.traits.model == model)


def manifests_for(ref, peerings):
    return workload_manifests(ref.document, intent_id=ref.intent_id, tenant=ref.tenant, gpu_vendor="nvidia",
                              remote_cluster_ids=sorted({p.remote_cluster_id for p in peerings}))


def run_to_deployed(fed, fluidos, ref, model="nvidia-h100", gpus=1):
    found = discover(fed, fluidos, ref)
    offer = offer_for(found, model)
    ledger.reserve(ref.schema, ref.intent_id, [ledger.Hold(node_id=int(offer.node_id), gpus=gpus,
                                                           price_per_gpu_hour=offer.traits.hourly_rate or 0)])
    reservation = reserve(fed, fluidos, ref, offer, gpus)
    peering = peer(fed, fluidos, ref, reservation)
    manifests = manifests_for(ref, [peering])
    base = [m for m in manifests if m["kind"] in ("Namespace", "NamespaceOffloading")]
    for _ in range(10):
        deployment = fed.deploy(ref, [peering], base)
        if deployment.done:
            break
        settle(fluidos)
    assert deployment.done, deployment
    result = fed.deploy(ref, [peering], manifests)
    assert result.done
    settle(fluidos)
    return offer, reservation, peering, result


# ---------------------------------------------------------------------------------------------
# Discovery


def test_discover_creates_the_solver_of_section_6_and_upserts_the_inventory(fed, fluidos, kube_emulator):
    ref = make_ref()
    first = fed.discover(ref)
    assert not first.done
    solver = kube_emulator.get_object("nodecore.fluidos.eu/v1alpha1", "solvers", "flare-int-0001-1", NS)
    spec = solver["spec"]
    assert spec["findCandidate"] is True and spec["reserveAndBuy"] is False and spec["establishPeering"] is False
    assert spec["intentID"] == "int-0001" and spec["selector"]["flavorType"] == "K8Slice"
    assert {"field": "flare_discovery", "filter": "StringFilter", "data": {"value": "flare-int-0001-1"}} in \
        spec["selector"]["filters"]["gpuFilters"]
    assert "storageFilter" not in spec["selector"]["filters"]
    labels = solver["metadata"]["labels"]
    assert labels["flare.io/intent-id"] == "int-0001" and labels["flare.io/tenant"] == "acme"
    assert labels["flare.io/user"] == "alice"
    assert validate_custom_resource({k: solver[k] for k in ("apiVersion", "kind", "metadata", "spec")}) == []

    result = discover(fed, fluidos, ref)
    assert result.done and result.phase == "Solved"
    assert result.message == "No need to reserve and buy the resources"
    assert kube_emulator.get_object("advertisement.fluidos.eu/v1alpha1", "discoveries",
                                    "discovery-flare-int-0001-1", NS) is not None
    by_model = {o.traits.model: o for o in result.candidates}
    assert set(by_model) == {"nvidia-h100", "nvidia-rtx-a6000"}
    h100 = by_model["nvidia-h100"]
    assert h100.flavor_name == H100_FLAVOR and h100.extra["peering_candidate"] == f"peeringcandidate-{H100_FLAVOR}"
    assert h100.free_gpus == 4 and h100.total_gpus == 4
    # Un-swapped location (§3.9), per-GPU memory (§3.1), the provider keyed by the Flavor's owner domain.
    assert h100.traits.region == "eu-west-1" and h100.traits.zone == "zone-a"
    assert h100.traits.memory_per_gpu == 80 * 2**30
    node = GpuNode.objects.select_related("provider").get(pk=int(h100.node_id))
    assert node.provider.fluidos_domain == "provider-a.fluidos.eu" and node.provider.region == "eu-west-1"
    assert node.annotations[ANNOTATION_KEY] == "provider-a-node-1|nvidia-h100|eu-west-1|zone-a"
    assert node.name == node_name_for(node.annotations[ANNOTATION_KEY])
    assert node.annotations["flare.io/flavor"] == H100_FLAVOR
    assert node.count == 4 and node.region == "eu-west-1"
    # Idempotent: a second call answers the same offers and writes no new rows.
    again = fed.discover(ref)
    assert sorted(o.node_id for o in again.candidates) == sorted(o.node_id for o in result.candidates)
    assert GpuNode.objects.count() == 2 and Provider.objects.count() == 2
    assert {o.node_id for o in fed.inventory()} == {o.node_id for o in result.candidates}


def test_first_sighting_keeps_the_total_and_remainders_map_to_the_same_node(fed, fluidos):
    ref = make_ref()
    offer, reservation, *_ = run_to_deployed(fed, fluidos, ref, gpus=2)
    node_id = offer.node_id
    # The provider now advertises a remainder (gpu count 0): a new Solver sees it as the same node.
    ref2 = make_ref(intent_id="int-0002")
    found = discover(fed, fluidos, ref2)
    h100 = [o for o in found.candidates if o.traits.model == "nvidia-h100"]
    assert len(h100) == 1 and h100[0].node_id == node_id
    assert h100[0].flavor_name != H100_FLAVOR          # the remainder Flavor
    node = GpuNode.objects.get(pk=int(node_id))
    assert node.count == 4 and node.memory_per_gpu == 80 * 2**30   # never overwritten by count 0
    assert h100[0].free_gpus == 2                      # the ledger, not the Flavor, knows what is free


def test_no_candidate_is_a_finished_discovery_without_offers(fed, fluidos):
    fluidos.fail("no_candidate", target="flare-int-0001-1")
    result = discover(fed, fluidos, make_ref())
    assert result.done and result.candidates == [] and result.phase == "Failed"
    assert result.message == "Solver has not found any candidate"


def test_discovery_error_fails_the_attempt(fed, fluidos):
    fluidos.fail("discovery_error", target="flare-int-0001-1")
    with pytest.raises(Failed) as error:
        discover(fed, fluidos, make_ref())
    assert error.value.reason == "DiscoveryFailed" and "Error when getting Flavor" in error.value.message


def test_hang_stays_running_and_the_solver_timeout_raises(fed, fluidos):
    fluidos.fail("hang", target="flare-int-0001-1")
    ref = make_ref()
    for _ in range(5):
        result = fed.discover(ref)
        settle(fluidos)
    assert not result.done and result.phase == "Running"
    assert result.message == "Solver is trying a Discovery"
    fluidos.advance(121)
    fluidos.resync()
    settle(fluidos)
    with pytest.raises(Timeout):
        fed.discover(ref)


# ---------------------------------------------------------------------------------------------
# Reservation, peering


def test_reservation_contract_allocation_and_gpu_capacity(fed, fluidos, kube_emulator):
    ref = make_ref()
    found = discover(fed, fluidos, ref)
    offer = offer_for(found, "nvidia-h100")
    reservation = reserve(fed, fluidos, ref, offer, 2)
    assert reservation.done and reservation.name == "reservation-flare-int-0001-1"
    assert reservation.contract == contract_name(H100_FLAVOR) and reservation.flavor == H100_FLAVOR
    assert reservation.remote_cluster_id == "provider-a-cluster" and reservation.gpus == 2
    body = kube_emulator.get_object("reservation.fluidos.eu/v1alpha1", "reservations", reservation.name, NS)
    spec = body["spec"]
    assert spec["buyer"] == {"domain": "consumer.fluidos.local", "nodeID": "consumer-node-0", "ip": "10.0.0.1:30000"}
    assert spec["seller"]["domain"] == "provider-a.fluidos.eu"
    assert spec["peeringCandidate"] == {"name": f"peeringcandidate-{H100_FLAVOR}", "namespace": NS}
    assert spec["reserve"] is True and spec["purchase"] is True
    data = spec["configuration"]["data"]
    assert spec["configuration"]["type"] == "K8Slice" and int(data["pods"]) > 0
    assert data["gpu"]["count"] == 2 and data["gpu"]["model"] == "nvidia-h100"
    assert validate_custom_resource({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")}) == []

    peering = peer(fed, fluidos, ref, reservation)
    assert peering.done and peering.allocation == allocation_name(H100_FLAVOR)
    assert peering.remote_cluster_id == "provider-a-cluster" and peering.virtual_node == "liqo-provider-a-cluster"
    allocation = kube_emulator.get_object("nodecore.fluidos.eu/v1alpha1", "allocations", peering.allocation, NS)
    assert allocation["spec"] == {"contract": {"name": reservation.contract, "namespace": NS}, "forwarding": False}
    assert validate_custom_resource({k: allocation[k] for k in ("apiVersion", "kind", "metadata", "spec")}) == []
    rs = kube_emulator.get_object("authentication.liqo.io/v1beta1", "resourceslices", reservation.contract,
                                  "liqo-tenant-provider-a-cluster")
    assert rs["spec"]["resources"]["nvidia.com/gpu"] == "2"
    node = kube_emulator.get_object("v1", "nodes", "liqo-provider-a-cluster")
    assert parse_quantity(node["status"]["capacity"]["nvidia.com/gpu"]) == 2


def test_pc_taken_is_a_conflict(fed, fluidos):
    ref = make_ref()
    offer = offer_for(discover(fed, fluidos, ref), "nvidia-h100")
    fluidos.fail("taken", target="flare-int-0001-1")
    with pytest.raises(Conflict) as error:
        reserve(fed, fluidos, ref, offer, 1)
    assert "PeeringCandidate not available" in error.value.message


def test_peering_error_is_failed(fed, fluidos):
    ref = make_ref()
    offer = offer_for(discover(fed, fluidos, ref), "nvidia-h100")
    reservation = reserve(fed, fluidos, ref, offer, 1)
    fluidos.fail("peering_error", target=allocation_name(H100_FLAVOR))
    with pytest.raises(Failed) as error:
        peer(fed, fluidos, ref, reservation)
    assert error.value.reason == "PeeringError" and error.value.message.startswith("Allocation: error")


def test_gang_gets_one_reservation_per_node(fed, fluidos):
    ref = make_ref(document(model="any", count=1))
    found = discover(fed, fluidos, ref)
    names = [reserve(fed, fluidos, ref, offer, 1).name for offer in found.candidates]
    assert sorted(names) == ["reservation-flare-int-0001-1", "reservation-flare-int-0001-1-2"]
    # Idempotent: asking again answers the same Reservations.
    assert sorted(fed.reserve(ref, o, 1).name for o in found.candidates) == sorted(names)


# ---------------------------------------------------------------------------------------------
# Deploy, observe, release


def test_deploy_capsule_namespace_offloading_and_batch_outcome(fed, fluidos, kube_emulator):
    ref = make_ref()
    _, _, peering, result = run_to_deployed(fed, fluidos, ref)
    namespace = "flare-acme-train"
    assert result.namespace == namespace and "Job/train" in result.objects
    tenant = kube_emulator.get_object("capsule.clastix.io/v1beta2", "tenants", "flare-acme")
    assert validate_custom_resource({k: tenant[k] for k in ("apiVersion", "kind", "metadata", "spec")}) == []
    ns = kube_emulator.get_object("v1", "namespaces", namespace)
    assert ns["metadata"]["ownerReferences"] == [{"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
                                                  "name": "flare-acme", "uid": tenant["metadata"]["uid"],
                                                  "controller": True}]
    assert ns["metadata"]["labels"]["capsule.clastix.io/tenant"] == "flare-acme"
    offloading = kube_emulator.get_object("offloading.liqo.io/v1beta1", "namespaceoffloadings", "offloading",
                                          namespace)
    assert offloading["status"]["offloadingPhase"] == "Ready"
    assert offloading["spec"]["clusterSelector"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == \
        ["provider-a-cluster"]
    managers = {e["manager"] for e in kube_emulator.get_object("batch/v1", "jobs", "train", namespace)["metadata"]
                ["managedFields"]}
    assert "flare" in managers
    observation = fed.observe(ref)
    assert observation.state == "succeeded" and observation.completed_tasks == 1


def test_batch_failure_is_observed_with_its_reason(fed, fluidos):
    ref = make_ref()
    fluidos.set_job_outcome("flare-acme-train", "train", "Failed")
    run_to_deployed(fed, fluidos, ref)
    observation = fed.observe(ref)
    assert observation.state == "failed" and observation.reason == "BackoffLimitExceeded"


def test_service_runs_with_a_url(fed, fluidos):
    ref = make_ref(document(kind="service", name="web", model="nvidia-rtx-a6000"))
    run_to_deployed(fed, fluidos, ref, model="nvidia-rtx-a6000")
    settle(fluidos)
    observation = fed.observe(ref)
    assert observation.state == "running" and observation.ready_replicas == 1
    assert observation.workload_url == "http://web.flare-acme-web.svc.cluster.local:80"


FLARE_KINDS = [
    ("nodecore.fluidos.eu/v1alpha1", "solvers"), ("advertisement.fluidos.eu/v1alpha1", "discoveries"),
    ("reservation.fluidos.eu/v1alpha1", "reservations"), ("reservation.fluidos.eu/v1alpha1", "transactions"),
    ("reservation.fluidos.eu/v1alpha1", "contracts"), ("nodecore.fluidos.eu/v1alpha1", "allocations"),
    ("authentication.liqo.io/v1beta1", "resourceslices"), ("offloading.liqo.io/v1beta1", "namespaceoffloadings"),
    ("apps/v1", "deployments"), ("batch/v1", "jobs"), ("v1", "services"), ("networking.k8s.io/v1", "ingresses"),
    ("autoscaling/v2", "horizontalpodautoscalers"), ("v1", "persistentvolumeclaims"), ("v1", "pods"),
]


def leftovers(kube_emulator) -> list[str]:
    found = [f"{plural}/{o['metadata']['name']}" for api, plural in FLARE_KINDS
             for o in kube_emulator.list_objects(api, plural)]
    found += [f"namespaces/{n['metadata']['name']}" for n in kube_emulator.list_objects("v1", "namespaces")
              if n["metadata"]["name"].startswith("flare-")]
    return found


def test_release_leaves_nothing_flare_created_and_is_idempotent(fed, fluidos, kube_emulator):
    ref = make_ref(document(kind="service", name="web"))
    run_to_deployed(fed, fluidos, ref)
    settle(fluidos)
    assert leftovers(kube_emulator)
    fed.release(ref)
    settle(fluidos)
    assert leftovers(kube_emulator) == []
    pcs = kube_emulator.list_objects("advertisement.fluidos.eu/v1alpha1", "peeringcandidates")
    assert pcs, "PeeringCandidates stay"
    assert kube_emulator.get_object("capsule.clastix.io/v1beta2", "tenants", "flare-acme") is not None
    fed.release(ref)           # idempotent: nothing left, no error
    fed.release(make_ref(intent_id="never-started"))


def test_release_deletes_in_the_order_of_section_6_11(fed, fluidos, kube_emulator):
    ref = make_ref(document(kind="service", name="web"))
    run_to_deployed(fed, fluidos, ref)
    kube_emulator.clear_requests()
    fed.release(ref)
    order = [r.resource for r in kube_emulator.requests if r.method == "DELETE"]
    expected = ["deployments", "services", "namespaceoffloadings", "namespaces", "resourceslices", "allocations",
                "contracts", "transactions", "reservations", "discoveries", "solvers"]
    assert [k for k in dict.fromkeys(order)] == expected
    deletes = [r for r in kube_emulator.requests if r.method == "DELETE" and r.resource == "deployments"]
    assert deletes[0].body["propagationPolicy"] == "Background"


# ---------------------------------------------------------------------------------------------
# API errors


def test_transient_api_errors_are_retried(fed, fluidos, kube_emulator):
    ref = make_ref()
    faults = [kube_emulator.inject(verb="create", resource="solvers", status=500, times=2),
              kube_emulator.inject(verb="get", resource="solvers", status=429, times=1, retry_after=0),
              kube_emulator.inject(verb="list", resource="peeringcandidates", status=409, times=1),
              kube_emulator.inject(verb="get", resource="configmaps", status=503, times=1),
              kube_emulator.inject(verb="create", resource="reservations", status=504, times=1)]
    offer = offer_for(discover(fed, fluidos, ref), "nvidia-h100")
    assert reserve(fed, fluidos, ref, offer, 1).done
    assert [f.hits for f in faults] == [2, 1, 1, 1, 1]
    assert len(kube_emulator.list_objects("reservation.fluidos.eu/v1alpha1", "reservations")) == 1


def test_release_goes_past_a_refusal_and_raises_only_when_the_api_is_down(fed, fluidos, kube_emulator):
    ref = make_ref()
    run_to_deployed(fed, fluidos, ref)
    refused = kube_emulator.inject(verb="delete", resource="contracts", status=403, times=None)
    fed.release(ref)                                   # no exception: everything else is deleted
    settle(fluidos)
    assert refused.hits == 1
    assert [c["metadata"]["name"] for c in kube_emulator.list_objects("reservation.fluidos.eu/v1alpha1",
                                                                       "contracts")] == [contract_name(H100_FLAVOR)]
    assert kube_emulator.list_objects("reservation.fluidos.eu/v1alpha1", "reservations") == []
    kube_emulator.clear_faults()
    kube_emulator.inject(verb="delete", resource="solvers", status=503, times=None)
    ref2 = make_ref(intent_id="int-0002")
    discover(fed, fluidos, ref2)
    with pytest.raises(Unavailable):
        fed.release(ref2)


def test_persistent_api_errors_become_unavailable(fed, kube_emulator):
    kube_emulator.inject(verb="*", resource="solvers", status=503, times=None)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        fed.discover(make_ref())
    assert time.monotonic() - started < 5


def test_manifests_flare_sends_validate_against_the_crds(fed, fluidos, kube_emulator):
    ref = make_ref(document(kind="service", name="web"))
    run_to_deployed(fed, fluidos, ref)
    sent = [r for r in kube_emulator.requests if r.method in ("POST", "PATCH") and r.body]
    checked = 0
    for request in sent:
        body = request.body
        if body.get("apiVersion", "").split("/")[0].endswith((".fluidos.eu", "liqo.io", "clastix.io")) \
                and body.get("kind") in ("Solver", "Reservation", "Allocation", "NamespaceOffloading", "Tenant"):
            assert validate_custom_resource(body) == [], body
            checked += 1
    assert checked >= 5


def test_from_settings_uses_the_kubeconfig(settings, kube_emulator):
    settings.FLARE_KUBECONFIG = kube_emulator.kubeconfig_path()
    settings.FLARE_FLUIDOS_NAMESPACE = "fluidos"
    from providers.federation import get_federation

    settings.FLARE_FEDERATION = "kubernetes"
    federation = get_federation()
    assert isinstance(federation, KubernetesFederation)
    assert federation.api_client.configuration.host == kube_emulator.url
    assert federation.namespace == "fluidos" and federation.kube.policy.retries == 4


def test_unreadable_flavors_are_skipped(fed, fluidos):
    bad = dict(H100, count="4")
    fluidos.add_provider_flavor(make_flavor("provider-c.fluidos.eu-k8slice-0bad", domain="provider-c.fluidos.eu",
                                            node_id="provider-c-node-1", liqo_id="provider-c-cluster",
                                            gpu=bad))
    fluidos.add_provider_flavor(make_flavor("provider-d.fluidos.eu-k8slice-0a0a", domain="provider-d.fluidos.eu",
                                            node_id="provider-d-node-1", liqo_id="provider-d-cluster",
                                            gpu=dict(A6000, count=1)))
    found = discover(fed, fluidos, make_ref())
    assert {o.provider.name for o in found.candidates} == {"provider-a", "provider-b", "provider-b-2"}


def test_inventory_probe_fills_the_inventory_before_any_intent(fed, fluidos, kube_emulator):
    assert fed.inventory() == []
    assert fed.probe_inventory() is False
    solver = kube_emulator.get_object("nodecore.fluidos.eu/v1alpha1", "solvers", "flare-inventory-probe", NS)
    assert "selector" not in solver["spec"] and solver["spec"]["findCandidate"] is True
    assert validate_custom_resource({k: solver[k] for k in ("apiVersion", "kind", "metadata", "spec")}) == []
    assert fed.probe_inventory() is False          # still running until the controllers answer
    settle(fluidos)
    assert fed.probe_inventory() is True
    assert sorted(o.traits.model for o in fed.inventory()) == ["nvidia-h100", "nvidia-rtx-a6000"]
    assert kube_emulator.list_objects("nodecore.fluidos.eu/v1alpha1", "solvers") == []
    assert kube_emulator.list_objects("advertisement.fluidos.eu/v1alpha1", "discoveries") == []


def test_deploy_waits_for_a_previous_attempts_namespace_to_go(fed, fluidos, kube_emulator):
    ref = make_ref()
    _, _, peering, _ = run_to_deployed(fed, fluidos, ref)
    fed.release(ref)                                # the NamespaceOffloading finalizer holds the namespace
    namespace = kube_emulator.get_object("v1", "namespaces", "flare-acme-train")
    assert namespace is not None and namespace["metadata"].get("deletionTimestamp")
    base = [m for m in manifests_for(ref, [peering]) if m["kind"] in ("Namespace", "NamespaceOffloading")]
    waiting = fed.deploy(ref, [peering], base)
    assert not waiting.done and waiting.phase == "Terminating"
    settle(fluidos)
    assert kube_emulator.get_object("v1", "namespaces", "flare-acme-train") is None

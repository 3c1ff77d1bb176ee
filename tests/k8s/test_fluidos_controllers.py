"""The fake FLUIDOS/Liqo/Capsule controllers, driven the way FLARE drives a real cluster
(FLUIDOS.md §6), through the official `kubernetes` client only."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .fluidos_controllers import allocation_name, contract_name, h4

NODECORE = ("nodecore.fluidos.eu", "v1alpha1")
ADV = ("advertisement.fluidos.eu", "v1alpha1")
RES = ("reservation.fluidos.eu", "v1alpha1")
NSOFF = ("offloading.liqo.io", "v1beta1")
H100_FLAVOR = "provider-a.fluidos.eu-k8slice-7f3a"
A6000_FLAVOR = "provider-b.fluidos.eu-k8slice-c41e"


@pytest.fixture
def api(kube_api_client):
    class Api:
        core = client.CoreV1Api(kube_api_client)
        apps = client.AppsV1Api(kube_api_client)
        batch = client.BatchV1Api(kube_api_client)
        custom = client.CustomObjectsApi(kube_api_client)
    return Api


def flare_solver(name: str, gpu_filters: list | None = None, discovery_marker: bool = True) -> dict:
    filters = list(gpu_filters if gpu_filters is not None else
                   [{"field": "model", "filter": "StringFilter", "data": {"value": "nvidia-h100"}}])
    if discovery_marker:
        filters.append({"field": "flare_discovery", "filter": "StringFilter", "data": {"value": name}})
    return {"apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Solver",
            "metadata": {"name": name, "namespace": "fluidos",
                         "labels": {"flare.io/intent-id": "intent-1", "flare.io/tenant": "acme", "flare.io/user": "alice"}},
            "spec": {"intentID": "intent-1", "findCandidate": True, "reserveAndBuy": False, "establishPeering": False,
                     "selector": {"flavorType": "K8Slice", "filters": {
                         "cpuFilter": {"name": "Range", "data": {"min": "4"}},
                         "gpuFilters": filters}}}}


def get(api, group_version, plural, name, ns="fluidos"):
    return api.custom.get_namespaced_custom_object(*group_version, ns, plural, name)


def solver_phase(api, name):
    sp = get(api, NODECORE, "solvers", name)["status"]["solverPhase"]
    return sp["phase"], sp["message"]


def reserve(api, solver: str, pc: dict, gpus: int = 2) -> dict:
    """FLUIDOS.md §6.4: Reservation `reservation-<solver>`."""
    identity = api.core.read_namespaced_config_map("fluidos-node-identity", "fluidos").data
    gpu = copy.deepcopy(pc["spec"]["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"]["gpu"])
    gpu["count"] = gpus
    return api.custom.create_namespaced_custom_object(*RES, "fluidos", "reservations", {
        "apiVersion": "reservation.fluidos.eu/v1alpha1", "kind": "Reservation",
        "metadata": {"name": f"reservation-{solver}", "namespace": "fluidos"},
        "spec": {"solverID": solver, "buyer": identity, "seller": pc["spec"]["flavor"]["spec"]["owner"],
                 "peeringCandidate": {"name": pc["metadata"]["name"], "namespace": "fluidos"},
                 "reserve": True, "purchase": True,
                 "configuration": {"type": "K8Slice", "data": {"cpu": "8", "memory": "64Gi", "pods": "50",
                                                               "gpu": gpu}}}})


def allocate(api, contract: dict) -> str:
    flavor = contract["spec"]["flavor"]["metadata"]["name"]
    name = allocation_name(flavor)
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "allocations", {
        "apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Allocation",
        "metadata": {"name": name, "namespace": "fluidos"},
        "spec": {"contract": {"name": contract["metadata"]["name"], "namespace": "fluidos"}, "forwarding": False}})
    return name


def discover(api, fluidos, name="flare-intent-1-1", **kw) -> list[dict]:
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", flare_solver(name, **kw))
    fluidos.run_until_idle()
    return [p for p in api.custom.list_namespaced_custom_object(*ADV, "fluidos", "peeringcandidates")["items"]
            if name in p["spec"]["interestedSolverIDs"]]


def peer(api, fluidos, solver="flare-intent-1-1", gpus=2) -> tuple[dict, str]:
    """§6.1–6.6 up to an Active Allocation; returns (contract, liqoID)."""
    pcs = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos, solver)}
    reserve(api, solver, pcs[H100_FLAVOR], gpus)
    fluidos.run_until_idle()
    r = get(api, RES, "reservations", f"reservation-{solver}")
    contract = get(api, RES, "contracts", r["status"]["contract"]["name"])
    allocate(api, contract)
    fluidos.run_until_idle()
    return contract, contract["spec"]["peeringTargetCredentials"]["liqoID"]


def add_gpus(api, fluidos, contract, liqo, gpus="2"):
    """§6.7: add nvidia.com/gpu to the ResourceSlice and wait for the virtual node to show it."""
    api.custom.patch_namespaced_custom_object("authentication.liqo.io", "v1beta1", f"liqo-tenant-{liqo}",
                                              "resourceslices", contract["metadata"]["name"],
                                              {"spec": {"resources": {"nvidia.com/gpu": gpus}}})
    fluidos.run_until_idle()


def tenant_namespace(api, fluidos, liqo, tenant="flare-acme", ns="flare-acme-train"):
    """§6.8: Capsule Tenant, owned namespace, NamespaceOffloading `offloading`."""
    t = api.custom.create_cluster_custom_object("capsule.clastix.io", "v1beta2", "tenants", {
        "apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant", "metadata": {"name": tenant},
        "spec": {"owners": [{"kind": "User", "name": "flare"}], "forceTenantPrefix": True}})
    api.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=ns, labels={"capsule.clastix.io/tenant": tenant}, owner_references=[client.V1OwnerReference(
            api_version="capsule.clastix.io/v1beta2", kind="Tenant", name=tenant, uid=t["metadata"]["uid"],
            controller=True)])))
    api.custom.create_namespaced_custom_object(*NSOFF, ns, "namespaceoffloadings", {
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": ns},
        "spec": {"namespaceMappingStrategy": "DefaultName", "podOffloadingStrategy": "Remote",
                 "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": [liqo]}]}]}}})
    fluidos.run_until_idle()
    return ns


def gpu_deployment(name="train", replicas=2, gpus="1") -> client.V1Deployment:
    return client.V1Deployment(metadata=client.V1ObjectMeta(name=name), spec=client.V1DeploymentSpec(
        replicas=replicas, selector=client.V1LabelSelector(match_labels={"app": name}),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": name}), spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="pytorch/pytorch:2.4.0",
                                           resources=client.V1ResourceRequirements(limits={"nvidia.com/gpu": gpus}))]))))


# --------------------------------------------------------------------------------------------


def test_install_seeds_identity_known_clusters_and_a_worker(api, fluidos):
    ident = api.core.read_namespaced_config_map("fluidos-node-identity", "fluidos").data
    assert set(ident) == {"domain", "nodeID", "ip"} and ":" in ident["ip"]
    kcs = api.custom.list_namespaced_custom_object("network.fluidos.eu", "v1alpha1", "fluidos", "knownclusters")
    assert sorted(k["metadata"]["name"] for k in kcs["items"]) == ["knowncluster-provider-a-node-1",
                                                                   "knowncluster-provider-b-node-1"]
    assert [n.metadata.name for n in api.core.list_node().items] == ["consumer-worker"]


def test_solver_discovery_phases_and_peering_candidates(api, fluidos):
    rv = api.custom.list_namespaced_custom_object(*NODECORE, "fluidos", "solvers")["metadata"]["resourceVersion"]
    pcs = discover(api, fluidos, "flare-intent-1-1")
    seen, w = [], watch.Watch()
    for ev in w.stream(api.custom.list_namespaced_custom_object, *NODECORE, "fluidos", "solvers",
                       resource_version=rv, timeout_seconds=2):
        if ev["object"]["metadata"]["name"] != "flare-intent-1-1":
            continue
        sp = (ev["object"].get("status") or {}).get("solverPhase")
        step = (sp["phase"], sp["message"]) if sp else None
        if not seen or seen[-1] != step:
            seen.append(step)
        if sp and sp["phase"] == "Solved":
            w.stop()
    assert seen == [None, ("Idle", "Solver initialized"), ("Running", "Solver is running"),
                    ("Running", "Solver is trying a Discovery"),
                    ("Running", "Solver has completed the Discovery phase"),
                    ("Solved", "No need to reserve and buy the resources")]
    st = get(api, NODECORE, "solvers", "flare-intent-1-1")["status"]
    assert (st["findCandidate"], st["discoveryPhase"]) == ("Solved", "Solved")
    d = get(api, ADV, "discoveries", "discovery-flare-intent-1-1")
    assert d["spec"]["solverID"] == "flare-intent-1-1"
    assert d["spec"]["selector"] == flare_solver("flare-intent-1-1")["spec"]["selector"]
    assert (d["status"]["phase"]["phase"], d["status"]["phase"]["message"]) == \
        ("Solved", "Discovery Solved: Peering Candidate found")
    assert len(d["status"]["peeringCandidateList"]["items"]) == 2
    by_flavor = {p["spec"]["flavor"]["metadata"]["name"]: p for p in pcs}
    assert set(by_flavor) == {H100_FLAVOR, A6000_FLAVOR}          # providers ignore GPU filters
    pc = by_flavor[H100_FLAVOR]
    assert pc["metadata"]["name"] == f"peeringcandidate-{H100_FLAVOR}"
    assert pc["spec"]["available"] is True and pc["spec"]["interestedSolverIDs"] == ["flare-intent-1-1"]
    gpu = pc["spec"]["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"]["gpu"]
    assert gpu["count"] == 4 and gpu["memory"] == "320Gi" and gpu["fp32_tflops"] == 67.0
    assert "shared" not in gpu and "interruptible" not in gpu       # false/0/"" traits are dropped
    assert pc["status"]["creationTime"]
    # A second Solver re-discovers the same Flavors: the PCs gain its ID.
    discover(api, fluidos, "flare-intent-2-1")
    pc = get(api, ADV, "peeringcandidates", f"peeringcandidate-{H100_FLAVOR}")
    assert sorted(pc["spec"]["interestedSolverIDs"]) == ["flare-intent-1-1", "flare-intent-2-1"]


def test_reservation_contract_and_provider_remainder(api, fluidos):
    pcs = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos)}
    reserve(api, "flare-intent-1-1", pcs[H100_FLAVOR], gpus=2)
    fluidos.step()
    r = get(api, RES, "reservations", "reservation-flare-intent-1-1")
    assert (r["status"]["phase"]["phase"], r["status"]["phase"]["message"]) == ("Running", "Reservation started")
    fluidos.run_until_idle()
    r = get(api, RES, "reservations", "reservation-flare-intent-1-1")["status"]
    assert (r["phase"]["phase"], r["phase"]["message"]) == ("Solved", "Reservation solved")
    assert (r["reservePhase"], r["purchasePhase"]) == ("Solved", "Solved")
    tx = get(api, RES, "transactions", r["transactionID"])
    assert tx["spec"]["flavorID"] == H100_FLAVOR
    expected = f"contract-{H100_FLAVOR}-{h4(H100_FLAVOR)}".replace(".", "-")
    assert r["contract"] == {"name": expected, "namespace": "fluidos"} and expected == contract_name(H100_FLAVOR)
    c = get(api, RES, "contracts", expected)
    assert c["spec"]["peeringTargetCredentials"]["liqoID"] == "provider-a-cluster"
    assert c["spec"]["transactionID"] == r["transactionID"]
    assert c["spec"]["configuration"]["data"]["gpu"]["count"] == 2
    assert get(api, ADV, "peeringcandidates", f"peeringcandidate-{H100_FLAVOR}")["spec"]["available"] is False
    # The provider: the sold Flavor is unavailable, a remainder is advertised with less cpu/memory/pods
    # and a GPU whose count (0) is dropped; the next Discovery finds it.
    assert fluidos.catalogue[H100_FLAVOR]["spec"]["availability"] is False
    pcs2 = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos, "flare-intent-2-1")}
    assert H100_FLAVOR not in pcs2
    (remainder,) = [n for n in pcs2 if n.startswith("provider-a.fluidos.eu-k8slice-")]
    chars = pcs2[remainder]["spec"]["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"]
    assert (chars["cpu"], chars["memory"], chars["pods"]) == ("56", "448Gi", "60")
    assert "count" not in chars["gpu"] and chars["gpu"]["model"] == "nvidia-h100"


def test_allocation_peering_virtual_node_and_gpu_capacity(api, fluidos):
    contract, liqo = peer(api, fluidos)
    a = get(api, NODECORE, "allocations", allocation_name(H100_FLAVOR))
    assert a["status"]["status"] == "Active"
    assert fluidos.log[-2:] == [f"allocation/{allocation_name(H100_FLAVOR)}: Active Allocation is now Active",
                                f"allocation/{allocation_name(H100_FLAVOR)}: Active Outgoing peering ready, "
                                "Allocation is Active"]
    assert [l.split(": ", 1)[1] for l in fluidos.log if l.startswith("allocation/")][:2] == [
        "Inactive Allocation has been set to Inactive", "Peering Allocation is now in Peering"]
    rs = api.custom.get_namespaced_custom_object("authentication.liqo.io", "v1beta1", f"liqo-tenant-{liqo}",
                                                 "resourceslices", contract["metadata"]["name"])
    assert rs["spec"]["resources"] == {"cpu": "8", "memory": "64Gi", "pods": "50"}    # no GPU requested
    node = api.core.read_node(f"liqo-{liqo}")
    assert node.metadata.labels["liqo.io/remote-cluster-id"] == liqo
    assert "nvidia.com/gpu" not in node.status.capacity
    add_gpus(api, fluidos, contract, liqo)
    node = api.core.read_node(f"liqo-{liqo}")
    assert node.status.capacity["nvidia.com/gpu"] == "2" and node.status.allocatable["nvidia.com/gpu"] == "2"


def test_offloaded_gpu_workloads(api, fluidos):
    contract, liqo = peer(api, fluidos)
    ns = tenant_namespace(api, fluidos, liqo)
    labels = api.core.read_namespace(ns).metadata.labels
    assert labels["capsule.clastix.io/tenant"] == "flare-acme" and labels["liqo.io/scheduling-enabled"] == "true"
    off = api.custom.get_namespaced_custom_object(*NSOFF, ns, "namespaceoffloadings", "offloading")
    assert off["status"]["offloadingPhase"] == "Ready"
    assert off["status"]["remoteNamespaceName"] == f"{ns}-consumer-cluster"
    assert list(off["status"]["remoteNamespacesConditions"]) == [liqo]
    api.apps.create_namespaced_deployment(ns, gpu_deployment(replicas=2))
    fluidos.run_until_idle()
    # The ResourceSlice requested no GPU yet: the pods cannot be scheduled anywhere.
    pods = api.core.list_namespaced_pod(ns, label_selector="app=train").items
    assert len(pods) == 2 and all(p.status.phase == "Pending" for p in pods)
    cond = pods[0].status.conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("PodScheduled", "False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in cond.message
    d = api.apps.read_namespaced_deployment("train", ns)
    assert not d.status.available_replicas and d.status.conditions[0].status == "False"
    add_gpus(api, fluidos, contract, liqo, "2")
    d = api.apps.read_namespaced_deployment("train", ns)
    assert (d.status.ready_replicas, d.status.available_replicas) == (2, 2)
    assert {p.spec.node_name for p in api.core.list_namespaced_pod(ns).items} == {f"liqo-{liqo}"}
    # A Job that needs a third GPU waits; the default outcome completes it once GPUs free up.
    job = client.V1Job(metadata=client.V1ObjectMeta(name="eval"), spec=client.V1JobSpec(
        template=client.V1PodTemplateSpec(spec=client.V1PodSpec(restart_policy="Never", containers=[
            client.V1Container(name="e", image="pytorch/pytorch:2.4.0",
                               resources=client.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"}))]))))
    api.batch.create_namespaced_job(ns, job)
    fluidos.run_until_idle()
    assert api.batch.read_namespaced_job("eval", ns).status.active == 1
    api.apps.patch_namespaced_deployment("train", ns, {"spec": {"replicas": 1}})
    fluidos.run_until_idle()
    j = api.batch.read_namespaced_job("eval", ns)
    assert j.status.succeeded == 1 and [c.type for c in j.status.conditions] == ["SuccessCriteriaMet", "Complete"]


def test_job_outcome_is_controllable(api, fluidos):
    job = client.V1Job(metadata=client.V1ObjectMeta(name="bad"), spec=client.V1JobSpec(
        backoff_limit=2, template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="Never", containers=[client.V1Container(name="e", image="busybox:1")]))))
    fluidos.set_job_outcome("default", "bad", "Failed")
    api.batch.create_namespaced_job("default", job)
    fluidos.run_until_idle()
    j = api.batch.read_namespaced_job("bad", "default")
    assert j.status.failed == 3 and j.status.conditions[-1].type == "Failed"
    assert j.status.conditions[-1].reason == "BackoffLimitExceeded"
    pod = api.core.list_namespaced_pod("default", label_selector="job-name=bad").items[0]
    assert pod.status.phase == "Failed" and pod.status.container_statuses[0].state.terminated.exit_code == 1
    fluidos.set_job_outcome("default", "long", "Running")
    job.metadata.name = "long"
    api.batch.create_namespaced_job("default", job)
    fluidos.run_until_idle()
    assert api.batch.read_namespaced_job("long", "default").status.active == 1
    fluidos.set_job_outcome("default", "long", "Succeeded")
    fluidos.run_until_idle()
    assert api.batch.read_namespaced_job("long", "default").status.succeeded == 1


# --- failure modes ----------------------------------------------------------------------------


def test_no_candidate(api, fluidos):
    fluidos.fail("no_candidate")
    assert discover(api, fluidos) == []
    d = get(api, ADV, "discoveries", "discovery-flare-intent-1-1")["status"]["phase"]
    assert (d["phase"], d["message"]) == ("Failed", "No Flavors found")
    assert solver_phase(api, "flare-intent-1-1") == ("Failed", "Solver has not found any candidate")
    assert get(api, NODECORE, "solvers", "flare-intent-1-1")["status"]["findCandidate"] == "Failed"


def test_storage_filter_makes_providers_fail(api, fluidos):
    s = flare_solver("flare-intent-1-1")
    s["spec"]["selector"]["filters"]["storageFilter"] = {"name": "Range", "data": {"min": "100Gi"}}
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", s)
    fluidos.run_until_idle()
    d = get(api, ADV, "discoveries", "discovery-flare-intent-1-1")["status"]["phase"]
    assert (d["phase"], d["message"]) == ("Failed", "Error when getting Flavor")
    assert solver_phase(api, "flare-intent-1-1") == ("Failed", "Solver has not found any candidate")


def test_one_shot_failure_then_retry_with_a_new_solver(api, fluidos):
    fluidos.fail("no_candidate", times=1)
    assert discover(api, fluidos, "flare-intent-1-1") == []
    assert solver_phase(api, "flare-intent-1-1")[0] == "Failed"
    assert len(discover(api, fluidos, "flare-intent-1-2")) == 2
    assert solver_phase(api, "flare-intent-1-2") == ("Solved", "No need to reserve and buy the resources")


def test_hang_keeps_solver_running_until_a_reconcile_notices_the_timeout(api, fluidos):
    fluidos.fail("hang")
    discover(api, fluidos)
    assert solver_phase(api, "flare-intent-1-1") == ("Running", "Solver is trying a Discovery")
    d = get(api, ADV, "discoveries", "discovery-flare-intent-1-1")["status"]["phase"]
    assert (d["phase"], d["message"]) == ("Running", "Discovery started")
    fluidos.advance(121)
    fluidos.run_until_idle()
    assert solver_phase(api, "flare-intent-1-1")[0] == "Running"       # nothing triggers a reconcile
    api.custom.patch_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "flare-intent-1-1",
                                              {"metadata": {"labels": {"flare.io/attempt": "1"}}})
    fluidos.run_until_idle()
    assert solver_phase(api, "flare-intent-1-1") == ("Timed Out", "Solver has expired before finding a candidate")


def test_peering_candidate_taken(api, fluidos):
    pcs = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos)}
    fluidos.fail("taken", target="flare-intent-1-1")
    reserve(api, "flare-intent-1-1", pcs[H100_FLAVOR])
    fluidos.run_until_idle()
    r = get(api, RES, "reservations", "reservation-flare-intent-1-1")["status"]
    assert (r["phase"]["phase"], r["phase"]["message"]) == ("Failed",
                                                            "Reservation failed: PeeringCandidate not available")
    assert "contract" not in r and "transactionID" not in r
    assert api.custom.list_namespaced_custom_object(*RES, "fluidos", "contracts")["items"] == []


def test_two_reservations_race_for_one_candidate(api, fluidos):
    pcs = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos, "flare-a-1")}
    discover(api, fluidos, "flare-b-1")
    reserve(api, "flare-a-1", pcs[H100_FLAVOR])
    reserve(api, "flare-b-1", pcs[H100_FLAVOR])
    fluidos.run_until_idle()
    a = get(api, RES, "reservations", "reservation-flare-a-1")["status"]["phase"]
    b = get(api, RES, "reservations", "reservation-flare-b-1")["status"]["phase"]
    assert (a["phase"], b["phase"]) == ("Solved", "Failed")
    assert b["message"] == "Reservation failed: PeeringCandidate not available"


def test_reservation_larger_than_the_flavor_fails_at_the_provider(api, fluidos):
    pcs = {p["spec"]["flavor"]["metadata"]["name"]: p for p in discover(api, fluidos)}
    reserve(api, "flare-intent-1-1", pcs[A6000_FLAVOR], gpus=3)     # the node has 2
    fluidos.run_until_idle()
    r = get(api, RES, "reservations", "reservation-flare-intent-1-1")["status"]
    assert (r["phase"]["phase"], r["phase"]["message"]) == ("Failed", "Reservation failed: error when reserving flavour")
    assert get(api, ADV, "peeringcandidates", f"peeringcandidate-{A6000_FLAVOR}")["spec"]["available"] is True


def test_peering_error_is_terminal(api, fluidos):
    fluidos.fail("peering_error")
    contract, liqo = peer(api, fluidos)
    a = get(api, NODECORE, "allocations", allocation_name(H100_FLAVOR))["status"]
    assert (a["status"], a["message"]) == ("Error", f"Error when peering with cluster {liqo}")
    fluidos.clear_failures()
    fluidos.resync()
    fluidos.run_until_idle()
    assert get(api, NODECORE, "allocations", allocation_name(H100_FLAVOR))["status"]["status"] == "Error"
    assert [n.metadata.name for n in api.core.list_node().items] == ["consumer-worker"]


def test_allocation_without_contract_errors(api, fluidos):
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "allocations", {
        "apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Allocation", "metadata": {"name": "allocation-x-0000"},
        "spec": {"contract": {"name": "contract-missing", "namespace": "fluidos"}, "forwarding": False}})
    fluidos.run_until_idle()
    a = get(api, NODECORE, "allocations", "allocation-x-0000")["status"]
    assert (a["status"], a["message"]) == ("Error", "Error when getting Contract")


def test_solver_shortcut_reuses_an_existing_candidate_without_flare_marker(api, fluidos):
    discover(api, fluidos, "flare-intent-1-1")
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers",
                                               flare_solver("operator-solver", discovery_marker=False))
    fluidos.run_until_idle()
    assert solver_phase(api, "operator-solver") == ("Solved", "No need to reserve and buy the resources")
    assert "Solver has found a candidate" in " ".join(l for l in fluidos.log if "operator-solver" in l)
    with pytest.raises(ApiException) as e:
        get(api, ADV, "discoveries", "discovery-operator-solver")
    assert e.value.status == 404
    # The cluster's inverted BooleanFilter: `true` matches nothing, so no shortcut is taken.
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", flare_solver(
        "bool-solver", gpu_filters=[{"field": "dedicated", "filter": "BooleanFilter", "data": True}],
        discovery_marker=False))
    fluidos.run_until_idle()
    assert get(api, ADV, "discoveries", "discovery-bool-solver")["spec"]["solverID"] == "bool-solver"


# --- Liqo and Capsule admission / lifecycles --------------------------------------------------


def test_namespace_offloading_rules_and_deletion(api, fluidos):
    contract, liqo = peer(api, fluidos)
    api.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="plain")))
    body = {"apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
            "metadata": {"name": "offload-me"}, "spec": {"podOffloadingStrategy": "Remote"}}
    with pytest.raises(ApiException) as e:
        api.custom.create_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", body)
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"] == ('admission webhook "nsoff.liqo.io" denied the request: The '
                                                   'NamespaceOffloading resource must be named "offloading"')
    body["metadata"]["name"] = "offloading"
    body["spec"]["clusterSelector"] = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["someone-else"]}]}]}
    api.custom.create_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", body)
    fluidos.run_until_idle()
    off = api.custom.get_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", "offloading")
    assert off["status"]["offloadingPhase"] == "NoClusterSelected"
    assert off["metadata"]["finalizers"] == ["namespaceoffloading-controller.liqo.io/finalizer"]
    api.custom.delete_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", "offloading")
    fluidos.step()
    off = api.custom.get_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", "offloading")
    assert off["status"]["offloadingPhase"] == "Terminating" and off["metadata"]["deletionTimestamp"]
    fluidos.run_until_idle()
    with pytest.raises(ApiException) as e:
        api.custom.get_namespaced_custom_object(*NSOFF, "plain", "namespaceoffloadings", "offloading")
    assert e.value.status == 404


def test_capsule_prefix_and_tenant_garbage_collection(api, fluidos):
    contract, liqo = peer(api, fluidos)
    ns = tenant_namespace(api, fluidos, liqo)
    t = api.custom.get_cluster_custom_object("capsule.clastix.io", "v1beta2", "tenants", "flare-acme")
    assert t["status"]["namespaces"] == [ns] and t["status"]["size"] == 1
    with pytest.raises(ApiException) as e:
        api.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name="train", owner_references=[client.V1OwnerReference(
                api_version="capsule.clastix.io/v1beta2", kind="Tenant", name="flare-acme",
                uid=t["metadata"]["uid"])])))
    assert e.value.status == 403 and "must start with 'flare-acme-'" in e.value.body
    api.custom.delete_cluster_custom_object("capsule.clastix.io", "v1beta2", "tenants", "flare-acme")
    fluidos.run_until_idle()
    with pytest.raises(ApiException) as e:
        api.core.read_namespace(ns)
    assert e.value.status == 404


def test_cancel_in_reverse_order_keeps_candidates(api, fluidos):
    """§6.11: workloads → offloading → namespace → ResourceSlice → Allocation → Contract →
    Transaction → Reservation → Discovery → Solver; PCs stay."""
    contract, liqo = peer(api, fluidos)
    add_gpus(api, fluidos, contract, liqo)
    ns = tenant_namespace(api, fluidos, liqo)
    api.apps.create_namespaced_deployment(ns, gpu_deployment(replicas=1))
    fluidos.run_until_idle()
    api.apps.delete_namespaced_deployment("train", ns)
    assert api.core.list_namespaced_pod(ns).items == []             # GC through the ReplicaSet
    api.custom.delete_namespaced_custom_object(*NSOFF, ns, "namespaceoffloadings", "offloading")
    fluidos.run_until_idle()
    api.core.delete_namespace(ns)
    api.custom.delete_namespaced_custom_object("authentication.liqo.io", "v1beta1", f"liqo-tenant-{liqo}",
                                               "resourceslices", contract["metadata"]["name"])
    fluidos.run_until_idle()
    with pytest.raises(ApiException):
        api.core.read_node(f"liqo-{liqo}")                           # Liqo removes the virtual node
    r = get(api, RES, "reservations", "reservation-flare-intent-1-1")
    for group_version, plural, name in (
            (NODECORE, "allocations", allocation_name(H100_FLAVOR)), (RES, "contracts", contract["metadata"]["name"]),
            (RES, "transactions", r["status"]["transactionID"]), (RES, "reservations", "reservation-flare-intent-1-1"),
            (ADV, "discoveries", "discovery-flare-intent-1-1"), (NODECORE, "solvers", "flare-intent-1-1")):
        api.custom.delete_namespaced_custom_object(*group_version, "fluidos", plural, name)
    fluidos.run_until_idle()
    left = api.custom.list_namespaced_custom_object(*ADV, "fluidos", "peeringcandidates")["items"]
    assert len(left) == 2


# --- background loop ------------------------------------------------------------------------------


def test_background_loop_with_a_watching_client(api, fluidos):
    fluidos.start(interval=0.01)
    rv = api.custom.list_namespaced_custom_object(*NODECORE, "fluidos", "solvers")["metadata"]["resourceVersion"]
    api.custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", flare_solver("bg-1"))
    w = watch.Watch()
    final = None
    for ev in w.stream(api.custom.list_namespaced_custom_object, *NODECORE, "fluidos", "solvers",
                       resource_version=rv, timeout_seconds=5):
        sp = (ev["object"].get("status") or {}).get("solverPhase") or {}
        if sp.get("phase") in ("Solved", "Failed", "Timed Out"):
            final = (sp["phase"], sp["message"])
            w.stop()
    assert final == ("Solved", "No need to reserve and buy the resources")
    fluidos.stop()
    assert fluidos.errors == []

"""The simulated federation: the FLUIDOS consumer cluster of FLUIDOS.md §6, object by object."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_delete
from django.utils import timezone

from flare_portal.crds import validate_custom_resource
from intents.workload import workload_manifests
from providers.federation import get_federation, reset_federation
from providers.federation.base import Conflict, Failed, IntentRef, Unavailable
from providers.federation.simulated import (
    SimulatedFederation,
    allocation_name,
    contract_name,
    h4,
    liqo_cluster_id,
)
from providers.models import FederationObject, GpuNode, GpuReservation, Provider

pytestmark = pytest.mark.django_db

FLUIDOS = "fluidos"


class Clock:
    """A clock tests move by hand."""

    def __init__(self):
        self.now = timezone.now().replace(microsecond=0)

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


def make_provider(name="NeoCloud", active=True) -> Provider:
    slug = name.lower()
    return Provider.objects.create(name=name, fluidos_domain=f"{slug}.fluidos.example", fluidos_node_id=slug,
                                   fluidos_ip="192.0.2.10:30000", region="eu-west-1", active=active)


def make_node(provider, name="h100-a", *, count=8, vendor="nvidia", model="nvidia-h100", cpu="64",
              memory="512Gi", available=True, **traits) -> GpuNode:
    values = {"memory_per_gpu": 80 * 2**30, "cores_per_gpu": 16896, "architecture": "hopper", "tier": "premium",
              "fp32_tflops": 67.0, "compute_capability": "9.0", "hourly_rate": Decimal("2.5"),
              "region": "eu-west-1", "zone": "eu-west-1a"}
    values.update(traits)
    return GpuNode.objects.create(provider=provider, name=name, vendor=vendor, model=model, count=count, cpu=cpu,
                                  memory=memory, pods=110, available=available, **values)


def service_doc(name="llm", gpus=2, cpu="2", memory="8Gi") -> dict:
    return {"objective": "Cost_Minimization",
            "workload": {"type": "service", "name": name, "image": "nginx",
                         "ports": [{"port": 80, "expose": True, "domain": f"{name}.example.com"}],
                         "resources": {"cpu": cpu, "memory": memory, "gpu": {"model": "nvidia-h100", "count": gpus}},
                         "scaling": {"min_replicas": 1}}}


def batch_doc(name="train", gpus=1, tasks=2, timeout=None) -> dict:
    batch = {"parallel_tasks": tasks}
    if timeout:
        batch["timeout"] = timeout
    return {"objective": "Cost_Minimization",
            "workload": {"type": "batch", "name": name, "image": "busybox", "commands": ["echo hi"],
                         "resources": {"cpu": "2", "memory": "8Gi", "gpu": {"model": "nvidia-h100", "count": gpus}},
                         "batch": batch}}


def make_ref(intent_id="intent-aaaaaaaaaaaa", *, doc=None, attempt=1, tenant="acme", cpu_min="2",
             memory_min="8Gi") -> IntentRef:
    doc = doc or service_doc()
    solver = f"flare-{intent_id}-{attempt}"
    filters = {"gpuFilters": [{"field": "model", "filter": "StringFilter", "data": {"value": "nvidia-h100"}},
                              {"field": "flare_discovery", "filter": "StringFilter", "data": {"value": solver}}]}
    if cpu_min:
        filters["cpuFilter"] = {"name": "Range", "data": {"min": cpu_min}}
    if memory_min:
        filters["memoryFilter"] = {"name": "Range", "data": {"min": memory_min}}
    manifest = {
        "apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Solver",
        "metadata": {"name": solver, "namespace": FLUIDOS,
                     "labels": {"flare.io/intent-id": intent_id, "flare.io/tenant": tenant, "flare.io/user": "alice"}},
        "spec": {"intentID": intent_id, "findCandidate": True, "reserveAndBuy": False, "establishPeering": False,
                 "selector": {"flavorType": "K8Slice", "filters": filters}},
    }
    return IntentRef(schema=tenant, tenant=tenant, intent_id=intent_id, user="alice", attempt=attempt, document=doc,
                     solver_manifest=manifest)


def obj(kind, name, namespace=FLUIDOS) -> FederationObject:
    return FederationObject.objects.get(kind=kind, namespace=namespace, name=name)


def assert_valid(o: FederationObject):
    errors = validate_custom_resource(o.manifest())
    assert errors == [], (o.kind, o.name, errors)


def run_to_running(fed, ref, node_name=None):
    """discover → reserve → peer → deploy(base) → deploy(all) → observe, on one node."""
    discovery = fed.discover(ref)
    assert discovery.done, discovery
    offer = next(o for o in discovery.candidates if node_name is None or o.node_name == node_name)
    gpus = ref.document["workload"]["resources"]["gpu"]["count"] * (
        (ref.document["workload"].get("batch") or {}).get("parallel_tasks", 1))
    reservation = fed.reserve(ref, offer, gpus)
    assert reservation.done, reservation
    peering = fed.peer(ref, reservation)
    assert peering.done, peering
    manifests = workload_manifests(ref.document, intent_id=ref.intent_id, tenant=ref.tenant, gpu_vendor="nvidia",
                                   remote_cluster_ids=[peering.remote_cluster_id])
    base = [m for m in manifests if m["kind"] in ("Namespace", "NamespaceOffloading")]
    assert fed.deploy(ref, [peering], base).done
    deployment = fed.deploy(ref, [peering], manifests)
    assert deployment.done, deployment
    return discovery, offer, reservation, peering, deployment


# ---------------------------------------------------------------------------------------------
# The happy path, object by object


def test_happy_path_creates_the_objects_of_a_real_consumer_cluster():
    provider = make_provider()
    node = make_node(provider)
    other = make_node(provider, "h100-b", count=4)
    GpuReservation.objects.create(tenant_schema="globex", intent_id="intent-other", node=other, gpus=3)
    fed = SimulatedFederation()
    ref = make_ref()
    solver_name = f"flare-{ref.intent_id}-1"

    discovery = fed.discover(ref)
    assert discovery.done and discovery.phase == "Solved"
    assert discovery.message == "No need to reserve and buy the resources"
    assert {(o.node_name, o.free_gpus, o.total_gpus) for o in discovery.candidates} == {("h100-a", 8, 8),
                                                                                        ("h100-b", 1, 4)}
    solver = obj("Solver", solver_name)
    assert solver.spec == ref.solver_manifest["spec"]
    assert solver.labels["flare.io/intent-id"] == ref.intent_id and solver.labels["flare.io/tenant"] == "acme"
    assert solver.status["solverPhase"]["phase"] == "Solved"
    assert solver.status["solverPhase"]["message"] == "No need to reserve and buy the resources"
    assert solver.status["findCandidate"] == "Solved" and solver.status["discoveryPhase"] == "Solved"
    disc = obj("Discovery", f"discovery-{solver_name}")
    assert disc.spec["solverID"] == solver_name and disc.spec["selector"] == ref.solver_manifest["spec"]["selector"]
    assert disc.status["phase"]["phase"] == "Solved"
    assert disc.status["phase"]["message"] == "Discovery Solved: Peering Candidate found"
    assert [i["metadata"]["name"] for i in disc.status["peeringCandidateList"]["items"]] == [
        f"peeringcandidate-{node.flavor_name}", f"peeringcandidate-{other.flavor_name}"]
    pc = obj("PeeringCandidate", f"peeringcandidate-{node.flavor_name}")
    assert pc.spec["available"] is True and pc.spec["interestedSolverIDs"] == [solver_name]
    assert pc.spec["flavor"]["metadata"]["name"] == node.flavor_name
    assert pc.spec["flavor"]["spec"] == node.as_flavor()["spec"]
    assert "flare.io/intent-id" not in pc.labels  # the cluster made it, not FLARE

    offer = next(o for o in discovery.candidates if o.node_name == "h100-a")
    assert offer.flavor_name == node.flavor_name and offer.extra["peering_candidate"] == pc.name
    reservation = fed.reserve(ref, offer, 2)
    assert reservation.done and reservation.phase == "Solved"
    assert reservation.name == f"reservation-{solver_name}"
    assert reservation.flavor == node.flavor_name and reservation.node == "h100-a" and reservation.gpus == 2
    assert reservation.provider == "NeoCloud" and reservation.remote_cluster_id == liqo_cluster_id(provider)
    res = obj("Reservation", reservation.name)
    assert res.spec["solverID"] == solver_name
    assert res.spec["buyer"]["domain"] and res.spec["seller"] == provider.owner_identity()
    assert res.spec["peeringCandidate"] == {"name": pc.name, "namespace": FLUIDOS}
    assert res.spec["reserve"] is True and res.spec["purchase"] is True
    data = res.spec["configuration"]["data"]
    assert res.spec["configuration"]["type"] == "K8Slice"
    assert (data["cpu"], data["memory"], data["pods"]) == ("2", "8Gi", "1")
    assert data["gpu"]["count"] == 2 and data["gpu"]["model"] == "nvidia-h100"
    assert res.status["phase"]["phase"] == "Solved" and res.status["phase"]["message"] == "Reservation solved"
    assert res.status["reservePhase"] == "Solved" and res.status["purchasePhase"] == "Solved"
    transaction_obj = obj("Transaction", res.status["transactionID"])
    assert transaction_obj.spec["flavorID"] == node.flavor_name
    expected_contract = f"contract-{node.flavor_name}-{h4(node.flavor_name)}".replace(".", "-")
    assert reservation.contract == expected_contract == contract_name(node.flavor_name)
    assert res.status["contract"] == {"name": expected_contract, "namespace": FLUIDOS}
    contract = obj("Contract", expected_contract)
    assert contract.spec["peeringTargetCredentials"]["liqoID"] == liqo_cluster_id(provider)
    assert contract.spec["transactionID"] == transaction_obj.name
    assert contract.spec["flavor"]["metadata"]["name"] == node.flavor_name
    assert obj("PeeringCandidate", pc.name).spec["available"] is False

    peering = fed.peer(ref, reservation)
    cluster_id = liqo_cluster_id(provider)
    assert peering.done and peering.phase == "Active" and peering.remote_cluster_id == cluster_id
    assert peering.allocation == allocation_name(node.flavor_name)
    assert peering.allocation == f"allocation-{node.flavor_name}-{h4(node.flavor_name)}"
    assert peering.virtual_node == f"liqo-{cluster_id}"
    allocation = obj("Allocation", peering.allocation)
    assert allocation.spec == {"contract": {"name": expected_contract, "namespace": FLUIDOS}, "forwarding": False}
    assert allocation.status["status"] == "Active" and allocation.status["message"] == "Allocation is now Active"
    resource_slice = obj("ResourceSlice", expected_contract, namespace=f"liqo-tenant-{cluster_id}")
    assert resource_slice.api_version == "authentication.liqo.io/v1beta1"
    assert resource_slice.spec["resources"]["nvidia.com/gpu"] == "2"
    virtual_node = obj("Node", f"liqo-{cluster_id}", namespace="")
    assert virtual_node.status["capacity"]["nvidia.com/gpu"] == "2"
    assert virtual_node.labels["liqo.io/remote-cluster-id"] == cluster_id

    manifests = workload_manifests(ref.document, intent_id=ref.intent_id, tenant="acme", gpu_vendor="nvidia",
                                   remote_cluster_ids=[cluster_id])
    base = [m for m in manifests if m["kind"] in ("Namespace", "NamespaceOffloading")]
    offloaded = fed.deploy(ref, [peering], base)
    assert offloaded.done and offloaded.phase == "Ready" and offloaded.namespace == "flare-acme-llm"
    offloading = obj("NamespaceOffloading", "offloading", namespace="flare-acme-llm")
    assert offloading.status["offloadingPhase"] == "Ready"
    assert offloading.status["remoteNamespaceName"].startswith("flare-acme-llm-")
    assert not FederationObject.objects.filter(kind="Deployment").exists()
    deployment = fed.deploy(ref, [peering], manifests)
    assert deployment.done
    assert set(deployment.objects) >= {"Namespace/flare-acme-llm", "NamespaceOffloading/offloading",
                                       "Deployment/llm", "Service/llm", "Ingress/llm"}
    stored = FederationObject.objects.get(kind="Deployment", namespace="flare-acme-llm", name="llm")
    assert stored.spec == next(m for m in manifests if m["kind"] == "Deployment")["spec"]

    observation = fed.observe(ref)
    assert observation.state == "running" and observation.ready_replicas == 1
    assert observation.workload_url == "https://llm.example.com"
    assert 0 < observation.gpu_utilization < 1

    for kind, name, namespace in [("Solver", solver_name, FLUIDOS), ("Discovery", disc.name, FLUIDOS),
                                  ("PeeringCandidate", pc.name, FLUIDOS), ("Reservation", res.name, FLUIDOS),
                                  ("Transaction", transaction_obj.name, FLUIDOS), ("Contract", contract.name, FLUIDOS),
                                  ("Allocation", allocation.name, FLUIDOS),
                                  ("NamespaceOffloading", "offloading", "flare-acme-llm")]:
        assert_valid(obj(kind, name, namespace))


def test_service_url_falls_back_to_the_service_dns_name():
    make_node(make_provider())
    doc = service_doc()
    doc["workload"]["ports"] = [{"port": 8000}]
    ref = make_ref(doc=doc)
    fed = SimulatedFederation()
    run_to_running(fed, ref)
    assert fed.observe(ref).workload_url == "http://llm.flare-acme-llm.svc.cluster.local:8000"


def test_discovery_applies_only_the_base_filters_of_providers():
    provider = make_provider()
    big = make_node(provider, "big", cpu="64", memory="512Gi")
    make_node(provider, "small-cpu", cpu="1")
    make_node(provider, "small-memory", memory="4Gi")
    make_node(provider, "l4", model="nvidia-l4", count=1)      # GPU filters are FLARE's job, not the provider's
    make_node(provider, "down", available=False)
    make_node(make_provider("Gone", active=False), "gone-node")
    discovery = SimulatedFederation().discover(make_ref())
    assert sorted(o.node_name for o in discovery.candidates) == ["big", "l4"]
    names = set(FederationObject.objects.filter(kind="PeeringCandidate").values_list("name", flat=True))
    assert f"peeringcandidate-{big.flavor_name}" in names and len(names) == 2


def test_no_flavor_fails_the_discovery_and_the_solver():
    make_node(make_provider(), cpu="1")
    ref = make_ref(cpu_min="8")
    discovery = SimulatedFederation().discover(ref)
    assert discovery.done and discovery.candidates == []
    assert discovery.phase == "Failed" and discovery.message == "Solver has not found any candidate"
    disc = obj("Discovery", f"discovery-flare-{ref.intent_id}-1")
    assert disc.status["phase"]["phase"] == "Failed" and disc.status["phase"]["message"] == "No Flavors found"
    solver = obj("Solver", f"flare-{ref.intent_id}-1")
    assert solver.status["solverPhase"]["phase"] == "Failed"
    assert solver.status["findCandidate"] == "Failed"
    assert not FederationObject.objects.filter(kind="PeeringCandidate").exists()
    # Idempotent: asking again gives the same answer and creates nothing new.
    assert SimulatedFederation().discover(ref).phase == "Failed"
    assert FederationObject.objects.filter(kind="Solver").count() == 1


def test_a_storage_filter_makes_providers_answer_an_error():
    make_node(make_provider())
    ref = make_ref()
    ref.solver_manifest["spec"]["selector"]["filters"]["storageFilter"] = {"name": "Range", "data": {"min": "1Gi"}}
    with pytest.raises(Failed) as error:
        SimulatedFederation().discover(ref)
    assert "Error when getting Flavor" in error.value.message
    assert obj("Discovery", f"discovery-flare-{ref.intent_id}-1").status["phase"]["message"] == \
        "Error when getting Flavor"


# ---------------------------------------------------------------------------------------------
# Delays


def test_each_sub_phase_waits_step_delay_from_the_last_change():
    make_node(make_provider())
    clock = Clock()
    fed = SimulatedFederation(step_delay=10, clock=clock)
    ref = make_ref()
    seen = []
    for _ in range(5):
        result = fed.discover(ref)
        seen.append((result.done, result.message))
        assert fed.discover(ref).message == result.message  # nothing moves until the delay passed
        clock.advance(10)
    assert seen == [(False, "Solver initialized"), (False, "Solver is running"),
                    (False, "Solver is trying a Discovery"), (False, "Solver has completed the Discovery phase"),
                    (True, "No need to reserve and buy the resources")]
    offer = fed.discover(ref).candidates[0]

    clock.advance(9)
    messages = []
    for _ in range(5):
        result = fed.reserve(ref, offer, 2)
        messages.append((result.done, result.message))
        clock.advance(10)
    assert messages == [(False, "Reservation created"), (False, "Reservation: Reserve is running"),
                        (False, "Reservation: Reserve is running"), (False, "Reservation: Purchase is running"),
                        (True, "Reservation: Flavor reserved and purchased")]
    res = obj("Reservation", result.name)
    assert res.status["phase"]["message"] == "Reservation solved"

    states = []
    for _ in range(3):
        peering = fed.peer(ref, result)
        states.append((peering.done, peering.phase, peering.message))
        clock.advance(10)
    assert states == [(False, "Inactive", "Allocation created"), (False, "Peering", "Allocation: peering"),
                      (True, "Active", "Allocation: active")]

    manifests = workload_manifests(ref.document, intent_id=ref.intent_id, tenant="acme",
                                   remote_cluster_ids=[peering.remote_cluster_id])
    first = fed.deploy(ref, [peering], manifests)
    assert not first.done and first.phase == "InProgress"
    assert not FederationObject.objects.filter(kind="Deployment").exists()
    clock.advance(10)
    assert fed.deploy(ref, [peering], manifests).done
    pending = fed.observe(ref)
    assert pending.state == "pending" and pending.gpu_utilization is None
    clock.advance(10)
    assert fed.observe(ref).state == "running"


def test_a_late_poll_catches_up_every_sub_phase_at_once():
    make_node(make_provider())
    clock = Clock()
    fed = SimulatedFederation(step_delay=5, clock=clock)
    ref = make_ref()
    fed.discover(ref)
    clock.advance(60)
    assert fed.discover(ref).done
    solver = obj("Solver", f"flare-{ref.intent_id}-1")
    # Stamped when each sub-phase really ended, not at the late poll.
    assert solver.updated_at == clock.now - timedelta(seconds=60 - 4 * 5)


# ---------------------------------------------------------------------------------------------
# Faults


def test_no_candidate_fault_fails_the_discovery_once():
    make_node(make_provider())
    fed = SimulatedFederation()
    fed.inject_fault("no_candidate", intent_id="intent-aaaaaaaaaaaa")
    first = fed.discover(make_ref())
    assert first.done and first.phase == "Failed" and first.candidates == []
    assert obj("Discovery", "discovery-flare-intent-aaaaaaaaaaaa-1").status["phase"]["message"] == "No Flavors found"
    assert fed.discover(make_ref(attempt=2)).phase == "Solved"
    assert fed.faults() == []


def test_no_candidate_fault_aimed_at_a_provider_silences_only_it():
    make_node(make_provider("Alpha"), "a1")
    make_node(make_provider("Beta"), "b1")
    fed = SimulatedFederation()
    fed.inject_fault("no_candidate", provider="Alpha")
    assert [o.node_name for o in fed.discover(make_ref()).candidates] == ["b1"]


def test_hang_keeps_the_solver_running_for_ever():
    make_node(make_provider())
    clock = Clock()
    fed = SimulatedFederation(clock=clock)
    fed.inject_fault("hang", intent_id="intent-aaaaaaaaaaaa", times=1)
    ref = make_ref()
    for _ in range(3):
        result = fed.discover(ref)
        assert not result.done and result.phase == "Running" and result.message == "Solver is trying a Discovery"
        clock.advance(3600)
    assert obj("Discovery", f"discovery-flare-{ref.intent_id}-1").status["phase"]["phase"] == "Running"
    assert fed.discover(make_ref(attempt=2)).done  # the fault was spent on the first Solver


def test_pc_taken_fails_the_reservation_with_conflict():
    provider = make_provider()
    node = make_node(provider)
    fed = SimulatedFederation()
    ref = make_ref()
    offer = fed.discover(ref).candidates[0]
    fed.inject_fault("pc_taken", provider="NeoCloud")
    for _ in range(2):  # the failure is the Reservation's: asking again answers the same
        with pytest.raises(Conflict) as error:
            fed.reserve(ref, offer, 2)
        assert error.value.message == "Reservation failed: PeeringCandidate not available"
    res = obj("Reservation", f"reservation-flare-{ref.intent_id}-1")
    assert res.status["phase"] == {**res.status["phase"], "phase": "Failed",
                                   "message": "Reservation failed: PeeringCandidate not available"}
    assert obj("PeeringCandidate", f"peeringcandidate-{node.flavor_name}").spec["available"] is True
    assert not FederationObject.objects.filter(kind__in=["Contract", "Transaction"]).exists()


def test_two_solvers_race_for_one_peering_candidate():
    node = make_node(make_provider())
    fed = SimulatedFederation()
    first, second = make_ref("intent-first0000000"), make_ref("intent-second000000", doc=service_doc("other"))
    offer_1 = fed.discover(first).candidates[0]
    offer_2 = fed.discover(second).candidates[0]
    assert offer_1.flavor_name == offer_2.flavor_name == node.flavor_name
    assert fed.reserve(first, offer_1, 2).done
    with pytest.raises(Conflict):
        fed.reserve(second, offer_2, 2)
    # A fresh Solver sees the remainder Flavor the provider advertises after the sale, and buys it.
    retry = make_ref("intent-second000000", doc=service_doc("other"), attempt=2)
    offer = fed.discover(retry).candidates[0]
    assert offer.flavor_name != node.flavor_name and offer.node_id == str(node.pk)
    remainder = obj("PeeringCandidate", f"peeringcandidate-{offer.flavor_name}")
    gpu = remainder.spec["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"]["gpu"]
    assert "count" not in gpu and gpu["model"] == "nvidia-h100"  # the node publishes count 0 after a GPU sale
    assert remainder.spec["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"]["cpu"] == "62"
    second_sale = fed.reserve(retry, offer, 2)
    assert second_sale.done and second_sale.contract != fed.reserve(first, offer_1, 2).contract


def test_peering_error_puts_the_allocation_in_error():
    provider = make_provider()
    make_node(provider)
    fed = SimulatedFederation()
    ref = make_ref()
    reservation = fed.reserve(ref, fed.discover(ref).candidates[0], 2)
    fed.inject_fault("peering_error", intent_id=ref.intent_id)
    with pytest.raises(Failed) as error:
        fed.peer(ref, reservation)
    assert error.value.message == "Allocation: error"
    allocation = FederationObject.objects.get(kind="Allocation")
    assert allocation.status["status"] == "Error"
    assert allocation.status["message"] == f"Error when peering with cluster {liqo_cluster_id(provider)}"
    with pytest.raises(Failed):  # Error is terminal
        fed.peer(ref, reservation)
    assert not FederationObject.objects.filter(kind="ResourceSlice").exists()


def test_provider_outage_raises_unavailable_then_fails_the_running_workload():
    make_node(make_provider())
    fed = SimulatedFederation()
    ref = make_ref()
    offer = fed.discover(ref).candidates[0]
    fed.inject_fault("provider_outage", provider="NeoCloud", times=1)
    with pytest.raises(Unavailable) as error:
        fed.reserve(ref, offer, 2)
    assert error.value.reason == "ProviderOutage"
    assert fed.reserve(ref, offer, 2).done  # a blip: the next call goes through
    fed.clear_faults()
    ref2 = make_ref("intent-bbbbbbbbbbbb", doc=service_doc("svc2"))
    run_to_running(fed, ref2)
    assert fed.observe(ref2).state == "running"
    fed.inject_fault("provider_outage", provider="NeoCloud")
    failed = fed.observe(ref2)
    assert failed.state == "failed" and failed.reason == "ProviderOutage"
    assert fed.observe(ref2).reason == "ProviderOutage"  # the workload stays lost
    fed.inject_fault("provider_outage", provider="Elsewhere")
    ref3 = make_ref("intent-cccccccccccc", doc=service_doc("svc3"))
    run_to_running(fed, ref3)  # an outage elsewhere touches nothing here


def test_workload_crash_fails_services_and_jobs_with_their_reasons():
    make_node(make_provider())
    fed = SimulatedFederation(batch_seconds=3600)
    service = make_ref()
    job = make_ref("intent-jjjjjjjjjjjj", doc=batch_doc())
    run_to_running(fed, service)
    run_to_running(fed, job)
    fed.inject_fault("workload_crash", intent_id=service.intent_id)
    fed.inject_fault("workload_crash", intent_id=job.intent_id)
    crashed = fed.observe(service)
    assert crashed.state == "failed" and crashed.reason == "CrashLoopBackOff"
    failed = fed.observe(job)
    assert failed.state == "failed" and failed.reason == "BackoffLimitExceeded"
    assert failed.message == "Job has reached the specified backoff limit"
    job_obj = FederationObject.objects.get(kind="Job")
    assert {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}.items() <= \
        job_obj.status["conditions"][-1].items()


def test_seeded_random_faults_replay_exactly():
    make_node(make_provider(), count=8)
    outcomes = []
    for _ in range(2):
        fed = SimulatedFederation(fault_rate=0.5, seed=7)
        run = []
        for index in range(6):
            ref = make_ref(f"intent-rand{index:08d}", doc=service_doc(f"r{index}", gpus=1))
            try:
                offer = fed.discover(ref).candidates[0]
                result = fed.reserve(ref, offer, 1)
                run.append(("reserved", result.done))
            except (Conflict, Failed) as error:
                run.append((type(error).__name__, error.reason))
            fed.release(ref)
        outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert {o[0] for o in outcomes[0]} != {"reserved"}  # with rate 0.5 over 6 intents something failed
    always = SimulatedFederation(fault_rate=1.0, seed=7)
    with pytest.raises(Failed):
        always.discover(make_ref("intent-zzzzzzzzzzzz"))


def test_clear_faults_removes_every_injected_fault():
    fed = SimulatedFederation()
    fed.inject_fault("hang")
    fed.inject_fault("workload_crash", intent_id="intent-x", times=None)
    assert len(fed.faults()) == 2
    assert fed.clear_faults() == 2 and fed.faults() == []
    with pytest.raises(ValueError):
        fed.inject_fault("meteor")


def test_faults_are_seen_by_every_backend_instance():
    make_node(make_provider())
    SimulatedFederation().inject_fault("no_candidate")
    assert SimulatedFederation().discover(make_ref()).phase == "Failed"


# ---------------------------------------------------------------------------------------------
# Release


def test_release_removes_everything_in_reverse_order_and_is_idempotent():
    provider = make_provider()
    node = make_node(provider)
    fed = SimulatedFederation()
    ref = make_ref()
    _, offer, reservation, peering, _ = run_to_running(fed, ref)
    before = set(FederationObject.objects.values_list("kind", flat=True))
    assert before >= {"Solver", "Discovery", "PeeringCandidate", "Reservation", "Transaction", "Contract",
                      "Allocation", "ResourceSlice", "Node", "Namespace", "NamespaceOffloading", "Deployment",
                      "Service", "Ingress"}
    deleted = []

    def record(sender, instance, **kwargs):
        deleted.append(instance.kind)

    post_delete.connect(record, sender=FederationObject)
    try:
        fed.release(ref)
    finally:
        post_delete.disconnect(record, sender=FederationObject)
    order = ["Deployment", "Ingress", "Service", "NamespaceOffloading", "Namespace", "ResourceSlice", "Node",
             "Allocation", "Contract", "Transaction", "Reservation", "Discovery", "Solver"]
    assert deleted == order
    remaining = list(FederationObject.objects.values_list("kind", "name"))
    assert remaining == [("PeeringCandidate", f"peeringcandidate-{node.flavor_name}")]
    assert obj("PeeringCandidate", f"peeringcandidate-{node.flavor_name}").spec["available"] is True
    fed.release(ref)
    assert list(FederationObject.objects.values_list("kind", "name")) == remaining
    assert fed.observe(ref).state == "pending"
    # The GPUs are for sale again under the node's own Flavor.
    again = make_ref(attempt=2)
    assert fed.discover(again).candidates[0].flavor_name == node.flavor_name
    assert fed.reserve(again, offer, 2).contract == reservation.contract


def test_release_of_one_intent_leaves_a_neighbour_on_the_same_node_alone():
    provider = make_provider()
    make_node(provider)
    fed = SimulatedFederation()
    first = make_ref("intent-first0000000", doc=service_doc("one"))
    second = make_ref("intent-second000000", doc=service_doc("two", gpus=3))
    *_, peering_1, _ = run_to_running(fed, first)
    *_, peering_2, _ = run_to_running(fed, second)
    assert peering_1.allocation != peering_2.allocation
    assert peering_1.virtual_node == peering_2.virtual_node
    node_name = peering_1.virtual_node
    assert obj("Node", node_name, "").status["capacity"]["nvidia.com/gpu"] == "5"
    assert FederationObject.objects.filter(kind="Contract").count() == 2
    fed.release(first)
    assert obj("Node", node_name, "").status["capacity"]["nvidia.com/gpu"] == "3"
    assert fed.observe(second).state == "running"
    assert FederationObject.objects.filter(kind="Contract").count() == 1
    fed.release(second)
    assert not FederationObject.objects.filter(kind__in=["Node", "Contract", "ResourceSlice"]).exists()


def test_a_gang_gets_one_reservation_per_node():
    provider = make_provider()
    make_node(provider, "g1", count=2)
    make_node(provider, "g2", count=2)
    fed = SimulatedFederation()
    ref = make_ref(doc=batch_doc(gpus=2, tasks=2))
    offers = fed.discover(ref).candidates
    names = [fed.reserve(ref, offer, 2).name for offer in offers]
    assert names == [f"reservation-flare-{ref.intent_id}-1", f"reservation-flare-{ref.intent_id}-1-2"]
    assert [fed.reserve(ref, offer, 2).name for offer in offers] == names  # idempotent per node
    peerings = [fed.peer(ref, fed.reserve(ref, offer, 2)) for offer in offers]
    assert len({p.allocation for p in peerings}) == 2 and len({p.virtual_node for p in peerings}) == 1
    fed.release(ref)
    assert set(FederationObject.objects.values_list("kind", flat=True)) == {"PeeringCandidate"}


# ---------------------------------------------------------------------------------------------
# Batch runtime and utilisation


def test_batch_completes_after_its_seeded_duration():
    make_node(make_provider())
    clock = Clock()
    fed = SimulatedFederation(batch_seconds=100, clock=clock, seed=3)
    ref = make_ref("intent-batch0000000", doc=batch_doc(tasks=3))
    run_to_running(fed, ref)
    durations = sorted(fed.task_durations(ref.intent_id, 3))
    assert durations == sorted(SimulatedFederation(batch_seconds=100, seed=3).task_durations(ref.intent_id, 3))
    assert all(80 <= d <= 120 for d in durations)
    running = fed.observe(ref)
    assert running.state == "running" and running.completed_tasks == 0 and running.gpu_utilization is not None
    clock.advance(durations[0] + 0.5)
    assert fed.observe(ref).completed_tasks == 1
    clock.advance(durations[-1])
    done = fed.observe(ref)
    assert done.state == "succeeded" and done.completed_tasks == 3
    job = FederationObject.objects.get(kind="Job")
    assert job.status["conditions"][0]["type"] == "Complete" and job.status["succeeded"] == 3
    clock.advance(1000)
    assert fed.observe(ref).state == "succeeded"


def test_batch_shorter_timeout_fails_with_deadline_exceeded_at_the_timeout():
    make_node(make_provider())
    clock = Clock()
    fed = SimulatedFederation(batch_seconds=3600, clock=clock)
    ref = make_ref("intent-late0000000", doc=batch_doc(timeout="10m"))
    run_to_running(fed, ref)
    clock.advance(599)
    assert fed.observe(ref).state == "running"
    clock.advance(2)
    failed = fed.observe(ref)
    assert failed.state == "failed" and failed.reason == "DeadlineExceeded"
    assert failed.message == "Job was active longer than specified deadline"
    condition = FederationObject.objects.get(kind="Job").status["conditions"][-1]
    job_created = FederationObject.objects.get(kind="Job").created_at
    assert condition["lastTransitionTime"] == (job_created + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_batch_with_zero_seconds_succeeds_on_first_observation():
    make_node(make_provider())
    fed = SimulatedFederation(batch_seconds=0)
    ref = make_ref("intent-quick000000", doc=batch_doc(timeout="1h"))
    run_to_running(fed, ref)
    assert fed.observe(ref).state == "succeeded"


def test_gpu_utilisation_is_deterministic_plausible_and_varies_with_time():
    when = timezone.now()
    a, b = SimulatedFederation(seed=1), SimulatedFederation(seed=1)
    series = [a.gpu_utilization("intent-u", when + timedelta(minutes=m), batch=True) for m in range(30)]
    assert series == [b.gpu_utilization("intent-u", when + timedelta(minutes=m), batch=True) for m in range(30)]
    assert all(0 <= v <= 1 for v in series) and len(set(series)) > 10
    assert sum(series) / len(series) > 0.6  # training keeps GPUs busy
    services = [a.gpu_utilization("intent-u", when + timedelta(minutes=m), batch=False) for m in range(30)]
    assert all(0 <= v <= 1 for v in services)
    assert series != [SimulatedFederation(seed=2).gpu_utilization("intent-u", when + timedelta(minutes=m), batch=True)
                      for m in range(30)]


# ---------------------------------------------------------------------------------------------
# Inventory and the factory


def test_inventory_lists_available_nodes_of_active_providers_with_free_gpus():
    provider = make_provider()
    node = make_node(provider, "a", count=8)
    make_node(provider, "down", available=False)
    make_node(make_provider("Closed", active=False), "c")
    GpuReservation.objects.create(tenant_schema="acme", intent_id="intent-x", node=node, gpus=5)
    GpuReservation.objects.create(tenant_schema="acme", intent_id="intent-y", node=node, gpus=1, state="released")
    offers = SimulatedFederation().inventory()
    assert [(o.node_name, o.free_gpus, o.total_gpus, o.provider.name) for o in offers] == [("a", 3, 8, "NeoCloud")]


def test_get_federation_builds_one_backend_from_settings(settings):
    settings.FLARE_FEDERATION = "simulated"
    settings.FLARE_SIM_STEP_DELAY = 2.5
    settings.FLARE_SIM_FAULT_RATE = 0.1
    settings.FLARE_SIM_SEED = 9
    settings.FLARE_SIM_BATCH_SECONDS = 30
    reset_federation()
    backend = get_federation()
    assert isinstance(backend, SimulatedFederation) and backend is get_federation()
    assert (backend.step_delay, backend.fault_rate, backend.seed, backend.batch_seconds) == (2.5, 0.1, 9, 30)
    reset_federation()
    assert get_federation() is not backend


def test_get_federation_explains_a_missing_or_unknown_backend(settings, monkeypatch):
    settings.FLARE_FEDERATION = "kubernetes"
    monkeypatch.setitem(sys.modules, "providers.federation.kubernetes", None)  # as if it were not installed
    reset_federation()
    with pytest.raises(ImproperlyConfigured, match="Kubernetes backend"):
        get_federation()
    settings.FLARE_FEDERATION = "carrier-pigeon"
    with pytest.raises(ImproperlyConfigured, match="simulated, kubernetes"):
        get_federation()
    reset_federation()

"""The intent lifecycle on KubernetesFederation (FLARE_FEDERATION=kubernetes) against the Kubernetes API
emulator and the fake FLUIDOS/Liqo/Capsule controllers (tests/k8s): the same reconciler, API and ledger as
the simulated suite (test_lifecycle.py), with every federation object on a (emulated) cluster.

Test-harness fiction, on purpose: after a sale the emulated provider only advertises a remainder
with `count` 0, and FLUIDOS.md §5 says "later the sold GPUs are re-advertised". `Cluster.settle`
plays that provider: each node always has one Flavor advertising all its GPUs under a fresh name.
FLARE's ledger, not the Flavor's count, decides what is free.
"""

from __future__ import annotations

import copy
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from kubernetes.utils import parse_quantity

from intents.lifecycle import P
from intents.models import Intent, IntentEvent
from intents.reconcile import advance, queue_decisions
from intents.tests import lifecycle_helpers as shared
from intents.tests.lifecycle_helpers import get, phases, submit
from providers import ledger
from providers.federation import get_federation
from providers.federation.kubernetes import KubernetesFederation
from providers.models import GpuReservation, QueueEntry
from tests.k8s.fixtures import H100
from tests.k8s.fluidos_controllers import make_flavor

pytestmark = [pytest.mark.k8s, pytest.mark.django_db]

A100 = dict(H100, model="nvidia-a100", count=2, memory="160Gi", cores="13824", architecture="ampere",
            compute_capability="8.0", fp32_tflops=19.5, hourly_rate=1.0, interconnect="nvlink")

# Everything FLARE (or a controller on its behalf) creates for an intent.
KINDS = [
    ("nodecore.fluidos.eu/v1alpha1", "solvers"), ("advertisement.fluidos.eu/v1alpha1", "discoveries"),
    ("reservation.fluidos.eu/v1alpha1", "reservations"), ("reservation.fluidos.eu/v1alpha1", "transactions"),
    ("reservation.fluidos.eu/v1alpha1", "contracts"), ("nodecore.fluidos.eu/v1alpha1", "allocations"),
    ("authentication.liqo.io/v1beta1", "resourceslices"), ("offloading.liqo.io/v1beta1", "namespaceoffloadings"),
    ("apps/v1", "deployments"), ("apps/v1", "replicasets"), ("batch/v1", "jobs"), ("v1", "services"),
    ("networking.k8s.io/v1", "ingresses"), ("autoscaling/v2", "horizontalpodautoscalers"),
    ("v1", "persistentvolumeclaims"), ("v1", "pods"),
]


class Cluster:
    """The emulated consumer cluster plus the provider behaviour the emulator leaves out."""

    def __init__(self, emulator, fluidos):
        self.emu = emulator
        self.fluidos = fluidos
        self.current = {name: name for name in fluidos.catalogue}     # node's first Flavor → advertised now
        self.counter = itertools.count(1)

    def add_node(self, flavor: dict) -> None:
        self.fluidos.add_provider_flavor(flavor)
        self.current[flavor["metadata"]["name"]] = flavor["metadata"]["name"]

    def readvertise(self) -> None:
        catalogue = self.fluidos.catalogue
        for original, current in list(self.current.items()):
            if catalogue[current]["spec"].get("availability"):
                continue
            fresh = copy.deepcopy(catalogue[original])
            domain = fresh["spec"]["owner"]["domain"]
            name = f"{domain}-k8slice-{next(self.counter):04x}"
            fresh["metadata"]["name"] = name
            fresh["spec"]["availability"] = True
            self.fluidos.add_provider_flavor(fresh)
            self.current[original] = name

    def settle(self) -> None:
        self.fluidos.run_until_idle()
        self.readvertise()

    def probe(self) -> None:
        """The inventory Discovery (KubernetesFederation.probe_inventory), so that submit's
        feasibility check knows the federation before any intent ran."""
        federation = get_federation()
        for _ in range(10):
            if federation.probe_inventory():
                break
            self.settle()
        else:
            raise AssertionError("the inventory probe never finished")
        self.settle()

    def owned(self, intent_id: str) -> list[str]:
        selector = f"flare.io/intent-id={intent_id}"
        found = [f"{plural}/{o['metadata']['name']}" for api, plural in KINDS
                 for o in self.emu.list_objects(api, plural, label_selector=selector)]
        found += [f"namespaces/{n['metadata']['name']}" for n in self.emu.list_objects("v1", "namespaces",
                                                                                      label_selector=selector)]
        return found

    def everything(self) -> list[str]:
        """Every object of the kinds FLARE deals in, whoever labelled it (PCs, Flavors, Tenants excluded)."""
        return [f"{plural}/{o['metadata']['name']}" for api, plural in KINDS for o in self.emu.list_objects(api, plural)]

    def fail(self, kind: str, intent_id: str, *, attempt: int = 1, times: int | None = 1) -> None:
        """FLARE's fault kinds (SimulatedFederation.inject_fault) on the fake controllers."""
        solver = f"flare-{intent_id}-{attempt}"
        if kind == "no_candidate":
            self.fluidos.fail("no_candidate", times=times)
        elif kind == "hang":
            self.fluidos.fail("hang", times=times)
        elif kind == "pc_taken":
            self.fluidos.fail("taken", times=times, target=solver)
        elif kind == "peering_error":
            self.fluidos.fail("peering_error", times=times)
        else:
            raise ValueError(kind)


@pytest.fixture
def cluster(settings, kube_emulator, fluidos):
    settings.FLARE_FEDERATION = "kubernetes"
    settings.FLARE_KUBECONFIG = kube_emulator.kubeconfig_path()
    settings.FLARE_KUBE_BACKOFF = 0.01
    settings.FLARE_KUBE_MAX_BACKOFF = 0.05
    harness = Cluster(kube_emulator, fluidos)
    for index, domain in enumerate(("provider-c.fluidos.eu", "provider-d.fluidos.eu")):
        name = domain.split(".")[0]
        harness.add_node(make_flavor(f"{domain}-k8slice-a10{index}", domain=domain, node_id=f"{name}-node-1",
                                     liqo_id=f"{name}-cluster", cpu="32", memory="256Gi",
                                     gpu=dict(A100, provider=name, hourly_rate=1.0 + index / 5)))
    assert isinstance(get_federation(), KubernetesFederation)
    harness.probe()
    return harness


def _spot(model: str, constraints: dict) -> dict:
    if model == "nvidia-rtx-a6000":
        constraints.setdefault("preemptible", True)   # provider-b's A6000 is spot capacity
    return constraints


def job(name="job", model="nvidia-h100", count=1, tasks=1, timeout="2h", **constraints) -> dict:
    return shared.job(name, model, count, tasks, timeout, **_spot(model, constraints))


def service(name="svc", model="nvidia-rtx-a6000", count=1, replicas=1, **constraints) -> dict:
    return shared.service(name, model, count, replicas, **_spot(model, constraints))


def drive(cluster, tenant, intent_id, *, until=None, max_steps=60) -> Intent:
    """Reconcile steps as the worker would, with the cluster's controllers running in between."""
    for _ in range(max_steps):
        cluster.settle()
        with schema_context(tenant.schema_name):
            intent = Intent.objects.get(intent_id=intent_id)
            if until is not None and intent.phase == until:
                return intent
            result = advance(tenant.schema_name, intent_id)
        if result.again is None and until is None:
            break
    cluster.settle()
    connection.set_schema_to_public()
    return get(tenant, intent_id)


def reasons(tenant, intent_id) -> list[str]:
    with schema_context(tenant.schema_name):
        return list(IntentEvent.objects.filter(intent__intent_id=intent_id).values_list("reason", flat=True))


# ---------------------------------------------------------------------------------------------


def test_batch_job_runs_to_completion_on_the_cluster(cluster, client_a, tenant_a):
    intent_id = submit(client_a, job(count=2))
    intent = drive(cluster, tenant_a, intent_id)
    assert intent.phase == P.SUCCEEDED and intent.status == "completed", intent.message
    assert phases(tenant_a, intent_id) == [P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING,
                                           P.RUNNING, P.SUCCEEDED]
    assert intent.provider == "provider-a" and intent.flavor.startswith("provider-a.fluidos.eu-k8slice-")
    assert intent.namespace == "flare-acme-job" and intent.placement["chosen"]["total_gpus"] == 2
    conditions = {c["type"]: c["status"] for c in intent.conditions}
    for type_ in ("Discovered", "Reserved", "Peered", "Offloaded", "Deployed", "Completed"):
        assert conditions[type_] == "True", intent.conditions
    reservation = GpuReservation.objects.get(intent_id=intent_id)
    assert reservation.state == "released" and reservation.gpus == 2
    assert cluster.owned(intent_id) == [] and cluster.everything() == []
    assert ledger.invariant_violations() == []


def test_service_reaches_running_on_a_virtual_node_and_accrues_cost(cluster, client_a, tenant_a):
    intent_id = submit(client_a, service())
    intent = drive(cluster, tenant_a, intent_id, until=P.RUNNING)
    assert intent.status == "running" and intent.provider == "provider-b"
    assert intent.workload_url == "http://svc.flare-acme-svc.svc.cluster.local:80"
    pods = cluster.emu.list_objects("v1", "pods", "flare-acme-svc")
    assert [p["spec"]["nodeName"] for p in pods] == ["liqo-provider-b-cluster"]
    node = cluster.emu.get_object("v1", "nodes", "liqo-provider-b-cluster")
    assert parse_quantity(node["status"]["capacity"]["nvidia.com/gpu"]) == 1
    GpuReservation.objects.filter(intent_id=intent_id).update(activated_at=timezone.now() - timedelta(hours=2))
    drive(cluster, tenant_a, intent_id, max_steps=1)
    intent = get(tenant_a, intent_id)
    rate = GpuReservation.objects.get(intent_id=intent_id).price_per_gpu_hour
    assert rate == Decimal("1.1") and abs(intent.current_cost - rate * 2) < Decimal("0.05")


def test_cancel_at_every_phase_releases_everything_on_the_cluster(cluster, client_a, tenant_a):
    for index, phase in enumerate([P.SUBMITTED, P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING,
                                   P.RUNNING]):
        intent_id = submit(client_a, service(name=f"cancel-{index}"))
        drive(cluster, tenant_a, intent_id, until=phase)
        assert get(tenant_a, intent_id).phase == phase
        response = client_a.delete(f"/api/v1/intents/{intent_id}")
        assert response.status_code == 202
        assert response.json()["status"] == "cancelled", (phase, response.json())
        assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists(), phase
        cluster.settle()
        assert cluster.owned(intent_id) == [], phase
        assert cluster.everything() == [], phase
    assert ledger.invariant_violations() == []


def test_no_candidate_fails_without_offers(cluster, client_a, tenant_a):
    intent_id = submit(client_a, service(name="nothing"))
    cluster.fail("no_candidate", intent_id, times=None)
    intent = drive(cluster, tenant_a, intent_id)
    assert intent.phase == P.FAILED, intent.phase
    assert phases(tenant_a, intent_id) == [P.DISCOVERING, P.FAILED]
    assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists()
    # Nothing was bought, and the failed attempt's Solver and Discovery are released with it.
    assert cluster.everything() == []


def test_hang_times_out_and_retries_with_a_fresh_solver(cluster, client_a, tenant_a, settings):
    settings.FLARE_MAX_RETRIES = 1
    intent_id = submit(client_a, service(name="hangs"))
    cluster.fail("hang", intent_id, times=None)
    drive(cluster, tenant_a, intent_id, until=P.DISCOVERING)
    for attempt in (1, 2):
        drive(cluster, tenant_a, intent_id, max_steps=2)   # the Discovery hangs: still running
        intent = get(tenant_a, intent_id)
        assert intent.phase == P.DISCOVERING and intent.attempt == attempt
        solver = cluster.emu.get_object("nodecore.fluidos.eu/v1alpha1", "solvers", f"flare-{intent_id}-{attempt}",
                                        "fluidos")
        assert solver["status"]["solverPhase"]["message"] == "Solver is trying a Discovery"
        with schema_context(tenant_a.schema_name):
            Intent.objects.filter(intent_id=intent_id).update(step_started_at=timezone.now() - timedelta(hours=1))
        drive(cluster, tenant_a, intent_id, max_steps=1)
        intent = get(tenant_a, intent_id)
        if attempt == 1:
            assert intent.phase == P.DISCOVERING and intent.solver_name == f"flare-{intent_id}-2"
            # The first attempt's Solver and Discovery are gone.
            assert cluster.emu.get_object("nodecore.fluidos.eu/v1alpha1", "solvers", f"flare-{intent_id}-1",
                                          "fluidos") is None
    intent = get(tenant_a, intent_id)
    assert intent.phase == P.FAILED
    assert reasons(tenant_a, intent_id).count("Timeout") == 2
    assert cluster.everything() == []


def test_pc_taken_retries_and_recovers(cluster, client_a, tenant_a):
    intent_id = submit(client_a, service(name="raced"))
    cluster.fail("pc_taken", intent_id)
    intent = drive(cluster, tenant_a, intent_id, until=P.RUNNING)
    assert intent.phase == P.RUNNING and intent.attempt == 2
    assert "PeeringCandidateTaken" in reasons(tenant_a, intent_id)
    assert ledger.live_reservations(tenant_a.schema_name, intent_id).count() == 1


def test_peering_error_retries_and_recovers(cluster, client_a, tenant_a):
    intent_id = submit(client_a, service(name="flaky-peer"))
    cluster.fail("peering_error", intent_id)
    intent = drive(cluster, tenant_a, intent_id, until=P.RUNNING)
    assert intent.phase == P.RUNNING and intent.attempt == 2
    assert "PeeringError" in reasons(tenant_a, intent_id)
    assert GpuReservation.objects.filter(intent_id=intent_id, state="released").count() >= 1
    assert ledger.live_reservations(tenant_a.schema_name, intent_id).count() == 1
    # One live Allocation: the failed attempt's was deleted.
    allocations = cluster.emu.list_objects("nodecore.fluidos.eu/v1alpha1", "allocations", "fluidos")
    assert [a["status"]["status"] for a in allocations] == ["Active"]


def test_workload_failure_exhausts_max_retries(cluster, client_a, tenant_a):
    doc = job(name="crashy")
    doc["intent"]["workload"]["batch"]["max_retries"] = 1
    cluster.fluidos.set_job_outcome("flare-acme-crashy", "crashy", "Failed")
    intent_id = submit(client_a, doc)
    intent = drive(cluster, tenant_a, intent_id, max_steps=80)
    assert intent.phase == P.FAILED and intent.attempt == 2, (intent.phase, intent.message)
    assert "BackoffLimitExceeded" in reasons(tenant_a, intent_id)
    assert not ledger.live_reservations(tenant_a.schema_name, intent_id).exists()
    assert cluster.everything() == []


def test_contention_no_double_booking_and_the_queue_wakes(cluster, client_a, client_b, tenant_a, tenant_b):
    cluster.fluidos.default_job_outcome = "Running"
    first = [submit(client_a, job(name=f"a{i}", model="nvidia-rtx-a6000")) for i in range(2)]
    for intent_id in first:
        assert drive(cluster, tenant_a, intent_id, until=P.RUNNING).phase == P.RUNNING
    node = cluster.emu.get_object("v1", "nodes", "liqo-provider-b-cluster")
    assert parse_quantity(node["status"]["capacity"]["nvidia.com/gpu"]) == 2
    contracts = cluster.emu.list_objects("reservation.fluidos.eu/v1alpha1", "contracts", "fluidos")
    assert len({c["metadata"]["name"] for c in contracts}) == 2
    waiting_b = submit(client_b, job(name="b-waits", model="nvidia-rtx-a6000"))
    assert get(tenant_b, waiting_b).status == "queued"
    assert ledger.invariant_violations() == []
    client_a.delete(f"/api/v1/intents/{first[0]}")
    cluster.settle()
    assert queue_decisions() == [(tenant_b.schema_name, waiting_b)]
    with schema_context(tenant_b.schema_name):
        advance(tenant_b.schema_name, waiting_b, dequeue=True)
    assert drive(cluster, tenant_b, waiting_b, until=P.RUNNING).phase == P.RUNNING
    assert sum(r.gpus for r in GpuReservation.objects.filter(state__in=GpuReservation.LIVE_STATES)) == 2
    assert ledger.invariant_violations() == []
    assert not QueueEntry.objects.exists()


def test_gang_is_all_or_nothing_across_clusters(cluster, client_a, tenant_a):
    colocated = job(name="gang", model="nvidia-a100", count=2, tasks=2)
    colocated["intent"]["workload"]["deployment_strategy"] = "colocated"
    response = client_a.post("/api/v1/intents", colocated, format="json")
    assert response.status_code == 409, response.content
    cluster.fluidos.default_job_outcome = "Running"
    distributed = job(name="gang", model="nvidia-a100", count=2, tasks=2)
    distributed["intent"]["workload"]["deployment_strategy"] = "distributed"
    intent_id = submit(client_a, distributed)
    intent = drive(cluster, tenant_a, intent_id, until=P.RUNNING)
    assert intent.phase == P.RUNNING, intent.message
    assert sorted(r.gpus for r in GpuReservation.objects.filter(intent_id=intent_id)) == [2, 2]
    assert intent.placement["chosen"]["strategy"] == "distributed"
    names = sorted(r["metadata"]["name"] for r in cluster.emu.list_objects(
        "reservation.fluidos.eu/v1alpha1", "reservations", "fluidos"))
    assert names == [f"reservation-flare-{intent_id}-1", f"reservation-flare-{intent_id}-1-2"]
    offloading = cluster.emu.get_object("offloading.liqo.io/v1beta1", "namespaceoffloadings", "offloading",
                                        "flare-acme-gang")
    values = offloading["spec"]["clusterSelector"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert values == ["provider-c-cluster", "provider-d-cluster"]
    client_a.delete(f"/api/v1/intents/{intent_id}")
    cluster.settle()
    assert cluster.everything() == []


def test_api_outage_keeps_the_phase_then_recovers(cluster, client_a, tenant_a):
    intent_id = submit(client_a, service(name="outage"))
    drive(cluster, tenant_a, intent_id, until=P.RESERVING)
    outage = cluster.emu.inject(verb="create", resource="reservations", status=503, times=None)
    intent = drive(cluster, tenant_a, intent_id, max_steps=3)
    assert intent.phase == P.RESERVING and intent.attempt == 1
    assert intent.message.startswith("Federation unavailable") and outage.hits >= 3
    cluster.emu.clear_faults()
    intent = drive(cluster, tenant_a, intent_id, until=P.RUNNING)
    assert intent.phase == P.RUNNING and intent.attempt == 1


def test_service_with_controllers_running_in_the_background(cluster, client_a, tenant_a):
    """The controllers run on their own thread, as on a cluster: the reconciler only polls."""
    import time

    intent_id = submit(client_a, service(name="async"))
    cluster.fluidos.start(interval=0.005)
    try:
        for _ in range(200):
            with schema_context(tenant_a.schema_name):
                if Intent.objects.get(intent_id=intent_id).phase == P.RUNNING:
                    break
                advance(tenant_a.schema_name, intent_id)
            time.sleep(0.02)
        connection.set_schema_to_public()
        intent = get(tenant_a, intent_id)
        assert intent.phase == P.RUNNING, (intent.phase, intent.message)
        assert client_a.delete(f"/api/v1/intents/{intent_id}").json()["status"] == "cancelled"
        for _ in range(100):
            if not cluster.everything():
                break
            time.sleep(0.02)
    finally:
        cluster.fluidos.stop()
    assert cluster.fluidos.errors == []
    assert cluster.everything() == []

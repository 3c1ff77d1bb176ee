"""SimulatedFederation: the embedded default backend (FLARE_FEDERATION=simulated).

It plays the consumer cluster of FLUIDOS.md driven the way §6 describes, and keeps every object
it would hold — Solver, Discovery, PeeringCandidate, Reservation, Transaction, Contract,
Allocation, Liqo ResourceSlice and virtual Node, the intent's Namespace, NamespaceOffloading and
workload objects — as `FederationObject` rows, with the real kinds, names, phases and messages.
Because the state lives in the database, the web process and every Celery worker see one
federation; the instance itself holds configuration only.

Decisions worth knowing before changing anything here:

- **Objects carry what the FLUIDOS/Liqo controllers write.** Status messages are the controllers'
  strings (module constants below). The dataclasses the port returns carry, as `message`, what the
  Solver would show for that state under full automation (FLUIDOS.md §5: "Reservation: Reserve is
  running", "Allocation: peering", …) — the Reservation and Allocation objects themselves say
  "Reservation started" and "Allocation is now in Peering", as the controllers do.
- **Who labels what.** Objects FLARE creates (Solver, Reservation, Allocation, Namespace,
  NamespaceOffloading, workloads) carry `flare.io/intent-id` and `flare.io/tenant`. Objects the
  cluster creates (Discovery, PeeringCandidate, Transaction, Contract, ResourceSlice, Node) do not:
  `release` finds them by the names the intent's objects hold, as an operator would. Simulator
  bookkeeping (which GPU node a PeeringCandidate or Contract stands for) is in labels under
  `simulation.flare.io/`, which no real controller writes.
- **One sale, one Flavor.** After a sale the provider withdraws the sold Flavor and advertises a
  remainder (FLUIDOS.md §5) under a new name, derived here from the sale's transaction so it is
  stable. So two intents sharing a node buy two Flavors, and get two Contracts and two Allocations
  whose names never collide. The remainder's `gpu` has `count` 0, as the node publishes it; FLARE's
  ledger, not the Flavor, knows how many GPUs are free. Two Solvers that discovered the same
  PeeringCandidate race for it exactly as on a cluster: the second Reservation fails with
  "Reservation failed: PeeringCandidate not available" (→ `Conflict`).
- **Time.** Every sub-phase transition waits `step_delay` seconds after the object's last change
  (`updated_at`). A transition is stamped at `last change + step_delay`, not at "now", so a caller
  that polls late catches up several sub-phases in one call and the total time of a phase does not
  depend on the polling rate. With `step_delay=0` one call runs a phase to its end. `clock` is
  injectable so tests move time instead of sleeping.
- **Faults** are either seeded (`fault_rate` per step, decided by `seed` + intent id + attempt +
  step, so a run replays exactly) or injected (`inject_fault`, persisted as `FlareFault` objects in
  namespace `flare-sim` so every process sees them; each trigger spends one of `times`). A failure
  is written to the object it happened on (Discovery Failed, Reservation Failed, Allocation Error,
  a Job condition), so repeating the call repeats the answer.
- **Errors are raised after the state is saved.** Each port call runs in its own savepoint and
  raises only after leaving it, so a Failed Reservation or a spent fault is not rolled back with the
  exception.
- **Workloads.** A Deployment becomes available one step after it is applied. A Job's tasks run
  for a seeded duration around `batch_seconds` (the same for an intent on every attempt); a
  `batch.timeout` shorter than that fails the Job with DeadlineExceeded at the timeout. GPU
  utilisation is a deterministic function of seed, intent and time.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import yaml
from django.db import IntegrityError, transaction
from django.utils import timezone

from flare_portal.units import parse_duration, parse_quantity
from intents.solver import label_value
from intents.workload import GPU_RESOURCE, workload_url
from providers import ledger
from providers.flavor import FLUIDOS_NAMESPACE, K8SLICE, flavor_manifest, flavor_name, format_quantity
from providers.models import FederationObject, GpuNode, Provider
from providers.traits import Offer

from .names import allocation_name, contract_name, discovery_name, h4, peering_candidate_name, reservation_name
from .base import (
    Conflict,
    Deployment,
    Discovery,
    Failed,
    IntentRef,
    Observation,
    Peering,
    Reservation,
    Unavailable,
)

# ---------------------------------------------------------------------------------------------
# Kinds, API versions, namespaces, labels

NODECORE = "nodecore.fluidos.eu/v1alpha1"
ADVERTISEMENT = "advertisement.fluidos.eu/v1alpha1"
RESERVATION_API = "reservation.fluidos.eu/v1alpha1"
OFFLOADING_API = "offloading.liqo.io/v1beta1"
LIQO_AUTH_API = "authentication.liqo.io/v1beta1"
SIMULATION_API = "simulation.flare.io/v1"

KIND_SOLVER = "Solver"
KIND_DISCOVERY = "Discovery"
KIND_PEERING_CANDIDATE = "PeeringCandidate"
KIND_RESERVATION = "Reservation"
KIND_TRANSACTION = "Transaction"
KIND_CONTRACT = "Contract"
KIND_ALLOCATION = "Allocation"
KIND_RESOURCE_SLICE = "ResourceSlice"
KIND_NODE = "Node"
KIND_NAMESPACE = "Namespace"
KIND_OFFLOADING = "NamespaceOffloading"
KIND_FAULT = "FlareFault"

SIM_NAMESPACE = "flare-sim"
LIQO_TENANT_NAMESPACE = "liqo-tenant-{cluster_id}"
VIRTUAL_NODE_NAME = "liqo-{cluster_id}"

LABEL_INTENT = "flare.io/intent-id"
LABEL_TENANT = "flare.io/tenant"
LABEL_USER = "flare.io/user"
SIM_LABEL_NODE = "simulation.flare.io/node-id"
SIM_LABEL_PROVIDER = "simulation.flare.io/provider"
SIM_LABEL_FAULT = "simulation.flare.io/fault"
SIM_LABEL_FAILURE = "simulation.flare.io/failure"
LIQO_LABEL_REMOTE_CLUSTER = "liqo.io/remote-cluster-id"
LIQO_VIRTUAL_NODE_TAINT = "virtual-node.liqo.io/not-allowed"

# The consumer cluster's own FLUIDOS NodeIdentity (ConfigMap fluidos/fluidos-node-identity) and Liqo id.
LOCAL_CLUSTER_ID = "flare-consumer"
LOCAL_IDENTITY = {"domain": "flare.fluidos.local", "nodeID": "flare-consumer", "ip": "10.96.0.10:30000"}

# ---------------------------------------------------------------------------------------------
# Phases and messages (FLUIDOS.md §1, §5; the FLUIDOS node's controllers)

PHASE_IDLE = "Idle"
PHASE_RUNNING = "Running"
PHASE_SOLVED = "Solved"
PHASE_FAILED = "Failed"
PHASE_TIMED_OUT = "Timed Out"
TERMINAL_PHASES = (PHASE_SOLVED, PHASE_FAILED, PHASE_TIMED_OUT)

# Solver (status.solverPhase.message)
SOLVER_INITIALIZED = "Solver initialized"
SOLVER_RUNNING = "Solver is running"
SOLVER_TRYING_DISCOVERY = "Solver is trying a Discovery"
SOLVER_DISCOVERY_COMPLETED = "Solver has completed the Discovery phase"
SOLVER_NO_RESERVE = "No need to reserve and buy the resources"
SOLVER_NO_CANDIDATE = "Solver has not found any candidate"

# Discovery (status.phase.message)
DISCOVERY_STARTED = "Discovery started"
DISCOVERY_SOLVED = "Discovery Solved: Peering Candidate found"
DISCOVERY_NO_FLAVORS = "No Flavors found"
DISCOVERY_FLAVOR_ERROR = "Error when getting Flavor"

# Reservation (status.phase.message)
RESERVATION_STARTED = "Reservation started"
RESERVATION_SOLVED = "Reservation solved"
RESERVATION_PC_NOT_AVAILABLE = "Reservation failed: PeeringCandidate not available"

# What the Solver shows for the same states under full automation (FLUIDOS.md §5)
SOLVER_RESERVATION_CREATED = "Reservation created"
SOLVER_RESERVE_RUNNING = "Reservation: Reserve is running"
SOLVER_PURCHASE_RUNNING = "Reservation: Purchase is running"
SOLVER_RESERVED_AND_PURCHASED = "Reservation: Flavor reserved and purchased"
SOLVER_ALLOCATION_CREATED = "Allocation created"
SOLVER_ALLOCATION_PEERING = "Allocation: peering"
SOLVER_ALLOCATION_ACTIVE = "Allocation: active"
SOLVER_ALLOCATION_ERROR = "Allocation: error"

# Allocation (status.status, status.message) on the consumer
ALLOCATION_INACTIVE = "Inactive"
ALLOCATION_PEERING = "Peering"
ALLOCATION_ACTIVE = "Active"
ALLOCATION_ERROR = "Error"
ALLOCATION_SET_INACTIVE = "Allocation has been set to Inactive"
ALLOCATION_NOW_PEERING = "Allocation is now in Peering"
ALLOCATION_NOW_ACTIVE = "Allocation is now Active"
ALLOCATION_PEERING_FAILED = "Error when peering with cluster {cluster_id}"

# NamespaceOffloading (status.offloadingPhase)
OFFLOADING_IN_PROGRESS = "InProgress"
OFFLOADING_READY = "Ready"
OFFLOADING_NO_CLUSTER = "NoClusterSelected"

# Workload failures (Kubernetes reasons and messages)
REASON_CRASH_LOOP = "CrashLoopBackOff"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_PROVIDER_OUTAGE = "ProviderOutage"
JOB_BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
JOB_DEADLINE_MESSAGE = "Job was active longer than specified deadline"

FAULT_KINDS = ("no_candidate", "hang", "pc_taken", "peering_error", "provider_outage", "workload_crash")

WORKLOAD_KINDS = ("Deployment", "Job")
# Deletion order of FLUIDOS.md §6.11 for the objects inside the intent's namespace.
_WORKLOAD_RELEASE_RANK = {"Deployment": 0, "Job": 0, "HorizontalPodAutoscaler": 1, "Ingress": 2, "Service": 3,
                          "Secret": 4, "PersistentVolumeClaim": 5}
_FLUIDOS_KINDS = {KIND_SOLVER, KIND_DISCOVERY, KIND_PEERING_CANDIDATE, KIND_RESERVATION, KIND_TRANSACTION,
                  KIND_CONTRACT, KIND_ALLOCATION}
DEFAULT_UNIT_CPU = "1"
DEFAULT_UNIT_MEMORY = "1Gi"
CONTRACT_LIFETIME = timedelta(days=365)
TRANSACTION_LIFETIME = timedelta(hours=1)


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def _ts(when: datetime) -> str:
    return when.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def liqo_cluster_id(provider: Provider) -> str:
    """A stable Liqo cluster id for a provider (DNS label, short enough for `liqo-tenant-<id>`)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", provider.name.lower()).strip("-")[:40].strip("-") or "provider"
    digest = hashlib.sha256((provider.fluidos_domain or provider.name).encode()).hexdigest()[:6]
    return f"{slug}-{digest}"


def _provider_kubeconfig(provider: Provider, cluster_id: str, consumer_id: str) -> str:
    """Base64 kubeconfig as a Contract carries it (no credentials: nothing reads it in simulation)."""
    host = (provider.fluidos_ip or "").rsplit(":", 1)[0] or f"{cluster_id}.fluidos.invalid"
    user = f"fluidos-{consumer_id}"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_id,
        "clusters": [{"name": cluster_id, "cluster": {"server": f"https://{host}:6443"}}],
        "contexts": [{"name": cluster_id, "context": {"cluster": cluster_id, "user": user}}],
        "users": [{"name": user, "user": {}}],
    }
    return base64.b64encode(yaml.safe_dump(config, sort_keys=False).encode()).decode()


def _quantity(value, default: str = "0") -> Decimal:
    try:
        return parse_quantity(value if value not in (None, "") else default)
    except ValueError:
        return parse_quantity(default)


def _passes_base_filters(filters: dict, characteristics: dict) -> bool:
    """What a provider answers for the Solver's base filters (FLUIDOS.md §2): cpu, memory, pods,
    architecture. GPU filters are the consumer's (FLARE's) job; a malformed filter is dropped."""
    for key, field in (("cpuFilter", "cpu"), ("memoryFilter", "memory"), ("podsFilter", "pods")):
        spec = filters.get(key)
        if not isinstance(spec, dict) or not isinstance(spec.get("data"), dict):
            continue
        data = spec["data"]
        try:
            have = parse_quantity(characteristics.get(field, "0"))
            if spec.get("name") == "Match" and "value" in data:
                if parse_quantity(data["value"]) != have:
                    return False
            elif spec.get("name") == "Range":
                if data.get("min") not in (None, "") and have < parse_quantity(data["min"]):
                    return False
                if data.get("max") not in (None, "") and have > parse_quantity(data["max"]):
                    return False
        except ValueError:
            continue
    spec = filters.get("architectureFilter")
    if isinstance(spec, dict) and isinstance(spec.get("data"), dict):
        architecture = str(characteristics.get("architecture", ""))
        data = spec["data"]
        if spec.get("name") == "Match" and "value" in data and str(data["value"]) != architecture:
            return False
        if spec.get("name") == "Range" and data.get("regex"):
            try:
                if not re.search(str(data["regex"]), architecture):
                    return False
            except re.error:
                pass
    return True


def _selected_clusters(offloading_spec: dict, peered: list[str]) -> list[str]:
    """Remote cluster ids a NamespaceOffloading's clusterSelector picks (no selector: every peer)."""
    selector = (offloading_spec or {}).get("clusterSelector")
    if not selector:
        return list(peered)
    chosen: list[str] = []
    for term in selector.get("nodeSelectorTerms") or ():
        for expression in term.get("matchExpressions") or ():
            if expression.get("key") == LIQO_LABEL_REMOTE_CLUSTER and expression.get("operator") == "In":
                chosen.extend(str(v) for v in expression.get("values") or ())
    return list(dict.fromkeys(chosen))


def _unit_resources(document: dict) -> tuple[int, Decimal, Decimal]:
    """(GPUs, cpu, memory bytes) of one replica / task of the intent."""
    resources = (document.get("workload") or {}).get("resources") or {}
    gpu = resources.get("gpu")
    if isinstance(gpu, dict):
        gpus = int(gpu.get("count") or 1)
    else:
        gpus = int(gpu or 1) if not isinstance(gpu, bool) else 1
    return max(gpus, 1), _quantity(resources.get("cpu"), DEFAULT_UNIT_CPU), \
        _quantity(resources.get("memory"), DEFAULT_UNIT_MEMORY)


def _batch_timeout(document: dict) -> int | None:
    timeout = ((document.get("workload") or {}).get("batch") or {}).get("timeout")
    if timeout in (None, ""):
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return int(timeout)
    try:
        return parse_duration(str(timeout))
    except ValueError:
        return None


def _condition(type_: str, status: str, reason: str, message: str, when: datetime) -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": _ts(when)}


# ---------------------------------------------------------------------------------------------
# The backend


class SimulatedFederation:
    """The FLUIDOS consumer cluster, simulated over `FederationObject` rows."""

    name = "simulated"

    def __init__(self, *, step_delay: float = 0.0, fault_rate: float = 0.0, seed: int = 42,
                 batch_seconds: float = 60.0, clock=None, local_identity: dict | None = None,
                 local_cluster_id: str = LOCAL_CLUSTER_ID):
        if step_delay < 0 or batch_seconds < 0:
            raise ValueError("step_delay and batch_seconds cannot be negative")
        if not 0 <= fault_rate <= 1:
            raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
        self.step_delay = float(step_delay)
        self.fault_rate = float(fault_rate)
        self.seed = int(seed)
        self.batch_seconds = float(batch_seconds)
        self.clock = clock or timezone.now
        self.local_cluster_id = local_cluster_id
        identity = dict(local_identity or LOCAL_IDENTITY)
        self.local_identity = {"domain": identity["domain"], "nodeID": identity["nodeID"], "ip": identity["ip"]}

    def __repr__(self) -> str:
        return (f"SimulatedFederation(step_delay={self.step_delay}, fault_rate={self.fault_rate}, "
                f"seed={self.seed}, batch_seconds={self.batch_seconds})")

    # =========================================================================================
    # The port

    def discover(self, intent: IntentRef) -> Discovery:
        with transaction.atomic():
            result, error = self._discover(intent)
        if error is not None:
            raise error
        return result

    def reserve(self, intent: IntentRef, candidate: Offer, gpus: int) -> Reservation:
        with transaction.atomic():
            result, error = self._reserve(intent, candidate, int(gpus))
        if error is not None:
            raise error
        return result

    def peer(self, intent: IntentRef, reservation: Reservation) -> Peering:
        with transaction.atomic():
            result, error = self._peer(intent, reservation)
        if error is not None:
            raise error
        return result

    def deploy(self, intent: IntentRef, peerings: list[Peering], manifests: list[dict]) -> Deployment:
        with transaction.atomic():
            result, error = self._deploy(intent, peerings, manifests)
        if error is not None:
            raise error
        return result

    def observe(self, intent: IntentRef) -> Observation:
        with transaction.atomic():
            return self._observe(intent)

    def release(self, intent: IntentRef) -> None:
        with transaction.atomic():
            self._release(intent)

    def inventory(self) -> list[Offer]:
        nodes = list(GpuNode.objects.select_related("provider")
                     .filter(available=True, provider__active=True)
                     .order_by("provider__name", "name"))
        free = ledger.free_by_node(nodes)
        return [node.as_offer(free[node.pk]) for node in nodes]

    # =========================================================================================
    # Faults

    def inject_fault(self, kind: str, *, provider: str | None = None, intent_id: str | None = None,
                     times: int | None = 1) -> str:
        """Make the next `times` matching steps fail (None: until `clear_faults`). Returns the fault's name.

        no_candidate: the Discovery finds no Flavor (of `provider`, if given). hang: the Discovery never
        ends. pc_taken: the Reservation finds its PeeringCandidate taken (Conflict). peering_error: the
        Allocation goes to Error (Failed). provider_outage: reserve/peer/deploy touching the provider
        raise Unavailable and a workload running there fails (ProviderOutage). workload_crash: the
        workload fails (CrashLoopBackOff for a service, BackoffLimitExceeded for a batch job).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if times is not None and int(times) < 1:
            raise ValueError("times must be at least 1 (or None for a lasting fault)")
        now = self.clock()
        name = f"{kind.replace('_', '-')}-{uuid.uuid4().hex[:10]}"
        # Not labelled flare.io/intent-id: a fault is the simulator's, not an object of the intent.
        labels = {"simulation.flare.io/fault-kind": kind.replace("_", "-")}
        if intent_id:
            labels["simulation.flare.io/intent-id"] = label_value(intent_id)
        FederationObject.objects.create(
            api_version=SIMULATION_API, kind=KIND_FAULT, namespace=SIM_NAMESPACE, name=name, labels=labels,
            spec={"fault": kind, "provider": provider or "", "intentID": intent_id or "",
                  "remaining": None if times is None else int(times)},
            created_at=now, updated_at=now,
        )
        return name

    def clear_faults(self) -> int:
        deleted, _ = FederationObject.objects.filter(kind=KIND_FAULT, namespace=SIM_NAMESPACE).delete()
        return deleted

    def faults(self) -> list[dict]:
        """The pending injected faults (for the admin and tests)."""
        return [dict(f.spec, name=f.name) for f in
                FederationObject.objects.filter(kind=KIND_FAULT, namespace=SIM_NAMESPACE).order_by("created_at", "id")]

    def _take_fault(self, kind: str, intent_id: str, providers=(), *, targeted_only: bool = False) -> dict | None:
        """Spend one matching injected fault. A fault aimed at no provider matches any call (unless
        `targeted_only`); one aimed at a provider matches calls touching it."""
        providers = set(providers or ())
        faults = (FederationObject.objects.select_for_update()
                  .filter(kind=KIND_FAULT, namespace=SIM_NAMESPACE, spec__fault=kind).order_by("created_at", "id"))
        for fault in faults:
            target_intent = fault.spec.get("intentID") or ""
            target_provider = fault.spec.get("provider") or ""
            if target_intent and target_intent != intent_id:
                continue
            if target_provider and target_provider not in providers:
                continue
            if targeted_only and not target_provider:
                continue
            remaining = fault.spec.get("remaining")
            if remaining is not None:
                if int(remaining) <= 1:
                    fault.delete()
                else:
                    fault.spec = dict(fault.spec, remaining=int(remaining) - 1)
                    fault.updated_at = self.clock()
                    fault.save(update_fields=["spec", "updated_at"])
            return {"kind": kind, "provider": target_provider or next(iter(sorted(providers)), "")}
        return None

    def _chance(self, intent: IntentRef, step: str) -> random.Random:
        return random.Random(f"{self.seed}:{intent.intent_id}:{intent.attempt}:{step}")

    def _random_fault(self, intent: IntentRef, step: str) -> bool:
        return self.fault_rate > 0 and self._chance(intent, step).random() < self.fault_rate

    def _outage(self, intent: IntentRef, providers) -> Unavailable | None:
        fault = self._take_fault("provider_outage", intent.intent_id, providers)
        if fault is None:
            return None
        who = fault["provider"] or "the provider"
        return Unavailable(f"Provider {who} is unreachable (simulated outage)", reason=REASON_PROVIDER_OUTAGE)

    # =========================================================================================
    # Object store helpers

    def _due(self, last: datetime, now: datetime) -> datetime | None:
        """When the next sub-phase happened, or None while it is still running."""
        if self.step_delay <= 0:
            return now
        ready = last + timedelta(seconds=self.step_delay)
        return ready if ready <= now else None

    @staticmethod
    def _get(kind: str, namespace: str, name: str, *, lock: bool = True) -> FederationObject | None:
        rows = FederationObject.objects.filter(kind=kind, namespace=namespace, name=name)
        if lock:
            rows = rows.select_for_update()
        return rows.first()

    def _get_or_create(self, *, api_version: str, kind: str, namespace: str, name: str, labels=None, spec=None,
                       status=None, when: datetime) -> tuple[FederationObject, bool]:
        existing = self._get(kind, namespace, name)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                return FederationObject.objects.create(
                    api_version=api_version, kind=kind, namespace=namespace, name=name, labels=labels or {},
                    spec=spec or {}, status=status or {}, created_at=when, updated_at=when,
                ), True
        except IntegrityError:  # another process created it between our read and our insert
            return self._get(kind, namespace, name), False

    @staticmethod
    def _save(obj: FederationObject, when: datetime, *fields: str) -> None:
        obj.updated_at = when
        obj.save(update_fields=[*(fields or ("status",)), "updated_at"])

    def _intent_labels(self, intent: IntentRef, *, user: bool = False) -> dict:
        labels = {LABEL_INTENT: label_value(intent.intent_id), LABEL_TENANT: label_value(intent.tenant)}
        if user and intent.user:
            labels[LABEL_USER] = label_value(intent.user)
        return labels

    def _owned(self, intent: IntentRef, kind: str | None = None):
        rows = FederationObject.objects.filter(labels__contains=self._intent_labels(intent))
        return rows.filter(kind=kind) if kind else rows

    def _buyer(self) -> dict:
        return dict(self.local_identity, additionalInformation={"liqoID": self.local_cluster_id})

    # =========================================================================================
    # Discovery (FLUIDOS.md §6.1)

    def _solver_name(self, intent: IntentRef) -> tuple[str, str]:
        metadata = (intent.solver_manifest or {}).get("metadata") or {}
        name = metadata.get("name")
        if not name:
            raise ValueError("the Solver manifest has no metadata.name")
        return metadata.get("namespace") or FLUIDOS_NAMESPACE, name

    def _discover(self, intent: IntentRef):
        namespace, name = self._solver_name(intent)
        now = self.clock()
        solver, _ = self._get_or_create(
            api_version=intent.solver_manifest.get("apiVersion") or NODECORE, kind=KIND_SOLVER, namespace=namespace,
            name=name,
            labels={**((intent.solver_manifest.get("metadata") or {}).get("labels") or {}),
                    **self._intent_labels(intent)},
            spec=intent.solver_manifest.get("spec") or {},
            status={"solverPhase": {"phase": PHASE_IDLE, "message": SOLVER_INITIALIZED, "startTime": _ts(now),
                                    "lastChangeTime": _ts(now)}},
            when=now,
        )
        while True:
            status = solver.status
            phase = status["solverPhase"]["phase"]
            if phase in TERMINAL_PHASES:
                break
            find = status.get("findCandidate")
            if find == PHASE_RUNNING:
                if not self._advance_discovery(intent, solver, now):
                    break
                continue
            when = self._due(solver.updated_at, now)
            if when is None:
                break
            if phase == PHASE_IDLE:
                self._solver_phase(solver, PHASE_RUNNING, SOLVER_RUNNING, when, findCandidate=PHASE_IDLE)
            elif find == PHASE_IDLE:
                self._solver_phase(solver, PHASE_RUNNING, SOLVER_TRYING_DISCOVERY, when,
                                   findCandidate=PHASE_RUNNING, discoveryPhase=PHASE_RUNNING)
                self._get_or_create(
                    api_version=ADVERTISEMENT, kind=KIND_DISCOVERY, namespace=FLUIDOS_NAMESPACE,
                    name=discovery_name(solver.name),
                    spec={"solverID": solver.name, "selector": (solver.spec or {}).get("selector") or {},
                          "subscribe": False},
                    status={"phase": {"phase": PHASE_RUNNING, "message": DISCOVERY_STARTED, "startTime": _ts(when),
                                      "lastChangeTime": _ts(when)},
                            "peeringCandidateList": {"items": []}},
                    when=when,
                )
            elif find == PHASE_SOLVED:
                self._solver_phase(solver, PHASE_SOLVED, SOLVER_NO_RESERVE, when, end=True)
            elif find == PHASE_FAILED:
                self._solver_phase(solver, PHASE_FAILED, SOLVER_NO_CANDIDATE, when, end=True)
            else:  # a Solver this simulator did not write: nothing drives it
                break

        phase = solver.status["solverPhase"]["phase"]
        message = solver.status["solverPhase"]["message"]
        if phase == PHASE_SOLVED:
            return Discovery(done=True, candidates=self._candidates(solver), phase=phase, message=message), None
        if phase in (PHASE_FAILED, PHASE_TIMED_OUT):
            discovery = self._get(KIND_DISCOVERY, FLUIDOS_NAMESPACE, discovery_name(solver.name), lock=False)
            cause = ((discovery.status.get("phase") or {}).get("message") if discovery else "") or ""
            if cause == DISCOVERY_FLAVOR_ERROR:
                # A provider answered an error: transient, the attempt fails and a fresh Solver retries.
                return None, Failed(f"{message}: Discovery failed: {cause}", reason="DiscoveryFailed")
            return Discovery(done=True, candidates=[], phase=phase, message=message), None
        return Discovery(done=False, phase=phase, message=message), None

    def _solver_phase(self, solver: FederationObject, phase: str, message: str, when: datetime, *,
                      end: bool = False, **subphases) -> None:
        status = dict(solver.status)
        solver_phase = dict(status.get("solverPhase") or {})
        solver_phase.update(phase=phase, message=message, lastChangeTime=_ts(when))
        if end:
            solver_phase["endTime"] = _ts(when)
        status["solverPhase"] = solver_phase
        status.update(subphases)
        solver.status = status
        self._save(solver, when)

    def _advance_discovery(self, intent: IntentRef, solver: FederationObject, now: datetime) -> bool:
        """One step of the Discovery and what the Solver makes of it. False while nothing moved."""
        discovery = self._get(KIND_DISCOVERY, FLUIDOS_NAMESPACE, discovery_name(solver.name))
        if discovery is None:  # deleted under the Solver (release raced a reconcile): nothing more happens
            return False
        phase = (discovery.status.get("phase") or {}).get("phase")
        if phase == PHASE_RUNNING:
            if discovery.labels.get(SIM_LABEL_FAULT) == "hang":
                return False
            when = self._due(discovery.updated_at, now)
            if when is None:
                return False
            everyone = Provider.objects.filter(active=True).values_list("name", flat=True)
            if self._take_fault("hang", intent.intent_id, everyone):
                discovery.labels = dict(discovery.labels, **{SIM_LABEL_FAULT: "hang"})
                discovery.save(update_fields=["labels"])
                return False
            phase = self._resolve_discovery(intent, solver, discovery, when)
        when = max(discovery.updated_at, solver.updated_at)
        if phase == PHASE_SOLVED:
            self._solver_phase(solver, PHASE_RUNNING, SOLVER_DISCOVERY_COMPLETED, when,
                               findCandidate=PHASE_SOLVED, discoveryPhase=PHASE_SOLVED)
        else:
            # The controller records the failed sub-phases; the next reconcile fails the Solver.
            self._solver_phase(solver, PHASE_RUNNING, solver.status["solverPhase"]["message"], when,
                               findCandidate=PHASE_FAILED, discoveryPhase=phase)
        return True

    def _resolve_discovery(self, intent: IntentRef, solver: FederationObject, discovery: FederationObject,
                           when: datetime) -> str:
        """Ask every provider (base filters only), upsert the PeeringCandidates, solve or fail."""
        selector = (solver.spec or {}).get("selector") or {}
        filters = selector.get("filters") or {}
        if "storageFilter" in filters or self._random_fault(intent, "discovery"):
            return self._finish_discovery(discovery, PHASE_FAILED, DISCOVERY_FLAVOR_ERROR, when, [])
        if self._take_fault("no_candidate", intent.intent_id):  # aimed at no provider: nobody answers
            return self._finish_discovery(discovery, PHASE_FAILED, DISCOVERY_NO_FLAVORS, when, [])

        nodes = list(GpuNode.objects.select_related("provider")
                     .filter(available=True, provider__active=True).order_by("provider__name", "name"))
        silent = {p for p in {n.provider.name for n in nodes}
                  if self._take_fault("no_candidate", intent.intent_id, [p], targeted_only=True)}
        sales = self._live_sales([n.pk for n in nodes])
        offered = []
        for node in nodes:
            if node.provider.name in silent:
                continue
            try:
                flavor = self._advertised_flavor(node, sales.get(node.pk, []))
            except ValueError:
                continue  # the node's resource manager cannot build its Flavor: it is not advertised
            characteristics = flavor["spec"]["flavorType"]["typeData"]["characteristics"]
            if _passes_base_filters(filters, characteristics):
                offered.append((node, flavor))
        items = [{"apiVersion": pc.api_version, "kind": pc.kind,
                  "metadata": {"name": pc.name, "namespace": pc.namespace}, "spec": pc.spec, "status": pc.status}
                 for pc in self._upsert_peering_candidates(offered, solver.name, when)]
        if not items:
            return self._finish_discovery(discovery, PHASE_FAILED, DISCOVERY_NO_FLAVORS, when, [])
        return self._finish_discovery(discovery, PHASE_SOLVED, DISCOVERY_SOLVED, when, items)

    def _finish_discovery(self, discovery: FederationObject, phase: str, message: str, when: datetime,
                          items: list[dict]) -> str:
        status = dict(discovery.status)
        status["phase"] = dict(status.get("phase") or {}, phase=phase, message=message, lastChangeTime=_ts(when),
                               endTime=_ts(when))
        status["peeringCandidateList"] = {"items": items}
        discovery.status = status
        self._save(discovery, when)
        return phase

    def _live_sales(self, node_ids) -> dict[int, list[FederationObject]]:
        """Contracts in force per GPU node, oldest first."""
        sales: dict[int, list[FederationObject]] = {}
        for contract in FederationObject.objects.filter(kind=KIND_CONTRACT, namespace=FLUIDOS_NAMESPACE,
                                                        labels__has_key=SIM_LABEL_NODE).order_by("created_at", "id"):
            try:
                node_id = int(contract.labels[SIM_LABEL_NODE])
            except (TypeError, ValueError):
                continue
            sales.setdefault(node_id, []).append(contract)
        wanted = set(node_ids)
        return {k: v for k, v in sales.items() if k in wanted}

    def _advertised_flavor(self, node: GpuNode, sales: list[FederationObject]) -> dict:
        """The Flavor the node's provider advertises now: the node's own, or after a sale the remainder
        (less cpu, memory and pods; `gpu.count` 0 because the configuration bought GPUs)."""
        if not sales:
            return node.as_flavor()
        provider = node.provider
        sold = {"cpu": Decimal(0), "memory": Decimal(0), "pods": Decimal(0)}
        for contract in sales:
            data = ((contract.spec.get("configuration") or {}).get("data")) or {}
            for key in sold:
                sold[key] += _quantity(data.get(key))
        cpu = max(_quantity(node.cpu) - sold["cpu"], Decimal(0))
        memory = max(_quantity(node.memory) - sold["memory"], Decimal(0))
        pods = max(Decimal(node.pods) - sold["pods"], Decimal(0))
        latest = sales[-1]
        name = flavor_name(provider.fluidos_domain,
                           f"{provider.fluidos_domain}/{node.name}/{latest.spec.get('transactionID', latest.name)}")
        return flavor_manifest(
            node.traits().with_(count=0), name=name,
            provider_id=provider.fluidos_node_id or provider.fluidos_domain, owner=provider.owner_identity(),
            cpu=format_quantity(cpu), memory=format_quantity(memory, binary=True), pods=format_quantity(pods),
            available=True,
        )

    def _upsert_peering_candidates(self, offered, solver: str, when: datetime) -> list[FederationObject]:
        """CreateOrUpdate one PeeringCandidate per advertised Flavor, as the Discovery controller does:
        the embedded Flavor refreshed, `available` true, the Solver added to `interestedSolverIDs`."""
        wanted = {}
        for node, flavor in offered:
            name = peering_candidate_name(flavor["metadata"]["name"])
            embedded = {"metadata": {"name": flavor["metadata"]["name"], "namespace": FLUIDOS_NAMESPACE},
                        "spec": flavor["spec"]}
            wanted[name] = (embedded, {SIM_LABEL_NODE: str(node.pk),
                                       SIM_LABEL_PROVIDER: label_value(node.provider.name)})
        rows = FederationObject.objects.filter(kind=KIND_PEERING_CANDIDATE, namespace=FLUIDOS_NAMESPACE)
        existing = {pc.name: pc for pc in rows.select_for_update().filter(name__in=list(wanted))}
        FederationObject.objects.bulk_create([
            FederationObject(api_version=ADVERTISEMENT, kind=KIND_PEERING_CANDIDATE, namespace=FLUIDOS_NAMESPACE,
                             name=name, labels=labels,
                             spec={"flavor": embedded, "available": True, "interestedSolverIDs": [solver]},
                             status={"creationTime": _ts(when), "lastUpdateTime": _ts(when)},
                             created_at=when, updated_at=when)
            for name, (embedded, labels) in wanted.items() if name not in existing
        ], ignore_conflicts=True)  # a concurrent Discovery may create the same PC: then it is updated below
        changed = []
        for pc in rows.select_for_update().filter(name__in=list(wanted)):
            embedded, labels = wanted[pc.name]
            interested = list(pc.spec.get("interestedSolverIDs") or [])
            if solver not in interested:
                interested.append(solver)
            spec = {"flavor": embedded, "available": True, "interestedSolverIDs": interested}
            if pc.spec != spec or pc.labels != labels:
                pc.spec, pc.labels = spec, labels
                pc.status = dict(pc.status, lastUpdateTime=_ts(when))
                pc.updated_at = when
                changed.append(pc)
            existing[pc.name] = pc
        FederationObject.objects.bulk_update(changed, ["spec", "labels", "status", "updated_at"])
        return [existing[name] for name in wanted if name in existing]

    def _candidates(self, solver: FederationObject) -> list[Offer]:
        """Offers for the available PCs this Solver discovered, with free GPUs from the ledger."""
        pcs = list(FederationObject.objects.filter(
            kind=KIND_PEERING_CANDIDATE, namespace=FLUIDOS_NAMESPACE, spec__available=True,
            spec__interestedSolverIDs__contains=[solver.name], labels__has_key=SIM_LABEL_NODE,
        ).order_by("name"))
        discovery = self._get(KIND_DISCOVERY, FLUIDOS_NAMESPACE, discovery_name(solver.name), lock=False)
        listed = [item["metadata"]["name"] for item in
                  ((discovery.status.get("peeringCandidateList") or {}).get("items") or [])] if discovery else []
        order = {name: index for index, name in enumerate(listed)}
        pcs = [pc for pc in pcs if pc.name in order]
        pcs.sort(key=lambda pc: order[pc.name])
        by_node: dict[int, FederationObject] = {}
        for pc in pcs:
            by_node.setdefault(int(pc.labels[SIM_LABEL_NODE]), pc)
        nodes = {n.pk: n for n in GpuNode.objects.select_related("provider")
                 .filter(pk__in=list(by_node), available=True, provider__active=True)}
        free = ledger.free_by_node(nodes.values())
        offers = []
        for node_id, pc in by_node.items():
            node = nodes.get(node_id)
            if node is None:
                continue
            offer = node.as_offer(free[node.pk])
            flavor = pc.spec["flavor"]["metadata"]["name"]
            offers.append(Offer(
                node_id=offer.node_id, node_name=offer.node_name, flavor_name=flavor, traits=offer.traits,
                provider=offer.provider, free_gpus=offer.free_gpus, total_gpus=offer.total_gpus,
                power_watts=offer.power_watts, extra={"peering_candidate": pc.name},
            ))
        return offers

    # =========================================================================================
    # Reservation (FLUIDOS.md §6.4, §6.5)

    def _reserve(self, intent: IntentRef, candidate: Offer, gpus: int):
        _, solver = self._solver_name(intent)
        try:
            node = GpuNode.objects.select_related("provider").get(pk=int(candidate.node_id))
        except (GpuNode.DoesNotExist, TypeError, ValueError):
            return None, Failed(f"Node {candidate.node_name} is no longer in the inventory", reason="NodeGone")
        provider = node.provider
        outage = self._outage(intent, [provider.name])
        if outage is not None:
            return None, outage
        now = self.clock()
        reservation = (FederationObject.objects.select_for_update()
                       .filter(kind=KIND_RESERVATION, namespace=FLUIDOS_NAMESPACE, spec__solverID=solver,
                               labels__contains={SIM_LABEL_NODE: str(node.pk)})
                       .order_by("created_at", "id").first())
        if reservation is None:
            reservation, error = self._create_reservation(intent, solver, node, gpus, now)
            if error is not None:
                return None, error

        error = None
        while True:
            status = reservation.status
            phase = status["phase"]["phase"]
            if phase in TERMINAL_PHASES:
                break
            when = self._due(reservation.updated_at, now)
            if when is None:
                break
            reserve, purchase = status.get("reservePhase"), status.get("purchasePhase")
            if reserve == PHASE_IDLE:
                self._reservation_status(reservation, when, reservePhase=PHASE_RUNNING)
            elif reserve == PHASE_RUNNING:
                error = self._reserve_flavor(intent, reservation, node, when)
            elif purchase == PHASE_IDLE:
                self._reservation_status(reservation, when, purchasePhase=PHASE_RUNNING)
            elif purchase == PHASE_RUNNING:
                self._purchase(reservation, node, when)
            else:
                break
            if error is not None:
                break

        phase = reservation.status["phase"]["phase"]
        if phase == PHASE_FAILED and error is None:
            error = Conflict(reservation.status["phase"]["message"], reason="PeeringCandidateTaken")
        return self._reservation_result(reservation, node), error

    def _create_reservation(self, intent: IntentRef, solver: str, node: GpuNode, gpus: int, now: datetime):
        pcs = list(FederationObject.objects.select_for_update().filter(
            kind=KIND_PEERING_CANDIDATE, namespace=FLUIDOS_NAMESPACE,
            labels__contains={SIM_LABEL_NODE: str(node.pk)}, spec__interestedSolverIDs__contains=[solver],
        ).order_by("-updated_at", "-id"))
        if not pcs:
            return None, Conflict(f"No PeeringCandidate of Solver {solver} offers node {node.name}; discover again",
                                  reason="PeeringCandidateMissing")
        pc = next((p for p in pcs if p.spec.get("available")), pcs[0])
        position = FederationObject.objects.filter(kind=KIND_RESERVATION, namespace=FLUIDOS_NAMESPACE,
                                                   spec__solverID=solver).count() + 1
        flavor = pc.spec["flavor"]
        units_gpus, unit_cpu, unit_memory = _unit_resources(intent.document)
        units = max(1, gpus // units_gpus)
        gpu = dict(((flavor["spec"]["flavorType"]["typeData"].get("characteristics") or {}).get("gpu")) or {})
        gpu["count"] = gpus
        configuration = {"type": K8SLICE, "data": {
            "cpu": format_quantity(unit_cpu * units), "memory": format_quantity(unit_memory * units, binary=True),
            "pods": str(units), "gpu": gpu,
        }}
        reservation = FederationObject.objects.create(
            api_version=RESERVATION_API, kind=KIND_RESERVATION, namespace=FLUIDOS_NAMESPACE,
            name=reservation_name(solver, position),
            labels={**self._intent_labels(intent, user=True), SIM_LABEL_NODE: str(node.pk),
                    SIM_LABEL_PROVIDER: label_value(node.provider.name)},
            spec={"solverID": solver, "buyer": self._buyer(), "seller": flavor["spec"]["owner"],
                  "peeringCandidate": {"name": pc.name, "namespace": FLUIDOS_NAMESPACE},
                  "reserve": True, "purchase": True, "configuration": configuration},
            status={"phase": {"phase": PHASE_RUNNING, "message": RESERVATION_STARTED, "startTime": _ts(now),
                              "lastChangeTime": _ts(now)},
                    "reservePhase": PHASE_IDLE, "purchasePhase": PHASE_IDLE},
            created_at=now, updated_at=now,
        )
        return reservation, None

    def _reservation_status(self, reservation: FederationObject, when: datetime, *, phase: str | None = None,
                            message: str | None = None, **fields) -> None:
        status = dict(reservation.status)
        if phase is not None:
            status["phase"] = dict(status["phase"], phase=phase, message=message or "", lastChangeTime=_ts(when))
            if phase in TERMINAL_PHASES:
                status["phase"]["endTime"] = _ts(when)
        status.update(fields)
        reservation.status = status
        self._save(reservation, when)

    def _reserve_flavor(self, intent: IntentRef, reservation: FederationObject, node: GpuNode, when: datetime):
        """The Reserve call to the provider: the PC must still be available; it is taken and a
        Transaction opened."""
        ref = reservation.spec["peeringCandidate"]
        pc = self._get(KIND_PEERING_CANDIDATE, ref.get("namespace") or FLUIDOS_NAMESPACE, ref["name"])
        taken = (pc is None or not pc.spec.get("available")
                 or self._take_fault("pc_taken", intent.intent_id, [node.provider.name]) is not None
                 or self._random_fault(intent, f"reserve:{reservation.name}"))
        if taken:
            self._reservation_status(reservation, when, phase=PHASE_FAILED, message=RESERVATION_PC_NOT_AVAILABLE)
            return Conflict(RESERVATION_PC_NOT_AVAILABLE, reason="PeeringCandidateTaken")
        pc.spec = dict(pc.spec, available=False)
        pc.status = dict(pc.status, lastUpdateTime=_ts(when))
        self._save(pc, when, "spec", "status")
        flavor = pc.spec["flavor"]["metadata"]["name"]
        transaction_id = hashlib.sha256(f"{reservation.name}/{flavor}/{reservation.created_at.isoformat()}"
                                        .encode()).hexdigest()[:32]
        self._get_or_create(
            api_version=RESERVATION_API, kind=KIND_TRANSACTION, namespace=FLUIDOS_NAMESPACE, name=transaction_id,
            labels={SIM_LABEL_NODE: str(node.pk), SIM_LABEL_PROVIDER: label_value(node.provider.name)},
            spec={"flavorID": flavor, "buyer": self._buyer(), "clusterID": self.local_cluster_id,
                  "expirationTime": _ts(when + TRANSACTION_LIFETIME),
                  "configuration": reservation.spec["configuration"]},
            when=when,
        )
        self._reservation_status(reservation, when, reservePhase=PHASE_SOLVED, transactionID=transaction_id)
        return None

    def _purchase(self, reservation: FederationObject, node: GpuNode, when: datetime) -> None:
        """The Purchase call: the provider sells the Flavor; the Contract names the peering target."""
        ref = reservation.spec["peeringCandidate"]
        pc = self._get(KIND_PEERING_CANDIDATE, ref.get("namespace") or FLUIDOS_NAMESPACE, ref["name"], lock=False)
        flavor = pc.spec["flavor"] if pc else {"metadata": {"name": node.flavor_name, "namespace": FLUIDOS_NAMESPACE},
                                               "spec": node.as_flavor()["spec"]}
        provider = node.provider
        cluster_id = liqo_cluster_id(provider)
        sold = {"metadata": {"name": flavor["metadata"]["name"], "namespace": FLUIDOS_NAMESPACE},
                "spec": dict(flavor["spec"], availability=False)}
        credentials = {"liqoID": cluster_id,
                       "kubeconfig": _provider_kubeconfig(provider, cluster_id, self.local_cluster_id)}
        contract, _ = self._get_or_create(
            api_version=RESERVATION_API, kind=KIND_CONTRACT, namespace=FLUIDOS_NAMESPACE,
            name=contract_name(flavor["metadata"]["name"]),
            labels={SIM_LABEL_NODE: str(node.pk), SIM_LABEL_PROVIDER: label_value(provider.name)},
            spec={"flavor": sold, "buyer": self._buyer(), "buyerClusterID": self.local_cluster_id,
                  "seller": reservation.spec["seller"], "configuration": reservation.spec["configuration"],
                  "transactionID": reservation.status["transactionID"],
                  "peeringTargetCredentials": credentials,
                  "expirationTime": _ts(when + CONTRACT_LIFETIME)},
            when=when,
        )
        self._reservation_status(reservation, when, phase=PHASE_SOLVED, message=RESERVATION_SOLVED,
                                 purchasePhase=PHASE_SOLVED,
                                 contract={"name": contract.name, "namespace": FLUIDOS_NAMESPACE})

    def _reservation_result(self, reservation: FederationObject, node: GpuNode) -> Reservation:
        status = reservation.status
        phase = status["phase"]["phase"]
        gpus = int(((reservation.spec["configuration"]["data"]).get("gpu") or {}).get("count") or 0)
        flavor = reservation.spec["peeringCandidate"]["name"].removeprefix("peeringcandidate-")
        if phase == PHASE_SOLVED:
            message = SOLVER_RESERVED_AND_PURCHASED
        elif phase == PHASE_FAILED:
            message = status["phase"]["message"]
        elif status.get("purchasePhase") == PHASE_RUNNING:
            message = SOLVER_PURCHASE_RUNNING
        elif status.get("reservePhase") in (PHASE_RUNNING, PHASE_SOLVED):
            message = SOLVER_RESERVE_RUNNING
        else:
            message = SOLVER_RESERVATION_CREATED
        return Reservation(
            done=phase == PHASE_SOLVED, name=reservation.name, contract=(status.get("contract") or {}).get("name", ""),
            flavor=flavor, provider=node.provider.name, node=node.name, gpus=gpus,
            remote_cluster_id=liqo_cluster_id(node.provider) if phase == PHASE_SOLVED else "",
            phase=phase, message=message,
        )

    # =========================================================================================
    # Peering (FLUIDOS.md §6.6, §6.7)

    def _peer(self, intent: IntentRef, reservation: Reservation):
        contract = self._get(KIND_CONTRACT, FLUIDOS_NAMESPACE, reservation.contract, lock=False) \
            if reservation.contract else None
        if contract is None:
            return None, Failed(f"Contract {reservation.contract or '(none)'} of Reservation {reservation.name} "
                                "does not exist", reason="ContractMissing")
        node = GpuNode.objects.select_related("provider").filter(pk=int(contract.labels[SIM_LABEL_NODE])).first()
        if node is None:
            return None, Failed(f"The node sold by Contract {contract.name} is gone", reason="NodeGone")
        provider = node.provider
        outage = self._outage(intent, [provider.name])
        if outage is not None:
            return None, outage
        cluster_id = contract.spec["peeringTargetCredentials"]["liqoID"]
        flavor = contract.spec["flavor"]["metadata"]["name"]
        now = self.clock()
        allocation, _ = self._get_or_create(
            api_version=NODECORE, kind=KIND_ALLOCATION, namespace=FLUIDOS_NAMESPACE, name=allocation_name(flavor),
            labels={**self._intent_labels(intent, user=True), SIM_LABEL_NODE: str(node.pk),
                    SIM_LABEL_PROVIDER: label_value(provider.name)},
            spec={"contract": {"name": contract.name, "namespace": FLUIDOS_NAMESPACE}, "forwarding": False},
            status={"status": ALLOCATION_INACTIVE, "message": ALLOCATION_SET_INACTIVE, "lastUpdateTime": _ts(now)},
            when=now,
        )
        error = None
        while allocation.status.get("status") in (ALLOCATION_INACTIVE, ALLOCATION_PEERING):
            when = self._due(allocation.updated_at, now)
            if when is None:
                break
            if allocation.status["status"] == ALLOCATION_INACTIVE:
                self._allocation_status(allocation, ALLOCATION_PEERING, ALLOCATION_NOW_PEERING, when)
                continue
            if (self._take_fault("peering_error", intent.intent_id, [provider.name]) is not None
                    or self._random_fault(intent, f"peering:{allocation.name}")):
                self._allocation_status(allocation, ALLOCATION_ERROR,
                                        ALLOCATION_PEERING_FAILED.format(cluster_id=cluster_id), when)
                break
            self._allocation_status(allocation, ALLOCATION_ACTIVE, ALLOCATION_NOW_ACTIVE, when)
            self._add_resource_slice(contract, node, cluster_id, when)

        state = allocation.status["status"]
        if state == ALLOCATION_ERROR:
            error = Failed(SOLVER_ALLOCATION_ERROR, reason="PeeringError")
        messages = {ALLOCATION_INACTIVE: SOLVER_ALLOCATION_CREATED, ALLOCATION_PEERING: SOLVER_ALLOCATION_PEERING,
                    ALLOCATION_ACTIVE: SOLVER_ALLOCATION_ACTIVE, ALLOCATION_ERROR: SOLVER_ALLOCATION_ERROR}
        active = state == ALLOCATION_ACTIVE
        return Peering(done=active, allocation=allocation.name, remote_cluster_id=cluster_id,
                       virtual_node=VIRTUAL_NODE_NAME.format(cluster_id=cluster_id) if active else "",
                       phase=state, message=messages.get(state, allocation.status.get("message", ""))), error

    def _allocation_status(self, allocation: FederationObject, state: str, message: str, when: datetime) -> None:
        allocation.status = dict(allocation.status, status=state, message=message, lastUpdateTime=_ts(when))
        self._save(allocation, when)

    def _add_resource_slice(self, contract: FederationObject, node: GpuNode, cluster_id: str, when: datetime):
        """The ResourceSlice Liqo creates for the Contract (no GPU), with the GPUs FLARE adds (§6.7),
        and the virtual node that shows them."""
        data = contract.spec["configuration"]["data"]
        gpus = int((data.get("gpu") or {}).get("count") or 0)
        resources = {"cpu": data.get("cpu", "0"), "memory": data.get("memory", "0"), "pods": data.get("pods", "0")}
        if gpus:
            resources[GPU_RESOURCE.get((node.vendor or "nvidia").lower(), GPU_RESOURCE["nvidia"])] = str(gpus)
        namespace = LIQO_TENANT_NAMESPACE.format(cluster_id=cluster_id)
        self._get_or_create(
            api_version=LIQO_AUTH_API, kind=KIND_RESOURCE_SLICE, namespace=namespace, name=contract.name,
            labels={LIQO_LABEL_REMOTE_CLUSTER: cluster_id, "liqo.io/replication": "true",
                    SIM_LABEL_NODE: str(node.pk), SIM_LABEL_PROVIDER: label_value(node.provider.name)},
            spec={"class": "default", "providerClusterID": cluster_id, "resources": resources},
            status={"conditions": [
                _condition("Authentication", "Accepted", "ResourceSliceAuthenticated",
                           "ResourceSlice authenticated", when),
                _condition("Resources", "Accepted", "ResourceSliceResourcesAccepted",
                           "ResourceSlice resources accepted", when),
            ], "resources": dict(resources)},
            when=when,
        )
        self._sync_virtual_node(cluster_id, when)

    def _sync_virtual_node(self, cluster_id: str, when: datetime) -> None:
        """The virtual node shows the sum of the cluster's ResourceSlices; it goes with the last one."""
        slices = FederationObject.objects.filter(kind=KIND_RESOURCE_SLICE,
                                                 namespace=LIQO_TENANT_NAMESPACE.format(cluster_id=cluster_id))
        name = VIRTUAL_NODE_NAME.format(cluster_id=cluster_id)
        node = self._get(KIND_NODE, "", name)
        totals: dict[str, Decimal] = {}
        for item in slices:
            for resource, value in (item.spec.get("resources") or {}).items():
                totals[resource] = totals.get(resource, Decimal(0)) + _quantity(value)
        if not totals:
            if node is not None:
                node.delete()
            return
        capacity = {resource: format_quantity(value, binary=resource == "memory")
                    for resource, value in sorted(totals.items())}
        status = {"capacity": capacity, "allocatable": dict(capacity),
                  "conditions": [_condition("Ready", "True", "KubeletReady", "The virtual kubelet is ready", when)]}
        if node is None:
            self._get_or_create(
                api_version="v1", kind=KIND_NODE, namespace="", name=name,
                labels={"liqo.io/type": "virtual-node", LIQO_LABEL_REMOTE_CLUSTER: cluster_id,
                        "kubernetes.io/hostname": name, "kubernetes.io/role": "agent", "type": "virtual-kubelet"},
                spec={"taints": [{"key": LIQO_VIRTUAL_NODE_TAINT, "value": "true", "effect": "NoExecute"}]},
                status=status, when=when,
            )
        elif node.status.get("capacity") != capacity:
            node.status = status
            self._save(node, when)

    # =========================================================================================
    # Namespace, offloading, workloads (FLUIDOS.md §6.8, §6.9)

    def _intent_providers(self, intent: IntentRef) -> list[str]:
        names = {a.labels.get(SIM_LABEL_PROVIDER) for a in self._owned(intent, KIND_ALLOCATION)}
        label_to_name = {label_value(p.name): p.name for p in Provider.objects.only("name")}
        return sorted(label_to_name.get(n, n) for n in names if n)

    def _deploy(self, intent: IntentRef, peerings: list[Peering], manifests: list[dict]):
        outage = self._outage(intent, self._intent_providers(intent))
        if outage is not None:
            return None, outage
        now = self.clock()
        labels = self._intent_labels(intent)
        namespace_manifest = next((m for m in manifests if m.get("kind") == KIND_NAMESPACE), None)
        if namespace_manifest is not None:
            namespace = namespace_manifest["metadata"]["name"]
            self._apply(namespace_manifest, labels, now, status={"phase": "Active"})
        else:
            stored = self._owned(intent, KIND_NAMESPACE).first()
            if stored is None:
                raise ValueError("deploy needs the intent's Namespace manifest (intents.workload.workload_manifests)")
            namespace = stored.name

        offloading_manifest = next((m for m in manifests if m.get("kind") == KIND_OFFLOADING), None)
        if offloading_manifest is not None:
            offloading_manifest = dict(offloading_manifest, metadata=dict(offloading_manifest["metadata"],
                                                                          namespace=namespace))
            offloading = self._apply(offloading_manifest, labels, now,
                                     status={"offloadingPhase": OFFLOADING_IN_PROGRESS})
        else:
            offloading = self._owned(intent, KIND_OFFLOADING).filter(namespace=namespace).first()
            if offloading is None:
                raise ValueError("deploy needs the intent's NamespaceOffloading manifest")
            offloading = self._get(KIND_OFFLOADING, offloading.namespace, offloading.name)

        if offloading.status.get("offloadingPhase") != OFFLOADING_READY:
            self._advance_offloading(offloading, namespace, now)
        phase = offloading.status.get("offloadingPhase")
        applied = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests
                   if m.get("kind") in (KIND_NAMESPACE, KIND_OFFLOADING)]
        if phase != OFFLOADING_READY:
            return Deployment(done=False, namespace=namespace, objects=applied, phase=phase,
                              message=f"NamespaceOffloading {offloading.name} in {namespace}: {phase}"), None

        for manifest in manifests:
            if manifest.get("kind") in (KIND_NAMESPACE, KIND_OFFLOADING):
                continue
            manifest = dict(manifest, metadata=dict(manifest.get("metadata") or {}))
            manifest["metadata"].setdefault("namespace", namespace)
            self._apply(manifest, labels, now, status=self._initial_status(manifest, now))
            applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        workloads = len(applied) - len([m for m in manifests if m.get("kind") in (KIND_NAMESPACE, KIND_OFFLOADING)])
        message = (f"Namespace {namespace} offloaded; {workloads} workload object(s) applied" if workloads
                   else f"Namespace {namespace} offloaded")
        return Deployment(done=True, namespace=namespace, objects=applied, phase=phase, message=message), None

    def _apply(self, manifest: dict, labels: dict, when: datetime, *, status: dict) -> FederationObject:
        """Create or update one object from its manifest (status is the cluster's, kept on update)."""
        metadata = manifest.get("metadata") or {}
        kind = manifest["kind"]
        namespace = "" if kind == KIND_NAMESPACE else (metadata.get("namespace") or "")
        merged = {**(metadata.get("labels") or {}), **labels}
        spec = manifest.get("spec") or {}
        obj, created = self._get_or_create(
            api_version=manifest.get("apiVersion") or "v1", kind=kind, namespace=namespace, name=metadata["name"],
            labels=merged, spec=spec, status=status, when=when,
        )
        if not created and (obj.spec != spec or obj.labels != {**obj.labels, **merged}):
            obj.spec = spec
            obj.labels = {**obj.labels, **merged}
            obj.save(update_fields=["spec", "labels"])
        return obj

    def _advance_offloading(self, offloading: FederationObject, namespace: str, now: datetime) -> None:
        peered = sorted(n.labels.get(LIQO_LABEL_REMOTE_CLUSTER, "") for n in
                        FederationObject.objects.filter(kind=KIND_NODE, labels__contains={"liqo.io/type":
                                                                                           "virtual-node"}))
        selected = _selected_clusters(offloading.spec, peered)
        when = self._due(offloading.updated_at, now)
        if when is None:
            return
        if not selected:
            if offloading.status.get("offloadingPhase") != OFFLOADING_NO_CLUSTER:
                offloading.status = {"offloadingPhase": OFFLOADING_NO_CLUSTER}
                self._save(offloading, when)
            return
        if any(cluster not in peered for cluster in selected):
            return  # a selected cluster has no virtual node (yet): Liqo keeps trying
        conditions = {cluster: [
            _condition("OffloadingRequired", "True", "ClusterSelected",
                       "You have selected this cluster for offloading", when),
            _condition("Ready", "True", "RemoteNamespaceCreated", "Namespace correctly offloaded on this cluster",
                       when),
        ] for cluster in selected}
        remote = f"{namespace}-{self.local_cluster_id}"[:63].rstrip("-")
        offloading.status = {"observedGeneration": 1, "offloadingPhase": OFFLOADING_READY,
                             "remoteNamespaceName": remote, "remoteNamespacesConditions": conditions}
        self._save(offloading, when)

    @staticmethod
    def _initial_status(manifest: dict, when: datetime) -> dict:
        kind = manifest.get("kind")
        spec = manifest.get("spec") or {}
        if kind == "Deployment":
            replicas = int(spec.get("replicas", 1))
            return {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                    "unavailableReplicas": replicas,
                    "conditions": [_condition("Progressing", "True", "NewReplicaSetCreated",
                                              f'Created new replica set "{manifest["metadata"]["name"]}"', when)]}
        if kind == "Job":
            return {"startTime": _ts(when), "active": int(spec.get("parallelism", 1)), "ready": 0}
        if kind == "PersistentVolumeClaim":
            requests = ((spec.get("resources") or {}).get("requests")) or {}
            return {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                    "capacity": {"storage": requests.get("storage", "0")}}
        if kind == "HorizontalPodAutoscaler":
            minimum = int(spec.get("minReplicas", 1))
            return {"currentReplicas": minimum, "desiredReplicas": minimum}
        if kind in ("Service", "Ingress"):
            return {"loadBalancer": {}}
        return {}

    # =========================================================================================
    # Observation

    def _observe(self, intent: IntentRef) -> Observation:
        workload = (self._owned(intent).filter(kind__in=WORKLOAD_KINDS).select_for_update()
                    .order_by("created_at", "id").first())
        if workload is None:
            return Observation(state="pending", message="The workload is not deployed yet")
        now = self.clock()
        url = workload_url(intent.document, workload.namespace)
        failure = self._recorded_failure(workload)
        if failure is not None:
            return Observation(state="failed", message=failure[1], reason=failure[0], workload_url=url)
        finished = workload.kind == "Job" and any(c.get("type") == "Complete" and c.get("status") == "True"
                                                  for c in workload.status.get("conditions") or ())
        if not finished:
            providers = self._intent_providers(intent)
            outage = self._take_fault("provider_outage", intent.intent_id, providers)
            if outage is not None:
                who = outage["provider"] or "the provider"
                return self._fail_workload(workload, REASON_PROVIDER_OUTAGE,
                                           f"Provider {who} is unreachable: the virtual node is NotReady and the "
                                           "workload was lost", now, url)
            if self._take_fault("workload_crash", intent.intent_id, providers) is not None:
                return self._crash(workload, now, url)
        if workload.kind == "Deployment":
            return self._observe_service(intent, workload, now, url)
        return self._observe_batch(intent, workload, now, url)

    @staticmethod
    def _recorded_failure(workload: FederationObject) -> tuple[str, str] | None:
        reason = workload.labels.get(SIM_LABEL_FAILURE)
        if not reason:
            return None
        for condition in workload.status.get("conditions") or ():
            if condition.get("status") in ("True", "False") and condition.get("type") in ("Failed", "Available"):
                return reason, condition.get("message", reason)
        return reason, reason

    def _fail_workload(self, workload: FederationObject, reason: str, message: str, when: datetime,
                       url: str) -> Observation:
        status = dict(workload.status)
        if workload.kind == "Job":
            status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != "Failed"] + [
                _condition("Failed", "True", reason, message, when)]
            status["failed"] = int(status.get("failed", 0)) + max(int(status.get("active", 0)), 1)
            status["active"] = 0
            status["ready"] = 0
        else:
            status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != "Available"] + [
                _condition("Available", "False", "MinimumReplicasUnavailable", message, when)]
            status["readyReplicas"] = 0
            status["availableReplicas"] = 0
            status["unavailableReplicas"] = int(status.get("replicas", 1))
        workload.status = status
        workload.labels = dict(workload.labels, **{SIM_LABEL_FAILURE: reason})
        self._save(workload, when, "status", "labels")
        return Observation(state="failed", message=message, reason=reason, workload_url=url)

    def _crash(self, workload: FederationObject, when: datetime, url: str) -> Observation:
        if workload.kind == "Job":
            return self._fail_workload(workload, REASON_BACKOFF_LIMIT, JOB_BACKOFF_LIMIT_MESSAGE, when, url)
        container = workload.name
        return self._fail_workload(workload, REASON_CRASH_LOOP,
                                   f"Deployment {workload.name}: container {container} is in CrashLoopBackOff "
                                   "(back-off restarting failed container)", when, url)

    def _observe_service(self, intent: IntentRef, workload: FederationObject, now: datetime,
                         url: str) -> Observation:
        replicas = int((workload.spec or {}).get("replicas", 1))
        ready = int(workload.status.get("readyReplicas", 0))
        if ready < replicas:
            when = self._due(workload.updated_at, now)
            if when is None:
                return Observation(state="pending", message=f"Deployment {workload.name}: {ready}/{replicas} "
                                                            "replicas ready", ready_replicas=ready, workload_url=url)
            if self._random_fault(intent, "workload"):
                return self._crash(workload, when, url)
            status = dict(workload.status, readyReplicas=replicas, availableReplicas=replicas)
            status.pop("unavailableReplicas", None)
            status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != "Available"] + [
                _condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                           when)]
            workload.status = status
            self._save(workload, when)
            ready = replicas
        return Observation(state="running", message=f"Deployment {workload.name}: {ready}/{replicas} replicas ready",
                           workload_url=url, gpu_utilization=self.gpu_utilization(intent.intent_id, now, batch=False),
                           ready_replicas=ready)

    def task_durations(self, intent_id: str, tasks: int) -> list[float]:
        """Seconds each task of a batch intent runs: around `batch_seconds`, the same on every attempt."""
        chance = random.Random(f"{self.seed}:{intent_id}:duration")
        return [self.batch_seconds * (0.8 + 0.4 * chance.random()) for _ in range(max(tasks, 1))]

    def _observe_batch(self, intent: IntentRef, job: FederationObject, now: datetime, url: str) -> Observation:
        spec = job.spec or {}
        tasks = int(spec.get("completions") or spec.get("parallelism") or 1)
        any_policy = bool(spec.get("successPolicy"))
        durations = sorted(self.task_durations(intent.intent_id, tasks))
        completion = durations[0] if any_policy else durations[-1]
        started = job.created_at
        if any(c.get("type") == "Complete" and c.get("status") == "True" for c in job.status.get("conditions") or ()):
            done = int(job.status.get("succeeded", tasks))
            return Observation(state="succeeded", message=f"Job {job.name} completed: {done}/{tasks} task(s) "
                                                          "succeeded", workload_url=url, completed_tasks=done)
        timeout = _batch_timeout(intent.document)
        if timeout is None and spec.get("activeDeadlineSeconds"):
            timeout = int(spec["activeDeadlineSeconds"])
        elapsed = (now - started).total_seconds()
        crash_at = None
        chance = self._chance(intent, "workload")
        if self.fault_rate > 0 and chance.random() < self.fault_rate:
            crash_at = completion * chance.random()
        if timeout is not None and timeout < completion and elapsed >= timeout and \
                (crash_at is None or crash_at >= timeout):
            return self._fail_workload(job, REASON_DEADLINE, JOB_DEADLINE_MESSAGE,
                                       started + timedelta(seconds=timeout), url)
        if crash_at is not None and elapsed >= crash_at:
            return self._crash(job, started + timedelta(seconds=crash_at), url)
        if elapsed >= completion:
            finished = started + timedelta(seconds=completion)
            succeeded = 1 if any_policy else tasks
            job.status = dict(job.status, active=0, ready=0, succeeded=succeeded, completionTime=_ts(finished),
                              conditions=[_condition("Complete", "True", "CompletionsReached" if not any_policy
                                                     else "SuccessPolicy", "Reached expected number of succeeded "
                                                     "pods", finished)])
            self._save(job, finished if finished <= now else now)
            return Observation(state="succeeded", message=f"Job {job.name} completed: {succeeded}/{tasks} task(s) "
                                                          "succeeded", workload_url=url, completed_tasks=succeeded)
        completed = sum(1 for d in durations if d <= elapsed)
        if int(job.status.get("succeeded", 0)) != completed:
            job.status = dict(job.status, succeeded=completed, active=tasks - completed, ready=tasks - completed)
            job.save(update_fields=["status"])
        return Observation(state="running", message=f"Job {job.name}: {completed}/{tasks} task(s) completed",
                           workload_url=url, gpu_utilization=self.gpu_utilization(intent.intent_id, now, batch=True),
                           completed_tasks=completed)

    def gpu_utilization(self, intent_id: str, when: datetime, *, batch: bool) -> float:
        """Plausible GPU utilisation (0–1): a per-intent level and swing, a slow wave, 15-second jitter.
        Deterministic in (seed, intent, time)."""
        shape = random.Random(f"{self.seed}:{intent_id}:utilisation")
        level = 0.72 + 0.2 * shape.random() if batch else 0.3 + 0.4 * shape.random()
        swing = 0.04 + 0.08 * shape.random()
        period = 120 + 480 * shape.random()
        offset = 2 * math.pi * shape.random()
        seconds = when.timestamp()
        jitter = random.Random(f"{self.seed}:{intent_id}:{int(seconds // 15)}").uniform(-0.03, 0.03)
        value = level + swing * math.sin(2 * math.pi * seconds / period + offset) + jitter
        return round(min(0.99, max(0.01, value)), 3)

    # =========================================================================================
    # Release (FLUIDOS.md §6.11)

    def _release(self, intent: IntentRef) -> None:
        now = self.clock()
        owned = list(self._owned(intent).select_for_update())
        by_kind: dict[str, list[FederationObject]] = {}
        for obj in owned:
            by_kind.setdefault(obj.kind, []).append(obj)
        solvers = by_kind.get(KIND_SOLVER, [])
        reservations = by_kind.get(KIND_RESERVATION, [])
        allocations = by_kind.get(KIND_ALLOCATION, [])

        contract_names = {(r.status.get("contract") or {}).get("name") for r in reservations}
        contract_names |= {(a.spec.get("contract") or {}).get("name") for a in allocations}
        contract_names.discard(None)
        contracts = list(FederationObject.objects.select_for_update().filter(
            kind=KIND_CONTRACT, namespace=FLUIDOS_NAMESPACE, name__in=contract_names))
        cluster_ids = {(c.spec.get("peeringTargetCredentials") or {}).get("liqoID") for c in contracts}
        cluster_ids.discard(None)
        slices = list(FederationObject.objects.select_for_update().filter(kind=KIND_RESOURCE_SLICE,
                                                                          name__in=contract_names))
        cluster_ids |= {s.namespace.removeprefix("liqo-tenant-") for s in slices}
        transactions = list(FederationObject.objects.select_for_update().filter(
            kind=KIND_TRANSACTION, namespace=FLUIDOS_NAMESPACE,
            name__in={r.status.get("transactionID") for r in reservations if r.status.get("transactionID")}))
        discoveries = list(FederationObject.objects.select_for_update().filter(
            kind=KIND_DISCOVERY, namespace=FLUIDOS_NAMESPACE, name__in=[discovery_name(s.name) for s in solvers]))
        taken = [(r.spec.get("peeringCandidate") or {}) for r in reservations
                 if r.status.get("reservePhase") == PHASE_SOLVED and r.status["phase"]["phase"] != PHASE_FAILED]

        fluidos = _FLUIDOS_KINDS | {KIND_NAMESPACE, KIND_OFFLOADING, KIND_RESOURCE_SLICE, KIND_NODE, KIND_FAULT}
        workloads = sorted((o for o in owned if o.kind not in fluidos),
                           key=lambda o: (_WORKLOAD_RELEASE_RANK.get(o.kind, 6 if o.namespace else 9),
                                          -o.created_at.timestamp(), -o.pk))
        ordered = [*workloads, *by_kind.get(KIND_OFFLOADING, []), *by_kind.get(KIND_NAMESPACE, [])]
        for obj in ordered:
            obj.delete()
        for item in slices:
            item.delete()
        for cluster_id in sorted(cluster_ids):
            self._sync_virtual_node(cluster_id, now)
        for group in (allocations, contracts, transactions, reservations, discoveries, solvers):
            for obj in group:
                obj.delete()
        # The sold GPUs are advertised again: the PeeringCandidates stay, available.
        for ref in taken:
            pc = self._get(KIND_PEERING_CANDIDATE, ref.get("namespace") or FLUIDOS_NAMESPACE, ref.get("name", ""))
            if pc is not None and not pc.spec.get("available"):
                pc.spec = dict(pc.spec, available=True)
                pc.status = dict(pc.status, lastUpdateTime=_ts(now))
                self._save(pc, now, "spec", "status")


__all__ = ["FAULT_KINDS", "SimulatedFederation", "allocation_name", "contract_name", "discovery_name", "h4",
           "liqo_cluster_id", "peering_candidate_name", "reservation_name"]

"""Fake FLUIDOS, Liqo, Capsule and kube-controller-manager controllers for the emulator.

They run in-process and act on the emulator through its in-process API (`create_object`,
`update_status`, ...), i.e. through the same admission/validation/resourceVersion pipeline as an
HTTP client, but without fault injection and without appearing in `emulator.requests`. They are
event driven like controller-runtime: each `step()` drains the events committed since the last
step, maps them to reconcile requests (with the upstream watches and predicates) and runs every
queued reconcile once, in a fixed order. A reconcile that changes nothing commits nothing, so
`run_until_idle()` terminates; timeouts are checked only when something triggers a reconcile
(as upstream: a hung Discovery leaves its Solver `Running` for ever).

Phases and messages follow deploy/crds + docs FLUIDOS.md §1/§5 and the FLUIDOS node sources
(rear-manager solver/allocation controllers, discovery and reservation controllers).

    fl = FluidosControllers(emu, providers=[make_flavor(...), ...]).install()
    ... create a Solver through the HTTP API ...
    fl.run_until_idle()            # or fl.start() for a background loop, fl.stop()
    fl.fail("no_candidate")        # failure modes: no_candidate, discovery_error, hang, taken,
                                   # reserve_error, peering_error (times=..., target=...)
    fl.set_job_outcome("ns", "job", "Failed")
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import hashlib
import json
import re
import secrets
import threading
import time
from typing import Any, Callable

from kubernetes.utils import parse_quantity

from . import apimachinery as am
from .emulator import AdmissionDenied, KubeEmulator

FLUIDOS_NS = "fluidos"
NODECORE = "nodecore.fluidos.eu/v1alpha1"
ADVERTISEMENT = "advertisement.fluidos.eu/v1alpha1"
RESERVATION = "reservation.fluidos.eu/v1alpha1"
NETWORK = "network.fluidos.eu/v1alpha1"
LIQO_AUTH = "authentication.liqo.io/v1beta1"
LIQO_OFFLOADING = "offloading.liqo.io/v1beta1"
CAPSULE = "capsule.clastix.io/v1beta2"

IDLE, RUNNING, SOLVED, FAILED, TIMED_OUT = "Idle", "Running", "Solved", "Failed", "Timed Out"
KNOWN_PHASES = (IDLE, RUNNING, SOLVED, FAILED, TIMED_OUT)
ALLOC_STATES = ("Inactive", "Provisioning", "ResourceCreation", "Peering", "Active", "Released")
EXPIRATION_RUNNING = 120  # flags.ExpirationPhaseRunning
OFFLOADING_FINALIZER = "namespaceoffloading-controller.liqo.io/finalizer"
VIRTUAL_TAINT = {"key": "virtual-node.liqo.io/not-allowed", "value": "true", "effect": "NoExecute"}
FAILURE_MODES = ("no_candidate", "discovery_error", "hang", "taken", "reserve_error", "peering_error")

# FLUIDOS.md §1: typed GPU fields of a K8Slice Flavor.
GPU_STRING = {"model", "vendor", "tier", "architecture", "compute_capability", "interconnect", "topology",
              "sharing_strategy", "multi_gpu_efficiency", "network_tier", "provider", "region", "zone"}
GPU_INT = {"count", "network_latency_ms"}
GPU_FLOAT = {"fp32_tflops", "hourly_rate", "training_score", "inference_score", "hpc_score", "graphics_score"}
GPU_BOOL = {"multi_instance", "shared", "dedicated", "interruptible", "pre_emptible"}
GPU_QUANTITY = {"memory", "cores", "clock_speed", "network_bandwidth", "interconnect_bandwidth"}


def h4(flavor_name: str) -> str:
    return hashlib.sha256(flavor_name.encode()).hexdigest()[:4]


def contract_name(flavor_name: str) -> str:
    return f"contract-{flavor_name}-{h4(flavor_name)}".replace(".", "-")


def allocation_name(flavor_name: str) -> str:
    return f"allocation-{flavor_name}-{h4(flavor_name)}"


def clean_gpu(gpu: dict) -> dict:
    """The provider's serialisation: non-quantity fields other than model/vendor are dropped when
    they are 0, "" or false (FLUIDOS.md §1)."""
    out = {}
    for k, v in gpu.items():
        if k not in ("model", "vendor") and k not in GPU_QUANTITY and v in (0, "", False, None) \
                and not (isinstance(v, float) and v != 0):
            continue
        out[k] = v
    return out


def make_flavor(name: str, *, domain: str, node_id: str, liqo_id: str, ip: str = "10.0.0.10:30000",
                cpu: str = "32", memory: str = "128Gi", pods: str = "110", architecture: str = "amd64",
                gpu: dict | None = None, storage: str | None = None, available: bool = True) -> dict:
    """A provider's K8Slice Flavor manifest as the FLUIDOS local resource manager writes it."""
    chars: dict[str, Any] = {"architecture": architecture, "cpu": cpu, "memory": memory, "pods": pods}
    if storage is not None:
        chars["storage"] = storage
    if gpu is not None:
        chars["gpu"] = clean_gpu(gpu)
    owner = {"domain": domain, "nodeID": node_id, "ip": ip, "additionalInformation": {"liqoID": liqo_id}}
    return {
        "apiVersion": NODECORE, "kind": "Flavor",
        "metadata": {"name": name, "namespace": FLUIDOS_NS},
        "spec": {
            "providerID": node_id, "owner": owner, "availability": available,
            "price": {"amount": "", "currency": "", "period": ""},
            "networkPropertyType": "networkProperty",
            "location": {},
            "flavorType": {"typeIdentifier": "K8Slice", "typeData": {
                "characteristics": chars,
                "properties": {},
                "policies": {"partitionability": {"cpuMin": "0", "memoryMin": "0", "podsMin": "0",
                                                  "cpuStep": "1", "memoryStep": "1Gi", "podsStep": "1"}}}},
        },
    }


class _Failure:
    def __init__(self, mode: str, times: int | None, target: str | None):
        self.mode, self.times, self.target, self.hits = mode, times, target, 0

    def fires(self, target: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.target is not None and self.target != target:
            return False
        self.hits += 1
        return True


class FluidosControllers:
    """See the module docstring. `providers` is the provider catalogue: Flavor manifests
    (nodecore.fluidos.eu/v1alpha1) owned by remote FLUIDOS nodes, served by Discoveries."""

    def __init__(self, emulator: KubeEmulator, providers: list[dict] | None = None, *,
                 domain: str = "consumer.fluidos.local", node_id: str = "consumer-node-0",
                 ip: str = "10.0.0.1:30000", liqo_id: str = "consumer-cluster",
                 clock: Callable[[], float] | None = None, default_job_outcome: str = "Succeeded",
                 worker_node: dict | None = None):
        self.emu = emulator
        self.identity = {"domain": domain, "nodeID": node_id, "ip": ip}
        self.liqo_id = liqo_id
        self._clock = clock or time.time
        self._offset = 0.0
        self.catalogue: dict[str, dict] = {}
        for f in providers or []:
            self.add_provider_flavor(f)
        self.default_job_outcome = default_job_outcome
        self.job_outcomes: dict[tuple[str, str], str] = {}
        self.failures: list[_Failure] = []
        self.worker_node = worker_node
        self.log: list[str] = []
        self._rv = 0
        self._queue: dict[str, set] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.errors: list[BaseException] = []

    # ----------------------------------------------------------------------------------------
    # setup and driving

    def install(self) -> "FluidosControllers":
        emu = self.emu
        self._rv = emu.resource_version
        self._ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FLUIDOS_NS}}, "fluidos-helm")
        self._ensure({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "fluidos-node-identity", "namespace": FLUIDOS_NS},
                      "data": dict(self.identity)}, "fluidos-helm")
        for owner in sorted({json.dumps(f["spec"]["owner"], sort_keys=True) for f in self.catalogue.values()}):
            o = json.loads(owner)
            self._ensure({"apiVersion": NETWORK, "kind": "KnownCluster",
                          "metadata": {"name": f"knowncluster-{o['nodeID']}", "namespace": FLUIDOS_NS},
                          "spec": {"address": o["ip"]}}, "network-manager")
        node = self.worker_node or {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "consumer-worker", "labels": {
                "kubernetes.io/hostname": "consumer-worker", "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "node-role.fluidos.eu/resources": "true"}},
            "spec": {},
            "status": {"capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}],
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}}
        if node:
            self._ensure(node, "kubelet")
        emu.add_admission("nsoff.liqo.io", self._admit_offloading)
        emu.add_admission("namespaces.projectcapsule.dev", self._admit_capsule_namespace)
        self.resync()
        return self

    def _ensure(self, obj: dict, manager: str) -> None:
        try:
            self.emu.create_object(obj, manager=manager)
        except am.ApiError as e:
            if e.code != 409:
                raise

    def now(self) -> float:
        return self._clock() + self._offset

    def ts(self) -> str:
        return _dt.datetime.fromtimestamp(self.now(), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def advance(self, seconds: float) -> None:
        """Move the controllers' clock (phase times and expirations) forward."""
        self._offset += seconds

    def resync(self) -> None:
        """Enqueue every object (controller-runtime's periodic resync)."""
        with self._lock, self.emu.store.lock:
            for key, obj in list(self.emu.store.objects.items()):
                self._route(key, "ADDED", obj, None)

    def fail(self, mode: str, times: int | None = None, target: str | None = None) -> None:
        """Switch a failure mode on. `target`: the Solver name (no_candidate, discovery_error, hang,
        taken, reserve_error) or the Allocation name (peering_error)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {FAILURE_MODES}")
        self.failures.append(_Failure(mode, times, target))

    def clear_failures(self) -> None:
        self.failures = []

    def _failing(self, mode: str, target: str) -> bool:
        return any(f.fires(target) for f in self.failures if f.mode == mode)

    def set_job_outcome(self, namespace: str, name: str, outcome: str) -> None:
        """`Succeeded`, `Failed` or `Running` (stays active) for a Job's pods."""
        if outcome not in ("Succeeded", "Failed", "Running"):
            raise ValueError(outcome)
        self.job_outcomes[(namespace, name)] = outcome
        with self._lock:
            self._q("job", namespace, name)

    def add_provider_flavor(self, flavor: dict) -> None:
        self.catalogue[flavor["metadata"]["name"]] = copy.deepcopy(flavor)

    def step(self) -> int:
        """One deterministic reconcile pass; returns how many reconciles ran."""
        with self._lock:
            try:
                events = self.emu.events_since(self._rv)
            except am.ApiError:
                self._rv = self.emu.resource_version
                events = []
                self.resync()
            for ev in events:
                self._rv = max(self._rv, ev.rv)
                self._route(ev.key, ev.type, ev.obj, ev.old)
            queue, self._queue = self._queue, {}
            ran = 0
            for ctl in CONTROLLER_ORDER:
                for ns, name in sorted(queue.get(ctl, ()), key=lambda k: (k[0] or "", k[1])):
                    ran += 1
                    try:
                        getattr(self, f"_reconcile_{ctl}")(ns, name)
                    except am.ApiError as e:
                        if e.code in (404, 409):
                            self._q(ctl, ns, name)    # requeue, like a returned error
                        else:
                            self.errors.append(e)
                            raise
            return ran

    def run_until_idle(self, max_steps: int = 200) -> int:
        for i in range(max_steps):
            if self.step() == 0 and not self._pending_events():
                return i
        raise RuntimeError(f"controllers still busy after {max_steps} steps")

    def _pending_events(self) -> bool:
        return self.emu.resource_version > self._rv or any(self._queue.values())

    def start(self, interval: float = 0.02) -> "FluidosControllers":
        self._stop.clear()

        def loop():
            while not self._stop.is_set():
                try:
                    if self.step() == 0:
                        self._stop.wait(interval)
                except Exception as e:  # surfaced through .errors; keep the loop alive
                    self.errors.append(e)
                    self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="fluidos-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
            self._thread = None

    # ----------------------------------------------------------------------------------------
    # event routing (the controllers' watches and predicates)

    def _q(self, ctl: str, ns: str | None, name: str) -> None:
        self._queue.setdefault(ctl, set()).add((ns, name))

    def _route(self, key: tuple, etype: str, obj: dict, old: dict | None) -> None:
        group, plural, ns, name = key
        status = obj.get("status") or {}
        if (group, plural) == ("nodecore.fluidos.eu", "solvers"):
            self._q("solver", ns, name)
        elif (group, plural) == ("advertisement.fluidos.eu", "discoveries"):
            self._q("discovery", ns, name)
            if etype != "MODIFIED" or (status.get("phase") or {}).get("phase") in (SOLVED, FAILED):
                self._q("solver", ns, name.removeprefix("discovery-"))
        elif (group, plural) == ("reservation.fluidos.eu", "reservations"):
            self._q("reservation", ns, name)
            if etype != "MODIFIED" or (status.get("phase") or {}).get("phase") in (SOLVED, FAILED):
                self._q("solver", ns, name.removeprefix("reservation-"))
        elif (group, plural) == ("nodecore.fluidos.eu", "allocations"):
            self._q("allocation", ns, name)
        elif (group, plural) == ("authentication.liqo.io", "resourceslices"):
            self._q("resourceslice", ns, name)
            provider = (obj.get("spec") or {}).get("providerClusterID")
            if provider:
                self._q("virtualnode", None, provider)
        elif (group, plural) == ("", "nodes"):
            with self.emu.store.lock:
                keys = list(self.emu.store.objects)
            for k in keys:
                if k[:2] == ("offloading.liqo.io", "namespaceoffloadings"):
                    self._q("offloading", k[2], k[3])
            self._pending_pods()
        elif (group, plural) == ("offloading.liqo.io", "namespaceoffloadings"):
            self._q("offloading", ns, name)
            self._pending_pods(ns)
        elif (group, plural) == ("", "namespaces"):
            self._q("capsule", None, name)
        elif (group, plural) == ("capsule.clastix.io", "tenants"):
            self._q("tenant", None, name)
        elif (group, plural) == ("apps", "deployments"):
            self._q("deployment", ns, name)
            self._q("hpa_for_target", ns, name)
        elif (group, plural) == ("apps", "replicasets"):
            self._q("replicaset", ns, name)
            for o in self._owners(obj, "Deployment"):
                self._q("deployment", ns, o)
        elif (group, plural) == ("", "pods"):
            for o in self._owners(obj, "ReplicaSet"):
                self._q("replicaset", ns, o)
            for o in self._owners(obj, "Job"):
                self._q("job", ns, o)
            if etype != "DELETED" and not (obj.get("spec") or {}).get("nodeName"):
                self._q("scheduler", ns, name)
            if etype == "DELETED":
                self._pending_pods(ns)
        elif (group, plural) == ("batch", "jobs"):
            self._q("job", ns, name)
        elif (group, plural) == ("", "persistentvolumeclaims"):
            self._q("pvc", ns, name)
        elif (group, plural) == ("networking.k8s.io", "ingresses"):
            self._q("ingress", ns, name)
        elif (group, plural) == ("", "services"):
            self._q("service", ns, name)
        elif (group, plural) == ("autoscaling", "horizontalpodautoscalers"):
            self._q("hpa", ns, name)

    @staticmethod
    def _owners(obj: dict, kind: str) -> list[str]:
        return [r["name"] for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("kind") == kind]

    def _pending_pods(self, ns: str | None = None) -> None:
        with self.emu.store.lock:
            items = list(self.emu.store.objects.items())
        for k, o in items:
            if k[:2] == ("", "pods") and (ns is None or k[2] == ns) and not o["spec"].get("nodeName") \
                    and (o.get("status") or {}).get("phase") == "Pending":
                self._q("scheduler", k[2], k[3])

    # ----------------------------------------------------------------------------------------
    # helpers

    def _get(self, api_version: str, plural: str, name: str, ns: str | None = FLUIDOS_NS) -> dict | None:
        return self.emu.get_object(api_version, plural, name, ns)

    def _status(self, obj: dict, manager: str) -> dict:
        return self.emu.update_status(obj, manager=manager)

    def _update(self, obj: dict, manager: str) -> dict:
        return self.emu.update_object(obj, manager=manager)

    def _expired(self, last: str | None, seconds: float) -> bool:
        if not last:
            return False
        t = _dt.datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()
        return self.now() - t > seconds

    def _set_solver_phase(self, s: dict, phase: str, msg: str) -> None:
        t = self.ts()
        sp = s.setdefault("status", {}).setdefault("solverPhase", {})
        if (sp.get("phase"), sp.get("message")) != (phase, msg):
            self.log.append(f"solver/{s['metadata']['name']}: {phase} {msg}")
        sp.update({"phase": phase, "lastChangeTime": t, "message": msg, "endTime": t})

    def _set_phase(self, o: dict, phase: str, msg: str) -> None:
        ph = o.setdefault("status", {}).setdefault("phase", {})
        if (ph.get("phase"), ph.get("message")) != (phase, msg):
            self.log.append(f"{o['kind'].lower()}/{o['metadata']['name']}: {phase} {msg}")
        ph.update({"phase": phase, "lastChangeTime": self.ts(), "message": msg})

    # ----------------------------------------------------------------------------------------
    # rear-manager: Solver

    def _reconcile_solver(self, ns: str, name: str) -> None:
        s = self._get(NODECORE, "solvers", name, ns)
        if s is None:
            return
        st = s.get("status") or {}
        phase = (st.get("solverPhase") or {}).get("phase")
        if phase not in KNOWN_PHASES:
            self._set_solver_phase(s, IDLE, "Solver initialized")
            self._status(s, "rear-manager")
            return
        if phase in (FAILED, TIMED_OUT):
            return
        spec = s.get("spec") or {}
        if spec.get("findCandidate"):
            if st.get("findCandidate") != SOLVED:
                return self._find_candidate(s)
        else:
            self._set_solver_phase(s, SOLVED, "No need to find a candidate")
            s = self._status(s, "rear-manager")
        if spec.get("reserveAndBuy"):
            if st.get("reserveAndBuy") != SOLVED:
                return self._reserve_and_buy(s)
        else:
            self._set_solver_phase(s, SOLVED, "No need to reserve and buy the resources")
            self._status(s, "rear-manager")
            return
        if not spec.get("establishPeering"):
            self._set_solver_phase(s, SOLVED, "No need to enstablish a peering")
            self._status(s, "rear-manager")
            return
        if st.get("peering") != SOLVED:
            # Peering through the Solver is not what FLARE does (it creates the Allocation itself).
            s["status"]["peering"] = RUNNING
            self._set_solver_phase(s, RUNNING, "Allocation created")
            self._status(s, "rear-manager")

    def _find_candidate(self, s: dict) -> None:
        st = s["status"]
        fc = st.get("findCandidate")
        name = s["metadata"]["name"]
        if fc == IDLE:
            if self._search_pcs(s):
                st["findCandidate"] = SOLVED
                self._set_solver_phase(s, RUNNING, "Solver has found a candidate")
            else:
                st["findCandidate"] = RUNNING
                self._set_solver_phase(s, RUNNING, "Solver is trying a Discovery")
            self._status(s, "rear-manager")
        elif fc == RUNNING:
            if self._expired(st["solverPhase"].get("lastChangeTime"), EXPIRATION_RUNNING):
                self._set_solver_phase(s, TIMED_OUT, "Solver has expired before finding a candidate")
                self._status(s, "rear-manager")
                return
            d = self._get(ADVERTISEMENT, "discoveries", f"discovery-{name}")
            if d is None:
                body = {"apiVersion": ADVERTISEMENT, "kind": "Discovery",
                        "metadata": {"name": f"discovery-{name}", "namespace": FLUIDOS_NS},
                        "spec": {"solverID": name, "subscribe": False}}
                if (s.get("spec") or {}).get("selector") is not None:
                    body["spec"]["selector"] = copy.deepcopy(s["spec"]["selector"])
                d = self.emu.create_object(body, manager="rear-manager")
            dphase = ((d.get("status") or {}).get("phase") or {}).get("phase")
            if dphase == SOLVED:
                st["findCandidate"] = SOLVED
                st["discoveryPhase"] = SOLVED
                self._set_solver_phase(s, RUNNING, "Solver has completed the Discovery phase")
            elif dphase == FAILED:
                st["findCandidate"] = FAILED
                st["discoveryPhase"] = FAILED
            elif dphase == TIMED_OUT:
                st["findCandidate"] = TIMED_OUT
                st["discoveryPhase"] = TIMED_OUT
            self._status(s, "rear-manager")
        elif fc == FAILED:
            self._set_solver_phase(s, FAILED, "Solver has not found any candidate")
            self._status(s, "rear-manager")
        elif fc == TIMED_OUT:
            self._set_solver_phase(s, TIMED_OUT, "Solver has expired before finding a candidate")
            self._status(s, "rear-manager")
        else:
            st["findCandidate"] = IDLE
            self._set_solver_phase(s, RUNNING, "Solver is running")
            self._status(s, "rear-manager")

    def _reserve_and_buy(self, s: dict) -> None:
        """Full automation (reserveAndBuy: true): GPU filters on PCs, first match, a Reservation.
        Not FLARE's path; kept so a Solver with the flag behaves as FLUIDOS.md §5 says."""
        st = s["status"]
        name = s["metadata"]["name"]
        if st.get("reserveAndBuy") in (None, ""):
            st["reserveAndBuy"] = IDLE
            self._status(s, "rear-manager")
            return
        if st["reserveAndBuy"] == IDLE:
            pcs = [p for p in self._search_pcs(s) if name in p["spec"].get("interestedSolverIDs", [])]
            if not pcs:
                return   # FLUIDOS.md §5: no PC passes the GPU filters -> hangs in Running for ever
            pc = pcs[0]
            cfg = {"cpu": _char(pc, "cpu"), "memory": _char(pc, "memory"), "pods": _char(pc, "pods")}
            self.emu.create_object({
                "apiVersion": RESERVATION, "kind": "Reservation",
                "metadata": {"name": f"reservation-{name}", "namespace": FLUIDOS_NS},
                "spec": {"solverID": name, "buyer": dict(self.identity), "seller": pc["spec"]["flavor"]["spec"]["owner"],
                         "peeringCandidate": {"name": pc["metadata"]["name"], "namespace": FLUIDOS_NS},
                         "reserve": True, "purchase": True, "configuration": {"type": "K8Slice", "data": cfg}}},
                manager="rear-manager")
            st["reserveAndBuy"] = RUNNING
            self._set_solver_phase(s, RUNNING, "Reservation created")
            self._status(s, "rear-manager")
        elif st["reserveAndBuy"] == RUNNING:
            r = self._get(RESERVATION, "reservations", f"reservation-{name}")
            ph = (((r or {}).get("status") or {}).get("phase") or {}).get("phase")
            if ph == SOLVED:
                st["reserveAndBuy"] = SOLVED
                self._set_solver_phase(s, RUNNING, "Reservation: Flavor reserved and purchased")
            elif ph == FAILED:
                st["reserveAndBuy"] = FAILED
                self._set_solver_phase(s, FAILED, "Solver has failed to reserve the resources")
            self._status(s, "rear-manager")

    def _search_pcs(self, s: dict) -> list[dict]:
        sel = (s.get("spec") or {}).get("selector")
        out = []
        for pc in self.emu.list_objects(ADVERTISEMENT, "peeringcandidates", FLUIDOS_NS):
            if pc["spec"].get("available") and selector_matches(sel, pc["spec"]["flavor"], consumer=True):
                out.append(pc)
        return out

    # ----------------------------------------------------------------------------------------
    # rear-controller: Discovery (asks the providers of the catalogue)

    def _reconcile_discovery(self, ns: str, name: str) -> None:
        d = self._get(ADVERTISEMENT, "discoveries", name, ns)
        if d is None:
            return
        phase = ((d.get("status") or {}).get("phase") or {}).get("phase")
        solver = d["spec"]["solverID"]
        if phase not in KNOWN_PHASES:
            d.setdefault("status", {})["phase"] = {"startTime": self.ts(), "phase": ""}
            d["status"]["peeringCandidateList"] = {"items": []}
            self._set_phase(d, RUNNING, "Discovery started")
            self._status(d, "rear-controller")
            return
        if phase != RUNNING:
            return
        if self._failing("hang", solver):
            return   # the provider never answers: no status change, no event, no timeout check
        sel = d["spec"].get("selector")
        filters = (sel or {}).get("filters") or {}
        if "storageFilter" in filters or self._failing("discovery_error", solver):
            self._set_phase(d, FAILED, "Error when getting Flavor")
            self._status(d, "rear-controller")
            return
        flavors = [] if self._failing("no_candidate", solver) else [
            f for _, f in sorted(self.catalogue.items())
            if f["spec"].get("availability") and selector_matches(sel, f, consumer=False)]
        if not flavors:
            self._set_phase(d, FAILED, "No Flavors found")
            self._status(d, "rear-controller")
            return
        items = []
        for f in flavors:
            pcname = f"peeringcandidate-{f['metadata']['name']}"
            pc = self._get(ADVERTISEMENT, "peeringcandidates", pcname)
            spec_flavor = {"metadata": {"name": f["metadata"]["name"], "namespace": f["metadata"].get("namespace",
                                                                                                       FLUIDOS_NS)},
                           "spec": copy.deepcopy(f["spec"])}
            if pc is None:
                pc = self.emu.create_object({
                    "apiVersion": ADVERTISEMENT, "kind": "PeeringCandidate",
                    "metadata": {"name": pcname, "namespace": FLUIDOS_NS},
                    "spec": {"flavor": spec_flavor, "available": True, "interestedSolverIDs": [solver]}},
                    manager="rear-controller")
            else:
                ids = list(pc["spec"].get("interestedSolverIDs") or [])
                if solver not in ids:
                    ids.append(solver)
                pc["spec"].update({"flavor": spec_flavor, "available": True, "interestedSolverIDs": ids})
                pc = self._update(pc, "rear-controller")
            pc.setdefault("status", {})["creationTime"] = self.ts()
            pc["status"].setdefault("lastUpdateTime", "")
            pc = self._status(pc, "rear-controller")
            items.append({k: pc[k] for k in ("apiVersion", "kind", "spec", "status")}
                         | {"metadata": {"name": pc["metadata"]["name"], "namespace": FLUIDOS_NS}})
        d["status"]["peeringCandidateList"] = {"items": items}
        self._set_phase(d, SOLVED, "Discovery Solved: Peering Candidate found")
        self._status(d, "rear-controller")

    # ----------------------------------------------------------------------------------------
    # contract manager: Reservation (reserve, purchase) and the provider side of a sale

    def _reconcile_reservation(self, ns: str, name: str) -> None:
        r = self._get(RESERVATION, "reservations", name, ns)
        if r is None:
            return
        spec = r["spec"]
        ref = spec.get("peeringCandidate") or {}
        pc = self._get(ADVERTISEMENT, "peeringcandidates", ref.get("name", ""), ref.get("namespace") or FLUIDOS_NS) \
            if ref.get("name") else None
        st = r.setdefault("status", {})
        phase = (st.get("phase") or {}).get("phase")
        if phase in (SOLVED, TIMED_OUT, FAILED):
            return
        if pc is None:
            self._set_phase(r, FAILED, "Reservation failed: error when getting PeeringCandidate")
            self._status(r, "rear-controller")
            return
        if phase not in KNOWN_PHASES:
            st["phase"] = {"startTime": self.ts(), "phase": ""}
            self._set_phase(r, RUNNING, "Reservation started")
            st["reservePhase"] = IDLE
            st["purchasePhase"] = IDLE
            self._status(r, "rear-controller")
            return
        if spec.get("reserve") and st.get("reservePhase") != SOLVED:
            return self._reserve(r, pc)
        if spec.get("purchase") and st.get("reservePhase") == SOLVED and st.get("purchasePhase") != SOLVED:
            return self._purchase(r)

    def _reserve(self, r: dict, pc: dict) -> None:
        st = r["status"]
        rp = st.get("reservePhase")
        solver = r["spec"].get("solverID", "")
        if rp == RUNNING:
            if pc["spec"].get("available") and self._failing("taken", solver):
                # Another consumer's Solver reserves the same PeeringCandidate first.
                pc["spec"]["available"] = False
                pc = self._update(pc, "rear-controller")
            if not pc["spec"].get("available"):
                self._set_phase(r, FAILED, "Reservation failed: PeeringCandidate not available")
                self._status(r, "rear-controller")
                return
            pc["spec"]["available"] = False
            pc = self._update(pc, "rear-controller")
            pc.setdefault("status", {}).setdefault("creationTime", "")
            pc["status"]["lastUpdateTime"] = self.ts()
            pc = self._status(pc, "rear-controller")
            flavor_name = pc["spec"]["flavor"]["metadata"]["name"]
            err = self._provider_reserve(flavor_name, r)
            if err:
                pc["spec"]["available"] = True
                self._update(pc, "rear-controller")
                st["reservePhase"] = FAILED
                self._set_phase(r, FAILED, "Reservation failed: error when reserving flavour")
                self._status(r, "rear-controller")
                return
            tid = f"{secrets.token_hex(16)}-{int(self.now() * 1e9)}"
            self.emu.create_object({
                "apiVersion": RESERVATION, "kind": "Transaction",
                "metadata": {"name": tid, "namespace": FLUIDOS_NS},
                "spec": {"flavorID": flavor_name, "buyer": r["spec"]["buyer"], "clusterID": self.liqo_id,
                         "configuration": copy.deepcopy(r["spec"].get("configuration")) or {"type": "K8Slice",
                                                                                             "data": {}},
                         "expirationTime": self._in(3600)}}, manager="rear-controller")
            st["transactionID"] = tid
            st["reservePhase"] = SOLVED
            self._status(r, "rear-controller")
        elif rp == FAILED:
            self._set_phase(r, FAILED, "Reservation failed during the 'Reserve' phase")
            self._status(r, "rear-controller")
        elif rp == IDLE:
            st["reservePhase"] = RUNNING
            self._status(r, "rear-controller")
        else:
            st["reservePhase"] = IDLE
            self._status(r, "rear-controller")

    def _provider_reserve(self, flavor_name: str, r: dict) -> str | None:
        f = self.catalogue.get(flavor_name)
        if f is None or not f["spec"].get("availability"):
            return "flavor not available"
        if self._failing("reserve_error", r["spec"].get("solverID", "")):
            return "provider error"
        data = ((r["spec"].get("configuration") or {}).get("data")) or {}
        chars = f["spec"]["flavorType"]["typeData"]["characteristics"]
        try:
            for k in ("cpu", "memory", "pods"):
                if k in data and parse_quantity(data[k]) > parse_quantity(chars.get(k, "0")):
                    return f"{k} exceeds the flavor"
            want = (data.get("gpu") or {}).get("count")
            if want is not None and int(want) > int((chars.get("gpu") or {}).get("count", 0)):
                return "gpu count exceeds the flavor"
        except (ValueError, TypeError):
            return "invalid configuration"
        return None

    def _purchase(self, r: dict) -> None:
        st = r["status"]
        pp = st.get("purchasePhase")
        if pp == IDLE:
            st["purchasePhase"] = RUNNING
            self._status(r, "rear-controller")
        elif pp == RUNNING:
            if not st.get("transactionID"):
                st["purchasePhase"] = FAILED
                self._set_phase(r, FAILED, "Reservation failed: TransactionID not set")
                self._status(r, "rear-controller")
                return
            tx = self._get(RESERVATION, "transactions", st["transactionID"])
            flavor_name = (tx or {}).get("spec", {}).get("flavorID") or \
                r["spec"]["peeringCandidate"]["name"].removeprefix("peeringcandidate-")
            sold = self._provider_sell(flavor_name, r)
            liqo = sold["spec"]["owner"].get("additionalInformation", {}).get("liqoID") or sold["spec"]["providerID"]
            cname = contract_name(flavor_name)
            kubeconfig = base64.b64encode(yaml_kubeconfig(sold["spec"]["owner"]["ip"], liqo).encode()).decode()
            try:
                self.emu.create_object({
                    "apiVersion": RESERVATION, "kind": "Contract",
                    "metadata": {"name": cname, "namespace": FLUIDOS_NS},
                    "spec": {"flavor": {"metadata": {"name": flavor_name, "namespace": FLUIDOS_NS},
                                        "spec": copy.deepcopy(sold["spec"])},
                             "buyer": r["spec"]["buyer"], "buyerClusterID": self.liqo_id,
                             "seller": r["spec"]["seller"], "transactionID": st["transactionID"],
                             "configuration": copy.deepcopy(r["spec"].get("configuration")),
                             "peeringTargetCredentials": {"liqoID": liqo, "kubeconfig": kubeconfig},
                             "expirationTime": self._in(365 * 86400), "extraInformation": {}}},
                    manager="rear-controller")
            except am.ApiError as e:
                if e.code != 409:
                    raise
            st["contract"] = {"name": cname, "namespace": FLUIDOS_NS}
            st["purchasePhase"] = SOLVED
            self._set_phase(r, SOLVED, "Reservation solved")
            self._status(r, "rear-controller")
        elif pp == FAILED:
            self._set_phase(r, FAILED, "Reservation failed during the 'Purchase' phase")
            self._status(r, "rear-controller")

    def _provider_sell(self, flavor_name: str, r: dict) -> dict:
        """The provider makes the Flavor unavailable and publishes a remainder (FLUIDOS.md §5)."""
        f = self.catalogue[flavor_name]
        sold = copy.deepcopy(f)
        f["spec"]["availability"] = False
        data = ((r["spec"].get("configuration") or {}).get("data")) or {}
        chars = copy.deepcopy(f["spec"]["flavorType"]["typeData"]["characteristics"])
        for k in ("cpu", "memory", "pods"):
            if k in data:
                chars[k] = _format_quantity(parse_quantity(chars.get(k, "0")) - parse_quantity(data[k]), k)
        if "gpu" in data and "gpu" in chars:
            chars["gpu"] = clean_gpu({**chars["gpu"], "count": 0})
        owner = f["spec"]["owner"]
        rem_name = f"{owner['domain']}-k8slice-{secrets.token_hex(2)}".lower()
        rem = copy.deepcopy(f)
        rem["metadata"] = {"name": rem_name, "namespace": f["metadata"].get("namespace", FLUIDOS_NS)}
        rem["spec"]["availability"] = True
        rem["spec"]["flavorType"]["typeData"]["characteristics"] = chars
        self.catalogue[rem_name] = rem
        self.log.append(f"provider {owner['nodeID']}: sold {flavor_name}, remainder {rem_name}")
        return sold

    def _in(self, seconds: int) -> str:
        return _dt.datetime.fromtimestamp(self.now() + seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    # ----------------------------------------------------------------------------------------
    # rear-manager: Allocation (consumer side) and Liqo peering

    def _set_alloc(self, a: dict, status: str, msg: str) -> None:
        a.setdefault("status", {}).update({"status": status, "message": msg, "lastUpdateTime": self.ts()})
        self.log.append(f"allocation/{a['metadata']['name']}: {status} {msg}")

    def _reconcile_allocation(self, ns: str, name: str) -> None:
        a = self._get(NODECORE, "allocations", name, ns)
        if a is None:
            return
        state = (a.get("status") or {}).get("status")
        if state == "Error":
            return
        if state not in ALLOC_STATES:
            self._set_alloc(a, "Inactive", "Allocation has been set to Inactive")
            self._status(a, "rear-manager")
            return
        ref = (a.get("spec") or {}).get("contract") or {}
        contract = self._get(RESERVATION, "contracts", ref.get("name", ""), ref.get("namespace") or FLUIDOS_NS) \
            if ref.get("name") else None
        if contract is None:
            self._set_alloc(a, "Error", "Error when getting Contract")
            self._status(a, "rear-manager")
            return
        if contract["spec"]["flavor"]["spec"]["flavorType"].get("typeIdentifier") != "K8Slice":
            self._set_alloc(a, "Error", "Flavor is not a K8Slice type")
            self._status(a, "rear-manager")
            return
        liqo = contract["spec"]["peeringTargetCredentials"]["liqoID"]
        if state == "Inactive":
            self._set_alloc(a, "Peering", "Allocation is now in Peering")
            self._status(a, "rear-manager")
        elif state == "Peering":
            if self._failing("peering_error", name):
                self._set_alloc(a, "Error", f"Error when peering with cluster {liqo}")
                self._status(a, "rear-manager")
                return
            self._peer(contract, liqo)
            self._set_alloc(a, "Active", "Allocation is now Active")
            self._status(a, "rear-manager")
        elif state == "Active":
            a["status"]["resourceRef"] = {"name": liqo, "kind": "ForeignCluster", "apiVersion": "core.liqo.io/v1beta1"}
            if a["status"].get("message") != "Outgoing peering ready, Allocation is Active":
                self._set_alloc(a, "Active", "Outgoing peering ready, Allocation is Active")
            self._status(a, "rear-manager")

    def _peer(self, contract: dict, liqo: str) -> None:
        """virtual-fabric-manager PeerWithCluster: tenant namespace + a ResourceSlice named after
        the Contract requesting the configuration's cpu/memory/pods (no GPU)."""
        tenant_ns = f"liqo-tenant-{liqo}"
        self._ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": tenant_ns, "labels": {"liqo.io/remote-cluster-id": liqo, "liqo.io/tenant-namespace": "true"}}},
            "liqo-controller-manager")
        data = (contract["spec"].get("configuration") or {}).get("data") or {}
        resources = {k: str(data[k]) for k in ("cpu", "memory", "pods") if k in data}
        self._ensure({"apiVersion": LIQO_AUTH, "kind": "ResourceSlice",
                      "metadata": {"name": contract["metadata"]["name"], "namespace": tenant_ns,
                                   "labels": {"liqo.io/remote-cluster-id": liqo, "liqo.io/replication": "true",
                                              "liqo.io/remoteID": liqo}},
                      "spec": {"class": "default", "providerClusterID": liqo, "consumerClusterID": self.liqo_id,
                               "resources": resources}}, "fluidos-rear-manager")

    def _reconcile_resourceslice(self, ns: str, name: str) -> None:
        """The provider's Liqo accepts the requested resources (status.resources = spec.resources)."""
        rs = self._get(LIQO_AUTH, "resourceslices", name, ns)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        st = rs.setdefault("status", {})
        want = copy.deepcopy(spec.get("resources") or {})
        if st.get("resources") == want and st.get("conditions"):
            return
        st["resources"] = want
        st["conditions"] = [
            {"type": "Authentication", "status": "Accepted", "lastTransitionTime": self.ts(),
             "reason": "ResourceSliceAuthenticated", "message": "The ResourceSlice has been authenticated"},
            {"type": "Resources", "status": "Accepted", "lastTransitionTime": self.ts(),
             "reason": "ResourceSliceResourcesAccepted", "message": "The ResourceSlice resources have been accepted"}]
        self._status(rs, "liqo-crd-replicator")

    def _reconcile_virtualnode(self, _ns: None, liqo: str) -> None:
        slices = [s for s in self.emu.list_objects(LIQO_AUTH, "resourceslices")
                  if (s.get("spec") or {}).get("providerClusterID") == liqo
                  and not s["metadata"].get("deletionTimestamp")]
        accepted = [s for s in slices if (s.get("status") or {}).get("resources")]
        node_name = f"liqo-{liqo}"
        node = self.emu.get_object("v1", "nodes", node_name)
        if not accepted:
            if node is not None and not slices:
                self.emu.delete_object("v1", "nodes", node_name)
            return
        cap: dict[str, Any] = {}
        for s in accepted:
            for k, v in s["status"]["resources"].items():
                cap[k] = cap.get(k, 0) + parse_quantity(v)
        capacity = {k: _format_quantity(v, k) for k, v in sorted(cap.items())}
        status = {"capacity": capacity, "allocatable": dict(capacity),
                  "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                  "message": "The virtual kubelet is ready", "lastHeartbeatTime": self.ts(),
                                  "lastTransitionTime": self.ts()}],
                  "addresses": [{"type": "InternalIP", "address": "10.42.0.1"}],
                  "nodeInfo": {"kubeletVersion": "v1.33.0", "operatingSystem": "linux", "architecture": "amd64",
                               "containerRuntimeVersion": "liqo", "kernelVersion": "", "osImage": "",
                               "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}}
        if node is None:
            self.emu.create_object({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": node_name, "labels": {
                    "liqo.io/remote-cluster-id": liqo, "liqo.io/type": "virtual-node",
                    "kubernetes.io/hostname": node_name, "kubernetes.io/role": "agent", "type": "virtual-kubelet",
                    "node.kubernetes.io/exclude-from-external-load-balancers": "true"}},
                "spec": {"taints": [dict(VIRTUAL_TAINT)]}, "status": status}, manager="liqo-virtual-kubelet")
            return
        if node["status"].get("capacity") != capacity:
            node["status"] = status
            self._status(node, "liqo-virtual-kubelet")

    # ----------------------------------------------------------------------------------------
    # Liqo: NamespaceOffloading

    def _admit_offloading(self, op: str, rt, obj: dict, old: dict | None) -> None:
        if rt.kind == "NamespaceOffloading" and op == "CREATE" and obj["metadata"]["name"] != "offloading":
            raise AdmissionDenied('The NamespaceOffloading resource must be named "offloading"')
        if rt.kind == "NamespaceOffloading" and op == "UPDATE" and old is not None:
            for f in ("namespaceMappingStrategy", "remoteNamespaceName"):
                if (obj.get("spec") or {}).get(f) != (old.get("spec") or {}).get(f):
                    raise AdmissionDenied(f"The {f} field is immutable")

    def _reconcile_offloading(self, ns: str, name: str) -> None:
        o = self._get(LIQO_OFFLOADING, "namespaceoffloadings", name, ns)
        if o is None:
            return
        meta = o["metadata"]
        if meta.get("deletionTimestamp"):
            if (o.get("status") or {}).get("offloadingPhase") != "Terminating":
                o.setdefault("status", {})["offloadingPhase"] = "Terminating"
                self._status(o, "liqo-controller-manager")
                return
            self._label_namespace(ns, None)
            meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != OFFLOADING_FINALIZER]
            self._update(o, "liqo-controller-manager")
            return
        if OFFLOADING_FINALIZER not in (meta.get("finalizers") or []):
            meta.setdefault("finalizers", []).append(OFFLOADING_FINALIZER)
            self._update(o, "liqo-controller-manager")
            return
        spec = o.get("spec") or {}
        selected = [n for n in self.emu.list_objects("v1", "nodes", label_selector="liqo.io/type=virtual-node")
                    if node_selector_matches(spec.get("clusterSelector"), n)]
        st = o.setdefault("status", {})
        strategy = spec.get("namespaceMappingStrategy", "DefaultName")
        remote = {"EnforceSameName": ns, "SelectedName": spec.get("remoteNamespaceName") or ns}.get(
            strategy, f"{ns}-{self.liqo_id}")
        if not selected:
            phase = "NoClusterSelected"
            conds: dict = {}
        else:
            phase = "Ready" if st.get("offloadingPhase") in ("InProgress", "Ready") else "InProgress"
            ids = sorted(n["metadata"]["labels"]["liqo.io/remote-cluster-id"] for n in selected)
            old_conds = st.get("remoteNamespacesConditions") or {}
            conds = {i: old_conds.get(i) or [
                {"type": "OffloadingRequired", "status": "True", "reason": "ClusterSelected",
                 "message": "You have selected this cluster for offloading", "lastTransitionTime": self.ts()},
                {"type": "Ready", "status": "True", "reason": "RemoteNamespaceCreated",
                 "message": "Namespace correctly offloaded on this cluster", "lastTransitionTime": self.ts()}]
                for i in ids}
        new = {"offloadingPhase": phase, "remoteNamespaceName": remote,
               "observedGeneration": meta.get("generation", 1)}
        if conds:
            new["remoteNamespacesConditions"] = conds
        if st != new:
            o["status"] = new
            self._status(o, "liqo-controller-manager")
        if phase == "Ready":
            self._label_namespace(ns, "true")

    def _label_namespace(self, ns: str, value: str | None) -> None:
        n = self.emu.get_object("v1", "namespaces", ns)
        if n is None or n["metadata"].get("deletionTimestamp"):
            return
        labels = n["metadata"].setdefault("labels", {})
        if labels.get("liqo.io/scheduling-enabled") == value:
            return
        if value is None:
            labels.pop("liqo.io/scheduling-enabled", None)
        else:
            labels["liqo.io/scheduling-enabled"] = value
        self._update(n, "liqo-controller-manager")

    # ----------------------------------------------------------------------------------------
    # Capsule

    def _admit_capsule_namespace(self, op: str, rt, obj: dict, old: dict | None) -> None:
        if rt.kind != "Namespace" or op != "CREATE":
            return
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Tenant" and ref.get("apiVersion", "").startswith("capsule.clastix.io/"):
                t = self.emu.get_object(CAPSULE, "tenants", ref.get("name", ""))
                if t is None:
                    raise AdmissionDenied(f"tenant {ref.get('name')} not found")
                if (t.get("spec") or {}).get("forceTenantPrefix") and \
                        not obj["metadata"]["name"].startswith(f"{ref['name']}-"):
                    raise AdmissionDenied(f"The Namespace name must start with '{ref['name']}-' when "
                                          "ForceTenantPrefix is enabled in the Tenant.")

    def _reconcile_capsule(self, _ns: None, name: str) -> None:
        n = self.emu.get_object("v1", "namespaces", name)
        if n is None:
            for t in self.emu.list_objects(CAPSULE, "tenants"):
                if name in ((t.get("status") or {}).get("namespaces") or []):
                    self._q("tenant", None, t["metadata"]["name"])
            return
        refs = [r for r in n["metadata"].get("ownerReferences") or [] if r.get("kind") == "Tenant"]
        if not refs:
            return
        tenant = refs[0]["name"]
        if n["metadata"].get("labels", {}).get("capsule.clastix.io/tenant") != tenant \
                and not n["metadata"].get("deletionTimestamp"):
            n["metadata"].setdefault("labels", {})["capsule.clastix.io/tenant"] = tenant
            self._update(n, "capsule")
        self._q("tenant", None, tenant)

    def _reconcile_tenant(self, _ns: None, name: str) -> None:
        t = self.emu.get_object(CAPSULE, "tenants", name)
        if t is None:
            return
        uid = t["metadata"]["uid"]
        nss = sorted(n["metadata"]["name"] for n in self.emu.list_objects("v1", "namespaces")
                     if any(r.get("uid") == uid for r in n["metadata"].get("ownerReferences") or []))
        new = {**(t.get("status") or {}), "namespaces": nss, "size": len(nss), "state": "Active"}
        if t.get("status") != new:
            t["status"] = new
            self._status(t, "capsule")

    # ----------------------------------------------------------------------------------------
    # kube-controller-manager, scheduler and kubelet (just enough for workloads)

    def _reconcile_deployment(self, ns: str, name: str) -> None:
        d = self.emu.get_object("apps/v1", "deployments", name, ns)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        tpl = spec["template"]
        phash = hashlib.sha256(json.dumps(tpl, sort_keys=True).encode()).hexdigest()[:10]
        phash = "".join(c if c.isalpha() else "bcdfghjklm"[int(c)] for c in phash)
        rs_name = f"{name}-{phash}"
        owned = [r for r in self.emu.list_objects("apps/v1", "replicasets", ns)
                 if any(o.get("uid") == d["metadata"]["uid"] for o in r["metadata"].get("ownerReferences") or [])]
        for r in owned:
            if r["metadata"]["name"] != rs_name:
                self.emu.delete_object("apps/v1", "replicasets", r["metadata"]["name"], ns)
        rs = next((r for r in owned if r["metadata"]["name"] == rs_name), None)
        replicas = spec.get("replicas", 1)
        if rs is None:
            labels = {**(tpl.get("metadata") or {}).get("labels", {}), "pod-template-hash": phash}
            rtpl = copy.deepcopy(tpl)
            rtpl.setdefault("metadata", {})["labels"] = labels
            sel = copy.deepcopy(spec["selector"])
            sel.setdefault("matchLabels", {})["pod-template-hash"] = phash
            self.emu.create_object({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": rs_name, "namespace": ns, "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1),
                                "deployment.kubernetes.io/desired-replicas": str(replicas)},
                "ownerReferences": [_owner_ref(d)]},
                "spec": {"replicas": replicas, "selector": sel, "template": rtpl}}, manager="kube-controller-manager")
            rs = None
        elif rs["spec"].get("replicas") != replicas:
            rs["spec"]["replicas"] = replicas
            self._update(rs, "kube-controller-manager")
        rs = self.emu.get_object("apps/v1", "replicasets", rs_name, ns)
        rst = (rs or {}).get("status") or {}
        ready = rst.get("readyReplicas", 0)
        available = rst.get("availableReplicas", 0)
        current = rst.get("replicas", 0)
        ok = available >= replicas
        status = {"observedGeneration": d["metadata"]["generation"], "replicas": current,
                  "updatedReplicas": current, "readyReplicas": ready, "availableReplicas": available}
        if current - available > 0:
            status["unavailableReplicas"] = current - available
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        old_conds = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}
        status["conditions"] = [
            self._cond(old_conds, "Available", ok, "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if ok else "Deployment does not have minimum "
                       "availability."),
            self._cond(old_conds, "Progressing", True, "NewReplicaSetAvailable" if ok else "ReplicaSetUpdated",
                       f'ReplicaSet "{rs_name}" has successfully progressed.' if ok
                       else f'ReplicaSet "{rs_name}" is progressing.')]
        if d.get("status") != status:
            d["status"] = status
            self._status(d, "kube-controller-manager")

    def _cond(self, old: dict, ctype: str, ok: bool, reason: str, message: str) -> dict:
        s = "True" if ok else "False"
        prev = old.get(ctype)
        if prev and prev["status"] == s and prev.get("reason") == reason and prev.get("message") == message:
            return prev
        return {"type": ctype, "status": s, "lastUpdateTime": self.ts(),
                "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == s else self.ts(),
                "reason": reason, "message": message}

    def _reconcile_replicaset(self, ns: str, name: str) -> None:
        rs = self.emu.get_object("apps/v1", "replicasets", name, ns)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods = self._owned_pods(rs)
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        want = rs["spec"].get("replicas", 1)
        for p in live[want:]:
            self.emu.delete_object("v1", "pods", p["metadata"]["name"], ns)
        for _ in range(want - len(live)):
            self._create_pod(rs, rs["spec"]["template"])
        pods = [p for p in self._owned_pods(rs) if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        ready = sum(1 for p in pods if _pod_ready(p))
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if rs.get("status") != status:
            rs["status"] = status
            self._status(rs, "kube-controller-manager")

    def _owned_pods(self, owner: dict) -> list[dict]:
        uid = owner["metadata"]["uid"]
        return [p for p in self.emu.list_objects("v1", "pods", owner["metadata"]["namespace"])
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]

    def _create_pod(self, owner: dict, tpl: dict) -> dict:
        meta = copy.deepcopy(tpl.get("metadata") or {})
        return self.emu.create_object({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": f"{owner['metadata']['name']}-", "namespace": owner["metadata"]["namespace"],
            "labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {},
            "ownerReferences": [_owner_ref(owner)]}, "spec": copy.deepcopy(tpl["spec"])},
            manager="kube-controller-manager")

    def _reconcile_job(self, ns: str, name: str) -> None:
        j = self.emu.get_object("batch/v1", "jobs", name, ns)
        if j is None or j["metadata"].get("deletionTimestamp"):
            return
        st = j.setdefault("status", {})
        conds = {c["type"] for c in st.get("conditions") or [] if c.get("status") == "True"}
        if conds & {"Complete", "Failed"} or j["spec"].get("suspend"):
            return
        if not st.get("startTime"):
            st["startTime"] = self.ts()
            st["active"] = 0
            st.setdefault("uncountedTerminatedPods", {})
            self._status(j, "kube-controller-manager")
            return
        pods = self._owned_pods(j)
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        want = min(j["spec"].get("parallelism", 1), j["spec"].get("completions") or 1)
        if not pods:
            for _ in range(want):
                self._create_pod(j, j["spec"]["template"])
            return
        running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]
        outcome = self.job_outcomes.get((ns, name), self.default_job_outcome)
        if running and len(running) == len(live) and outcome in ("Succeeded", "Failed"):
            for p in running:
                self._finish_pod(p, outcome)
            now = self.ts()
            if outcome == "Succeeded":
                reason, msg = "CompletionsReached", "Reached expected number of succeeded pods"
                st.update({"succeeded": len(running), "active": 0, "ready": 0, "completionTime": now,
                           "conditions": [_jcond("SuccessCriteriaMet", reason, msg, now),
                                          _jcond("Complete", reason, msg, now)]})
            else:
                reason, msg = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                st.update({"failed": j["spec"].get("backoffLimit", 6) + 1, "active": 0, "ready": 0,
                           "conditions": [_jcond("FailureTarget", reason, msg, now),
                                          _jcond("Failed", reason, msg, now)]})
            self._status(j, "kube-controller-manager")
            return
        new_active, new_ready = len(live), len(running)
        if st.get("active") != new_active or st.get("ready", 0) != new_ready:
            st["active"], st["ready"] = new_active, new_ready
            self._status(j, "kube-controller-manager")

    def _finish_pod(self, p: dict, outcome: str) -> None:
        now = self.ts()
        code = 0 if outcome == "Succeeded" else 1
        st = p["status"]
        st["phase"] = outcome
        for c in st.get("containerStatuses") or []:
            started = ((c.get("state") or {}).get("running") or {}).get("startedAt", now)
            c["state"] = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                         "startedAt": started, "finishedAt": now,
                                         "containerID": c.get("containerID")}}
            c["ready"] = False
            c["started"] = False
        for c in st.get("conditions") or []:
            if c["type"] in ("Ready", "ContainersReady"):
                c.update({"status": "False", "reason": "PodCompleted", "lastTransitionTime": now})
        self._status(p, "kubelet")

    def _reconcile_scheduler(self, ns: str, name: str) -> None:
        p = self.emu.get_object("v1", "pods", name, ns)
        if p is None or p["spec"].get("nodeName") or p["metadata"].get("deletionTimestamp"):
            return
        node, why = self._pick_node(p)
        now = self.ts()
        if node is None:
            cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
                    "lastProbeTime": None, "lastTransitionTime": now}
            old = [c for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
            if old and old[0].get("message") == why:
                return
            p["status"]["conditions"] = [cond]
            self._status(p, "kube-scheduler")
            return
        p["spec"]["nodeName"] = node["metadata"]["name"]
        p = self._update(p, "kube-scheduler")
        # kubelet (or the virtual kubelet): the containers start at once.
        host_ip = next((a["address"] for a in node["status"].get("addresses") or []), "10.0.0.1")
        digest = hashlib.sha256(f"{ns}/{name}".encode()).digest()
        pod_ip = f"10.244.{digest[0] % 250}.{digest[1] % 250 + 2}"
        p["status"].update({
            "phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}], "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "containerStatuses": [{
                "name": c["name"], "ready": True, "restartCount": 0, "started": True, "image": c["image"],
                "imageID": f"docker.io/library/{c['image']}@sha256:{hashlib.sha256(c['image'].encode()).hexdigest()}",
                "containerID": f"containerd://{secrets.token_hex(32)}", "state": {"running": {"startedAt": now}},
                "lastState": {}} for c in p["spec"]["containers"]]})
        self._status(p, "kubelet")

    def _pick_node(self, pod: dict) -> tuple[dict | None, str]:
        ns = pod["metadata"]["namespace"]
        off = self.emu.get_object(LIQO_OFFLOADING, "namespaceoffloadings", "offloading", ns)
        off_ready = off is not None and (off.get("status") or {}).get("offloadingPhase") == "Ready" \
            and not off["metadata"].get("deletionTimestamp")
        strategy = ((off or {}).get("spec") or {}).get("podOffloadingStrategy", "LocalAndRemote") if off_ready else "Local"
        nodes = self.emu.list_objects("v1", "nodes")
        want = _pod_requests(pod)
        used: dict[str, dict] = {}
        for p in self.emu.list_objects("v1", "pods"):
            nn = p["spec"].get("nodeName")
            if nn and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                u = used.setdefault(nn, {"pods": 0})
                u["pods"] += 1
                for k, v in _pod_requests(p).items():
                    u[k] = u.get(k, 0) + v
        reasons: dict[str, int] = {}

        def no(reason: str) -> None:
            reasons[reason] = reasons.get(reason, 0) + 1

        for n in nodes:
            labels = n["metadata"].get("labels") or {}
            virtual = labels.get("liqo.io/type") == "virtual-node"
            if n["spec"].get("unschedulable"):
                no("node(s) were unschedulable")
                continue
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])
            if not ready:
                no("node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
                continue
            if virtual:
                if not off_ready or strategy == "Local" or \
                        not node_selector_matches(off["spec"].get("clusterSelector"), n):
                    no("node(s) had untolerated taint {virtual-node.liqo.io/not-allowed: true}")
                    continue
            elif strategy == "Remote":
                no("node(s) didn't match Pod's node affinity/selector")
                continue
            sel = pod["spec"].get("nodeSelector") or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                no("node(s) didn't match Pod's node affinity/selector")
                continue
            untolerated = [t for t in n["spec"].get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")
                           and t != VIRTUAL_TAINT and not _tolerates(pod, t)]
            if untolerated:
                t = untolerated[0]
                no(f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}")
                continue
            alloc = {k: parse_quantity(v) for k, v in (n["status"].get("allocatable") or {}).items()}
            u = used.get(n["metadata"]["name"], {"pods": 0})
            short = [k for k, v in want.items() if v > 0 and u.get(k, 0) + v > alloc.get(k, 0)]
            if u.get("pods", 0) + 1 > alloc.get("pods", 110):
                short.append("pods")
            if short:
                for k in sorted(short):
                    no(f"Insufficient {k}")
                continue
            return n, ""
        total = len(nodes)
        detail = ", ".join(f"{c} {r}" for r, c in sorted(reasons.items()))
        msg = f"0/{total} nodes are available: {detail}." if detail else f"0/{total} nodes are available."
        return None, msg + f" preemption: 0/{total} nodes are available: {total} No preemption victims found for " \
                           "incoming pod."

    def _reconcile_pvc(self, ns: str, name: str) -> None:
        c = self.emu.get_object("v1", "persistentvolumeclaims", name, ns)
        if c is None or (c.get("status") or {}).get("phase") == "Bound":
            return
        if not c["spec"].get("volumeName"):
            c["spec"]["volumeName"] = f"pvc-{c['metadata']['uid']}"
            c = self._update(c, "persistentvolume-controller")
        c["status"] = {"phase": "Bound", "accessModes": c["spec"]["accessModes"],
                       "capacity": {"storage": c["spec"]["resources"]["requests"]["storage"]}}
        self._status(c, "persistentvolume-controller")

    def _reconcile_ingress(self, ns: str, name: str) -> None:
        i = self.emu.get_object("networking.k8s.io/v1", "ingresses", name, ns)
        if i is None:
            return
        want = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
        if i.get("status") != want:
            i["status"] = want
            self._status(i, "ingress-nginx")

    def _reconcile_service(self, ns: str, name: str) -> None:
        s = self.emu.get_object("v1", "services", name, ns)
        if s is None or s["spec"].get("type") != "LoadBalancer":
            return
        want = {"loadBalancer": {"ingress": [{"ip": "192.0.2.20", "ipMode": "VIP"}]}}
        if s.get("status") != want:
            s["status"] = want
            self._status(s, "service-controller")

    def _reconcile_hpa_for_target(self, ns: str, name: str) -> None:
        for h in self.emu.list_objects("autoscaling/v2", "horizontalpodautoscalers", ns):
            if h["spec"]["scaleTargetRef"].get("name") == name:
                self._q("hpa", ns, h["metadata"]["name"])

    def _reconcile_hpa(self, ns: str, name: str) -> None:
        h = self.emu.get_object("autoscaling/v2", "horizontalpodautoscalers", name, ns)
        if h is None:
            return
        ref = h["spec"]["scaleTargetRef"]
        d = self.emu.get_object("apps/v1", "deployments", ref.get("name", ""), ns) if ref.get("kind") == "Deployment" \
            else None
        cur = ((d or {}).get("status") or {}).get("replicas", 0)
        desired = max(h["spec"].get("minReplicas", 1), min(cur, h["spec"]["maxReplicas"])) if d else 0
        want = {"currentReplicas": cur, "desiredReplicas": desired}
        if {k: (h.get("status") or {}).get(k) for k in want} != want:
            h["status"] = {**(h.get("status") or {}), **want}
            self._status(h, "horizontal-pod-autoscaler")


CONTROLLER_ORDER = ["solver", "discovery", "reservation", "allocation", "resourceslice", "virtualnode",
                    "offloading", "capsule", "tenant", "deployment", "replicaset", "job", "scheduler", "pvc",
                    "ingress", "service", "hpa_for_target", "hpa"]


# ---------------------------------------------------------------------------------------------
# helpers


def yaml_kubeconfig(ip: str, liqo: str) -> str:
    host = ip.split(":")[0]
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: {liqo}\n  cluster:\n    server: https://{host}:6443\n"
            f"users:\n- name: fluidos\n  user:\n    token: fake\ncontexts:\n- name: {liqo}\n  context:\n"
            f"    cluster: {liqo}\n    user: fluidos\ncurrent-context: {liqo}\n")


def _owner_ref(o: dict) -> dict:
    return {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _jcond(ctype: str, reason: str, msg: str, now: str) -> dict:
    return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": msg}


def _pod_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def _pod_requests(p: dict) -> dict:
    out: dict = {}
    for c in p["spec"].get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for k, v in req.items():
            out[k] = out.get(k, 0) + parse_quantity(v)
    return out


def _tolerates(pod: dict, taint: dict) -> bool:
    for t in pod["spec"].get("tolerations") or []:
        if t.get("effect") not in (None, "", taint.get("effect")):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _format_quantity(v, resource: str) -> str:
    """A Decimal quantity back to a canonical-ish string (cpu in cores or m, memory in Ki/Mi/Gi)."""
    if v < 0:
        v = 0
    if resource == "memory" or resource.endswith("storage"):
        for suffix, mult in (("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)):
            if v >= mult and v % mult == 0:
                return f"{int(v / mult)}{suffix}"
        return str(int(v))
    if v == int(v):
        return str(int(v))
    return f"{int(v * 1000)}m"


def _char(pc: dict, key: str) -> str:
    return pc["spec"]["flavor"]["spec"]["flavorType"]["typeData"]["characteristics"].get(key, "0")


def node_selector_matches(sel: dict | None, node: dict) -> bool:
    """A core/v1 NodeSelector (terms ORed, expressions ANDed); absent/empty terms match all."""
    terms = (sel or {}).get("nodeSelectorTerms") or []
    if not terms:
        return True
    labels = node["metadata"].get("labels") or {}
    for term in terms:
        ok = True
        for e in term.get("matchExpressions") or []:
            v, op, vals = labels.get(e["key"]), e["operator"], e.get("values") or []
            if op == "In":
                ok = v is not None and v in vals
            elif op == "NotIn":
                ok = v is None or v not in vals
            elif op == "Exists":
                ok = v is not None
            elif op == "DoesNotExist":
                ok = v is None
            elif op in ("Gt", "Lt"):
                try:
                    ok = (int(v) > int(vals[0])) if op == "Gt" else (int(v) < int(vals[0]))
                except (TypeError, ValueError, IndexError):
                    ok = False
            else:
                ok = False
            if not ok:
                break
        if ok:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# FLUIDOS filter semantics (FLUIDOS.md §2): base filters at providers and on the consumer,
# GPU filters on the consumer only, with the cluster's quirks.

_GPU_FILTERS = {"StringFilter", "StringRangeSelector", "ResourceMatchSelector", "ResourceRangeSelector",
                "NumberMatchFilter", "NumberRangeFilter", "BooleanFilter"}


def _qty(v) -> Any:
    return parse_quantity(v)


def _is_quantity(v) -> bool:
    try:
        parse_quantity(v)
        return True
    except (ValueError, TypeError):
        return False


def _gpu_typed_ok(gpu: dict) -> bool:
    for k, v in gpu.items():
        if k in GPU_STRING and not isinstance(v, str):
            return False
        if k in GPU_INT and (isinstance(v, bool) or not isinstance(v, int)):
            return False
        if k in GPU_FLOAT and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return False
        if k in GPU_BOOL and not isinstance(v, bool):
            return False
        if k in GPU_QUANTITY and not _is_quantity(v):
            return False
    return True


def _base_ok(filters: dict, chars: dict) -> bool:
    for key, char in (("cpuFilter", "cpu"), ("memoryFilter", "memory"), ("podsFilter", "pods")):
        f = filters.get(key)
        if not isinstance(f, dict):
            continue
        data = f.get("data") or {}
        try:
            have = _qty(chars.get(char, "0"))
            if f.get("name") == "Match" and "value" in data and have != _qty(data["value"]):
                return False
            if f.get("name") == "Range":
                if data.get("min") is not None and have < _qty(data["min"]):
                    return False
                if data.get("max") is not None and have > _qty(data["max"]):
                    return False
        except (ValueError, TypeError):
            return False
    f = filters.get("architectureFilter")
    if isinstance(f, dict):
        data = f.get("data") or {}
        arch = chars.get("architecture", "")
        if f.get("name") == "Match" and data.get("value") is not None and arch != data["value"]:
            return False
        if f.get("name") == "Range" and data.get("regex") is not None and not re.search(data["regex"], arch):
            return False
    return True


def _valid_shape(kind: str, data: Any) -> bool:
    if kind == "BooleanFilter":
        return isinstance(data, bool)
    if not isinstance(data, dict):
        return False
    if kind == "StringFilter":
        return isinstance(data.get("value"), str)
    if kind == "StringRangeSelector":
        return isinstance(data.get("regex"), str)
    if kind == "ResourceMatchSelector":
        return "value" in data and _is_quantity(data["value"])
    if kind == "ResourceRangeSelector":
        return all(_is_quantity(data[b]) for b in ("min", "max") if b in data)
    if kind == "NumberMatchFilter":
        return isinstance(data.get("value"), (int, float)) and not isinstance(data.get("value"), bool)
    if kind == "NumberRangeFilter":
        return all(isinstance(data[b], (int, float)) and not isinstance(data[b], bool)
                   for b in ("min", "max") if b in data)
    return False


def _gpu_ok(gpu_filters: Any, gpu: dict | None) -> bool:
    if gpu is None:
        return True
    effective: dict[str, tuple[str, Any]] = {}
    for f in gpu_filters if isinstance(gpu_filters, list) else []:
        if not isinstance(f, dict) or f.get("filter") not in _GPU_FILTERS or not _valid_shape(f["filter"], f.get("data")):
            continue   # dropped silently
        effective[str(f.get("field"))] = (f["filter"], f.get("data"))
    known = GPU_STRING | GPU_INT | GPU_FLOAT | GPU_BOOL | GPU_QUANTITY
    for fld, (kind, data) in effective.items():
        if fld not in known or fld not in gpu:
            return False
        v = gpu[fld]
        if kind == "StringFilter":
            if data["value"] == "Any" or str(v) != data["value"]:
                return False
        elif kind == "StringRangeSelector":
            if not re.search(data["regex"], str(v)):
                return False
        elif kind in ("ResourceMatchSelector", "ResourceRangeSelector"):
            if fld in GPU_FLOAT or not _is_quantity(v):
                return False
            have = _qty(v)
            if kind == "ResourceMatchSelector" and have != _qty(data["value"]):
                return False
            if kind == "ResourceRangeSelector" and (("min" in data and have < _qty(data["min"]))
                                                    or ("max" in data and have > _qty(data["max"]))):
                return False
        elif kind in ("NumberMatchFilter", "NumberRangeFilter"):
            if fld in GPU_STRING or isinstance(v, bool):
                return False
            try:
                have = float(_qty(v)) if fld in GPU_QUANTITY else float(v)
            except (ValueError, TypeError):
                return False
            if kind == "NumberMatchFilter" and have != float(data["value"]):
                return False
            if kind == "NumberRangeFilter" and (("min" in data and have < data["min"])
                                                or ("max" in data and have > data["max"])):
                return False
        elif kind == "BooleanFilter":
            if data is True or v is not True:
                return False
    return True


def selector_matches(selector: dict | None, flavor: dict, consumer: bool) -> bool:
    """Does a Flavor pass a Solver/Discovery selector? Providers (`consumer=False`) apply the base
    filters only; the consumer also applies `gpuFilters` with the cluster's semantics."""
    if selector is None:
        return True
    spec = flavor.get("spec") or {}
    ftype = spec.get("flavorType") or {}
    if selector.get("flavorType") and ftype.get("typeIdentifier") != selector["flavorType"]:
        return False
    filters = selector.get("filters") or {}
    chars = (ftype.get("typeData") or {}).get("characteristics") or {}
    gpu = chars.get("gpu")
    if filters and gpu is not None and not _gpu_typed_ok(gpu):
        return False     # the Flavor does not parse: it fails every filter
    if not _base_ok(filters, chars):
        return False
    if consumer and not _gpu_ok(filters.get("gpuFilters"), gpu):
        return False
    return True

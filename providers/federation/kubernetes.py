"""KubernetesFederation: the port on a real FLUIDOS consumer cluster (FLARE_FEDERATION=kubernetes).

It drives FLUIDOS, Liqo and Capsule exactly as FLUIDOS.md §6 describes, with the official
`kubernetes` client (through `k8s_client.KubeApi`): a Solver per attempt that only discovers,
FLARE's own ranking over the PeeringCandidates, a Reservation per node, an Allocation per
Contract, the GPUs added to Liqo's ResourceSlice, a Capsule-owned namespace offloaded with a
NamespaceOffloading, then the workload. Every call is idempotent: it reads what the cluster holds,
creates what is missing and reports the phase; "still running" is `done=False`.

Decisions worth knowing before changing anything here:

- **No state in the process.** What FLARE needs between calls is either on the cluster (objects
  labelled `flare.io/intent-id`, names derived from the Solver, the Reservation's
  `status.contract`) or in the inventory (`GpuNode`). Any worker can run any step.
- **The ledger key** (FLUIDOS.md §6.3) of a PeeringCandidate is `providerID` + model + region +
  zone (region/zone un-swapped). Each key is one `GpuNode` of the Provider whose FLUIDOS domain
  owns the Flavor (created on first sighting), named `<providerID>-<model>-<hex6 of the key>`,
  with the key in `annotations["flare.io/federation-key"]`. A node synced from the provider side
  (`providers.node_sync`) with the same model/region/zone and no key yet is adopted instead. The
  GPU count comes from the first sighting with GPUs: a remainder Flavor advertises `count` 0 and
  never overwrites it. The last PeeringCandidate/Flavor seen is kept under `flare.io/` keys for
  operators; `reserve` re-reads the Solver's PeeringCandidates rather than trusting them.
- **Status is the controllers'.** FLARE writes specs (create, server-side apply with field manager
  `flare`, merge patch of the ResourceSlice's `spec.resources`), never `/status`.
- **Errors.** 429/5xx/409-Conflict/connection errors are retried with backoff (bounded) and then
  raise `Unavailable`; a PeeringCandidate taken → `Conflict`; Discovery "Error when getting
  Flavor", a failed Reservation or an Allocation `Error` → `Failed`; Solver `Timed Out` →
  `Timeout`. A Discovery that hangs answers `done=False` for ever: the reconciler's step timeout
  ends it.
- **Inventory.** `inventory()` is the GpuNodes this backend knows (sighted, or synced by
  `providers.node_sync`), refreshed from the PeeringCandidates on the cluster at most every
  `inventory_ttl` seconds. On a fresh federation there are none: `probe_inventory()` runs an
  unfiltered Discovery (call it until it answers True) so that submit's feasibility check has
  something to check against.
- **Release** (§6.11) deletes in reverse order and ignores what is already gone; PeeringCandidates
  and the Liqo peering stay. Objects in deletion (finalizers) finish on the cluster's schedule.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import time
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from flare_portal.units import parse_quantity
from intents.solver import label_value
from intents.workload import (
    CAPSULE_API_VERSION,
    GPU_RESOURCE,
    LABEL_CAPSULE_TENANT,
    OFFLOADING_NAME,
    capsule_tenant_name,
    release_order,
    workload_url,
)
from providers import ledger
from providers.flavor import FlavorError, format_quantity, traits_from_flavor
from providers.models import TRAIT_COLUMNS, GpuNode, Provider
from providers.traits import GpuTraits, Offer

from .names import allocation_name, contract_name, discovery_name, h4, reservation_name
from .base import (
    Conflict,
    Deployment,
    Discovery,
    Failed,
    IntentRef,
    Observation,
    Peering,
    Reservation,
    Timeout,
    Unavailable,
)
from .k8s_client import KubeApi, KubeError, RetryPolicy

logger = logging.getLogger("flare.federation.kubernetes")

NODECORE = "nodecore.fluidos.eu/v1alpha1"
ADVERTISEMENT = "advertisement.fluidos.eu/v1alpha1"
RESERVATION_API = "reservation.fluidos.eu/v1alpha1"
OFFLOADING_API = "offloading.liqo.io/v1beta1"
LIQO_AUTH_API = "authentication.liqo.io/v1beta1"

IDENTITY_CONFIGMAP = "fluidos-node-identity"
LIQO_TENANT_NAMESPACE = "liqo-tenant-{cluster_id}"
LIQO_LABEL_REMOTE_CLUSTER = "liqo.io/remote-cluster-id"

LABEL_INTENT = "flare.io/intent-id"
LABEL_TENANT = "flare.io/tenant"
LABEL_USER = "flare.io/user"
LABEL_NODE = "flare.io/node-id"
ANNOTATION_KEY = "flare.io/federation-key"
ANNOTATION_FLAVOR = "flare.io/flavor"
ANNOTATION_PC = "flare.io/peering-candidate"
ANNOTATION_SOURCE = "flare.io/source"
SOURCE_DISCOVERY = "fluidos-discovery"

PHASE_SOLVED, PHASE_FAILED, PHASE_TIMED_OUT, PHASE_RUNNING = "Solved", "Failed", "Timed Out", "Running"
DISCOVERY_FLAVOR_ERROR = "Error when getting Flavor"
RESERVATION_PC_NOT_AVAILABLE = "PeeringCandidate not available"
ALLOCATION_ERROR_MESSAGE = "Allocation: error"
OFFLOADING_READY = "Ready"

WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("batch/v1", "Job"))
# Namespaced kinds FLARE applies, in the deletion order of FLUIDOS.md §6.11.
NAMESPACED_RELEASE = (
    ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "Ingress"), ("v1", "Service"), ("v1", "Secret"), ("v1", "PersistentVolumeClaim"),
)
PROBE_SOLVER = "flare-inventory-probe"
DEFAULT_CAPSULE_OWNER = {"kind": "ServiceAccount", "name": "system:serviceaccount:flare-system:flare"}
_ALLOCATION_MESSAGES = {"Inactive": "Allocation created", "Peering": "Allocation: peering",
                        "Active": "Allocation: active", "Error": ALLOCATION_ERROR_MESSAGE}
_WAITING_REASONS_FATAL = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                          "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


# ---------------------------------------------------------------------------------------------
# Names (FLUIDOS.md §1)


def federation_key(provider_id: str, traits: GpuTraits) -> str:
    """The ledger key of FLUIDOS.md §6.3: providerID + model + region + zone (un-swapped)."""
    return "|".join((provider_id or "", traits.model or "", traits.region or "", traits.zone or ""))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")


def node_name_for(key: str) -> str:
    provider_id, model = key.split("|")[:2]
    digest = hashlib.sha256(key.encode()).hexdigest()[:6]
    head = "-".join(p for p in (_slug(provider_id)[:120], _slug(model)[:60]) if p) or "gpu-node"
    return f"{head}-{digest}"


def _quantity(value, default: str = "0") -> Decimal:
    try:
        return parse_quantity(value if value not in (None, "") else default)
    except ValueError:
        return parse_quantity(default)


def unit_resources(document: dict) -> tuple[int, Decimal, Decimal]:
    """(GPUs, cpu, memory bytes) of one replica / task of the intent."""
    resources = (document.get("workload") or {}).get("resources") or {}
    gpu = resources.get("gpu")
    if isinstance(gpu, dict):
        gpus = int(gpu.get("count") or 1)
    else:
        gpus = int(gpu or 1) if not isinstance(gpu, bool) else 1
    return max(gpus, 1), _quantity(resources.get("cpu"), "1"), _quantity(resources.get("memory"), "1Gi")


def _flavor_of_pc(pc: dict) -> dict:
    return (pc.get("spec") or {}).get("flavor") or {}


def _gpu_of_flavor(flavor: dict) -> dict:
    return dict((((flavor.get("spec") or {}).get("flavorType") or {}).get("typeData") or {})
                .get("characteristics", {}).get("gpu") or {})


def _characteristics(flavor: dict) -> dict:
    return ((((flavor.get("spec") or {}).get("flavorType") or {}).get("typeData") or {})
            .get("characteristics")) or {}


def _condition(obj: dict, type_: str) -> dict | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == type_:
            return condition
    return None


# ---------------------------------------------------------------------------------------------
# The backend


class KubernetesFederation:
    """FLUIDOS + Liqo + Capsule on a Kubernetes consumer cluster."""

    name = "kubernetes"

    def __init__(self, api_client=None, *, namespace: str = "fluidos", retries: int = 4, backoff: float = 0.2,
                 max_backoff: float = 5.0, request_timeout: float = 30.0, capsule_owner: dict | None = None,
                 inventory_ttl: float = 30.0, sleep=None):
        if api_client is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.api_client = api_client
        self.namespace = namespace or "fluidos"
        policy = RetryPolicy(retries=int(retries), backoff=float(backoff), max_backoff=float(max_backoff),
                             timeout=float(request_timeout))
        self.kube = KubeApi(api_client, policy, **({"sleep": sleep} if sleep else {}))
        self.capsule_owner = dict(capsule_owner or DEFAULT_CAPSULE_OWNER)
        self._identity: dict | None = None
        # inventory() re-reads the PeeringCandidates at most this often (per process): it runs on
        # every submit, and the rows it writes are also kept current by every Discovery.
        self.inventory_ttl = float(inventory_ttl)
        self._inventory_read_at = float("-inf")

    @classmethod
    def from_settings(cls) -> "KubernetesFederation":
        """kubeconfig (`FLARE_KUBECONFIG`, `FLARE_KUBE_CONTEXT`) when set, else the in-cluster config."""
        from kubernetes import client, config

        kubeconfig = getattr(settings, "FLARE_KUBECONFIG", "") or ""
        context = getattr(settings, "FLARE_KUBE_CONTEXT", "") or None
        if kubeconfig:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        else:
            try:
                config.load_incluster_config()
                api_client = client.ApiClient()
            except config.ConfigException:
                api_client = config.new_client_from_config(context=context)  # ~/.kube/config
        owner = getattr(settings, "FLARE_CAPSULE_OWNER", None)
        return cls(api_client, namespace=getattr(settings, "FLARE_FLUIDOS_NAMESPACE", "fluidos") or "fluidos",
                   capsule_owner=owner if isinstance(owner, dict) else None,
                   retries=int(getattr(settings, "FLARE_KUBE_RETRIES", 4)),
                   backoff=float(getattr(settings, "FLARE_KUBE_BACKOFF", 0.2)),
                   max_backoff=float(getattr(settings, "FLARE_KUBE_MAX_BACKOFF", 5.0)),
                   request_timeout=float(getattr(settings, "FLARE_KUBE_TIMEOUT", 30.0)))

    def __repr__(self) -> str:
        host = getattr(getattr(self.api_client, "configuration", None), "host", "?")
        return f"KubernetesFederation(host={host!r}, namespace={self.namespace!r})"

    # =========================================================================================
    # The port

    def discover(self, intent: IntentRef) -> Discovery:
        with self._errors():
            return self._discover(intent)

    def reserve(self, intent: IntentRef, candidate: Offer, gpus: int) -> Reservation:
        with self._errors():
            return self._reserve(intent, candidate, int(gpus))

    def peer(self, intent: IntentRef, reservation: Reservation) -> Peering:
        with self._errors():
            return self._peer(intent, reservation)

    def deploy(self, intent: IntentRef, peerings: list[Peering], manifests: list[dict]) -> Deployment:
        with self._errors():
            return self._deploy(intent, peerings, manifests)

    def observe(self, intent: IntentRef) -> Observation:
        with self._errors():
            return self._observe(intent)

    def release(self, intent: IntentRef) -> None:
        with self._errors():
            self._release(intent)

    def inventory(self) -> list[Offer]:
        """Offers for the GPU nodes this backend knows (sighted in a Discovery or synced from a
        provider cluster), free GPUs from the ledger. The PeeringCandidates on the cluster are read
        first (best effort: with the API down, the inventory is what the database holds)."""
        try:
            if time.monotonic() - self._inventory_read_at >= self.inventory_ttl:
                self.refresh_inventory()
        except (KubeError, Unavailable, Failed) as error:
            logger.warning("inventory: could not read the PeeringCandidates (%s); using the database", error)
        nodes = list(GpuNode.objects.select_related("provider")
                     .filter(available=True, provider__active=True)
                     .filter(annotations__has_key=ANNOTATION_SOURCE)
                     .order_by("provider__name", "name"))
        free = ledger.free_by_node(nodes)
        return [node.as_offer(free[node.pk]) for node in nodes]

    def refresh_inventory(self) -> int:
        """Upsert the inventory rows of every GPU PeeringCandidate on the cluster (PCs are never
        deleted, so this is the federation as last discovered). One row per ledger key, with the
        PC advertising the most GPUs. Returns how many nodes were seen."""
        best: dict[str, tuple[int, dict, GpuTraits]] = {}
        for pc in self.kube.list(ADVERTISEMENT, "PeeringCandidate", self.namespace):
            try:
                traits = traits_from_flavor(pc)
            except FlavorError:
                continue
            spec = _flavor_of_pc(pc).get("spec") or {}
            owner = spec.get("owner") or {}
            if traits is None or not owner.get("domain"):
                continue
            key = federation_key(spec.get("providerID") or owner.get("nodeID") or owner["domain"], traits)
            if key not in best or traits.count > best[key][0]:
                best[key] = (traits.count, pc, traits)
        for _, pc, traits in best.values():
            self.sight(pc, traits)
        self._inventory_read_at = time.monotonic()
        return len(best)

    def probe_inventory(self, name: str = PROBE_SOLVER) -> bool:
        """One step of an inventory Discovery: a Solver without filters that asks every known
        cluster for its Flavors, so the inventory (and `submit`'s feasibility check) knows the
        federation before any intent ran. Call it again until it answers True: then the
        PeeringCandidates are in the inventory and the probe's Solver and Discovery are deleted."""
        with self._errors():
            solver = self.kube.get(NODECORE, "Solver", name, self.namespace)
            if solver is None:
                self.kube.create({
                    "apiVersion": NODECORE, "kind": "Solver",
                    "metadata": {"name": name, "namespace": self.namespace,
                                 "labels": {"flare.io/purpose": "inventory", "app.kubernetes.io/managed-by": "flare"}},
                    "spec": {"intentID": name, "findCandidate": True, "reserveAndBuy": False,
                             "establishPeering": False},
                })
                return False
            phase = (((solver.get("status") or {}).get("solverPhase")) or {}).get("phase")
            if phase not in (PHASE_SOLVED, PHASE_FAILED, PHASE_TIMED_OUT):
                return False
            self.refresh_inventory()
            self.kube.delete(ADVERTISEMENT, "Discovery", discovery_name(name), self.namespace)
            self.kube.delete(NODECORE, "Solver", name, self.namespace)
            return True

    # =========================================================================================
    # Plumbing

    class _errors:
        """KubeError → the port's typed errors."""

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc is None or not isinstance(exc, KubeError):
                return False
            if exc.transient:
                raise Unavailable(f"Kubernetes API: {exc.message} ({exc.status} {exc.reason})",
                                  reason="KubernetesUnavailable") from exc
            raise Failed(f"Kubernetes API refused a request: {exc.message} ({exc.status} {exc.reason})",
                         reason="KubernetesError") from exc

    def _labels(self, intent: IntentRef, *, user: bool = True) -> dict:
        labels = {LABEL_INTENT: label_value(intent.intent_id), LABEL_TENANT: label_value(intent.tenant)}
        if user and intent.user:
            labels[LABEL_USER] = label_value(intent.user)
        return labels

    def _selector(self, intent: IntentRef) -> str:
        return f"{LABEL_INTENT}={label_value(intent.intent_id)}"

    def _solver_name(self, intent: IntentRef) -> str:
        name = ((intent.solver_manifest or {}).get("metadata") or {}).get("name")
        if not name:
            raise ValueError("the Solver manifest has no metadata.name")
        return name

    def local_identity(self) -> dict:
        """The consumer's NodeIdentity (ConfigMap fluidos/fluidos-node-identity)."""
        if self._identity is None:
            configmap = self.kube.get("v1", "ConfigMap", IDENTITY_CONFIGMAP, self.namespace)
            data = (configmap or {}).get("data") or {}
            missing = [k for k in ("domain", "nodeID", "ip") if not data.get(k)]
            if missing:
                raise Failed(f"ConfigMap {self.namespace}/{IDENTITY_CONFIGMAP} lacks {', '.join(missing)}: is the "
                             "FLUIDOS node installed?", reason="NodeIdentityMissing")
            self._identity = {"domain": data["domain"], "nodeID": data["nodeID"], "ip": data["ip"]}
        return dict(self._identity)

    # =========================================================================================
    # Discovery (FLUIDOS.md §6.1, §6.2, §6.3)

    def _discover(self, intent: IntentRef) -> Discovery:
        name = self._solver_name(intent)
        solver = self.kube.get(NODECORE, "Solver", name, self.namespace)
        if solver is None:
            manifest = copy.deepcopy(intent.solver_manifest)
            manifest.setdefault("apiVersion", NODECORE)
            manifest.setdefault("kind", "Solver")
            metadata = manifest.setdefault("metadata", {})
            metadata["namespace"] = self.namespace
            metadata["labels"] = {**(metadata.get("labels") or {}), **self._labels(intent)}
            manifest.pop("status", None)
            solver = self.kube.create(manifest)
        phase_info = (solver.get("status") or {}).get("solverPhase") or {}
        phase, message = phase_info.get("phase") or "", phase_info.get("message") or ""
        if phase == PHASE_SOLVED:
            return Discovery(done=True, candidates=self._candidates(name), phase=phase, message=message)
        if phase == PHASE_FAILED:
            discovery = self.kube.get(ADVERTISEMENT, "Discovery", discovery_name(name), self.namespace)
            cause = (((discovery or {}).get("status") or {}).get("phase") or {}).get("message") or ""
            if cause == DISCOVERY_FLAVOR_ERROR:
                # A provider answered an error: the attempt fails, a fresh Solver retries.
                raise Failed(f"{message}: Discovery failed: {cause}", reason="DiscoveryFailed")
            return Discovery(done=True, candidates=[], phase=PHASE_FAILED, message=message or cause)
        if phase == PHASE_TIMED_OUT:
            raise Timeout(message or f"Solver {name} timed out", reason="SolverTimedOut")
        return Discovery(done=False, phase=phase or "Idle", message=message or f"Solver {name} created")

    def _solver_pcs(self, solver: str) -> list[dict]:
        pcs = [pc for pc in self.kube.list(ADVERTISEMENT, "PeeringCandidate", self.namespace)
               if solver in ((pc.get("spec") or {}).get("interestedSolverIDs") or [])]
        return sorted(pcs, key=lambda pc: pc["metadata"]["name"])

    def _candidates(self, solver: str) -> list[Offer]:
        """One Offer per GPU node among the available PCs the Solver discovered."""
        chosen: dict[int, tuple[GpuNode, dict, GpuTraits]] = {}
        for pc in self._solver_pcs(solver):
            if not (pc.get("spec") or {}).get("available"):
                continue
            flavor = _flavor_of_pc(pc)
            try:
                traits = traits_from_flavor(pc)
            except FlavorError as error:
                logger.warning("PeeringCandidate %s: unreadable Flavor (%s); skipped", pc["metadata"]["name"], error)
                continue
            if traits is None:
                continue   # no GPU: not FLARE's business
            node = self.sight(pc, traits)
            if node is None or not node.available or not node.provider.active:
                continue
            previous = chosen.get(node.pk)
            if previous is None or traits.count > previous[2].count:
                chosen[node.pk] = (node, flavor, traits)
        free = ledger.free_by_node([n for n, _, _ in chosen.values()])
        offers = []
        for node, flavor, _ in chosen.values():
            offer = node.as_offer(free[node.pk])
            flavor_name = (flavor.get("metadata") or {}).get("name", "")
            offers.append(Offer(node_id=offer.node_id, node_name=offer.node_name, flavor_name=flavor_name,
                                traits=offer.traits, provider=offer.provider, free_gpus=offer.free_gpus,
                                total_gpus=offer.total_gpus, power_watts=offer.power_watts,
                                extra={"peering_candidate": f"peeringcandidate-{flavor_name}"}))
        return offers

    def sight(self, pc: dict, traits: GpuTraits | None = None) -> GpuNode | None:
        """Upsert the inventory row of a PeeringCandidate's node (the ledger key of §6.3)."""
        flavor = _flavor_of_pc(pc) if pc.get("kind", "PeeringCandidate") == "PeeringCandidate" else pc
        spec = flavor.get("spec") or {}
        owner = spec.get("owner") or {}
        traits = traits if traits is not None else traits_from_flavor(pc)
        if traits is None or not owner.get("domain"):
            return None
        provider_id = spec.get("providerID") or owner.get("nodeID") or owner["domain"]
        key = federation_key(provider_id, traits)
        bookkeeping = {ANNOTATION_KEY: key, ANNOTATION_FLAVOR: (flavor.get("metadata") or {}).get("name", ""),
                       ANNOTATION_PC: (pc.get("metadata") or {}).get("name", ""), ANNOTATION_SOURCE: SOURCE_DISCOVERY}
        for _ in range(3):
            try:
                with transaction.atomic():
                    provider = self._provider_for(owner, traits)
                    return self._upsert_node(provider, key, traits, _characteristics(flavor), bookkeeping)
            except IntegrityError:   # another worker created the same row: read it next time round
                continue
        return GpuNode.objects.select_related("provider").filter(annotations__contains={ANNOTATION_KEY: key}).first()

    @staticmethod
    def _provider_for(owner: dict, traits: GpuTraits) -> Provider:
        domain = owner["domain"]
        provider = Provider.objects.filter(fluidos_domain=domain).order_by("pk").first()
        if provider is not None:
            return provider
        base = traits.provider or domain
        name = base
        suffix = 2
        while Provider.objects.filter(name=name).exists():
            name = f"{base}-{suffix}"
            suffix += 1
        return Provider.objects.create(
            name=name[:100], fluidos_domain=domain, fluidos_node_id=owner.get("nodeID", ""),
            fluidos_ip=owner.get("ip", ""), region=traits.region or "unknown", zone=traits.zone or "",
            latency_ms=traits.network_latency_ms, offers_spot=bool(traits.preemptible),
            bandwidth_gbps=traits.network_bandwidth_gbps, currency=traits.currency or "EUR",
        )

    @staticmethod
    def _upsert_node(provider: Provider, key: str, traits: GpuTraits, characteristics: dict,
                     bookkeeping: dict) -> GpuNode:
        # No row locks: the ledger locks node rows in id order, and a Discovery running in another
        # worker's transaction must not hold them in another order. Concurrent sightings of one
        # Flavor write the same values.
        node = (GpuNode.objects.select_related("provider")
                .filter(provider=provider, annotations__contains={ANNOTATION_KEY: key}).first())
        if node is None:
            # A node synced from the provider cluster (no key yet) with the same model and location.
            node = (GpuNode.objects.select_related("provider")
                    .filter(provider=provider, model=traits.model, region=traits.region, zone=traits.zone)
                    .exclude(annotations__has_key=ANNOTATION_KEY).order_by("pk").first())
        if node is None:
            node = GpuNode(provider=provider, name=node_name_for(key), annotations={}, labels={},
                           cpu=str(characteristics.get("cpu") or "0"), memory=str(characteristics.get("memory") or "0"),
                           pods=int(_quantity(characteristics.get("pods"), "0")), available=True)
            node.apply_traits(traits)
            node.annotations = dict(bookkeeping)
            node.save()
            return node
        changed = False
        if traits.count > 0:
            if node.count == 0:
                node.apply_traits(traits)     # the first sighting with GPUs sets the total
                if not _quantity(node.cpu) and characteristics.get("cpu"):
                    node.cpu, node.memory = str(characteristics["cpu"]), str(characteristics.get("memory") or "0")
                    node.pods = int(_quantity(characteristics.get("pods"), "0"))
                changed = True
            else:
                kept = {"count": node.count, "memory_per_gpu": node.memory_per_gpu, "cores_per_gpu": node.cores_per_gpu}
                before = node.traits()
                node.apply_traits(traits.with_(**kept))
                changed = node.traits() != before
        annotations = {**(node.annotations or {}), **bookkeeping}
        if annotations != node.annotations:
            node.annotations = annotations
            changed = True
        if changed:   # never `available`: that is the operator's switch
            node.save(update_fields=[*TRAIT_COLUMNS, "annotations", "cpu", "memory", "pods", "updated_at"])
        return node

    # =========================================================================================
    # Reservation (FLUIDOS.md §6.4, §6.5)

    def _reserve(self, intent: IntentRef, candidate: Offer, gpus: int) -> Reservation:
        solver = self._solver_name(intent)
        node = GpuNode.objects.select_related("provider").filter(pk=int(candidate.node_id)).first() \
            if str(candidate.node_id).isdigit() else None
        if node is None:
            raise Failed(f"Node {candidate.node_name} is no longer in the inventory", reason="NodeGone")
        mine = [r for r in self.kube.list(RESERVATION_API, "Reservation", self.namespace,
                                          label_selector=self._selector(intent))
                if (r.get("spec") or {}).get("solverID") == solver]
        reservation = next((r for r in mine if (r["metadata"].get("labels") or {}).get(LABEL_NODE) == str(node.pk)),
                           None)
        if reservation is None:
            reservation = self._create_reservation(intent, solver, node, gpus, mine)
        status = reservation.get("status") or {}
        phase_info = status.get("phase") or {}
        phase, message = phase_info.get("phase") or "", phase_info.get("message") or ""
        name = reservation["metadata"]["name"]
        flavor = ((reservation["spec"].get("peeringCandidate") or {}).get("name") or "").removeprefix(
            "peeringcandidate-")
        count = int(((((reservation["spec"].get("configuration") or {}).get("data") or {}).get("gpu")) or {})
                    .get("count") or gpus)
        result = Reservation(done=False, name=name, flavor=flavor, provider=node.provider.name, node=node.name,
                             gpus=count, phase=phase or "Idle")
        if phase == PHASE_FAILED:
            if RESERVATION_PC_NOT_AVAILABLE in message:
                raise Conflict(message, reason="PeeringCandidateTaken")
            raise Failed(message or f"Reservation {name} failed", reason="ReservationFailed")
        if phase == PHASE_SOLVED:
            contract_ref = status.get("contract") or {}
            contract = self.kube.get(RESERVATION_API, "Contract", contract_ref.get("name", ""),
                                     contract_ref.get("namespace") or self.namespace) \
                if contract_ref.get("name") else None
            if contract is None:
                result.message = "Reservation solved; waiting for the Contract"
                return result
            credentials = (contract.get("spec") or {}).get("peeringTargetCredentials") or {}
            sold = ((contract.get("spec") or {}).get("flavor") or {}).get("metadata") or {}
            result.done = True
            result.contract = contract["metadata"]["name"]
            result.flavor = sold.get("name") or flavor
            result.remote_cluster_id = credentials.get("liqoID", "")
            result.message = "Reservation: Flavor reserved and purchased"
            return result
        if status.get("purchasePhase") == PHASE_RUNNING:
            result.message = "Reservation: Purchase is running"
        elif status.get("reservePhase") in (PHASE_RUNNING, PHASE_SOLVED):
            result.message = "Reservation: Reserve is running"
        else:
            result.message = "Reservation created"
        return result

    def _create_reservation(self, intent: IntentRef, solver: str, node: GpuNode, gpus: int,
                            existing: list[dict]) -> dict:
        key = (node.annotations or {}).get(ANNOTATION_KEY)
        matching = []
        for pc in self._solver_pcs(solver):
            try:
                traits = traits_from_flavor(pc)
            except FlavorError:
                continue
            flavor_spec = _flavor_of_pc(pc).get("spec") or {}
            owner = flavor_spec.get("owner") or {}
            provider_id = flavor_spec.get("providerID") or owner.get("nodeID") or owner.get("domain", "")
            if traits is not None and key and federation_key(provider_id, traits) == key:
                matching.append((bool(pc["spec"].get("available")), traits.count, pc))
        if not matching:
            raise Conflict(f"No PeeringCandidate of Solver {solver} offers node {node.name}; discover again",
                           reason="PeeringCandidateMissing")
        matching.sort(key=lambda item: (item[0], item[1]), reverse=True)
        pc = matching[0][2]
        flavor = _flavor_of_pc(pc)
        units_gpus, unit_cpu, unit_memory = unit_resources(intent.document)
        units = max(1, gpus // units_gpus)
        gpu = _gpu_of_flavor(flavor)
        gpu["count"] = int(gpus)
        configuration = {"type": "K8Slice", "data": {
            "cpu": format_quantity(unit_cpu * units), "memory": format_quantity(unit_memory * units, binary=True),
            "pods": str(units), "gpu": gpu}}
        taken = {r["metadata"]["name"] for r in existing}
        position = len(existing) + 1
        while reservation_name(solver, position) in taken:
            position += 1
        body = {
            "apiVersion": RESERVATION_API, "kind": "Reservation",
            "metadata": {"name": reservation_name(solver, position), "namespace": self.namespace,
                         "labels": {**self._labels(intent), LABEL_NODE: str(node.pk)}},
            "spec": {"solverID": solver, "buyer": self.local_identity(),
                     "seller": copy.deepcopy((flavor.get("spec") or {}).get("owner") or {}),
                     "peeringCandidate": {"name": pc["metadata"]["name"],
                                          "namespace": pc["metadata"].get("namespace") or self.namespace},
                     "reserve": True, "purchase": True, "configuration": configuration},
        }
        return self.kube.create(body)

    # =========================================================================================
    # Peering (FLUIDOS.md §6.6, §6.7)

    def _peer(self, intent: IntentRef, reservation: Reservation) -> Peering:
        contract = self.kube.get(RESERVATION_API, "Contract", reservation.contract, self.namespace) \
            if reservation.contract else None
        if contract is None:
            raise Failed(f"Contract {reservation.contract or '(none)'} of Reservation {reservation.name} does not "
                         "exist", reason="ContractMissing")
        spec = contract.get("spec") or {}
        cluster_id = (spec.get("peeringTargetCredentials") or {}).get("liqoID") or reservation.remote_cluster_id
        flavor = ((spec.get("flavor") or {}).get("metadata") or {}).get("name") or reservation.flavor
        name = allocation_name(flavor)
        allocation = self.kube.get(NODECORE, "Allocation", name, self.namespace)
        if allocation is None:
            allocation = self.kube.create({
                "apiVersion": NODECORE, "kind": "Allocation",
                "metadata": {"name": name, "namespace": self.namespace, "labels": self._labels(intent)},
                "spec": {"contract": {"name": contract["metadata"]["name"], "namespace": self.namespace},
                         "forwarding": False},
            })
        status = allocation.get("status") or {}
        state = status.get("status") or "Inactive"
        result = Peering(done=False, allocation=name, remote_cluster_id=cluster_id, phase=state,
                         message=_ALLOCATION_MESSAGES.get(state, status.get("message") or state))
        if state == "Error":
            detail = status.get("message") or ""
            raise Failed(f"{ALLOCATION_ERROR_MESSAGE}: {detail}" if detail else ALLOCATION_ERROR_MESSAGE,
                         reason="PeeringError")
        if state != "Active":
            return result
        gpus = int((((spec.get("configuration") or {}).get("data") or {}).get("gpu") or {}).get("count")
                   or reservation.gpus or 0)
        vendor = str(_gpu_of_flavor(spec.get("flavor") or {}).get("vendor") or "nvidia").lower()
        resource = GPU_RESOURCE.get(vendor, GPU_RESOURCE["nvidia"])
        ready, message, node_name = self._ensure_gpu_capacity(contract["metadata"]["name"], cluster_id, resource, gpus)
        result.message = message
        if ready:
            result.done = True
            result.virtual_node = node_name
        return result

    def _ensure_gpu_capacity(self, contract: str, cluster_id: str, resource: str, gpus: int) -> tuple[bool, str, str]:
        """§6.7: add the GPUs to the Contract's ResourceSlice, wait for the virtual node to show them."""
        namespace = LIQO_TENANT_NAMESPACE.format(cluster_id=cluster_id)
        slice_ = self.kube.get(LIQO_AUTH_API, "ResourceSlice", contract, namespace)
        if slice_ is None:
            return False, f"Allocation: active; waiting for Liqo's ResourceSlice {namespace}/{contract}", ""
        if gpus:
            wanted = str(gpus)
            if str(((slice_.get("spec") or {}).get("resources") or {}).get(resource)) != wanted:
                slice_ = self.kube.merge_patch(LIQO_AUTH_API, "ResourceSlice", contract,
                                               {"spec": {"resources": {resource: wanted}}}, namespace) or slice_
            accepted = ((slice_.get("status") or {}).get("resources") or {}).get(resource)
            if str(accepted) != wanted:
                return False, f"Allocation: active; ResourceSlice {contract} asks for {gpus} {resource}", ""
        nodes = self.kube.list("v1", "Node", label_selector=f"{LIQO_LABEL_REMOTE_CLUSTER}={cluster_id}")
        node = next(iter(sorted(nodes, key=lambda n: n["metadata"]["name"])), None)
        if node is None:
            return False, f"Allocation: active; waiting for the virtual node of {cluster_id}", ""
        capacity = (node.get("status") or {}).get("capacity") or {}
        if gpus and _quantity(capacity.get(resource)) < gpus:
            return False, (f"Allocation: active; virtual node {node['metadata']['name']} shows "
                           f"{capacity.get(resource, '0')} {resource}, waiting for {gpus}"), ""
        return True, "Allocation: active", node["metadata"]["name"]

    # =========================================================================================
    # Namespace, offloading, workloads (FLUIDOS.md §6.8, §6.9)

    def _ensure_capsule_tenant(self, name: str) -> dict:
        tenant = self.kube.get(CAPSULE_API_VERSION, "Tenant", name)
        if tenant is None:
            tenant = self.kube.create({
                "apiVersion": CAPSULE_API_VERSION, "kind": "Tenant",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "flare"}},
                "spec": {"owners": [dict(self.capsule_owner)], "forceTenantPrefix": True},
            })
        return tenant

    def _with_labels(self, manifest: dict, intent: IntentRef, namespace: str | None) -> dict:
        manifest = copy.deepcopy(manifest)
        metadata = manifest.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **self._labels(intent, user=False)}
        if namespace is not None:
            metadata["namespace"] = namespace
        manifest.pop("status", None)
        return manifest

    def _deploy(self, intent: IntentRef, peerings: list[Peering], manifests: list[dict]) -> Deployment:
        applied: list[str] = []
        namespace_manifest = next((m for m in manifests if m.get("kind") == "Namespace"), None)
        if namespace_manifest is not None:
            namespace = namespace_manifest["metadata"]["name"]
            existing = self.kube.get("v1", "Namespace", namespace)
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                # A previous attempt's namespace is still finalising (Liqo removes the remote one first).
                return Deployment(done=False, namespace=namespace, phase="Terminating",
                                  message=f"Namespace {namespace} of a previous attempt is still terminating")
            body = self._with_labels(namespace_manifest, intent, None)
            tenant_name = (body["metadata"].get("labels") or {}).get(LABEL_CAPSULE_TENANT) or \
                capsule_tenant_name(intent.tenant)
            tenant = self._ensure_capsule_tenant(tenant_name)
            body["metadata"]["labels"][LABEL_CAPSULE_TENANT] = tenant_name
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": CAPSULE_API_VERSION, "kind": "Tenant", "name": tenant_name,
                 "uid": tenant["metadata"]["uid"], "controller": True}]
            self.kube.apply(body)
            applied.append(f"Namespace/{namespace}")
        else:
            namespace = intent.namespace
        offloading_manifest = next((m for m in manifests if m.get("kind") == "NamespaceOffloading"), None)
        if offloading_manifest is not None:
            self.kube.apply(self._with_labels(offloading_manifest, intent, namespace))
            applied.append(f"NamespaceOffloading/{offloading_manifest['metadata']['name']}")
        offloading = self.kube.get(OFFLOADING_API, "NamespaceOffloading", OFFLOADING_NAME, namespace)
        if offloading is None:
            raise Failed(f"Namespace {namespace} has no NamespaceOffloading: deploy needs the intent's Namespace and "
                         "NamespaceOffloading manifests first", reason="OffloadingMissing")
        phase = (offloading.get("status") or {}).get("offloadingPhase") or "InProgress"
        if phase != OFFLOADING_READY:
            return Deployment(done=False, namespace=namespace, objects=applied, phase=phase,
                              message=f"NamespaceOffloading {OFFLOADING_NAME} in {namespace}: {phase}")
        workloads = 0
        for manifest in manifests:
            if manifest.get("kind") in ("Namespace", "NamespaceOffloading"):
                continue
            body = self._with_labels(manifest, intent, (manifest.get("metadata") or {}).get("namespace") or namespace)
            self.kube.apply(body)
            applied.append(f"{body['kind']}/{body['metadata']['name']}")
            workloads += 1
        message = (f"Namespace {namespace} offloaded; {workloads} workload object(s) applied" if workloads
                   else f"Namespace {namespace} offloaded")
        return Deployment(done=True, namespace=namespace, objects=applied, phase=phase, message=message)

    # =========================================================================================
    # Observation

    def _observe(self, intent: IntentRef) -> Observation:
        namespace = intent.namespace
        selector = self._selector(intent)
        workloads = []
        for api_version, kind in WORKLOAD_KINDS:
            for item in self.kube.list(api_version, kind, namespace, label_selector=selector):
                item.setdefault("kind", kind)
                workloads.append(item)
        if not workloads:
            return Observation(state="pending", message="The workload is not deployed yet")
        workload = sorted(workloads, key=lambda o: (o["metadata"].get("creationTimestamp") or "",
                                                    o["metadata"]["name"]))[0]
        url = self._workload_url(intent, namespace, selector)
        pods = self.kube.list("v1", "Pod", namespace)
        if workload["kind"] == "Job":
            return self._observe_job(workload, pods, url)
        return self._observe_deployment(workload, pods, url)

    def _workload_url(self, intent: IntentRef, namespace: str, selector: str) -> str:
        for ingress in self.kube.list("networking.k8s.io/v1", "Ingress", namespace, label_selector=selector):
            for rule in (ingress.get("spec") or {}).get("rules") or ():
                if rule.get("host"):
                    return f"https://{rule['host']}"
        for service in self.kube.list("v1", "Service", namespace, label_selector=selector):
            spec = service.get("spec") or {}
            ports = [p for p in spec.get("ports") or () if (p.get("protocol") or "TCP") == "TCP"]
            if not ports:
                continue
            port = ports[0].get("port")
            for entry in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ():
                address = entry.get("hostname") or entry.get("ip")
                if address:
                    return f"http://{address}:{port}"
            return f"http://{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}"
        return workload_url(intent.document, namespace)

    @staticmethod
    def _owned_pods(pods: list[dict], owner_uids: set[str]) -> list[dict]:
        return [p for p in pods if any(r.get("uid") in owner_uids for r in p["metadata"].get("ownerReferences") or ())]

    @staticmethod
    def _pod_problem(pods: list[dict]) -> tuple[str, str, bool]:
        """(reason, message, fatal) of the first pod that is stuck, or ("", "", False)."""
        for pod in pods:
            status = pod.get("status") or {}
            for container in status.get("containerStatuses") or ():
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _WAITING_REASONS_FATAL:
                    return (waiting["reason"], f"Pod {pod['metadata']['name']}: container {container.get('name')} is "
                            f"in {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": "), True)
            scheduled = _condition(pod, "PodScheduled")
            if scheduled and scheduled.get("status") == "False":
                return (scheduled.get("reason") or "Unschedulable",
                        f"Pod {pod['metadata']['name']} is not scheduled: {scheduled.get('message') or ''}", False)
        return "", "", False

    def _observe_job(self, job: dict, pods: list[dict], url: str) -> Observation:
        name = job["metadata"]["name"]
        spec, status = job.get("spec") or {}, job.get("status") or {}
        tasks = int(spec.get("completions") or spec.get("parallelism") or 1)
        succeeded = int(status.get("succeeded") or 0)
        for type_ in ("Failed", "Complete"):
            condition = _condition(job, type_)
            if condition and condition.get("status") == "True":
                if type_ == "Failed":
                    return Observation(state="failed", reason=condition.get("reason") or "JobFailed",
                                       message=f"Job {name} failed: {condition.get('message') or ''}".rstrip(": "),
                                       workload_url=url, completed_tasks=succeeded)
                return Observation(state="succeeded", workload_url=url, completed_tasks=succeeded,
                                   message=f"Job {name} completed: {succeeded}/{tasks} task(s) succeeded")
        own = self._owned_pods(pods, {job["metadata"].get("uid")})
        reason, message, fatal = self._pod_problem(own)
        if fatal:
            return Observation(state="failed", reason=reason, message=message, workload_url=url,
                               completed_tasks=succeeded)
        running = [p for p in own if (p.get("status") or {}).get("phase") == "Running"]
        if running:
            return Observation(state="running", workload_url=url, completed_tasks=succeeded,
                               message=f"Job {name}: {succeeded}/{tasks} task(s) completed, {len(running)} running")
        return Observation(state="pending", workload_url=url, completed_tasks=succeeded,
                           message=message or f"Job {name}: waiting for its pods to start")

    def _observe_deployment(self, deployment: dict, pods: list[dict], url: str) -> Observation:
        name = deployment["metadata"]["name"]
        replicas = int((deployment.get("spec") or {}).get("replicas", 1))
        status = deployment.get("status") or {}
        ready = int(status.get("readyReplicas") or 0)
        progressing = _condition(deployment, "Progressing")
        if progressing and progressing.get("status") == "False" and \
                progressing.get("reason") == "ProgressDeadlineExceeded":
            return Observation(state="failed", reason="ProgressDeadlineExceeded", workload_url=url,
                               message=f"Deployment {name}: {progressing.get('message') or 'progress deadline exceeded'}",
                               ready_replicas=ready)
        replica_sets = self.kube.list("apps/v1", "ReplicaSet", deployment["metadata"]["namespace"])
        rs_uids = {r["metadata"].get("uid") for r in replica_sets
                   if any(o.get("uid") == deployment["metadata"].get("uid")
                          for o in r["metadata"].get("ownerReferences") or ())}
        own = self._owned_pods(pods, rs_uids)
        reason, message, fatal = self._pod_problem(own)
        if fatal:
            return Observation(state="failed", reason=reason, message=message, workload_url=url, ready_replicas=ready)
        available = _condition(deployment, "Available")
        if ready >= replicas and available and available.get("status") == "True":
            return Observation(state="running", workload_url=url, ready_replicas=ready,
                               message=f"Deployment {name}: {ready}/{replicas} replicas ready")
        return Observation(state="pending", workload_url=url, ready_replicas=ready,
                           message=message or f"Deployment {name}: {ready}/{replicas} replicas ready")

    # =========================================================================================
    # Release (FLUIDOS.md §6.11)

    def _release(self, intent: IntentRef) -> None:
        problems: list[str] = []
        kube, ns, selector = _BestEffort(self.kube, problems), self.namespace, self._selector(intent)
        namespaces = {n["metadata"]["name"] for n in kube.list("v1", "Namespace", label_selector=selector)}
        try:
            namespaces.add(intent.namespace)
        except ValueError:
            pass
        # Workloads → HPA → Ingress → Service → Secrets → PVCs → NamespaceOffloading → Namespace
        for namespace in sorted(namespaces):
            found = []
            for api_version, kind in NAMESPACED_RELEASE:
                for item in kube.list(api_version, kind, namespace, label_selector=selector):
                    found.append({"apiVersion": api_version, "kind": kind, "metadata": item["metadata"]})
            for item in release_order(found):
                propagation = "Background" if item["kind"] in ("Job", "Deployment") else None
                kube.delete(item["apiVersion"], item["kind"], item["metadata"]["name"], namespace,
                            propagation=propagation)
            for item in kube.list(OFFLOADING_API, "NamespaceOffloading", namespace, label_selector=selector):
                kube.delete(OFFLOADING_API, "NamespaceOffloading", item["metadata"]["name"], namespace)
        for namespace in sorted(namespaces):
            existing = kube.get("v1", "Namespace", namespace)
            labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
            if existing is not None and labels.get(LABEL_INTENT) == label_value(intent.intent_id):
                kube.delete("v1", "Namespace", namespace, propagation="Background")

        solvers = kube.list(NODECORE, "Solver", ns, label_selector=selector)
        reservations = kube.list(RESERVATION_API, "Reservation", ns, label_selector=selector)
        allocations = kube.list(NODECORE, "Allocation", ns, label_selector=selector)
        contract_names = {((r.get("status") or {}).get("contract") or {}).get("name") for r in reservations}
        contract_names |= {((a.get("spec") or {}).get("contract") or {}).get("name") for a in allocations}
        contract_names.discard(None)
        contract_names.discard("")
        contracts = [c for c in (kube.get(RESERVATION_API, "Contract", name, ns) for name in sorted(contract_names))
                     if c is not None]
        # ResourceSlice: take the GPUs back, then the slice itself (the peering stays).
        for contract in contracts:
            spec = contract.get("spec") or {}
            cluster_id = (spec.get("peeringTargetCredentials") or {}).get("liqoID")
            if not cluster_id:
                continue
            namespace = LIQO_TENANT_NAMESPACE.format(cluster_id=cluster_id)
            name = contract["metadata"]["name"]
            slice_ = kube.get(LIQO_AUTH_API, "ResourceSlice", name, namespace)
            if slice_ is None:
                continue
            resources = (slice_.get("spec") or {}).get("resources") or {}
            gpu_keys = [k for k in resources if k in GPU_RESOURCE.values()]
            if gpu_keys:
                kube.merge_patch(LIQO_AUTH_API, "ResourceSlice", name,
                                 {"spec": {"resources": {k: None for k in gpu_keys}}}, namespace)
            kube.delete(LIQO_AUTH_API, "ResourceSlice", name, namespace)
        for allocation in allocations:
            kube.delete(NODECORE, "Allocation", allocation["metadata"]["name"], ns)
        for contract in contracts:
            kube.delete(RESERVATION_API, "Contract", contract["metadata"]["name"], ns)
        for reservation in reservations:
            transaction_id = (reservation.get("status") or {}).get("transactionID")
            if transaction_id:
                kube.delete(RESERVATION_API, "Transaction", transaction_id, ns)
        for reservation in reservations:
            kube.delete(RESERVATION_API, "Reservation", reservation["metadata"]["name"], ns)
        for solver in solvers:
            kube.delete(ADVERTISEMENT, "Discovery", discovery_name(solver["metadata"]["name"]), ns)
        for solver in solvers:
            kube.delete(NODECORE, "Solver", solver["metadata"]["name"], ns)
        if problems:
            logger.warning("release of %s left %d object(s) the API refused to delete: %s", intent.intent_id,
                           len(problems), "; ".join(problems))


class _BestEffort:
    """Release goes on past a refusal (403, 422, …) so one object FLARE may not delete does not
    keep the others, or the ledger, held; transient errors still raise (the release is retried)."""

    def __init__(self, kube: KubeApi, problems: list[str]):
        self.kube = kube
        self.problems = problems

    def _call(self, default, method: str, *args, **kwargs):
        try:
            return getattr(self.kube, method)(*args, **kwargs)
        except KubeError as error:
            if error.transient:
                raise
            self.problems.append(f"{method} {args[1] if len(args) > 1 else ''} {args[2] if len(args) > 2 else ''}: "
                                 f"{error.status} {error.message}")
            return default

    def get(self, *args, **kwargs):
        return self._call(None, "get", *args, **kwargs)

    def list(self, *args, **kwargs):
        return self._call([], "list", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._call(False, "delete", *args, **kwargs)

    def merge_patch(self, *args, **kwargs):
        return self._call(None, "merge_patch", *args, **kwargs)


__all__ = ["KubernetesFederation", "allocation_name", "contract_name", "discovery_name", "federation_key", "h4",
           "node_name_for", "reservation_name", "unit_resources"]

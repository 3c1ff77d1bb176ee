"""Provider side: a provider cluster's GPU nodes ⇄ FLARE's inventory (FLUIDOS.md §4).

`sync_nodes(provider, api_client)` reads the nodes the FLUIDOS node turns into Flavors (label
`node-role.fluidos.eu/resources=true`), parses their GPU annotations — or, on a node that has none,
the NVIDIA/AMD GPU-operator labels converted by `providers.gpu_labels` (plus the catalogue) — and
upserts one `GpuNode` per node through `providers.services`. A node that cannot be read is reported
and skipped; the sync never stops at the first bad node.

`push_annotations(node, api_client)` writes a `GpuNode`'s annotations back onto its Kubernetes
node (what a provider administrator would `kubectl annotate`), so the FLUIDOS node publishes the
traits FLARE holds: GPU trait keys FLARE no longer holds are removed, FLARE's own bookkeeping
(`flare.io/…`) is never written.

Both take a `kubernetes.client.ApiClient` for the provider cluster (`client_from_kubeconfig`
builds one); requests are retried like the federation backend's (`federation.k8s_client`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from tenants.services import ServiceError

from .annotations import ACCEPTED_KEYS, RESOURCE_NODE_LABEL, TRAIT_DOMAINS, _full_key
from .federation.k8s_client import KubeApi, KubeError, RetryPolicy
from .gpu_labels import labels_to_annotations
from .models import GpuNode, Provider
from .services import InvalidAnnotations, upsert_node

BOOKKEEPING_PREFIX = "flare.io/"
ANNOTATION_SOURCE = "flare.io/source"       # the inventory() marker of the Kubernetes backend
ANNOTATION_SYNCED_AT = "flare.io/synced-at"
SOURCE_NODE_SYNC = "node-sync"


class NodeSyncError(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, code="CLUSTER_UNAVAILABLE", status=502)


@dataclass
class SyncReport:
    provider: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)       # "<node>: <why>", one per node that was skipped
    warnings: list[str] = field(default_factory=list)
    from_labels: list[str] = field(default_factory=list)  # nodes read from GPU-operator labels

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = (f"{self.provider}: {len(self.created)} node(s) created, {len(self.updated)} updated, "
                f"{len(self.errors)} skipped")
        if self.from_labels:
            text += f"; read from GPU-operator labels: {', '.join(self.from_labels)}"
        return text


def is_trait_key(key: str) -> bool:
    """A GPU trait annotation (any spelling FLARE or the FLUIDOS node reads, or a trait domain)."""
    full = _full_key(str(key))
    return full in ACCEPTED_KEYS or full.split("/", 1)[0].lower() in TRAIT_DOMAINS


def client_from_kubeconfig(path: str, context: str | None = None):
    from kubernetes import config

    return config.new_client_from_config(config_file=path, context=context or None)


def client_for_provider(provider: Provider, consumer_api_client=None):
    """An ApiClient for the provider's cluster from `Provider.kubeconfig_secret_ref`
    ("namespace/name" of a Secret on the consumer cluster, key `kubeconfig`, else its only key).
    `consumer_api_client` defaults to the Kubernetes federation's client (or the settings')."""
    import base64

    import yaml
    from kubernetes import config

    ref = (provider.kubeconfig_secret_ref or "").strip()
    if ref.count("/") != 1 or not all(ref.split("/")):
        raise ServiceError(f"provider {provider.name}: kubeconfig_secret_ref must be 'namespace/name', got {ref!r}",
                           field="kubeconfig_secret_ref")
    namespace, name = ref.split("/")
    if consumer_api_client is None:
        from .federation import get_federation

        federation = get_federation()
        consumer_api_client = getattr(federation, "api_client", None)
        if consumer_api_client is None:
            from .federation.kubernetes import KubernetesFederation

            consumer_api_client = KubernetesFederation.from_settings().api_client
    try:
        secret = _api(consumer_api_client).get("v1", "Secret", name, namespace)
    except KubeError as error:
        raise NodeSyncError(f"cannot read Secret {ref}: {error.message}") from error
    data = (secret or {}).get("data") or {}
    if not data:
        raise ServiceError(f"provider {provider.name}: Secret {ref} does not exist or is empty", code="NOT_FOUND",
                           status=404, field="kubeconfig_secret_ref")
    encoded = data.get("kubeconfig") or (next(iter(data.values())) if len(data) == 1 else None)
    if encoded is None:
        raise ServiceError(f"provider {provider.name}: Secret {ref} has no 'kubeconfig' key",
                           field="kubeconfig_secret_ref")
    try:
        kubeconfig = yaml.safe_load(base64.b64decode(encoded))
        return config.new_client_from_config_dict(kubeconfig)
    except Exception as error:  # noqa: BLE001 - yaml, base64 and the config loader raise many kinds
        raise ServiceError(f"provider {provider.name}: Secret {ref} holds no usable kubeconfig ({error})",
                           field="kubeconfig_secret_ref") from error


def _api(api_client, policy: RetryPolicy | None = None) -> KubeApi:
    return KubeApi(api_client, policy or RetryPolicy(retries=3, backoff=0.2, max_backoff=2.0, timeout=30.0))


def node_annotations(node: dict) -> tuple[dict, bool, list[str]]:
    """The GPU annotations of a Kubernetes Node: its trait annotations, or when it has none, those
    its GPU-operator labels give. Returns (annotations, from_labels, label errors)."""
    metadata = node.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if is_trait_key(k)}
    if annotations:
        return annotations, False, []
    conversion = labels_to_annotations(metadata.get("labels") or {})
    return dict(conversion.annotations), True, list(conversion.errors)


def sync_nodes(provider: Provider, api_client, *, actor=None, policy: RetryPolicy | None = None) -> SyncReport:
    """Upsert the provider's GPU nodes from its cluster. Raises NodeSyncError only when the nodes
    cannot be listed at all; every per-node problem is in the report."""
    report = SyncReport(provider=provider.name)
    try:
        nodes = _api(api_client, policy).list("v1", "Node", label_selector=f"{RESOURCE_NODE_LABEL}=true")
    except KubeError as error:
        raise NodeSyncError(f"cannot list the nodes of {provider.name}'s cluster: {error.message}") from error
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        try:
            annotations, from_labels, label_errors = node_annotations(node)
            if not annotations:
                report.errors.append(f"{name}: no GPU annotations and no usable GPU-operator labels"
                                     + (f" ({'; '.join(label_errors)})" if label_errors else ""))
                continue
            labels = dict((node.get("metadata") or {}).get("labels") or {})
            allocatable = (node.get("status") or {}).get("allocatable") or \
                (node.get("status") or {}).get("capacity") or {}
            existing = GpuNode.objects.filter(provider=provider, name=name).only("annotations").first()
            kept = {k: v for k, v in ((existing.annotations if existing else {}) or {}).items()
                    if str(k).startswith(BOOKKEEPING_PREFIX)}
            stored = {**annotations, **kept, ANNOTATION_SOURCE: kept.get(ANNOTATION_SOURCE, SOURCE_NODE_SYNC),
                      ANNOTATION_SYNCED_AT: now}
            capacity = {"cpu": str(allocatable.get("cpu") or "0"), "memory": str(allocatable.get("memory") or "0"),
                        "pods": int(str(allocatable.get("pods") or "0") or 0)}
            node_row, created = upsert_node(provider, name, stored, labels, actor=actor, **capacity)
        except InvalidAnnotations as error:
            report.errors.append(error.message)
            continue
        except (ValueError, TypeError) as error:
            report.errors.append(f"{name}: {error}")
            continue
        (report.created if created else report.updated).append(name)
        if from_labels:
            report.from_labels.append(name)
    return report


def push_annotations(node: GpuNode, api_client, *, policy: RetryPolicy | None = None) -> dict:
    """Patch the Kubernetes node's annotations to the GpuNode's trait annotations. Returns the
    patch sent ({key: value, or None for a trait key removed})."""
    api = _api(api_client, policy)
    wanted = {str(k): str(v) for k, v in (node.annotations or {}).items()
              if not str(k).startswith(BOOKKEEPING_PREFIX) and is_trait_key(k)}
    if not wanted:
        raise ServiceError(f"node {node}: no GPU annotations to push")
    try:
        current = api.get("v1", "Node", node.name)
        if current is None:
            raise ServiceError(f"node {node.name} does not exist in {node.provider.name}'s cluster", code="NOT_FOUND",
                               status=404)
        present = (current.get("metadata") or {}).get("annotations") or {}
        patch: dict = {k: v for k, v in wanted.items() if present.get(k) != v}
        patch.update({k: None for k in present if is_trait_key(k) and k not in wanted})
        if patch:
            api.merge_patch("v1", "Node", node.name, {"metadata": {"annotations": patch}})
    except KubeError as error:
        raise NodeSyncError(f"cannot annotate node {node.name}: {error.message}") from error
    return patch


__all__ = ["NodeSyncError", "SyncReport", "client_for_provider", "client_from_kubeconfig", "is_trait_key", "node_annotations",
           "push_annotations", "sync_nodes"]

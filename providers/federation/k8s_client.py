"""A small REST layer over the official `kubernetes` client for the Kubernetes backend.

Every FLUIDOS, Liqo, Capsule and built-in object FLARE touches goes through `KubeApi`: one
path builder (core `/api/v1`, groups `/apis/<group>/<version>`), one error type, and one retry
policy. Requests are serialised by `kubernetes.client.ApiClient` (auth, TLS, proxies from the
kubeconfig or the in-cluster config) and answered as plain dicts.

Retries: 429 (honouring Retry-After, capped), 5xx, 409 `Conflict` (not `AlreadyExists`) and
connection errors/timeouts are retried with exponential backoff, at most `retries` times; what
still fails becomes `KubeError` with `transient=True`, which the backend turns into
`Unavailable`. Every other status is raised at once (404 and AlreadyExists are answers, not
faults).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import urllib3
from kubernetes.client.exceptions import ApiException

logger = logging.getLogger("flare.federation.kubernetes")

FIELD_MANAGER = "flare"

# (apiVersion, kind) → (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Pod"): ("pods", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("offloading.liqo.io/v1beta1", "NamespaceOffloading"): ("namespaceoffloadings", True),
    ("authentication.liqo.io/v1beta1", "ResourceSlice"): ("resourceslices", True),
    ("capsule.clastix.io/v1beta2", "Tenant"): ("tenants", False),
    ("nodecore.fluidos.eu/v1alpha1", "Solver"): ("solvers", True),
    ("nodecore.fluidos.eu/v1alpha1", "Allocation"): ("allocations", True),
    ("nodecore.fluidos.eu/v1alpha1", "Flavor"): ("flavors", True),
    ("advertisement.fluidos.eu/v1alpha1", "Discovery"): ("discoveries", True),
    ("advertisement.fluidos.eu/v1alpha1", "PeeringCandidate"): ("peeringcandidates", True),
    ("reservation.fluidos.eu/v1alpha1", "Reservation"): ("reservations", True),
    ("reservation.fluidos.eu/v1alpha1", "Transaction"): ("transactions", True),
    ("reservation.fluidos.eu/v1alpha1", "Contract"): ("contracts", True),
}


def resource_of(api_version: str, kind: str, namespace: str | None = None) -> tuple[str, bool]:
    """(plural, namespaced) of a kind; unknown kinds get the regular plural."""
    known = RESOURCES.get((api_version, kind))
    if known:
        return known
    lower = kind.lower()
    plural = lower + ("es" if lower.endswith(("s", "x", "ch")) else "s")
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy", "uy")):
        plural = lower[:-1] + "ies"
    return plural, bool(namespace)


class KubeError(Exception):
    """An answer of the API server FLARE did not ask for."""

    def __init__(self, status: int, reason: str, message: str, *, transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"


@dataclass
class RetryPolicy:
    retries: int = 4             # extra attempts after the first
    backoff: float = 0.2         # first delay, doubled each time
    max_backoff: float = 5.0     # cap, also for Retry-After
    timeout: float = 30.0        # per request (connect + read)


def _is_transient(status: int, reason: str) -> bool:
    return status == 429 or status >= 500 or (status == 409 and reason != "AlreadyExists")


class KubeApi:
    def __init__(self, api_client, policy: RetryPolicy | None = None, sleep=time.sleep):
        self.api_client = api_client
        self.policy = policy or RetryPolicy()
        self.sleep = sleep

    # --- paths -----------------------------------------------------------------------------

    @staticmethod
    def path(api_version: str, plural: str, namespaced: bool, namespace: str | None = None,
             name: str | None = None, subresource: str | None = None) -> str:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        parts = [base]
        if namespaced:
            if not namespace:
                raise ValueError(f"{plural} are namespaced: a namespace is required")
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # --- one request with retries ----------------------------------------------------------

    def request(self, method: str, path: str, *, query: list | None = None, body=None,
                content_type: str = "application/json"):
        policy = self.policy
        attempt = 0
        while True:
            try:
                return self._once(method, path, query, body, content_type)
            except KubeError as error:
                if not error.transient or attempt >= policy.retries:
                    raise
                delay = min(policy.max_backoff, policy.backoff * (2 ** attempt))
                if error.retry_after:
                    delay = min(policy.max_backoff, max(delay, error.retry_after))
                logger.info("kubernetes %s %s: %s; retrying in %.2fs", method, path, error, delay)
                attempt += 1
                self.sleep(delay)

    def _once(self, method, path, query, body, content_type):
        client = self.api_client
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            serialized = client.param_serialize(method, path, query_params=query or [], header_params=headers,
                                                body=body, auth_settings=["BearerToken"])
            response = client.call_api(*serialized, _request_timeout=self.policy.timeout)
            response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeError(0, "ConnectionError", str(error), transient=True) from error
        except ApiException as error:  # the REST layer's SSL and protocol errors (status 0)
            status = int(error.status or 0)
            raise KubeError(status, str(error.reason or "ConnectionError"), str(error),
                            transient=status == 0 or _is_transient(status, "")) from error
        status = int(response.status)
        data = response.data or b""
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            payload = {"message": data.decode("utf-8", "replace")[:500]}
        if 200 <= status < 300:
            return payload
        reason = payload.get("reason") or getattr(response, "reason", "") or "Unknown"
        message = payload.get("message") or str(reason)
        retry_after = None
        header = response.getheader("Retry-After") if hasattr(response, "getheader") else None
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        raise KubeError(status, reason, message, transient=_is_transient(status, reason), retry_after=retry_after)

    # --- verbs -----------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        plural, namespaced = resource_of(api_version, kind, namespace)
        try:
            return self.request("GET", self.path(api_version, plural, namespaced, namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[dict]:
        plural, namespaced = resource_of(api_version, kind, namespace)
        query = [("labelSelector", label_selector)] if label_selector else []
        items: list[dict] = []
        token = None
        while True:
            page = list(query) + ([("continue", token)] if token else []) + [("limit", 500)]
            try:
                answer = self.request("GET", self.path(api_version, plural, namespaced and bool(namespace),
                                                       namespace), query=page)
            except KubeError as error:
                if error.not_found:   # the namespace (or the CRD) does not exist: nothing to list
                    return items
                raise
            items.extend(answer.get("items") or [])
            token = (answer.get("metadata") or {}).get("continue")
            if not token:
                return items

    def create(self, manifest: dict) -> dict:
        """Create; AlreadyExists answers the existing object."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        metadata = manifest.get("metadata") or {}
        namespace = metadata.get("namespace")
        plural, namespaced = resource_of(api_version, kind, namespace)
        try:
            return self.request("POST", self.path(api_version, plural, namespaced, namespace),
                                query=[("fieldManager", FIELD_MANAGER)], body=manifest)
        except KubeError as error:
            if not error.already_exists:
                raise
        existing = self.get(api_version, kind, metadata["name"], namespace)
        if existing is None:   # deleted in between: try once more
            return self.request("POST", self.path(api_version, plural, namespaced, namespace),
                                query=[("fieldManager", FIELD_MANAGER)], body=manifest)
        return existing

    def apply(self, manifest: dict) -> dict:
        """Server-side apply, field manager `flare`, forcing ownership of the fields FLARE sets."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        metadata = manifest.get("metadata") or {}
        namespace = metadata.get("namespace")
        plural, namespaced = resource_of(api_version, kind, namespace)
        return self.request("PATCH", self.path(api_version, plural, namespaced, namespace, metadata["name"]),
                            query=[("fieldManager", FIELD_MANAGER), ("force", "true")], body=manifest,
                            content_type="application/apply-patch+yaml")

    def merge_patch(self, api_version: str, kind: str, name: str, patch: dict,
                    namespace: str | None = None) -> dict | None:
        plural, namespaced = resource_of(api_version, kind, namespace)
        try:
            return self.request("PATCH", self.path(api_version, plural, namespaced, namespace, name),
                                query=[("fieldManager", FIELD_MANAGER)], body=patch,
                                content_type="application/merge-patch+json")
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        plural, namespaced = resource_of(api_version, kind, namespace)
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        try:
            self.request("DELETE", self.path(api_version, plural, namespaced, namespace, name), body=body)
        except KubeError as error:
            if error.not_found:
                return False
            raise
        return True

"""An in-process Kubernetes API server emulator, spoken to over real HTTP.

    emu = KubeEmulator().start()
    api = kubernetes.client.CoreV1Api(emu.api_client())     # or load_kube_config(emu.kubeconfig_path())
    ...
    emu.stop()

What it serves (REST semantics of kube-apiserver 1.3x as the official Python client relies on):

* discovery: /version, /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>;
* core/v1 namespaces, configmaps, secrets, services, pods, persistentvolumeclaims, nodes;
  apps/v1 deployments, replicasets; batch/v1 jobs; networking.k8s.io/v1 ingresses;
  autoscaling/v2 horizontalpodautoscalers; every CRD in deploy/crds (all served versions,
  conversion strategy None) and authentication.liqo.io/v1beta1 ResourceSlice (free-form);
* verbs get, list, watch, create, update, patch (json-patch, merge-patch, strategic-merge for
  built-in kinds, server-side apply), delete, deletecollection, and the status subresource;
* resourceVersion/generation/uid/creationTimestamp/managedFields, optimistic concurrency,
  generateName, dryRun, fieldValidation (Ignore/Warn/Strict, with `Warning` headers),
  finalizers and deletionTimestamp, namespace termination, ownerReference garbage collection
  (Background/Foreground/Orphan; batch/v1 Jobs orphan their pods by default, as upstream),
  structural pruning, defaulting and schema validation (CRD openAPIV3Schema; the official
  JSON schemas plus the upstream validation rules that matter for built-in kinds);
* admission hooks (`add_admission`) for fake webhooks, fault injection, a request log.

What it does not do is listed in tests/k8s/README.md.
"""

from __future__ import annotations

import base64
import collections
import copy
import glob
import ipaddress
import itertools
import json
import os
import random
import secrets as _secrets
import select
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import apimachinery as am
from .builtins import VERBS, Context, ResourceType, builtin_types, crd_types, resourceslice_type

CRD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy", "crds")
KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "flare-emulator",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0",
                "compiler": "gc", "platform": "linux/amd64"}
SYSTEM_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "selfLink", "managedFields")
TRACKED_META = ("labels", "annotations", "ownerReferences", "finalizers")
FIELD_SELECTORS = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.phase", "status.podIP", "status.nominatedNodeName"},
    "nodes": {"spec.unschedulable"},
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "jobs": {"status.successful"},
}


@dataclass
class Event:
    rv: int
    key: tuple
    type: str
    obj: dict
    old: dict | None


@dataclass
class Request:
    method: str
    path: str
    query: dict
    verb: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    content_type: str = ""
    body: Any = None
    user_agent: str = ""
    status: int = 0
    time: float = 0.0
    recorded: bool = False


@dataclass
class Fault:
    """One injected behaviour. `times=None` = every matching request until cleared."""

    kind: str                        # error | delay | hang
    verb: str = "*"
    resource: str = "*"
    namespace: str | None = None
    name: str | None = None
    status: int = 500
    times: int | None = 1
    message: str | None = None
    retry_after: int = 1
    seconds: float = 0.0
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.verb not in ("*", req.verb):
            return False
        if self.resource != "*":
            plural_group = f"{req.resource}.{req.group}" if req.group else req.resource
            names = {req.resource, plural_group}
            if req.subresource:
                names = {f"{req.resource}/{req.subresource}", f"{plural_group}/{req.subresource}",
                         req.resource, plural_group}
            if self.resource not in names:
                return False
        if self.namespace is not None and self.namespace != req.namespace:
            return False
        if self.name is not None and self.name != req.name:
            return False
        return True


class _Aborted(Exception):
    """A hung request dropped by reset()/stop(): the connection is closed without an answer."""


class Store:
    """Objects, the monotonic resourceVersion and the event history. One RLock guards all."""

    def __init__(self, history: int = 10000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.objects: dict[tuple, dict] = {}      # (group, plural, namespace, name) -> object
        self.rv = 1000
        self.events: collections.deque[Event] = collections.deque(maxlen=history)
        self.floor = self.rv                        # events with rv > floor are retained

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def record(self, ev: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.floor = self.events[0].rv
        self.events.append(ev)
        self.cond.notify_all()

    def compact(self) -> None:
        with self.lock:
            self.events.clear()
            self.floor = self.rv


class KubeEmulator:
    """See the module docstring. Thread-safe; one instance serves one fake cluster."""

    def __init__(self, crd_dir: str = CRD_DIR, token: str | None = None, history: int = 10000):
        self.token = token or _secrets.token_hex(16)
        self.store = Store(history)
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.storage_types: dict[tuple[str, str], ResourceType] = {}
        for rt in builtin_types():
            self._register(rt)
        for path in sorted(glob.glob(os.path.join(crd_dir, "*.yaml"))):
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        for rt in crd_types(doc):
                            self._register(rt)
        self._register(resourceslice_type())
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._requests: list[Request] = []
        self._req_lock = threading.Lock()
        self.admission: list[tuple[str, Callable]] = []
        self._validators: dict = {}
        self.require_auth = True
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._generation = 0          # bumped by reset(): aborts hung requests of earlier tests
        self._ip_counter = itertools.count(10)
        self._port_counter = itertools.count(30000)
        self._tmpdir = tempfile.mkdtemp(prefix="kube-emulator-")
        self.url = ""
        self._seed()

    # ----------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> "KubeEmulator":
        emu = self

        class Handler(_Handler):
            emulator = emu

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kube-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release()
        with self.store.lock:
            self.store.cond.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget every object, fault, hook and logged request (resourceVersions keep growing)."""
        with self._faults_lock:
            self._generation += 1
            for f in self.faults:
                f.released.set()
            self.faults = []
        with self.store.lock:
            self.store.objects.clear()
            self.store.compact()
            self.store.cond.notify_all()
        self.admission = []
        self.require_auth = True
        self.clear_requests()
        self._seed()

    def _seed(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                               manager="kube-apiserver")

    def kubeconfig_path(self, namespace: str = "default") -> str:
        path = os.path.join(self._tmpdir, "kubeconfig")
        cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "clusters": [{"name": "flare-emulator", "cluster": {"server": self.url}}],
               "users": [{"name": "flare", "user": {"token": self.token}}],
               "contexts": [{"name": "flare-emulator",
                             "context": {"cluster": "flare-emulator", "user": "flare", "namespace": namespace}}],
               "current-context": "flare-emulator"}
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f)
        return path

    def api_client(self):
        """A `kubernetes.client.ApiClient` configured from the kubeconfig (the official loader)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig_path())

    # ----------------------------------------------------------------------------------------
    # faults, request log, admission

    def inject(self, verb: str = "*", resource: str = "*", status: int = 500, times: int | None = 1,
               namespace: str | None = None, name: str | None = None, message: str | None = None,
               retry_after: int = 1) -> Fault:
        """Answer matching requests with an error Status (500, 429 + Retry-After, 409, 503, 504, 404,
        403, 401 ...). `verb`: get, list, watch, create, update, patch, apply, delete,
        deletecollection or "*". `resource`: a plural ("solvers", matching its subresources too),
        "solvers/status" (the subresource only), "solvers.nodecore.fluidos.eu" or "*"."""
        return self._add_fault(Fault("error", verb, resource, namespace, name, status, times, message, retry_after))

    def delay(self, seconds: float, verb: str = "*", resource: str = "*", times: int | None = 1,
              namespace: str | None = None, name: str | None = None) -> Fault:
        """Hold matching requests `seconds` before processing them (they are still applied)."""
        return self._add_fault(Fault("delay", verb, resource, namespace, name, times=times, seconds=seconds))

    def hang(self, verb: str = "*", resource: str = "*", times: int | None = None,
             namespace: str | None = None, name: str | None = None) -> Fault:
        """Hold matching requests until `release()`; reset()/stop() drop them unanswered."""
        return self._add_fault(Fault("hang", verb, resource, namespace, name, times=times))

    def release(self, fault: Fault | None = None) -> None:
        with self._faults_lock:
            for f in ([fault] if fault else list(self.faults)):
                if f.kind == "hang":
                    f.times = 0
                f.released.set()

    def clear_faults(self) -> None:
        self.release()
        with self._faults_lock:
            self.faults = []

    def _add_fault(self, f: Fault) -> Fault:
        with self._faults_lock:
            self.faults.append(f)
        return f

    @property
    def requests(self) -> list[Request]:
        with self._req_lock:
            return list(self._requests)

    def requests_for(self, verb: str | None = None, resource: str | None = None,
                     name: str | None = None) -> list[Request]:
        return [r for r in self.requests if (verb is None or r.verb == verb)
                and (resource is None or resource in (r.resource, f"{r.resource}/{r.subresource}"))
                and (name is None or r.name == name)]

    def clear_requests(self) -> None:
        with self._req_lock:
            self._requests = []

    def add_admission(self, name: str, fn: Callable[[str, ResourceType, dict, dict | None], None]) -> None:
        """A fake admission webhook: `fn(operation, rt, obj, old)` may mutate `obj` or raise
        AdmissionDenied; operation is CREATE or UPDATE."""
        self.admission.append((name, fn))

    # ----------------------------------------------------------------------------------------
    # in-process API (controllers and test setup; same pipeline as HTTP, without faults/log)

    def resource(self, api_version: str, plural_or_kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        rt = self.types.get((group, version, plural_or_kind))
        if rt is None:
            rt = next((t for (g, v, _), t in self.types.items()
                       if g == group and v == version and t.kind == plural_or_kind), None)
        if rt is None:
            raise KeyError(f"no resource {plural_or_kind} in {api_version}")
        return rt

    def get_object(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        rt = self.resource(api_version, plural)
        with self.store.lock:
            obj = self.store.objects.get((*rt.key, namespace if rt.namespaced else None, name))
            return self._present(rt, obj) if obj else None

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]:
        rt = self.resource(api_version, plural)
        reqs = am.parse_label_selector(label_selector)
        with self.store.lock:
            return [self._present(rt, o) for k, o in sorted(self.store.objects.items())
                    if k[:2] == rt.key and (namespace is None or k[2] == namespace)
                    and am.labels_match(reqs, o["metadata"].get("labels"))]

    def create_object(self, obj: dict, manager: str = "emulator", namespace: str | None = None) -> dict:
        rt = self.resource(obj["apiVersion"], obj["kind"])
        ns = namespace or (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        out, _ = self._create(rt, ns, copy.deepcopy(obj), _Ctx(manager, internal=True))
        return out

    def update_object(self, obj: dict, manager: str = "emulator", subresource: str = "") -> dict:
        rt = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        ctx = _Ctx(manager, internal=True, subresource=subresource)
        out, _ = self._update(rt, meta.get("namespace") if rt.namespaced else None, meta["name"],
                              copy.deepcopy(obj), ctx)
        return out

    def update_status(self, obj: dict, manager: str = "emulator") -> dict:
        return self.update_object(obj, manager, subresource="status")

    def patch_object(self, api_version: str, plural: str, name: str, patch: Any, namespace: str | None = None,
                     manager: str = "emulator", patch_type: str = "application/merge-patch+json",
                     subresource: str = "") -> dict:
        rt = self.resource(api_version, plural)
        ctx = _Ctx(manager, internal=True, subresource=subresource)
        out, _, _ = self._patch(rt, namespace if rt.namespaced else None, name, patch_type,
                                json.dumps(patch).encode(), ctx, force=False)
        return out

    def delete_object(self, api_version: str, plural: str, name: str, namespace: str | None = None,
                      propagation: str | None = None) -> dict:
        rt = self.resource(api_version, plural)
        out, _ = self._delete(rt, namespace if rt.namespaced else None, name, {"propagationPolicy": propagation}
                              if propagation else {}, _Ctx("emulator", internal=True))
        return out

    def events_since(self, rv: int) -> list[Event]:
        """Committed events after `rv` (what an informer would see). Raises ApiError 410 if the
        history no longer reaches back that far."""
        with self.store.lock:
            if rv < self.store.floor:
                raise am.ApiError(410, "Expired", f"too old resource version: {rv} ({self.store.floor})")
            return [e for e in self.store.events if e.rv > rv]

    @property
    def resource_version(self) -> int:
        return self.store.rv

    def compact(self) -> None:
        """Drop the watch history (what etcd compaction does): older watches get 410 Gone."""
        self.store.compact()

    # ----------------------------------------------------------------------------------------
    # registry

    def _register(self, rt: ResourceType) -> None:
        self.types[(rt.group, rt.version, rt.plural)] = rt
        if rt.builtin or rt.version == rt.storage_version:
            self.storage_types[rt.key] = rt

    def _type_for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for (g, v, _), t in self.types.items():
            if g == group and t.kind == kind:
                return t
        return None

    def _present(self, rt: ResourceType, obj: dict) -> dict:
        """The stored object as served at `rt`'s version (CRD conversion strategy None)."""
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    # ----------------------------------------------------------------------------------------
    # the request pipeline

    def _ns_check(self, rt: ResourceType, ns: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        nso = self.store.objects.get(("", "namespaces", None, ns))
        if nso is None:
            raise am.not_found("namespaces", "", ns or "")
        if nso["metadata"].get("deletionTimestamp"):
            err = am.forbidden(rt.plural, rt.group, name,
                               f"unable to create new content in namespace {ns} because it is being terminated")
            err.details["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being "
                                      "terminated", "field": "metadata.namespace"}]
            raise err

    def _decode(self, rt: ResourceType, body: Any, ctx: "_Ctx") -> dict:
        if not isinstance(body, dict):
            raise am.bad_request(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a {rt.kind}: json: "
                                 f"cannot unmarshal {type(body).__name__} into Go value of type "
                                 "map[string]interface {}")
        obj = copy.deepcopy(body)
        if rt.builtin:
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        elif not obj.get("kind"):
            raise am.bad_request(f"Object 'Kind' is missing in '{json.dumps(body, separators=(',', ':'))}'")
        elif not obj.get("apiVersion"):
            raise am.bad_request(f"Object 'apiVersion' is missing in '{json.dumps(body, separators=(',', ':'))}'")
        if obj["apiVersion"] != rt.api_version:
            raise am.bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                                 f"API version ({rt.api_version})")
        if obj["kind"] != rt.kind:
            raise am.bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind "
                                 f"({rt.kind})")
        if not isinstance(obj.get("metadata", {}), dict):
            raise am.bad_request("metadata must be an object")
        obj.setdefault("metadata", {})
        dropped = self._prune(rt, obj)
        if dropped:
            if ctx.field_validation == "Strict":
                raise am.bad_request(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a {rt.kind}: "
                                     "strict decoding error: " + ", ".join(f'unknown field "{d}"' for d in dropped))
            if ctx.field_validation != "Ignore":
                ctx.warnings += [f'unknown field "{d}"' for d in dropped]
        return obj

    def _prune(self, rt: ResourceType, obj: dict) -> list[str]:
        dropped: list[str] = []
        meta_node = am.object_meta_node()
        am.prune(obj["metadata"], meta_node, ["metadata"], dropped)
        if rt.builtin:
            validator = am.builtin_validator(rt.kind, rt.group, rt.version)
            for err in list(validator.iter_errors(obj)):
                if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                    extra = set(err.instance) - set((err.schema.get("properties") or {}))
                    for k in sorted(extra):
                        dropped.append(am.field_path(list(err.absolute_path) + [k]))
                        err.instance.pop(k, None)
        else:
            node = rt.schema_root()
            for k in list(obj):
                if k in ("apiVersion", "kind", "metadata"):
                    continue
                child = node.prop(k)
                if child is None:
                    if not node.s.get("x-kubernetes-preserve-unknown-fields"):
                        dropped.append(k)
                        del obj[k]
                else:
                    am.prune(obj[k], child, [k], dropped)
        return dropped

    def _validate(self, rt: ResourceType, obj: dict, old: dict | None, ctx: "_Ctx") -> None:
        meta = obj["metadata"]
        name = meta.get("name", "")
        causes: list[dict] = []
        if name:
            causes += am.name_errors(rt.name_kind, name)
        causes += am.labels_errors(meta.get("labels"), "metadata.labels")
        causes += am.annotations_errors(meta.get("annotations"), "metadata.annotations")
        controllers = 0
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            for f in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(f):
                    causes.append(am.invalid_value(f"metadata.ownerReferences.{f}", ref.get(f, ""),
                                                   f"{f} must not be empty"))
            controllers += bool(ref.get("controller"))
        if controllers > 1:
            causes.append(am.invalid_value("metadata.ownerReferences", meta["ownerReferences"],
                                           "Only one reference can have Controller set to true"))
        for i, fin in enumerate(meta.get("finalizers") or []):
            if "/" not in fin and fin not in ("kubernetes", "foregroundDeletion", "orphan"):
                ctx.warnings.append(f'metadata.finalizers: "{fin}": prefer a domain-qualified finalizer name '
                                    "including a path (/) to avoid accidental conflicts with other finalizer "
                                    "writers")
        if rt.builtin:
            causes += am.schema_errors(am.builtin_validator(rt.kind, rt.group, rt.version), obj, ignore_unknown=True)
        else:
            causes += am.schema_errors(self._crd_validator(rt), obj)
        causes += rt.strategy.validate(obj)
        if old is not None:
            causes += rt.strategy.validate_update(obj, old, ctx.internal)
        if causes:
            raise am.invalid(rt.kind, rt.group, name, causes)

    def _crd_validator(self, rt: ResourceType):
        key = (rt.group, rt.version, rt.plural)
        v = self._validators.get(key)
        if v is None:
            v = am.Draft4Validator(am.crd_to_jsonschema(rt.crd_schema or {"type": "object"}, root=True))
            self._validators[key] = v
        return v

    def _admit(self, op: str, rt: ResourceType, obj: dict, old: dict | None) -> None:
        for name, fn in list(self.admission):
            try:
                fn(op, rt, obj, old)
            except AdmissionDenied as e:
                raise am.ApiError(e.code, "Forbidden" if e.code == 403 else "BadRequest",
                                  f'admission webhook "{name}" denied the request: {e}') from None

    def _ctx(self) -> Context:
        def ip() -> str:
            used = {o.get("spec", {}).get("clusterIP") for k, o in self.store.objects.items() if k[1] == "services"}
            while True:
                n = next(self._ip_counter)
                addr = str(ipaddress.ip_address("10.96.0.0") + n)
                if addr not in used:
                    return addr

        return Context(ip, lambda: next(self._port_counter))

    def _create(self, rt: ResourceType, ns: str | None, body: Any, ctx: "_Ctx",
                apply_set: set | None = None) -> tuple[dict, int]:
        with self.store.lock:
            obj = self._decode(rt, body, ctx)
            meta = obj["metadata"]
            if rt.namespaced:
                if meta.get("namespace") not in (None, "", ns):
                    raise am.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            if meta.get("resourceVersion"):
                raise am.bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = self._generate_name(rt, ns, meta["generateName"])
                else:
                    raise am.invalid(rt.kind, rt.group, "", [am.required("metadata.name",
                                                                         "name or generateName is required")])
            self._ns_check(rt, ns, meta["name"])
            for k in SYSTEM_META:
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = am.now_rfc3339()
            if rt.generation:
                meta["generation"] = 1
            if rt.has_status and not rt.keep_status_on_create:
                obj.pop("status", None)
            if not rt.builtin and rt.crd_schema:
                am.apply_defaults(obj, rt.crd_schema)
            rt.strategy.prepare_create(obj, self._ctx())
            init = rt.strategy.initial_status(obj)
            if init is not None and "status" not in obj:
                obj["status"] = init
            self._admit("CREATE", rt, obj, None)
            self._validate(rt, obj, None, ctx)
            key = (*rt.key, ns, meta["name"])
            if key in self.store.objects:
                raise am.already_exists(rt.plural, rt.group, meta["name"])
            self._set_managed(rt, None, obj, ctx, apply_set)
            if ctx.dry_run:
                meta["resourceVersion"] = ""
                return self._present(rt, obj), 201
            self._commit(rt, key, obj, None, "ADDED")
            out = self._present(rt, obj)
            self._gc_dangling(rt, obj)
            return out, 201

    def _generate_name(self, rt: ResourceType, ns: str | None, prefix: str) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        for _ in range(8):
            name = prefix[:58] + "".join(random.choice(alphabet) for _ in range(5))
            if (*rt.key, ns, name) not in self.store.objects:
                return name
        raise am.ApiError(409, "AlreadyExists", "generated name collided; try again")

    def _commit(self, rt: ResourceType, key: tuple, obj: dict, old: dict | None, etype: str) -> None:
        rv = self.store.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        obj["apiVersion"] = self.storage_types[rt.key].api_version
        obj["kind"] = rt.kind
        self.store.objects[key] = obj
        self.store.record(Event(rv, key, etype, copy.deepcopy(obj), old))

    def _current(self, rt: ResourceType, ns: str | None, name: str) -> tuple[tuple, dict]:
        key = (*rt.key, ns if rt.namespaced else None, name)
        cur = self.store.objects.get(key)
        if cur is None:
            raise am.not_found(rt.plural, rt.group, name)
        return key, cur

    def _update(self, rt: ResourceType, ns: str | None, name: str, body: Any, ctx: "_Ctx",
                apply_set: set | None = None, managed: list | None = None) -> tuple[dict, int]:
        with self.store.lock:
            key, cur = self._current(rt, ns, name)
            obj = self._decode(rt, body, ctx)
            meta = obj["metadata"]
            if meta.get("name") not in (None, name):
                raise am.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                     f"URL ({name})")
            if rt.namespaced and meta.get("namespace") not in (None, "", ns):
                raise am.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
            rv = meta.get("resourceVersion")
            if not rv:
                if not rt.builtin:
                    raise am.invalid(rt.kind, rt.group, name, [am.invalid_value(
                        "metadata.resourceVersion", "0x0", "must be specified for an update")])
            elif rv != cur["metadata"]["resourceVersion"]:
                raise am.conflict(rt.plural, rt.group, name, am.STALE)
            if ctx.subresource == "status":
                new = copy.deepcopy(cur)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                new = obj
                for k in SYSTEM_META:
                    if k in cur["metadata"]:
                        meta[k] = copy.deepcopy(cur["metadata"][k])
                    else:
                        meta.pop(k, None)
                meta["name"] = name
                if rt.namespaced:
                    meta["namespace"] = ns
                if rt.has_status:
                    if "status" in cur:
                        new["status"] = copy.deepcopy(cur["status"])
                    else:
                        new.pop("status", None)
                if not rt.builtin and rt.crd_schema:
                    am.apply_defaults(new, rt.crd_schema)
                rt.strategy.prepare_update(new, cur, self._ctx())
                if cur["metadata"].get("deletionTimestamp"):
                    added = set(meta.get("finalizers") or []) - set(cur["metadata"].get("finalizers") or [])
                    if added:
                        raise am.invalid(rt.kind, rt.group, name, [am.forbidden_field(
                            "metadata.finalizers", "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {json.dumps(sorted(added))}")])
                if rt.generation and _spec_part(new) != _spec_part(cur):
                    meta["generation"] = cur["metadata"].get("generation", 1) + 1
                self._admit("UPDATE", rt, new, cur)
            self._validate(rt, new, cur, ctx)
            self._set_managed(rt, cur, new, ctx, apply_set, managed)
            if _same(new, cur):
                return self._present(rt, cur), 200
            if ctx.dry_run:
                return self._present(rt, new), 200
            self._commit(rt, key, new, copy.deepcopy(cur), "MODIFIED")
            out = self._present(rt, new)
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(rt, key)
            else:
                self._gc_dangling(rt, new)
            return out, 200

    def _patch(self, rt: ResourceType, ns: str | None, name: str, ctype: str, raw: bytes, ctx: "_Ctx",
               force: bool) -> tuple[dict, int, None]:
        ctype = (ctype or "").split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return (*self._apply(rt, ns, name, raw, ctx, force), None)
        if force:
            raise am.bad_request("force flag must be unset for non-apply patch requests")
        try:
            patch = json.loads(raw or b"null")
        except ValueError as e:
            raise am.bad_request(f"error decoding patch: {e}") from None
        with self.store.lock:
            key, cur = self._current(rt, ns, name)
            doc = self._present(rt, cur)
            if ctype == "application/json-patch+json":
                try:
                    patched = am.json_patch(doc, patch)
                except am.JsonPatchError as e:
                    raise am.ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                                      "request", {"causes": [{"reason": "UnexpectedServerResponse",
                                                              "message": str(e)}]}) from None
            elif ctype == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise am.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = am.json_merge_patch(doc, patch)
            elif ctype == "application/strategic-merge-patch+json":
                if not rt.builtin:
                    raise am.ApiError(415, "UnsupportedMediaType",
                                      "the body of the request was in an unknown format - accepted media types "
                                      "include: application/json-patch+json, application/merge-patch+json, "
                                      "application/apply-patch+yaml, application/apply-patch+cbor")
                if not isinstance(patch, dict):
                    raise am.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = am.strategic_merge_patch(doc, patch, rt.schema_root())
            else:
                raise am.ApiError(415, "UnsupportedMediaType",
                                  f"the body of the request was in an unknown format - accepted media types include: "
                                  "application/json-patch+json, application/merge-patch+json, "
                                  "application/apply-patch+yaml")
            if not isinstance(patched, dict):
                raise am.bad_request("the patched object is not an object")
            patched.setdefault("metadata", {})
            if patched["metadata"].get("resourceVersion") in (None, ""):
                patched["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            out, code = self._update(rt, ns, name, patched, ctx)
            return out, code, None

    def _apply(self, rt: ResourceType, ns: str | None, name: str, raw: bytes, ctx: "_Ctx",
               force: bool) -> tuple[dict, int]:
        if not ctx.manager_explicit:
            raise am.bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        try:
            cfg = yaml.safe_load(raw or b"")
        except yaml.YAMLError as e:
            raise am.bad_request(f"error decoding YAML: {e}") from None
        if not isinstance(cfg, dict):
            raise am.bad_request("the apply configuration must be an object")
        if not cfg.get("kind") or not cfg.get("apiVersion"):
            raise am.bad_request(f"Object 'Kind' is missing in '{json.dumps(cfg, separators=(',', ':'))}'")
        cfg.setdefault("metadata", {})
        if cfg["metadata"].get("name") not in (None, name):
            raise am.bad_request(f"the name of the object ({cfg['metadata'].get('name')}) does not match the "
                                 f"name on the URL ({name})")
        cfg["metadata"]["name"] = name
        with self.store.lock:
            tmp = copy.deepcopy(cfg)
            tmp = self._decode(rt, tmp, ctx)     # prune unknown fields of the configuration itself
            if ctx.subresource != "status" and rt.has_status:
                tmp.pop("status", None)
            node = rt.schema_root()
            cfg_t = _tracked(tmp, rt, ctx.subresource)
            cfg_set = am.field_set(cfg_t, node)
            key = (*rt.key, ns if rt.namespaced else None, name)
            cur = self.store.objects.get(key)
            if cur is None:
                if ctx.subresource == "status":
                    raise am.not_found(rt.plural, rt.group, name)
                return self._create(rt, ns, tmp, ctx, apply_set=cfg_set)
            cur_t = _tracked(cur, rt, ctx.subresource)
            entries = _entries(cur)
            me = next((e for e in entries if e["manager"] == ctx.manager and e["operation"] == "Apply"
                       and e.get("subresource", "") == ctx.subresource), None)
            prev = me["set"] if me else set()
            others = [e for e in entries if e is not me and e.get("subresource", "") == ctx.subresource]
            conflicts: dict[str, list[tuple]] = {}
            for p in sorted(cfg_set):
                cv, nv = am.get_path(cur_t, p), am.get_path(cfg_t, p)
                if cv is am.MISSING or cv == nv:
                    continue
                for e in others:
                    if any(q == p or q[:len(p)] == p or p[:len(q)] == q for q in e["set"]):
                        conflicts.setdefault(e["manager"], []).append(p)
            if conflicts and not force:
                n = sum(len(v) for v in conflicts.values())
                parts, causes = [], []
                for mgr, paths in conflicts.items():
                    if n == 1:
                        parts.append(f'conflict with "{mgr}" using {rt.api_version}: {am.fmt_path(paths[0])}')
                    else:
                        parts.append(f'conflicts with "{mgr}" using {rt.api_version}:\n'
                                     + "\n".join(f"- {am.fmt_path(p)}" for p in paths))
                    causes += [{"reason": "FieldManagerConflict", "message": f'conflict with "{mgr}" using '
                                f"{rt.api_version}", "field": am.fmt_path(p)} for p in paths]
                raise am.ApiError(409, "Conflict", f"Apply failed with {n} conflict{'s' if n > 1 else ''}: "
                                  + "\n".join(parts), {"name": name, "group": rt.group, "kind": rt.kind,
                                                       "causes": causes})
            for e in others:
                taken = {q for q in e["set"] for p in conflicts.get(e["manager"], [])
                         if q == p or q[:len(p)] == p or p[:len(q)] == q}
                e["set"] -= taken
            merged = self._present(rt, cur)
            merged = am.apply_merge(merged, {k: v for k, v in tmp.items() if k not in ("apiVersion", "kind")}, node)
            keep = set(cfg_set).union(*[e["set"] for e in others]) if others else set(cfg_set)
            for p in sorted(prev - cfg_set, key=len):
                floor = 2 if p and p[0] == "f:metadata" else 1
                for i in range(floor, len(p) + 1):
                    if not am.has_prefix(keep, p[:i]):
                        am.delete_path(merged, p[:i])
                        break
            merged["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            return self._update(rt, ns, name, merged, ctx, apply_set=cfg_set, managed=entries)

    def _set_managed(self, rt: ResourceType, old: dict | None, new: dict, ctx: "_Ctx",
                     apply_set: set | None, managed: list | None = None) -> None:
        """Maintain metadata.managedFields (fieldsV1) for Update and Apply operations.
        `managed` are entries the apply path already settled (conflicts forced away)."""
        node = rt.schema_root()
        sub = ctx.subresource
        entries = managed if managed is not None else (_entries(old) if old is not None else [])
        new_t = _tracked(new, rt, sub)
        if apply_set is not None:
            me = next((e for e in entries if e["manager"] == ctx.manager and e["operation"] == "Apply"
                       and e.get("subresource", "") == sub), None)
            if me is None:
                me = {"manager": ctx.manager, "operation": "Apply", "subresource": sub, "set": set(),
                      "apiVersion": rt.api_version, "time": am.now_rfc3339()}
                entries.append(me)
            if me["set"] != apply_set:
                me["set"] = set(apply_set)
                me["time"] = am.now_rfc3339()
        else:
            old_t = _tracked(old, rt, sub) if old is not None else {}
            new_set = am.field_set(new_t, node) if new_t else set()
            old_set = am.field_set(old_t, node) if old_t else set()
            changed = {p for p in new_set if am.get_path(old_t, p) != am.get_path(new_t, p)}
            removed = old_set - new_set
            me = None
            for e in entries:
                if e.get("subresource", "") != sub:
                    continue
                if e["manager"] == ctx.manager and e["operation"] == "Update":
                    me = e
                else:
                    e["set"] = {q for q in e["set"] if not any(q == p or q[:len(p)] == p for p in changed | removed)}
            if me is None and changed:
                me = {"manager": ctx.manager, "operation": "Update", "subresource": sub, "set": set(),
                      "apiVersion": rt.api_version, "time": am.now_rfc3339()}
                entries.append(me)
            if me is not None and changed:
                me["set"] = (me["set"] | changed) - removed
                me["time"] = am.now_rfc3339()
            elif me is not None:
                me["set"] -= removed
        entries = [e for e in entries if e["set"]]
        if entries:
            new["metadata"]["managedFields"] = _render_entries(entries)
        else:
            new["metadata"].pop("managedFields", None)

    # deletion ---------------------------------------------------------------------------------

    def _delete(self, rt: ResourceType, ns: str | None, name: str, opts: dict, ctx: "_Ctx") -> tuple[dict, int]:
        with self.store.lock:
            key, cur = self._current(rt, ns, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise am.conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                                  f"{pre['uid']}, UID in object meta: {cur['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise am.conflict(rt.plural, rt.group, name, "Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{cur['metadata']['resourceVersion']}")
            policy = opts.get("propagationPolicy")
            if policy is None and opts.get("orphanDependents") is not None:
                policy = "Orphan" if opts["orphanDependents"] else "Background"
            if policy is None:
                policy = "Orphan" if rt.key == ("batch", "jobs") else "Background"
                if rt.key == ("batch", "jobs"):
                    ctx.warnings.append("child pods are preserved by default when jobs are deleted; set "
                                        "propagationPolicy=Background to remove them or set "
                                        "propagationPolicy=Orphan to suppress this warning")
            if policy not in ("Orphan", "Background", "Foreground"):
                raise am.invalid("DeleteOptions", "", "", [am.unsupported("propagationPolicy", policy,
                                                                           ["Background", "Foreground", "Orphan"])])
            if ctx.dry_run:
                return _status_success(rt, cur), 200
            return self._delete_locked(rt, key, policy)

    def _delete_locked(self, rt: ResourceType, key: tuple, policy: str) -> tuple[dict, int]:
        cur = self.store.objects[key]
        if policy == "Orphan":
            self._orphan_dependents(cur)
        elif policy == "Foreground":
            self._delete_dependents(cur)
        if rt.key == ("", "namespaces"):
            return self._delete_namespace(rt, key)
        if cur["metadata"].get("finalizers"):
            if not cur["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(cur)
                new["metadata"]["deletionTimestamp"] = am.now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                self._commit(rt, key, new, copy.deepcopy(cur), "MODIFIED")
                cur = new
            return self._present(rt, cur), 200
        # Most registries answer a Success Status; pods (ReturnDeletedObject) answer the object.
        status = self._present(rt, cur) if rt.key == ("", "pods") else _status_success(rt, cur)
        self._remove(rt, key, policy)
        return status, 200

    def _remove(self, rt: ResourceType, key: tuple, policy: str = "Background") -> None:
        cur = self.store.objects.pop(key)
        gone = copy.deepcopy(cur)
        rv = self.store.next_rv()
        gone["metadata"]["resourceVersion"] = str(rv)
        self.store.record(Event(rv, key, "DELETED", gone, cur))
        if policy != "Orphan":
            self._delete_dependents(cur)
        ns = key[2]
        if ns is not None:
            self._finish_namespace(ns)

    def _dependents(self, owner: dict) -> list[tuple]:
        uid = owner["metadata"]["uid"]
        return [k for k, o in self.store.objects.items()
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    def _delete_dependents(self, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for k in self._dependents(owner):
            dep = self.store.objects.get(k)
            if dep is None:
                continue
            others = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if any(self._owner_exists(self.storage_types[k[:2]], dep, r) for r in others):
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = others
                self._commit(self.storage_types[k[:2]], k, new, copy.deepcopy(dep), "MODIFIED")
                continue
            self._delete_locked(self.storage_types[k[:2]], k, "Background")

    def _orphan_dependents(self, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for k in self._dependents(owner):
            dep = self.store.objects[k]
            new = copy.deepcopy(dep)
            new["metadata"]["ownerReferences"] = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._commit(self.storage_types[k[:2]], k, new, copy.deepcopy(dep), "MODIFIED")

    def _owner_exists(self, dep_rt: ResourceType, dep: dict, ref: dict) -> bool:
        ort = self._type_for_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if ort is None:
            return False
        if ort.namespaced and not dep_rt.namespaced:
            return False
        ons = dep["metadata"].get("namespace") if ort.namespaced else None
        owner = self.store.objects.get((*ort.key, ons, ref.get("name")))
        return owner is not None and owner["metadata"]["uid"] == ref.get("uid")

    def _gc_dangling(self, rt: ResourceType, obj: dict) -> None:
        """The garbage collector deletes objects whose every owner is absent (or has another uid)."""
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and not any(self._owner_exists(rt, obj, r) for r in refs):
            key = (*rt.key, obj["metadata"].get("namespace") if rt.namespaced else None, obj["metadata"]["name"])
            if key in self.store.objects:
                self._delete_locked(rt, key, "Background")

    def _delete_namespace(self, rt: ResourceType, key: tuple) -> tuple[dict, int]:
        cur = self.store.objects[key]
        if not cur["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(cur)
            new["metadata"]["deletionTimestamp"] = am.now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            self._commit(rt, key, new, copy.deepcopy(cur), "MODIFIED")
            cur = new
        out = self._present(rt, cur)
        ns = key[3]
        for k in sorted(k for k in self.store.objects if k[2] == ns):
            if k in self.store.objects:
                self._delete_locked(self.storage_types[k[:2]], k, "Background")
        self._finish_namespace(ns)
        return out, 200

    def _finish_namespace(self, ns: str) -> None:
        key = ("", "namespaces", None, ns)
        nso = self.store.objects.get(key)
        if nso is None or not nso["metadata"].get("deletionTimestamp"):
            return
        if any(k[2] == ns for k in self.store.objects):
            return
        self._remove(self.storage_types[("", "namespaces")], key)

    # reads -------------------------------------------------------------------------------------

    def _list(self, rt: ResourceType, ns: str | None, q: dict) -> dict:
        reqs = am.parse_label_selector(q.get("labelSelector"))
        fsel = self._field_selector(rt, q.get("fieldSelector"))
        with self.store.lock:
            items = [self._present(rt, o) for k, o in sorted(self.store.objects.items())
                     if k[:2] == rt.key and (ns is None or k[2] == ns)
                     and _matches(o, reqs, fsel)]
            rv = self.store.rv
        meta: dict = {"resourceVersion": str(rv)}
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        if cont:
            try:
                start = json.loads(base64.b64decode(cont))["start"]
            except Exception:
                raise am.bad_request("continue key is not valid: illegal base64 data") from None
            items = [i for i in items if (i["metadata"].get("namespace") or "", i["metadata"]["name"]) > tuple(start)]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "start": [last.get("namespace") or "", last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if rt.builtin:
            for i in items:
                i.pop("apiVersion", None)
                i.pop("kind", None)
        return {"apiVersion": rt.api_version, "kind": rt.list_kind, "metadata": meta, "items": items}

    def _field_selector(self, rt: ResourceType, s: str | None) -> list:
        sel = am.parse_field_selector(s)
        allowed = {"metadata.name", "metadata.namespace"} | FIELD_SELECTORS.get(rt.plural, set())
        for f, _, _ in sel:
            if f not in allowed:
                raise am.bad_request(f'"{f}" is not a known field selector: only "metadata.name", '
                                     '"metadata.namespace"' if not rt.builtin else f"field label not supported: {f}")
        return sel


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _same(a: dict, b: dict) -> bool:
    def norm(o: dict) -> dict:
        o = copy.deepcopy(o)
        o["metadata"].pop("resourceVersion", None)
        for e in o["metadata"].get("managedFields") or []:
            e.pop("time", None)
        o.pop("apiVersion", None)
        return o

    return norm(a) == norm(b)


def _tracked(obj: dict | None, rt: ResourceType, sub: str) -> dict:
    if not obj:
        return {}
    if sub == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    out = {k: v for k, v in obj.items()
           if k not in ("apiVersion", "kind", "metadata") and not (rt.has_status and k == "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in TRACKED_META}
    if meta:
        out["metadata"] = meta
    return out


def _entries(obj: dict | None) -> list[dict]:
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        out.append({"manager": e.get("manager", ""), "operation": e.get("operation", "Update"),
                    "subresource": e.get("subresource", ""), "apiVersion": e.get("apiVersion", ""),
                    "time": e.get("time", ""), "set": am.from_fields_v1(e.get("fieldsV1") or {})})
    return out


def _render_entries(entries: list[dict]) -> list[dict]:
    out = []
    for e in entries:
        if not e["set"]:
            continue
        d = {"manager": e["manager"], "operation": e["operation"], "apiVersion": e["apiVersion"],
             "time": e["time"], "fieldsType": "FieldsV1", "fieldsV1": am.to_fields_v1(e["set"])}
        if e.get("subresource"):
            d["subresource"] = e["subresource"]
        out.append(d)
    return out


def _status_success(rt: ResourceType, obj: dict) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": obj["metadata"]["name"], "group": rt.group, "kind": rt.plural,
                        "uid": obj["metadata"]["uid"]}}


def _matches(obj: dict, reqs: list, fsel: list) -> bool:
    if not am.labels_match(reqs, obj["metadata"].get("labels")):
        return False
    for f, op, v in fsel:
        actual = am.get_dotted(obj, f)
        actual = "" if actual is None else (str(actual).lower() if isinstance(actual, bool) else str(actual))
        if (actual == v) != (op == "="):
            return False
    return True


class AdmissionDenied(Exception):
    """Raised by an admission hook to reject a request (403 unless `code` says otherwise)."""

    def __init__(self, message: str, code: int = 403):
        super().__init__(message)
        self.code = code


class _Ctx:
    def __init__(self, manager: str, internal: bool = False, subresource: str = "", dry_run: bool = False,
                 field_validation: str = "Warn", manager_explicit: bool = True):
        self.manager = manager
        self.internal = internal
        self.subresource = subresource
        self.dry_run = dry_run
        self.field_validation = field_validation
        self.manager_explicit = manager_explicit
        self.warnings: list[str] = []


# ============================================================================================
# HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: KubeEmulator
    server_version = "kube-emulator"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY every keep-alive
        # response would wait for the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        emu = self.emulator
        split = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        req = Request(self.command, split.path, q, content_type=self.headers.get("Content-Type", ""),
                      user_agent=self.headers.get("User-Agent", ""), time=time.time())
        try:
            if raw:
                try:
                    req.body = json.loads(raw)
                except ValueError:
                    req.body = raw.decode(errors="replace")
            if emu.require_auth and self.headers.get("Authorization") != f"Bearer {emu.token}" \
                    and split.path not in ("/healthz", "/livez", "/readyz", "/version"):
                raise am.ApiError(401, "Unauthorized", "Unauthorized")
            self._route(req)
            self._faults(req)
            self._dispatch(req, q, raw)
        except _Aborted:
            self.close_connection = True
            req.status = 0
        except am.ApiError as e:
            self._send(req, e.code, e.body(), headers=e.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the emulator: answer like an apiserver panic would
            import traceback

            traceback.print_exc()
            self._send(req, 500, am.ApiError(500, "InternalError", f"Internal error occurred: {e!r}").body())
        finally:
            self._record(req)

    def _record(self, req: Request) -> None:
        if req.recorded:
            return
        req.recorded = True
        with self.emulator._req_lock:
            self.emulator._requests.append(req)

    # routing ----------------------------------------------------------------------------------

    def _route(self, req: Request) -> None:
        emu = self.emulator
        parts = [unquote(p) for p in req.path.strip("/").split("/") if p]
        req.verb = "discovery"
        if not parts or parts[0] not in ("api", "apis"):
            return
        if parts[0] == "api":
            if len(parts) < 2:
                return
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                req.group = parts[1] if len(parts) == 2 else ""
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        req.group, req.version = group, version
        if not rest:
            return
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in emu.types \
                and emu.types[(group, version, rest[2])].namespaced:
            ns, rest = rest[1], rest[2:]
        rt = emu.types.get((group, version, rest[0]))
        if rt is None or len(rest) > 3:
            raise _not_found_path()
        req.resource, req.namespace = rt.plural, ns
        req.name = rest[1] if len(rest) > 1 else None
        req.subresource = rest[2] if len(rest) > 2 else ""
        if req.subresource and not (req.subresource == "status" and rt.has_status) \
                and not (rt.plural == "namespaces" and req.subresource == "finalize"):
            raise _not_found_path()
        if rt.namespaced and req.name is not None and ns is None:
            raise _not_found_path()
        m = self.command
        watch = req.query.get("watch") in ("true", "1", "True")
        if m == "GET":
            req.verb = "get" if req.name else ("watch" if watch else "list")
        elif m == "POST" and req.name is None:
            req.verb = "create"
        elif m == "PUT" and req.name:
            req.verb = "update"
        elif m == "PATCH" and req.name:
            req.verb = "apply" if req.content_type.startswith("application/apply-patch") else "patch"
        elif m == "DELETE":
            req.verb = "delete" if req.name else "deletecollection"
        else:
            raise am.ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                              "resource")

    def _faults(self, req: Request) -> None:
        emu = self.emulator
        while True:
            with emu._faults_lock:
                f = next((f for f in emu.faults if f.matches(req)), None)
                if f is None:
                    return
                f.hits += 1
                gen = emu._generation
            if f.kind == "delay":
                f.released.wait(f.seconds)
                if emu._stopping.is_set() or gen != emu._generation:
                    raise _Aborted()
                continue
            if f.kind == "hang":
                while not f.released.wait(0.05):
                    if emu._stopping.is_set():
                        break
                if emu._stopping.is_set() or gen != emu._generation or f.times != 0:
                    raise _Aborted()
                continue
            raise _fault_error(f, req)

    def _dispatch(self, req: Request, q: dict, raw: bytes) -> None:
        emu = self.emulator
        if req.verb == "discovery":
            return self._send(req, 200, self._discovery(req))
        rt = emu.types[(req.group, req.version, req.resource)]
        explicit = bool(q.get("fieldManager"))
        manager = q.get("fieldManager") or (req.user_agent.split("/")[0] if req.user_agent else "unknown")
        ctx = _Ctx(manager, subresource=req.subresource, dry_run=q.get("dryRun") == "All",
                   field_validation=q.get("fieldValidation") or "Warn", manager_explicit=explicit)
        if q.get("dryRun") not in (None, "", "All"):
            raise am.bad_request(f"Invalid dry run value: {q['dryRun']}")
        if ctx.field_validation not in ("Ignore", "Warn", "Strict"):
            raise am.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, got {ctx.field_validation}")
        ns, name = req.namespace, req.name
        if req.verb == "get":
            with emu.store.lock:
                _, cur = emu._current(rt, ns, name)
                return self._send(req, 200, emu._present(rt, cur))
        if req.verb == "list":
            return self._send(req, 200, emu._list(rt, ns, q))
        if req.verb == "watch":
            return self._watch(req, rt, ns, q)
        if req.verb in ("create", "update", "patch", "apply") and req.body is None and req.verb != "apply":
            raise am.bad_request("the request body is empty")
        if req.verb == "create":
            out, code = emu._create(rt, ns, req.body, ctx)
        elif req.verb == "update":
            if rt.plural == "namespaces" and req.subresource == "finalize":
                ctx.subresource = ""
                out, code = self._finalize_namespace(rt, name, req.body, ctx)
            else:
                out, code = emu._update(rt, ns, name, req.body, ctx)
        elif req.verb in ("patch", "apply"):
            out, code, _ = emu._patch(rt, ns, name, req.content_type, raw, ctx,
                                      force=q.get("force") in ("true", "1"))
        elif req.verb == "delete":
            opts = req.body if isinstance(req.body, dict) else {}
            if q.get("propagationPolicy"):
                opts = {**opts, "propagationPolicy": q["propagationPolicy"]}
            out, code = emu._delete(rt, ns, name, opts, ctx)
        else:  # deletecollection
            lst = emu._list(rt, ns, q)
            opts = req.body if isinstance(req.body, dict) else {}
            if q.get("propagationPolicy"):
                opts = {**opts, "propagationPolicy": q["propagationPolicy"]}
            for item in lst["items"]:
                try:
                    emu._delete(rt, item["metadata"].get("namespace"), item["metadata"]["name"], opts, ctx)
                except am.ApiError as e:
                    if e.code != 404:
                        raise
            out, code = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}, 200
        self._send(req, code, out, warnings=ctx.warnings)

    def _finalize_namespace(self, rt, name, body, ctx):
        emu = self.emulator
        with emu.store.lock:
            key, cur = emu._current(rt, None, name)
            new = copy.deepcopy(cur)
            new.setdefault("spec", {})["finalizers"] = (body.get("spec") or {}).get("finalizers") or []
            emu._commit(rt, key, new, copy.deepcopy(cur), "MODIFIED")
            return emu._present(rt, new), 200

    # discovery ---------------------------------------------------------------------------------

    def _discovery(self, req: Request) -> dict:
        emu = self.emulator
        path = req.path.rstrip("/")
        if path in ("/healthz", "/livez", "/readyz"):
            return "ok"
        if path == "/version":
            return KUBE_VERSION
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": emu.url.removeprefix("http://")}]}
        groups: dict[str, list[str]] = {}
        for (g, v, _) in emu.types:
            if g and v not in groups.setdefault(g, []):
                groups[g].append(v)

        def group_doc(g: str) -> dict:
            versions = sorted(groups[g], key=_version_priority)
            gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
            return {"name": g, "versions": gvs, "preferredVersion": gvs[0]}

        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in sorted(groups)]}
        if req.group and path == f"/apis/{req.group}" and req.group in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(req.group)}
        gv = [t for (g, v, _), t in emu.types.items() if g == req.group and v == req.version]
        if gv and path in (f"/api/{req.version}", f"/apis/{req.group}/{req.version}"):
            resources = []
            for t in sorted(gv, key=lambda t: t.plural):
                r = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
                     "verbs": list(VERBS), "storageVersionHash": base64.b64encode(
                         f"{t.group}/{t.plural}".encode()).decode()[:12]}
                if t.short_names:
                    r["shortNames"] = t.short_names
                if t.categories:
                    r["categories"] = t.categories
                resources.append(r)
                if t.has_status:
                    resources.append({"name": f"{t.plural}/status", "singularName": "", "namespaced": t.namespaced,
                                      "kind": t.kind, "verbs": ["get", "patch", "update"]})
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv[0].api_version,
                    "resources": resources}
        raise _not_found_path()

    # watch -------------------------------------------------------------------------------------

    def _watch(self, req: Request, rt: ResourceType, ns: str | None, q: dict) -> None:
        emu = self.emulator
        store = emu.store
        reqs = am.parse_label_selector(q.get("labelSelector"))
        fsel = emu._field_selector(rt, q.get("fieldSelector"))
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        deadline = time.monotonic() + timeout if timeout is not None else None
        rv_param = q.get("resourceVersion") or ""
        gen = emu._generation
        initial: list[tuple[str, dict]] = []
        with store.lock:
            if rv_param in ("", "0"):
                since = store.rv
                initial = [("ADDED", emu._present(rt, o)) for k, o in sorted(store.objects.items())
                           if k[:2] == rt.key and (ns is None or k[2] == ns) and _matches(o, reqs, fsel)]
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise am.bad_request(f"invalid resource version: {rv_param}") from None
        req.status = 200
        req.status = 200
        self._record(req)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

        def emit(etype: str, obj: dict) -> None:
            data = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            if since < store.floor:
                emit("ERROR", am.ApiError(410, "Expired", f"too old resource version: {since} ({store.floor})").body())
                return
            for etype, obj in initial:
                emit(etype, obj)
            while True:
                out: list[tuple[str, dict]] = []
                with store.lock:
                    if since < store.floor:
                        expired = True
                    else:
                        expired = False
                        for ev in store.events:
                            if ev.rv <= since:
                                continue
                            since = ev.rv
                            if ev.key[:2] != rt.key or (ns is not None and ev.key[2] != ns):
                                continue
                            now_m = _matches(ev.obj, reqs, fsel) if ev.type != "DELETED" else False
                            was_m = ev.old is not None and _matches(ev.old, reqs, fsel)
                            if ev.type == "ADDED" and now_m:
                                out.append(("ADDED", ev.obj))
                            elif ev.type == "MODIFIED":
                                if now_m and was_m:
                                    out.append(("MODIFIED", ev.obj))
                                elif now_m:
                                    out.append(("ADDED", ev.obj))
                                elif was_m:
                                    out.append(("DELETED", ev.obj))
                            elif ev.type == "DELETED" and _matches(ev.obj, reqs, fsel):
                                out.append(("DELETED", ev.obj))
                    if not out and not expired:
                        wait = 0.25 if deadline is None else min(0.25, max(0.0, deadline - time.monotonic()))
                        store.cond.wait(wait)
                if not out and self._client_gone():
                    return
                if expired:
                    emit("ERROR", am.ApiError(410, "Expired", f"too old resource version: {since}").body())
                    return
                for etype, obj in out:
                    emit(etype, emu._present(rt, obj))
                if emu._stopping.is_set() or gen != emu._generation:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # responses ---------------------------------------------------------------------------------

    def _send(self, req: Request, code: int, body: Any, headers: dict | None = None,
              warnings: list[str] | None = None) -> None:
        req.status = code
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self._record(req)  # before the client can see the answer: its log is complete when it returns
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            for w in warnings or []:
                escaped = w.replace("\\", "\\\\").replace('"', '\\"')
                self.send_header("Warning", f'299 - "{escaped}"')
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _version_priority(v: str) -> tuple:
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, v)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor)


def _not_found_path() -> am.ApiError:
    return am.ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _fault_error(f: Fault, req: Request) -> am.ApiError:
    gr = (req.resource, req.group)
    msg = f.message
    if f.status == 409:
        return am.conflict(*gr, req.name or "", msg or am.STALE)
    if f.status == 404:
        return am.not_found(*gr, req.name or "")
    if f.status == 429:
        return am.ApiError(429, "TooManyRequests", msg or "the server has received too many requests and has "
                           "asked us to try again later", {"retryAfterSeconds": f.retry_after},
                           headers={"Retry-After": f.retry_after})
    if f.status == 503:
        return am.ApiError(503, "ServiceUnavailable", msg or "the server is currently unable to handle the request")
    if f.status == 504:
        return am.ApiError(504, "Timeout", msg or "the server was unable to return a response in the time "
                           "allotted, but may still be processing the request")
    if f.status == 403:
        return am.forbidden(*gr, req.name or "", msg or "injected")
    if f.status == 401:
        return am.ApiError(401, "Unauthorized", msg or "Unauthorized")
    if f.status == 500:
        return am.ApiError(500, "InternalError", f"Internal error occurred: {msg or 'injected fault'}",
                           {"causes": [{"message": msg or "injected fault"}]})
    return am.ApiError(f.status, "Unknown", msg or f"injected status {f.status}")

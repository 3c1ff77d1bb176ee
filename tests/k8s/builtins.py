"""Resource types the emulator serves, and the registry strategies of the built-in kinds.

A strategy is what kube-apiserver's `pkg/registry/<group>/<kind>/strategy.go` does around
storage: defaulting (`SetDefaults_*`), system-set fields (clusterIP, the Job selector),
create/update validation (`pkg/apis/<group>/validation`) and immutability. Only the rules a
FLARE backend can trip over are implemented; the schema check of every field comes from the
official OpenAPI JSON schemas (apimachinery.builtin_validator).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from kubernetes.utils import parse_quantity

from . import apimachinery as am

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    has_status: bool = False
    builtin: bool = True
    crd_schema: dict | None = None        # openAPIV3Schema of this served version
    storage_version: str = ""              # for multi-version CRDs (conversion strategy None)
    name_kind: str = "subdomain"           # metadata.name rule: subdomain | label | dns1035
    generation: bool = False               # metadata.generation maintained
    keep_status_on_create: bool = False
    strategy: "Strategy | None" = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: all served versions of a resource share one set of objects."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def schema_root(self) -> am.SchemaNode:
        if self.builtin:
            return am.builtin_root(self.kind, self.group, self.version)
        return am.crd_root(self.crd_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})


class Strategy:
    """Default strategy: nothing kind-specific."""

    def prepare_create(self, obj: dict, ctx: "Context") -> None:
        pass

    def prepare_update(self, new: dict, old: dict, ctx: "Context") -> None:
        pass

    def validate(self, obj: dict) -> list[dict]:
        return []

    def validate_update(self, new: dict, old: dict, internal: bool) -> list[dict]:
        return []

    def initial_status(self, obj: dict) -> dict | None:
        return None


class Context:
    """What a strategy may ask of the store (allocators)."""

    def __init__(self, allocate_cluster_ip: Callable[[], str], allocate_node_port: Callable[[], int]):
        self.allocate_cluster_ip = allocate_cluster_ip
        self.allocate_node_port = allocate_node_port


def _immutable(path: str, value: Any) -> dict:
    return am.invalid_value(path, value, "field is immutable")


# ---------------------------------------------------------------------------------------------
# Pod specs (pods and templates)

STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}


def _is_extended(name: str) -> bool:
    return "/" in name and not name.split("/")[0].endswith("kubernetes.io")


def default_pod_spec(spec: dict, *, template: bool, restart_default: str | None = "Always") -> None:
    if restart_default and "restartPolicy" not in spec:
        spec["restartPolicy"] = restart_default
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        image = c.get("image") or ""
        tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        c.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
        if not template:
            # SetDefaults_Pod: requests default to limits.
            res = c["resources"]
            for k, v in (res.get("limits") or {}).items():
                res.setdefault("requests", {}).setdefault(k, v)


def validate_pod_spec(spec: Any, path: str, *, restart_allowed: tuple[str, ...] | None,
                      restart_required_msg: str | None = None) -> list[dict]:
    errs: list[dict] = []
    if not isinstance(spec, dict):
        return [am.required(path)]
    containers = spec.get("containers")
    if not containers:
        errs.append(am.required(f"{path}.containers"))
    names: set[str] = set()
    for i, c in enumerate(containers or []):
        cp = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            continue
        name = c.get("name")
        if not name:
            errs.append(am.required(f"{cp}.name"))
        else:
            errs += am.name_errors("label", name, f"{cp}.name")
            if name in names:
                errs.append(am.cause(f"{cp}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
            names.add(name)
        if not c.get("image"):
            errs.append(am.required(f"{cp}.image"))
        errs += _validate_resources(c.get("resources") or {}, f"{cp}.resources")
    rp = spec.get("restartPolicy")
    if restart_allowed is not None:
        if rp is None and restart_required_msg:
            errs.append(am.required(f"{path}.restartPolicy", restart_required_msg))
        elif rp is not None and rp not in restart_allowed:
            errs.append(am.unsupported(f"{path}.restartPolicy", rp, restart_allowed))
    for k, v in (spec.get("nodeSelector") or {}).items():
        errs += am.label_key_errors(k, f"{path}.nodeSelector")
        errs += am.label_value_errors(v, f"{path}.nodeSelector")
    return errs


def _validate_resources(res: dict, path: str) -> list[dict]:
    errs: list[dict] = []
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for which, values in (("limits", limits), ("requests", requests)):
        for name, q in values.items():
            fp = f"{path}.{which}[{name}]"
            if name not in STANDARD_RESOURCES and not name.startswith("hugepages-") and "/" not in name:
                errs.append(am.invalid_value(fp, name, "must be a standard resource type or fully qualified"))
                continue
            try:
                parsed[which][name] = parse_quantity(q)
            except (ValueError, TypeError):
                errs.append(am.invalid_value(fp, q, "quantities must match the regular expression "
                                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
                continue
            if parsed[which][name] < 0:
                errs.append(am.invalid_value(fp, q, "must be greater than or equal to 0"))
            if _is_extended(name) and parsed[which][name] != int(parsed[which][name]):
                errs.append(am.invalid_value(fp, q, "must be an integer"))
    for name, rq in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if _is_extended(name):
            if lim is None:
                errs.append(am.required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
            elif rq != lim:
                errs.append(am.invalid_value(f"{path}.requests", requests[name],
                                             f"must be equal to {name} limit of {limits[name]}"))
        elif lim is not None and rq > lim:
            errs.append(am.invalid_value(f"{path}.requests", requests[name],
                                         f"must be less than or equal to {name} limit of {limits[name]}"))
    return errs


def validate_template_meta(tpl: Any, path: str) -> list[dict]:
    if not isinstance(tpl, dict):
        return [am.required(path)]
    meta = tpl.get("metadata") or {}
    return am.labels_errors(meta.get("labels"), f"{path}.metadata.labels")


def qos_class(spec: dict) -> str:
    any_set, guaranteed = False, True
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        if lim or req:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ---------------------------------------------------------------------------------------------
# Strategies


class NamespaceStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])

    def prepare_update(self, new, old, ctx):
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new["spec"] = copy.deepcopy(old.get("spec", {}))   # spec.finalizers only via /finalize

    def initial_status(self, obj):
        return {"phase": "Active"}


class ConfigMapStrategy(Strategy):
    key_re = re.compile(r"[-._a-zA-Z0-9]+")

    def validate(self, obj):
        errs = []
        for fld in ("data", "binaryData"):
            for k in (obj.get(fld) or {}):
                if not self.key_re.fullmatch(k) or len(k) > 253:
                    errs.append(am.invalid_value(f"{fld}[{k}]", k, "a valid config key must consist of "
                                                 "alphanumeric characters, '-', '_' or '.'"))
        return errs

    def validate_update(self, new, old, internal):
        if old.get("immutable") and (new.get("data") != old.get("data")
                                     or new.get("binaryData") != old.get("binaryData")):
            return [am.forbidden_field("data", "field is immutable when `immutable` is set")]
        if old.get("immutable") and not new.get("immutable"):
            return [am.forbidden_field("immutable", "field is immutable when `immutable` is set")]
        return []


class SecretStrategy(ConfigMapStrategy):
    def prepare_create(self, obj, ctx):
        self._fold_string_data(obj)
        obj.setdefault("type", "Opaque")

    def prepare_update(self, new, old, ctx):
        self._fold_string_data(new)
        new.setdefault("type", old.get("type", "Opaque"))

    @staticmethod
    def _fold_string_data(obj):
        sd = obj.pop("stringData", None) or {}
        for k, v in sd.items():
            obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()

    def validate(self, obj):
        errs = []
        for k, v in (obj.get("data") or {}).items():
            if not self.key_re.fullmatch(k):
                errs.append(am.invalid_value(f"data[{k}]", k, "a valid config key must consist of alphanumeric "
                                             "characters, '-', '_' or '.'"))
            if not isinstance(v, str):
                raise am.bad_request(f"Secret in version \"v1\" cannot be handled as a Secret: json: cannot "
                                     f"unmarshal {type(v).__name__} into Go struct field Secret.data of type []uint8")
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise am.bad_request("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data "
                                     "at input byte 0")
        t = obj.get("type")
        if t == "kubernetes.io/tls":
            for k in ("tls.crt", "tls.key"):
                if k not in (obj.get("data") or {}):
                    errs.append(am.required(f"data[{k}]"))
        return errs

    def validate_update(self, new, old, internal):
        errs = super().validate_update(new, old, internal)
        if new.get("type") != old.get("type"):
            errs.append(_immutable("type", new.get("type")))
        return errs


class ServiceStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = ctx.allocate_cluster_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            for p in spec.get("ports") or []:
                p.setdefault("nodePort", ctx.allocate_node_port())
            if spec["type"] == "LoadBalancer":
                spec.setdefault("allocateLoadBalancerNodePorts", True)

    def prepare_update(self, new, old, ctx):
        spec, ospec = new.setdefault("spec", {}), old.get("spec", {})
        for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if f not in spec and f in ospec:
                spec[f] = copy.deepcopy(ospec[f])
        spec.setdefault("type", ospec.get("type", "ClusterIP"))
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                old_p = next((q for q in ospec.get("ports") or [] if q.get("port") == p.get("port")), None)
                p["nodePort"] = old_p["nodePort"] if old_p and "nodePort" in old_p else ctx.allocate_node_port()

    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        t = spec.get("type", "ClusterIP")
        if t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errs.append(am.unsupported("spec.type", t, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
        ports = spec.get("ports") or []
        if not ports and t != "ExternalName" and spec.get("clusterIP") != "None":
            errs.append(am.required("spec.ports"))
        for i, p in enumerate(ports):
            if len(ports) > 1 and not p.get("name"):
                errs.append(am.required(f"spec.ports[{i}].name"))
            port = p.get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errs.append(am.invalid_value(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive"))
        for k, v in (spec.get("selector") or {}).items():
            errs += am.label_key_errors(k, "spec.selector")
            errs += am.label_value_errors(v, "spec.selector")
        return errs

    def validate_update(self, new, old, internal):
        a, b = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if a and b != a:
            return [am.invalid_value("spec.clusterIPs[0]", b, "may not change once set")]
        return []

    def initial_status(self, obj):
        return {"loadBalancer": {}}


class PodStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        default_pod_spec(obj.setdefault("spec", {}), template=False)

    def validate(self, obj):
        return validate_pod_spec(obj.get("spec"), "spec", restart_allowed=("Always", "OnFailure", "Never"))

    def validate_update(self, new, old, internal):
        if internal:
            return []
        a, b = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
        for s in (a, b):
            for c in s.get("containers") or []:
                c.pop("image", None)
            for f in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
                s.pop(f, None)
        if a != b:
            return [am.forbidden_field("spec", "pod updates may not change fields other than "
                                       "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                       "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                                       "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
                                       "be set to 1 if it was previously negative)")]
        return []

    def initial_status(self, obj):
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}


class PVCStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")

    def prepare_update(self, new, old, ctx):
        new.setdefault("spec", {}).setdefault("volumeMode", (old.get("spec") or {}).get("volumeMode", "Filesystem"))

    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        if not spec.get("accessModes"):
            errs.append(am.required("spec.accessModes"))
        for i, m in enumerate(spec.get("accessModes") or []):
            if m not in ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"):
                errs.append(am.unsupported(f"spec.accessModes[{i}]", m,
                                           ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]))
        if "storage" not in ((spec.get("resources") or {}).get("requests") or {}):
            errs.append(am.required("spec.resources[storage]"))
        return errs

    def validate_update(self, new, old, internal):
        a, b = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
        if internal:
            a.pop("volumeName", None)
            b.pop("volumeName", None)
        for s in (a, b):
            s.get("resources", {}).pop("requests", None)
            s.pop("volumeAttributesClassName", None)
        if a != b:
            return [am.forbidden_field("spec", "spec is immutable after creation except resources.requests and "
                                       "volumeAttributesClassName for bound claims")]
        return []

    def initial_status(self, obj):
        return {"phase": "Pending"}


class NodeStrategy(Strategy):
    pass


def _selector_matches_template(sel: dict | None, tpl: dict | None) -> bool:
    reqs = am.label_selector_to_requirements(sel)
    if reqs is None:
        return False
    labels = ((tpl or {}).get("metadata") or {}).get("labels") or {}
    return am.labels_match(reqs, labels)


class DeploymentStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strat = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strat.get("type", "RollingUpdate") == "RollingUpdate":
            strat.setdefault("type", "RollingUpdate")
            ru = strat.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            default_pod_spec(tpl.setdefault("spec", {}), template=True)

    def prepare_update(self, new, old, ctx):
        self.prepare_create(new, ctx)

    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        sel = spec.get("selector")
        if sel is None:
            errs.append(am.required("spec.selector"))
        elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(am.invalid_value("spec.selector", sel, "empty selector is invalid for deployment"))
        tpl = spec.get("template")
        if tpl is None:
            errs.append(am.required("spec.template"))
        else:
            errs += validate_template_meta(tpl, "spec.template")
            if sel and (sel.get("matchLabels") or sel.get("matchExpressions")) \
                    and not _selector_matches_template(sel, tpl):
                errs.append(am.invalid_value("spec.template.metadata.labels",
                                             ((tpl.get("metadata") or {}).get("labels") or {}),
                                             "`selector` does not match template `labels`"))
            errs += validate_pod_spec(tpl.get("spec"), "spec.template.spec", restart_allowed=("Always",))
        r = spec.get("replicas", 1)
        if isinstance(r, int) and r < 0:
            errs.append(am.invalid_value("spec.replicas", r, "must be greater than or equal to 0"))
        return errs

    def validate_update(self, new, old, internal):
        a, b = (old.get("spec") or {}).get("selector"), (new.get("spec") or {}).get("selector")
        return [_immutable("spec.selector", b)] if a != b else []

    def initial_status(self, obj):
        return {}


class ReplicaSetStrategy(DeploymentStrategy):
    def initial_status(self, obj):
        return {"replicas": 0}

    def prepare_create(self, obj, ctx):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            default_pod_spec(tpl.setdefault("spec", {}), template=True)


class JobStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        spec = obj.setdefault("spec", {})
        if "parallelism" not in spec and "completions" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            default_pod_spec(tpl.setdefault("spec", {}), template=True, restart_default=None)
            if not spec.get("manualSelector"):
                uid = obj["metadata"]["uid"]
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                labels = tpl.setdefault("metadata", {}).setdefault("labels", {})
                name = obj["metadata"]["name"]
                labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                               "controller-uid": uid, "job-name": name})

    def prepare_update(self, new, old, ctx):
        spec = new.setdefault("spec", {})
        for f in ("completions", "parallelism", "backoffLimit", "completionMode", "suspend",
                  "podReplacementPolicy", "selector"):
            if f not in spec and f in (old.get("spec") or {}):
                spec[f] = copy.deepcopy(old["spec"][f])
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            default_pod_spec(tpl.setdefault("spec", {}), template=True, restart_default=None)

    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        tpl = spec.get("template")
        if tpl is None:
            return [am.required("spec.template")]
        errs += validate_template_meta(tpl, "spec.template")
        errs += validate_pod_spec(tpl.get("spec"), "spec.template.spec", restart_allowed=("OnFailure", "Never"),
                                  restart_required_msg='valid values: "OnFailure", "Never"')
        for f in ("parallelism", "completions", "backoffLimit"):
            v = spec.get(f)
            if isinstance(v, int) and v < 0:
                errs.append(am.invalid_value(f"spec.{f}", v, "must be greater than or equal to 0"))
        if spec.get("selector") and not _selector_matches_template(spec["selector"], tpl):
            errs.append(am.invalid_value("spec.template.metadata.labels",
                                         (tpl.get("metadata") or {}).get("labels") or {},
                                         "`selector` does not match template `labels`"))
        return errs

    def validate_update(self, new, old, internal):
        errs = []
        a, b = old.get("spec") or {}, new.get("spec") or {}
        if a.get("selector") != b.get("selector"):
            errs.append(_immutable("spec.selector", b.get("selector")))
        if a.get("template") != b.get("template"):
            errs.append(_immutable("spec.template", b.get("template")))
        if a.get("completions") != b.get("completions"):
            errs.append(_immutable("spec.completions", b.get("completions")))
        return errs

    def initial_status(self, obj):
        return {}


class IngressStrategy(Strategy):
    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        if not spec.get("rules") and not spec.get("defaultBackend"):
            errs.append(am.invalid_value("spec", spec, "either `defaultBackend` or `rules` must be specified"))
        for i, r in enumerate(spec.get("rules") or []):
            host = r.get("host")
            if host and am.name_errors("subdomain", host.removeprefix("*."), f"spec.rules[{i}].host"):
                errs += am.name_errors("subdomain", host.removeprefix("*."), f"spec.rules[{i}].host")
            for j, p in enumerate(((r.get("http") or {}).get("paths")) or []):
                pp = f"spec.rules[{i}].http.paths[{j}]"
                if not p.get("pathType"):
                    errs.append(am.required(f"{pp}.pathType", "pathType must be specified"))
                elif p["pathType"] not in ("Exact", "Prefix", "ImplementationSpecific"):
                    errs.append(am.unsupported(f"{pp}.pathType", p["pathType"],
                                               ["Exact", "ImplementationSpecific", "Prefix"]))
                if p.get("pathType") in ("Exact", "Prefix") and not str(p.get("path", "")).startswith("/"):
                    errs.append(am.invalid_value(f"{pp}.path", p.get("path", ""), "must be an absolute path"))
                svc = (p.get("backend") or {}).get("service")
                if svc is not None:
                    port = svc.get("port") or {}
                    if not port.get("name") and not port.get("number"):
                        errs.append(am.required(f"{pp}.backend.service.port"))
        return errs

    def initial_status(self, obj):
        return {"loadBalancer": {}}


class HPAStrategy(Strategy):
    def prepare_create(self, obj, ctx):
        obj.setdefault("spec", {}).setdefault("minReplicas", 1)

    def prepare_update(self, new, old, ctx):
        self.prepare_create(new, ctx)

    def initial_status(self, obj):
        return {"desiredReplicas": 0}

    def validate(self, obj):
        spec = obj.get("spec") or {}
        errs = []
        ref = spec.get("scaleTargetRef") or {}
        for f in ("kind", "name"):
            if not ref.get(f):
                errs.append(am.required(f"spec.scaleTargetRef.{f}"))
        mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(mn, int) and mn < 1:
            errs.append(am.invalid_value("spec.minReplicas", mn, "must be greater than or equal to 1"))
        if not isinstance(mx, int) or mx < 1:
            errs.append(am.invalid_value("spec.maxReplicas", mx, "must be greater than 0"))
        elif isinstance(mn, int) and mx < mn:
            errs.append(am.invalid_value("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
        for i, m in enumerate(spec.get("metrics") or []):
            t = m.get("type")
            if t not in ("Object", "Pods", "Resource", "ContainerResource", "External"):
                errs.append(am.unsupported(f"spec.metrics[{i}].type", t,
                                           ["ContainerResource", "External", "Object", "Pods", "Resource"]))
        return errs


def builtin_types() -> list[ResourceType]:
    R = ResourceType
    return [
        R("", "v1", "namespaces", "Namespace", False, "namespace", ["ns"], has_status=True, name_kind="label",
          strategy=NamespaceStrategy()),
        R("", "v1", "configmaps", "ConfigMap", True, "configmap", ["cm"], strategy=ConfigMapStrategy()),
        R("", "v1", "secrets", "Secret", True, "secret", strategy=SecretStrategy()),
        R("", "v1", "services", "Service", True, "service", ["svc"], ["all"], has_status=True,
          name_kind="dns1035", strategy=ServiceStrategy()),
        R("", "v1", "pods", "Pod", True, "pod", ["po"], ["all"], has_status=True, generation=True,
          strategy=PodStrategy()),
        R("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, "persistentvolumeclaim", ["pvc"],
          has_status=True, strategy=PVCStrategy()),
        R("", "v1", "nodes", "Node", False, "node", ["no"], has_status=True, keep_status_on_create=True,
          strategy=NodeStrategy()),
        R("apps", "v1", "deployments", "Deployment", True, "deployment", ["deploy"], ["all"], has_status=True,
          generation=True, strategy=DeploymentStrategy()),
        R("apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ["rs"], ["all"], has_status=True,
          generation=True, strategy=ReplicaSetStrategy()),
        R("batch", "v1", "jobs", "Job", True, "job", [], ["all"], has_status=True, generation=True,
          strategy=JobStrategy()),
        R("networking.k8s.io", "v1", "ingresses", "Ingress", True, "ingress", ["ing"], has_status=True,
          generation=True, strategy=IngressStrategy()),
        R("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
          "horizontalpodautoscaler", ["hpa"], ["all"], has_status=True, strategy=HPAStrategy()),
    ]


def crd_types(crd: dict) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    out = []
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        out.append(ResourceType(
            group=spec["group"], version=v["name"], plural=names["plural"], kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced", singular=names.get("singular", names["kind"].lower()),
            short_names=names.get("shortNames", []), categories=names.get("categories", []),
            has_status="status" in (v.get("subresources") or {}), builtin=False,
            crd_schema=(v.get("schema") or {}).get("openAPIV3Schema"), storage_version=storage,
            generation=True, strategy=Strategy()))
    return out


def resourceslice_type() -> ResourceType:
    """authentication.liqo.io/v1beta1 ResourceSlice: no vendored CRD, so spec/status are free-form."""
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                               "metadata": {"type": "object"}, "spec": free, "status": free}}
    return ResourceType("authentication.liqo.io", "v1beta1", "resourceslices", "ResourceSlice", True,
                        "resourceslice", [], ["liqo"], has_status=True, builtin=False, crd_schema=schema,
                        storage_version="v1beta1", generation=True, strategy=Strategy())

"""The API-machinery half of the emulator: what kube-apiserver does to a request body.

Pure functions over plain dicts (no HTTP, no store): Status errors, label/field selectors,
schema navigation and validation (OpenAPI v3 of the vendored CRDs; the official JSON schemas of
the built-in kinds shipped by `kubernetes-validate`), structural pruning and defaulting, the
three patch formats and server-side-apply field ownership.

Everything here mirrors k8s.io/apimachinery closely enough that a client sees the same status
codes, reasons and field paths; where it is simpler than the real thing, the docstring says so.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import json
import os
import re
from typing import Any, Iterable

import jsonschema
from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry, Resource

MISSING = object()

# --------------------------------------------------------------------------------------------
# Time


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Status errors (k8s.io/apimachinery/pkg/api/errors)


class ApiError(Exception):
    """An error the server answers with a `Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out


def qualified_resource(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def qualified_kind(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified_resource(plural, group)} "{name}" not found',
                    {"name": name, "group": group, "kind": plural})


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified_resource(plural, group)} "{name}" already exists',
                    {"name": name, "group": group, "kind": plural})


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified_resource(plural, group)} "{name}": {why}',
                    {"name": name, "group": group, "kind": plural})


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, group: str, name: str, causes: list[dict]) -> ApiError:
    msgs = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    return ApiError(422, "Invalid", f'{qualified_kind(kind, group)} "{name}" is invalid: {joined}',
                    {"name": name, "group": group, "kind": kind, "causes": causes})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{qualified_resource(plural, group)} "{name}" is forbidden: {why}',
                    {"name": name, "group": group, "kind": plural})


def cause(field: str, reason: str, message: str) -> dict:
    return {"reason": reason, "message": message, "field": field}


def required(field: str, detail: str = "") -> dict:
    return cause(field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def invalid_value(field: str, value: Any, detail: str) -> dict:
    return cause(field, "FieldValueInvalid", f"Invalid value: {go_repr(value)}: {detail}")


def unsupported(field: str, value: Any, allowed: Iterable[str]) -> dict:
    return cause(field, "FieldValueNotSupported",
                 f"Unsupported value: {go_repr(value)}: supported values: "
                 + ", ".join(json.dumps(a) for a in allowed))


def forbidden_field(field: str, detail: str) -> dict:
    return cause(field, "FieldValueForbidden", f"Forbidden: {detail}")


def go_repr(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def field_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$-]*", str(p)):
            out += ("." if out else "") + str(p)
        else:
            out += f"[{p}]"
    return out


# --------------------------------------------------------------------------------------------
# Names and labels (k8s.io/apimachinery/pkg/util/validation)

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


def name_errors(kind: str, name: str, path: str = "metadata.name") -> list[dict]:
    """`kind` is 'subdomain', 'label' (RFC 1123) or 'dns1035'."""
    if kind == "label":
        if len(name) > 63:
            return [invalid_value(path, name, "must be no more than 63 characters")]
        if not re.fullmatch(DNS1123_LABEL, name):
            return [invalid_value(path, name,
                                  "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                                  "characters or '-', and must start and end with an alphanumeric character "
                                  "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                                  f"'{DNS1123_LABEL}')")]
    elif kind == "dns1035":
        if len(name) > 63:
            return [invalid_value(path, name, "must be no more than 63 characters")]
        if not re.fullmatch(DNS1035_LABEL, name):
            return [invalid_value(path, name,
                                  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                                  "start with an alphabetic character, and end with an alphanumeric character "
                                  f"(e.g. 'my-name',  or 'abc-123', regex used for validation is '{DNS1035_LABEL}')")]
    else:
        if len(name) > 253:
            return [invalid_value(path, name, "must be no more than 253 characters")]
        if not re.fullmatch(DNS1123_SUBDOMAIN, name):
            return [invalid_value(path, name,
                                  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                  "characters, '-' or '.', and must start and end with an alphanumeric "
                                  "character (e.g. 'example.com', regex used for validation is "
                                  f"'{DNS1123_SUBDOMAIN}')")]
    return []


def label_key_errors(key: str, path: str) -> list[dict]:
    prefix, _, name = key.rpartition("/")
    errs = []
    if prefix and (len(prefix) > 253 or not re.fullmatch(DNS1123_SUBDOMAIN, prefix)):
        errs.append(invalid_value(path, key, "prefix part a lowercase RFC 1123 subdomain must consist of lower "
                                  "case alphanumeric characters, '-' or '.', and must start and end with an "
                                  "alphanumeric character"))
    if not name or len(name) > 63 or not re.fullmatch(QUALIFIED_NAME, name):
        errs.append(invalid_value(path, key, "name part must consist of alphanumeric characters, '-', '_' or '.', "
                                  "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                                  "'my.name',  or '123-abc', regex used for validation is "
                                  f"'{QUALIFIED_NAME}') and be no more than 63 characters"))
    return errs


def label_value_errors(value: Any, path: str) -> list[dict]:
    if not isinstance(value, str):
        return [invalid_value(path, value, "must be a string")]
    if len(value) > 63:
        return [invalid_value(path, value, "must be no more than 63 characters")]
    if not re.fullmatch(LABEL_VALUE, value):
        return [invalid_value(path, value, "a valid label must be an empty string or consist of alphanumeric "
                              "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                              f"character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                              f"validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]
    return []


def labels_errors(labels: Any, path: str) -> list[dict]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid_value(path, labels, "must be a map of strings")]
    errs = []
    for k, v in labels.items():
        errs += label_key_errors(k, path)
        errs += label_value_errors(v, f"{path}")
    return errs


def annotations_errors(annotations: Any, path: str) -> list[dict]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid_value(path, annotations, "must be a map of strings")]
    errs = []
    for k, v in annotations.items():
        errs += label_key_errors(k, path)
        if not isinstance(v, str):
            errs.append(invalid_value(f"{path}[{k}]", v, "must be a string"))
    if len(json.dumps(annotations)) > 256 * 1024:
        errs.append(cause(path, "FieldValueTooLong", "Too long: must have at most 262144 bytes"))
    return errs


# --------------------------------------------------------------------------------------------
# Selectors


class Requirement:
    __slots__ = ("key", "op", "values")

    def __init__(self, key: str, op: str, values: list[str]):
        self.key, self.op, self.values = key, op, values

    def matches(self, labels: dict) -> bool:
        has = self.key in labels
        val = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return has and val in self.values
        if self.op in ("!=", "notin"):
            return not has or val not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            try:
                lhs, rhs = int(val), int(self.values[0])
            except (TypeError, ValueError):
                return False
            return lhs > rhs if self.op == "gt" else lhs < rhs
        return False


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_label_selector(s: str | None) -> list[Requirement]:
    if not s or not s.strip():
        return []
    reqs = []
    for part in _split_top(s):
        p = part.strip()
        if not p:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier")
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", p)
        if m:
            key, op, vals = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
        elif p.startswith("!"):
            key, op, vals = p[1:].strip(), "!", []
        else:
            m = re.fullmatch(r"([^=!<>\s]+)\s*(==|!=|=|>|<)\s*(.*)", p)
            if m:
                key, sym, vals = m.group(1), m.group(2), [m.group(3).strip()]
                op = {">": "gt", "<": "lt"}.get(sym, sym)
            elif re.fullmatch(r"[^=!<>\s(),]+", p):
                key, op, vals = p, "exists", []
            else:
                raise bad_request(f"unable to parse requirement: <nil>: Invalid value: \"{p}\": "
                                  "unable to parse requirement")
        errs = label_key_errors(key, "key")
        if errs:
            raise bad_request(f"unable to parse requirement: {errs[0]['message']}")
        for v in vals:
            if op not in ("gt", "lt") and label_value_errors(v, "values"):
                raise bad_request(f"unable to parse requirement: values[0][{key}]: Invalid value: "
                                  f"\"{v}\": a valid label must be an empty string or consist of "
                                  "alphanumeric characters")
        reqs.append(Requirement(key, op, vals))
    return reqs


def labels_match(reqs: list[Requirement], labels: dict | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def label_selector_to_requirements(sel: dict | None) -> list[Requirement] | None:
    """A metav1.LabelSelector (matchLabels/matchExpressions). None = selects nothing."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", [v]) for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[e["operator"]]
        reqs.append(Requirement(e["key"], op, list(e.get("values") or [])))
    return reqs


def parse_field_selector(s: str | None) -> list[tuple[str, str, str]]:
    if not s or not s.strip():
        return []
    out = []
    for part in s.split(","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request(f"invalid selector: '{s}'; can't understand '{part}'")
        out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return out


def get_dotted(obj: dict, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


# --------------------------------------------------------------------------------------------
# Schemas

VALIDATE_DIR = None


def _schema_dir() -> str:
    global VALIDATE_DIR
    if VALIDATE_DIR is None:
        import kubernetes_validate

        base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
        versions = sorted((d for d in os.listdir(base) if d.endswith("-local-strict")),
                          key=lambda d: tuple(int(x) for x in d[1:].split("-")[0].split(".")))
        VALIDATE_DIR = os.path.join(base, versions[-1])
    return VALIDATE_DIR


@functools.lru_cache(maxsize=None)
def builtin_definitions() -> dict:
    with open(os.path.join(_schema_dir(), "_definitions.json")) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def builtin_schema(kind: str, group: str, version: str) -> dict:
    short = group.split(".")[0]
    fname = f"{kind.lower()}-{short}-{version}.json" if group else f"{kind.lower()}-{version}.json"
    with open(os.path.join(_schema_dir(), fname)) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def builtin_validator(kind: str, group: str, version: str) -> Draft202012Validator:
    schema = builtin_schema(kind, group, version)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(builtin_definitions()) @ registry
    return Draft202012Validator(schema, registry=registry)


class SchemaNode:
    """A position in a structural schema, with `$ref`s resolved. Used by pruning, strategic
    merge and server-side apply to learn list types, merge keys and map atomicity."""

    __slots__ = ("s", "defs", "root")

    def __init__(self, s: dict, defs: dict | None = None, root: bool = False):
        while isinstance(s, dict) and "$ref" in s and defs is not None:
            target = defs[s["$ref"].rsplit("/", 1)[-1]]
            s = {**target, **{k: v for k, v in s.items() if k not in ("$ref", "description")}}
        self.s = s if isinstance(s, dict) else {}
        self.defs = defs
        self.root = root

    def prop(self, name: str) -> SchemaNode | None:
        if self.root and name == "metadata":
            return object_meta_node()
        props = self.s.get("properties")
        if props and name in props:
            return SchemaNode(props[name], self.defs)
        addl = self.s.get("additionalProperties")
        if isinstance(addl, dict):
            return SchemaNode(addl, self.defs)
        return None

    def items(self) -> SchemaNode | None:
        it = self.s.get("items")
        return SchemaNode(it, self.defs) if isinstance(it, dict) else None

    @property
    def list_type(self) -> str | None:
        return self.s.get("x-kubernetes-list-type")

    @property
    def map_keys(self) -> list[str] | None:
        return self.s.get("x-kubernetes-list-map-keys")

    @property
    def patch_strategy(self) -> str:
        return self.s.get("x-kubernetes-patch-strategy", "")

    @property
    def patch_merge_key(self) -> str | None:
        return self.s.get("x-kubernetes-patch-merge-key")

    @property
    def atomic_map(self) -> bool:
        return self.s.get("x-kubernetes-map-type") == "atomic"


@functools.lru_cache(maxsize=None)
def _object_meta_schema() -> dict:
    return builtin_definitions()["$defs"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]


def object_meta_node() -> SchemaNode:
    return SchemaNode(_object_meta_schema(), builtin_definitions()["$defs"])


def builtin_root(kind: str, group: str, version: str) -> SchemaNode:
    return SchemaNode(builtin_schema(kind, group, version), builtin_definitions()["$defs"], root=True)


def crd_root(schema: dict) -> SchemaNode:
    return SchemaNode(schema, None, root=True)


# CRD structural schema -> JSON Schema draft 4 (what the apiserver's OpenAPI validator checks).

def crd_to_jsonschema(s: Any, root: bool = False) -> Any:
    if not isinstance(s, dict):
        return s
    out: dict = {}
    for k, v in s.items():
        if k.startswith("x-kubernetes-") or k in ("description", "example", "externalDocs", "nullable", "default"):
            continue
        if k == "properties":
            out[k] = {pk: crd_to_jsonschema(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = crd_to_jsonschema(v) if isinstance(v, dict) else v
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [crd_to_jsonschema(x) for x in v]
        elif k == "format":
            continue
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "anyOf"}}
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if root:
        props = out.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
    return out


def schema_errors(validator: jsonschema.protocols.Validator, obj: dict, ignore_unknown: bool = False) -> list[dict]:
    """jsonschema errors as Kubernetes field-error causes (unknown fields are handled by pruning)."""
    causes: list[dict] = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        causes.extend(_causes_of(err, ignore_unknown))
    seen, out = set(), []
    for c in causes:
        key = (c["field"], c["message"])
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _causes_of(err: jsonschema.ValidationError, ignore_unknown: bool) -> list[dict]:
    path = list(err.absolute_path)
    fp = field_path(path)
    if err.validator == "additionalProperties":
        return [] if ignore_unknown else [cause(fp, "FieldValueInvalid", err.message)]
    if err.validator == "required":
        inst = err.instance if isinstance(err.instance, dict) else {}
        return [required(field_path(path + [r])) for r in err.validator_value if r not in inst]
    if err.validator == "type":
        want = err.validator_value
        want = [t for t in (want if isinstance(want, list) else [want]) if t != "null"]
        shown = _json_type(err.instance)
        return [cause(fp, "FieldValueTypeInvalid",
                      f"Invalid value: {json.dumps(shown)}: {fp} in body must be of type {' or '.join(want)}: "
                      f"{json.dumps(shown)}")]
    if err.validator == "enum":
        return [unsupported(fp, err.instance, [str(x) for x in err.validator_value])]
    if err.validator in ("oneOf", "anyOf") and err.context:
        # Quantity / IntOrString: report the type problem once.
        return [cause(fp, "FieldValueTypeInvalid",
                      f"Invalid value: {go_repr(err.instance)}: {fp} in body must be of type "
                      + " or ".join(sorted({str(c.validator_value) for c in err.context if c.validator == 'type'})))]
    return [invalid_value(fp, err.instance, f"{fp} in body {err.message}")]


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if v is None:
        return "null"
    return "object"


def prune(obj: Any, node: SchemaNode | None, path: list, dropped: list[str]) -> None:
    """Structural pruning: drop fields the schema does not declare (unless it preserves them)."""
    if node is None:
        return
    s = node.s
    if isinstance(obj, dict):
        props = s.get("properties")
        addl = s.get("additionalProperties")
        preserve = s.get("x-kubernetes-preserve-unknown-fields") or addl is True
        for k in list(obj):
            if node.root and k in ("apiVersion", "kind"):
                continue
            child = node.prop(k)
            if child is not None:
                prune(obj[k], child, path + [k], dropped)
            elif not preserve and (props is not None or s.get("type") == "object"):
                dropped.append(field_path(path + [k]))
                del obj[k]
    elif isinstance(obj, list):
        it = node.items()
        for i, v in enumerate(obj):
            prune(v, it, path + [i], dropped)


def apply_defaults(obj: Any, s: dict) -> None:
    """CRD structural defaulting: fill `default` for absent properties of existing objects."""
    if not isinstance(s, dict):
        return
    if isinstance(obj, dict):
        for k, ps in (s.get("properties") or {}).items():
            if k not in obj and isinstance(ps, dict) and "default" in ps:
                obj[k] = copy.deepcopy(ps["default"])
            if k in obj:
                apply_defaults(obj[k], ps)
        addl = s.get("additionalProperties")
        if isinstance(addl, dict):
            for k in obj:
                if k not in (s.get("properties") or {}):
                    apply_defaults(obj[k], addl)
    elif isinstance(obj, list) and isinstance(s.get("items"), dict):
        for v in obj:
            apply_defaults(v, s["items"])


# --------------------------------------------------------------------------------------------
# Patches


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(target: Any, patch: Any, node: SchemaNode | None) -> Any:
    """Strategic merge for built-in kinds, directed by the schema's patch strategy and merge key
    (`containers` merge by `name`, finalizers union, ...). Supports the `$patch: replace|delete`
    and `$deleteFromPrimitiveList` directives; `$setElementOrder` and `$retainKeys` are ignored."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k == "$patch" or k.startswith("$setElementOrder/") or k == "$retainKeys":
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            fld = k.split("/", 1)[1]
            if isinstance(out.get(fld), list):
                out[fld] = [x for x in out[fld] if x not in (v or [])]
            continue
        child = node.prop(k) if node else None
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and child is not None and "merge" in child.patch_strategy:
            out[k] = _smp_list(out.get(k) or [], v, child)
        elif isinstance(v, dict) and not (child is not None and child.atomic_map):
            if v.get("$patch") == "delete":
                out.pop(k, None)
            else:
                out[k] = strategic_merge_patch(out.get(k), v, child)
        else:
            out[k] = _strip_directives(v)
    return out


def _smp_list(orig: list, patch: list, node: SchemaNode) -> list:
    key = node.patch_merge_key
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if not key:
        out = list(orig)
        for x in patch:
            if x not in out:
                out.append(copy.deepcopy(x))
        return out
    out = [copy.deepcopy(x) for x in orig]
    for item in patch:
        if not isinstance(item, dict):
            continue
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(_strip_directives(item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item, node.items())
    return out


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return copy.deepcopy(v)


class JsonPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve_parent(doc: Any, parts: list[str], op: str, path: str) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {path}")
    return cur, parts[-1]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)

    def get(path: str) -> Any:
        parts = _pointer(path)
        cur = doc
        for p in parts:
            if isinstance(cur, dict) and p in cur:
                cur = cur[p]
            elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
                cur = cur[int(p)]
            else:
                raise JsonPatchError(f"doc is missing path: {path}")
        return cur

    def remove(path: str, op: str) -> Any:
        parent, last = _resolve_parent(doc, _pointer(path), op, path)
        if isinstance(parent, dict) and last in parent:
            return parent.pop(last)
        if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            return parent.pop(int(last))
        raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {path}")

    def add(path: str, value: Any, op: str) -> None:
        nonlocal doc
        parts = _pointer(path)
        if not parts:
            doc = copy.deepcopy(value)
            return
        parent, last = _resolve_parent(doc, parts, op, path)
        if isinstance(parent, dict):
            parent[last] = copy.deepcopy(value)
        elif isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(value))
            elif last.isdigit() and int(last) <= len(parent):
                parent.insert(int(last), copy.deepcopy(value))
            else:
                raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {path}")
        else:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {path}")

    for o in ops:
        if not isinstance(o, dict) or "op" not in o or "path" not in o:
            raise bad_request("invalid JSON patch operation")
        op, path = o["op"], o["path"]
        if op == "add":
            add(path, o.get("value"), op)
        elif op == "remove":
            remove(path, op)
        elif op == "replace":
            get(path)
            parent, last = _resolve_parent(doc, _pointer(path), op, path) if _pointer(path) else (None, None)
            if parent is None:
                doc = copy.deepcopy(o.get("value"))
            elif isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(o.get("value"))
            else:
                parent[last] = copy.deepcopy(o.get("value"))
        elif op == "move":
            v = remove(o["from"], op)
            add(path, v, op)
        elif op == "copy":
            add(path, get(o["from"]), op)
        elif op == "test":
            if get(path) != o.get("value"):
                raise JsonPatchError(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {op}")
    return doc


# --------------------------------------------------------------------------------------------
# Server-side apply: field sets (fieldsV1) and the apply merge


def _key_segment(item: dict, keys: list[str]) -> str:
    return "k:" + json.dumps({k: item.get(k) for k in keys}, sort_keys=True, separators=(",", ":"))


def field_set(obj: Any, node: SchemaNode | None, prefix: tuple = ()) -> set[tuple]:
    """Leaf paths of `obj` as fieldsV1 segments ('f:name', 'k:{...}'). Maps recurse (unless
    atomic); associative lists (list-type map) recurse by key; other lists are atomic leaves."""
    out: set[tuple] = set()
    if isinstance(obj, dict) and not (node is not None and node.atomic_map) and obj:
        for k, v in obj.items():
            out |= field_set(v, node.prop(k) if node else None, prefix + ("f:" + k,))
        return out
    if isinstance(obj, list) and node is not None and node.list_type == "map" and node.map_keys \
            and all(isinstance(x, dict) for x in obj) and obj:
        it = node.items()
        for item in obj:
            seg = prefix + (_key_segment(item, node.map_keys),)
            sub = field_set(item, it, seg)
            out |= sub or {seg}
        return out
    out.add(prefix)
    return out


def get_path(obj: Any, path: tuple) -> Any:
    cur = obj
    for seg in path:
        if seg.startswith("f:"):
            if not isinstance(cur, dict) or seg[2:] not in cur:
                return MISSING
            cur = cur[seg[2:]]
        else:
            keys = json.loads(seg[2:])
            if not isinstance(cur, list):
                return MISSING
            cur = next((x for x in cur if isinstance(x, dict) and all(x.get(k) == v for k, v in keys.items())),
                       MISSING)
            if cur is MISSING:
                return MISSING
    return cur


def delete_path(obj: Any, path: tuple) -> None:
    if not path:
        return
    parent = get_path(obj, path[:-1])
    seg = path[-1]
    if seg.startswith("f:") and isinstance(parent, dict):
        parent.pop(seg[2:], None)
    elif seg.startswith("k:") and isinstance(parent, list):
        keys = json.loads(seg[2:])
        parent[:] = [x for x in parent if not (isinstance(x, dict) and all(x.get(k) == v for k, v in keys.items()))]


def apply_merge(cur: Any, cfg: Any, node: SchemaNode | None) -> Any:
    if isinstance(cfg, dict) and isinstance(cur, dict) and not (node is not None and node.atomic_map):
        out = dict(cur)
        for k, v in cfg.items():
            out[k] = apply_merge(cur.get(k, MISSING), v, node.prop(k) if node else None)
        return out
    if isinstance(cfg, list) and isinstance(cur, list) and node is not None and node.list_type == "map" \
            and node.map_keys:
        keys = node.map_keys
        out = [copy.deepcopy(x) for x in cur]
        for item in cfg:
            if not isinstance(item, dict):
                continue
            idx = next((i for i, x in enumerate(out) if isinstance(x, dict)
                        and all(x.get(k) == item.get(k) for k in keys)), None)
            if idx is None:
                out.append(copy.deepcopy(item))
            else:
                out[idx] = apply_merge(out[idx], item, node.items())
        return out
    return copy.deepcopy(cfg)


def has_prefix(paths: Iterable[tuple], prefix: tuple) -> bool:
    n = len(prefix)
    return any(p[:n] == prefix for p in paths)


def to_fields_v1(paths: Iterable[tuple]) -> dict:
    root: dict = {}
    for p in sorted(paths):
        cur = root
        for seg in p:
            cur = cur.setdefault(seg, {})
    return root


def from_fields_v1(d: dict, prefix: tuple = ()) -> set[tuple]:
    out: set[tuple] = set()
    for k, v in (d or {}).items():
        if k == ".":
            out.add(prefix)
            continue
        if isinstance(v, dict) and any(kk != "." for kk in v):
            out |= from_fields_v1(v, prefix + (k,))
        else:
            out.add(prefix + (k,))
    return out


def fmt_path(p: tuple) -> str:
    out = ""
    for seg in p:
        out += "." + seg[2:] if seg.startswith("f:") else "[" + seg[2:].strip("{}").replace('"', "").replace(":", "=") + "]"
    return out

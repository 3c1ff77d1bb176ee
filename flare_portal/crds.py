"""Check custom resources against the real CRD schemas before they reach a cluster.

The CRDs are the vendored copies in `deploy/crds/` (see its README; do not edit them). An object
is validated with jsonschema against the `openAPIV3Schema` of the CRD version its `apiVersion`
names, with what the API server adds to a structural schema:

- unknown fields are errors, except under `x-kubernetes-preserve-unknown-fields` (the server
  would drop them silently, or reject them under kubectl's strict field validation);
- `nullable: true` admits null;
- `metadata.name` must be a DNS-1123 subdomain, and `metadata.namespace` set only on
  namespaced kinds.

Schemas are loaded once per process.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from jsonschema import Draft4Validator

CRD_DIR = Path(__file__).resolve().parent.parent / "deploy" / "crds"

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_UNEXPECTED = re.compile(r"'([^']+)' (?:was|were) unexpected")


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: dict
    source: str            # file name in deploy/crds

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


@lru_cache(maxsize=None)
def load_crds(directory: str | None = None) -> dict[tuple[str, str], CrdVersion]:
    """(apiVersion, kind) → CrdVersion for every served version of every CRD in the directory."""
    folder = Path(directory) if directory else CRD_DIR
    crds: dict[tuple[str, str], CrdVersion] = {}
    for path in sorted(folder.glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            documents = list(yaml.safe_load_all(stream))
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec.get("versions", []):
                if not version.get("served", True):
                    continue
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema is None:
                    continue
                crd = CrdVersion(
                    group=spec["group"],
                    version=version["name"],
                    kind=spec["names"]["kind"],
                    plural=spec["names"]["plural"],
                    namespaced=spec.get("scope") == "Namespaced",
                    schema=schema,
                    source=path.name,
                )
                crds[(crd.api_version, crd.kind)] = crd
    return crds


def _structural(schema: dict) -> dict:
    """The schema as the API server applies it: closed objects, nullable honoured."""
    schema = copy.copy(schema)
    if schema.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if "properties" in schema:
        schema["properties"] = {name: _structural(sub) for name, sub in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _structural(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        schema["items"] = _structural(schema["items"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            schema[combinator] = [_structural(sub) for sub in schema[combinator]]
    if isinstance(schema.get("not"), dict):
        schema["not"] = _structural(schema["not"])
    return schema


@lru_cache(maxsize=None)
def _validator(api_version: str, kind: str) -> Draft4Validator:
    crd = load_crds()[(api_version, kind)]
    # OpenAPI v3.0 schemas are JSON Schema draft 4 with extensions jsonschema ignores (x-kubernetes-*).
    return Draft4Validator(_structural(crd.schema))


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _message(error) -> str:
    where = _path(error.absolute_path)
    if error.validator == "additionalProperties":
        names = _UNEXPECTED.search(error.message)
        unknown = names.group(1) if names else error.message
        return f"{where}: unknown field(s) {unknown}; the API server drops them"
    if error.validator == "required":
        return f"{where}: {error.message.replace(' is a required property', '')} is required"
    return f"{where}: {error.message}"


def _metadata_errors(manifest: dict, crd: CrdVersion) -> list[str]:
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        return ["metadata: required, with a name"]
    errors = []
    name = metadata.get("name")
    if name is None:
        if not metadata.get("generateName"):
            errors.append("metadata.name: required (or metadata.generateName)")
    elif not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        errors.append(
            f"metadata.name: {name!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
            "at most 253 characters, starting and ending with a letter or digit)"
        )
    namespace = metadata.get("namespace")
    if namespace is not None:
        if not crd.namespaced:
            errors.append(f"metadata.namespace: {crd.kind} is cluster-scoped and takes no namespace")
        elif not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
            errors.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    return errors


def validate_custom_resource(manifest: dict) -> list[str]:
    """Every way the object breaks its CRD, as "path: problem" strings; empty when it is valid."""
    if not isinstance(manifest, dict):
        return [f"(root): expected an object, got {type(manifest).__name__}"]
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return ["(root): apiVersion and kind are required"]
    crd = load_crds().get((api_version, kind))
    if crd is None:
        served = sorted(f"{key_kind} ({key_version})" for key_version, key_kind in load_crds())
        return [f"(root): no CRD in deploy/crds serves {kind} in {api_version}; known: {', '.join(served)}"]
    errors = _metadata_errors(manifest, crd)
    errors += sorted(
        (_message(error) for error in _validator(api_version, kind).iter_errors(manifest)),
    )
    return errors


def assert_valid_custom_resource(manifest: dict) -> None:
    """AssertionError listing every problem when the object breaks its CRD (for tests)."""
    errors = validate_custom_resource(manifest)
    if errors:
        name = ((manifest or {}).get("metadata") or {}).get("name", "?") if isinstance(manifest, dict) else "?"
        kind = manifest.get("kind", "?") if isinstance(manifest, dict) else "?"
        raise AssertionError(f"{kind} {name!r} does not match its CRD:\n  " + "\n  ".join(errors))

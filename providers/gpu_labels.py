"""NVIDIA and AMD GPU-operator node labels → FLARE's GPU annotations (FLUIDOS.md §4).

The operators already describe the hardware (NVIDIA GPU Feature Discovery: `nvidia.com/gpu.*`,
`nvidia.com/mig.capable`; AMD's labeller: `amd.com/gpu.*`), so a provider administrator can
paste a node's labels and get the annotations to apply. What the labels cannot say (tier, cores,
FP32, interconnect, workload scores) comes from the catalogue; `LabelConversion.sources` says,
for each annotation, which label or catalogue entry it came from.

Rules: the product name gives vendor and model (lower-case, without form factor, memory,
Instinct/Radeon/Pro); `nvidia.com/gpu.memory` is MiB (÷1024) and `amd.com/gpu.memory` MB
(÷1000), both rounded to whole Gi; `gpu.count` is the count; `gpu.family` the architecture;
`gpu.compute.major`+`minor` the compute capability; `nvidia.com/mig.capable` becomes
`nvidia.fluidos.eu/mig-capable`; `amd.com/sriov.capable=true` becomes sharing with strategy
`sriov`. Also understood: AMD's `gpu.product-name`, `gpu.vram` and `gpu.cu-count` labels, and
GFD's `nvidia.com/gpu.sharing-strategy` (time-slicing, mps).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import yaml

from providers import annotations as keys
from providers import gpu_catalog
from providers.flavor import format_quantity

_DIGITS = re.compile(r"\d+")
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_AMD_VRAM = re.compile(r"(?P<size>\d+(\.\d+)?)\s*(?P<unit>G|GB|Gi|GiB|M|MB|Mi|MiB)?", re.IGNORECASE)
# Kubernetes label and annotation keys: an optional DNS-subdomain prefix, "/", a name.
_KEY_TEXT = r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_KEY = re.compile(_KEY_TEXT)
_STREAM_PROCESSORS_PER_CU = 64   # CDNA and RDNA compute units


@dataclass
class LabelConversion:
    annotations: dict[str, str]
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # annotation key → "label <label key>" or "catalogue <model id>"
    sources: dict[str, str] = field(default_factory=dict)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _gi(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


def _go_bool(value: str) -> bool | None:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    return None


def labels_to_annotations(labels: dict) -> LabelConversion:
    """Convert one node's labels; never raises for bad label values, it reports them in `errors`."""
    result = LabelConversion(annotations={})
    if not isinstance(labels, dict):
        result.errors.append(f"labels: expected a mapping of label to value, got {type(labels).__name__}")
        return result
    labels = {str(key): _text(value).strip() for key, value in labels.items()}
    out, sources, notes, errors = result.annotations, result.sources, result.notes, result.errors

    def put(key: str, value: str, source: str):
        out[key] = value
        sources[key] = source

    nvidia_product = labels.get("nvidia.com/gpu.product")
    amd_key = next((key for key in ("amd.com/gpu.product", "amd.com/gpu.product-name") if labels.get(key)), None)
    if nvidia_product and amd_key:
        errors.append("labels from both the NVIDIA and the AMD GPU operator: a Flavor describes one GPU model")
        return result
    if nvidia_product:
        vendor, prefix, product_key = "nvidia", "nvidia.com", "nvidia.com/gpu.product"
    elif amd_key:
        vendor, prefix, product_key = "amd", "amd.com", amd_key
    else:
        errors.append("no GPU product label: expected nvidia.com/gpu.product (NVIDIA GPU Feature Discovery) "
                      "or amd.com/gpu.product (AMD GPU operator)")
        return result

    product = labels[product_key]
    if product.upper().endswith("-SHARED"):
        # GFD renames shared GPUs (<product>-SHARED) when sharing.renameByDefault is on.
        product = product[: -len("-SHARED")]
    model_id, named_memory = gpu_catalog.split_model_name(product)
    if model_id and not model_id.startswith(f"{vendor}-"):
        model_id = f"{vendor}-{model_id}"
    if not model_id or model_id == vendor:
        errors.append(f"{product_key}: expected a GPU product name such as 'NVIDIA-A100-SXM4-40GB', got {product!r}")
        return result
    put(keys.KEY_VENDOR, vendor, f"label {product_key}")
    put(keys.KEY_MODEL, model_id, f"label {product_key}")
    notes.append(f"{product_key}={labels[product_key]} → {keys.KEY_MODEL}={model_id}")
    if model_id not in gpu_catalog.CATALOG:
        notes.append(f"{model_id} is not in FLARE's GPU catalogue: annotate tier, cores, fp32-tflops, "
                     "interconnect and the workload scores by hand")

    count_key = f"{prefix}/gpu.count"
    if count_key in labels:
        count = labels[count_key]
        if _DIGITS.fullmatch(count) and int(count) >= 1:
            put(keys.KEY_COUNT, str(int(count)), f"label {count_key}")
        else:
            errors.append(f"{count_key}: expected a whole number of GPUs (1 or more) such as '4', got {count!r}")
    else:
        errors.append(f"{count_key}: missing; the number of GPUs on the node is required")

    memory_gi = _memory(labels, vendor, prefix, named_memory, product_key, notes, errors, sources)
    model = gpu_catalog.lookup(model_id, memory_gi * gpu_catalog.GIB if memory_gi else None)
    if memory_gi is None and model is not None:
        memory_gi = _gi(Decimal(model.memory_bytes) / gpu_catalog.GIB)
        sources[keys.KEY_MEMORY_PER_GPU] = f"catalogue {model.id}"
        notes.append(f"no memory label: {model.id}'s catalogue memory {memory_gi}Gi per GPU (check the variant)")
    if memory_gi is not None:
        out[keys.KEY_MEMORY_PER_GPU] = f"{memory_gi}Gi"
    elif not any(error.startswith((f"{prefix}/gpu.memory", "amd.com/gpu.vram")) for error in errors):
        errors.append(f"{prefix}/gpu.memory: missing, and the model is not in the catalogue; memory per GPU "
                      "is required")

    _architecture(labels, prefix, model, put, notes)
    _compute_capability(labels, prefix, put, notes, errors)
    _sharing(labels, put, notes, errors)

    cu_key = "amd.com/gpu.cu-count"
    if vendor == "amd" and cu_key in labels:
        if _DIGITS.fullmatch(labels[cu_key]) and int(labels[cu_key]) > 0:
            cores = int(labels[cu_key]) * _STREAM_PROCESSORS_PER_CU
            put(keys.KEY_CORES, str(cores), f"label {cu_key}")
            notes.append(f"{cu_key}={labels[cu_key]} compute units → {cores} stream processors")
        else:
            errors.append(f"{cu_key}: expected a whole number of compute units such as '304', got {labels[cu_key]!r}")

    if model is not None:
        _from_catalogue(model, out, put)
    return result


# The operators publish memory per GPU in different units (FLUIDOS.md §4): NVIDIA in MiB, AMD in MB.
_MEMORY_LABELS = {
    "nvidia": ("nvidia.com/gpu.memory", 1024, "MiB", "81559"),
    "amd": ("amd.com/gpu.memory", 1000, "MB", "192000"),
}


def _memory(labels, vendor, prefix, named_memory, product_key, notes, errors, sources) -> int | None:
    """Memory per GPU in whole Gi, from the memory label, else the product name."""
    memory_label = _MEMORY_LABELS.get(vendor)
    if memory_label is not None and memory_label[0] in labels:
        key, per_gib, unit, example = memory_label
        raw = labels[key]
        if not _DIGITS.fullmatch(raw) or int(raw) == 0:
            errors.append(f"{key}: expected a whole number of {unit} such as '{example}', got {raw!r}")
            return None
        gi = _gi(Decimal(raw) / per_gib)
        sources[keys.KEY_MEMORY_PER_GPU] = f"label {key}"
        notes.append(f"{key}={raw} {unit} → {keys.KEY_MEMORY_PER_GPU}={gi}Gi")
        return gi
    if vendor == "amd" and "amd.com/gpu.vram" in labels:
        raw = labels["amd.com/gpu.vram"]
        match = _AMD_VRAM.fullmatch(raw)
        if not match or Decimal(match["size"]) == 0:
            errors.append(f"amd.com/gpu.vram: expected a memory size such as '192G', got {raw!r}")
            return None
        size = Decimal(match["size"])
        unit = (match["unit"] or "G").upper()
        gi = _gi(size / 1024 if unit.startswith("M") else size)
        sources[keys.KEY_MEMORY_PER_GPU] = "label amd.com/gpu.vram"
        notes.append(f"amd.com/gpu.vram={raw} → {keys.KEY_MEMORY_PER_GPU}={gi}Gi")
        return gi
    if named_memory:
        gi = named_memory // gpu_catalog.GIB
        sources[keys.KEY_MEMORY_PER_GPU] = f"label {product_key}"
        notes.append(f"no memory label: {gi}Gi per GPU from the product name")
        return gi
    return None


def _architecture(labels, prefix, model, put, notes) -> None:
    family_key = f"{prefix}/gpu.family"
    family = labels.get(family_key, "")
    architecture = gpu_catalog.canonical_architecture(family) if family else ""
    if architecture in gpu_catalog.ARCHITECTURES:
        put(keys.KEY_ARCHITECTURE, architecture, f"label {family_key}")
        if model is not None and model.architecture != architecture:
            notes.append(f"{family_key}={family}, but the catalogue says {model.id} is {model.architecture}")
        return
    if family:
        # AMD's labeller publishes a two-letter ASIC family ("AI", "NV"), not the architecture.
        notes.append(f"{family_key}={family} is not an architecture name")
    if model is not None:
        put(keys.KEY_ARCHITECTURE, model.architecture, f"catalogue {model.id}")


def _compute_capability(labels, prefix, put, notes, errors) -> None:
    major_key, minor_key = f"{prefix}/gpu.compute.major", f"{prefix}/gpu.compute.minor"
    if major_key not in labels:
        return
    major, minor = labels[major_key], labels.get(minor_key)
    if not _DIGITS.fullmatch(major):
        errors.append(f"{major_key}: expected a whole number such as '8', got {major!r}")
        return
    if minor is None:
        notes.append(f"{minor_key} missing: compute capability {int(major)}.0")
        minor = "0"
    elif not _DIGITS.fullmatch(minor):
        errors.append(f"{minor_key}: expected a whole number such as '6', got {minor!r}")
        return
    put(keys.KEY_COMPUTE_CAPABILITY, f"{int(major)}.{int(minor)}", f"label {major_key}")


def _sharing(labels, put, notes, errors) -> None:
    if "nvidia.com/mig.capable" in labels:
        raw = labels["nvidia.com/mig.capable"]
        capable = _go_bool(raw)
        if capable is None:
            errors.append(f"nvidia.com/mig.capable: expected true or false, got {raw!r}")
        else:
            put(keys.KEY_MIG_CAPABLE, "true" if capable else "false", "label nvidia.com/mig.capable")
    if "amd.com/sriov.capable" in labels:
        raw = labels["amd.com/sriov.capable"]
        capable = _go_bool(raw)
        if capable is None:
            errors.append(f"amd.com/sriov.capable: expected true or false, got {raw!r}")
        elif capable:
            put(keys.KEY_SHARING_CAPABLE, "true", "label amd.com/sriov.capable")
            put(keys.KEY_SHARING_STRATEGY, "sriov", "label amd.com/sriov.capable")
    strategy = labels.get("nvidia.com/gpu.sharing-strategy")
    if strategy and strategy != "none":
        if strategy in ("time-slicing", "mps"):
            put(keys.KEY_SHARING_CAPABLE, "true", "label nvidia.com/gpu.sharing-strategy")
            put(keys.KEY_SHARING_STRATEGY, strategy, "label nvidia.com/gpu.sharing-strategy")
            notes.append(f"nvidia.com/gpu.sharing-strategy={strategy}: the GPUs are shared")
        else:
            errors.append(
                f"nvidia.com/gpu.sharing-strategy: expected none, time-slicing or mps, got {strategy!r}"
            )


def _from_catalogue(model: gpu_catalog.GpuModel, out: dict, put) -> None:
    source = f"catalogue {model.id}"
    filled = {
        keys.KEY_TIER: model.tier,
        keys.KEY_CORES: str(model.cores),
        keys.KEY_FP32_TFLOPS: str(model.fp32_tflops),
        keys.KEY_INTERCONNECT: model.interconnect,
        keys.KEY_INTERCONNECT_BANDWIDTH: format_quantity(model.interconnect_bandwidth_gbps),
        keys.KEY_TRAINING_SCORE: str(model.training_score),
        keys.KEY_INFERENCE_SCORE: str(model.inference_score),
        keys.KEY_HPC_SCORE: str(model.hpc_score),
        keys.KEY_GRAPHICS_SCORE: str(model.graphics_score),
    }
    for key, value in filled.items():
        if key not in out:
            put(key, value, source)


# ---- pasted text -------------------------------------------------------------------------------


def _check_labels(labels: dict) -> dict[str, str]:
    out = {}
    for key, value in labels.items():
        key = str(key)
        if isinstance(value, (dict, list)):
            raise ValueError(f"{key}: a label value is a single string, got a {type(value).__name__}")
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a Kubernetes label key (such as 'nvidia.com/gpu.count')")
        out[key] = _text(value)
    return out


def _labels_from_document(data) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ValueError("expected node labels: key=value lines, a YAML/JSON mapping, or "
                         "`kubectl get node <name> -o json` output")
    if "items" in data and isinstance(data["items"], list):
        if len(data["items"]) != 1:
            raise ValueError(f"the text holds {len(data['items'])} nodes; paste the labels of one node")
        return _labels_from_document(data["items"][0])
    if isinstance(data.get("metadata"), dict):
        labels = data["metadata"].get("labels")
        if not isinstance(labels, dict):
            raise ValueError("the node's metadata has no labels")
        return _check_labels(labels)
    if isinstance(data.get("labels"), dict):
        return _check_labels(data["labels"])
    return _check_labels(data)


_DESCRIBE_HEADER = re.compile(r"^(?P<header>[A-Z][A-Za-z ]*):(\s+(?P<rest>.*))?$")
# A new pair starts after whitespace or a comma, where a key and "=" follow. Values may hold
# spaces and commas (annotations do), as long as no "key=" follows them.
_PAIR_BOUNDARY = re.compile(rf"[\s,]+(?={_KEY_TEXT}=)")
_PAIR = re.compile(rf"(?P<key>{_KEY_TEXT})=(?P<value>.*)", re.DOTALL)


def _key_value_pairs(text: str) -> dict[str, str]:
    """key=value pairs from lines (several per line allowed), `--show-labels` rows (a=b,c=d) or a
    `kubectl describe node` Labels block. Empty when the text has none."""
    pairs: dict[str, str] = {}
    has_describe = any(line.startswith("Labels:") for line in text.splitlines())
    in_labels = not has_describe
    for line in text.splitlines():
        header = _DESCRIBE_HEADER.match(line) if has_describe else None
        if header:
            in_labels = header["header"] == "Labels"
            line = header["rest"] or ""
        line = line.strip()
        if not in_labels or not line or line.startswith("#"):
            continue
        for part in _PAIR_BOUNDARY.split(line):
            match = _PAIR.fullmatch(part.strip())
            if match:
                value = match["value"].strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                pairs[match["key"]] = value
    return pairs


def parse_label_text(text: str) -> dict[str, str]:
    """Node labels from pasted text: `key=value` lines (also `--show-labels` and `kubectl describe
    node` output), a YAML mapping, or `kubectl get node -o json|yaml` (its metadata.labels).
    Raises ValueError saying what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("nothing to read: paste key=value lines, a YAML mapping, or `kubectl get node -o json`")
    stripped = text.strip()
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"the text looks like JSON but does not parse: {error.msg} at line {error.lineno}, "
                f"column {error.colno}"
            ) from None
        return _labels_from_document(data)
    pairs = _key_value_pairs(stripped)
    if pairs:
        return pairs
    try:
        # BaseLoader keeps every scalar a string: "true" and "8" stay label text.
        data = yaml.load(stripped, Loader=yaml.BaseLoader)
    except yaml.YAMLError as error:
        raise ValueError(f"the text is neither key=value lines nor YAML/JSON: {error}") from None
    return _labels_from_document(data)

"""Node annotations ⇄ typed GPU traits (FLUIDOS.md §4).

The FLUIDOS node reads these annotations to build a node's Flavor, and it is unforgiving: a bad
quantity crashes its resource manager, a bad int, bool or float silently becomes 0. FLARE reads
the same annotations more carefully: every malformed value is an error naming the key and the
expected format, all errors are reported at once, and traits are returned only when there is
none.

Keys without a domain are under `gpu.fluidos.eu/`. For each trait FLARE tries the cluster's key
first, then the other spellings it accepts (the field name, underscores); a warning says when
only a spelling the cluster ignores is set. Memory and cores are per GPU here and in
`GpuTraits`; the Flavor carries node totals. Region and zone are read un-swapped:
`traits.region` is `location.fluidos.eu/region`.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation

from moneyed import CURRENCIES

from flare_portal.units import format_gi
from providers import gpu_catalog
from providers.flavor import format_quantity, strict_quantity
from providers.traits import GpuTraits

GPU_DOMAIN = "gpu.fluidos.eu"

KEY_VENDOR = "gpu.fluidos.eu/vendor"
KEY_MODEL = "gpu.fluidos.eu/model"
KEY_COUNT = "gpu.fluidos.eu/count"
KEY_MEMORY_PER_GPU = "gpu.fluidos.eu/memory-per-gpu"
KEY_CORES = "gpu.fluidos.eu/cores"
KEY_TIER = "gpu.fluidos.eu/tier"
KEY_ARCHITECTURE = "gpu.fluidos.eu/architecture"
KEY_INTERCONNECT = "gpu.fluidos.eu/interconnect"
KEY_TOPOLOGY = "gpu.fluidos.eu/topology"
KEY_DEDICATED = "gpu.fluidos.eu/dedicated"
KEY_INTERRUPTIBLE = "gpu.fluidos.eu/interruptible"
KEY_COMPUTE_CAPABILITY = "gpu.fluidos.eu/compute-capability"
KEY_CLOCK_SPEED = "gpu.fluidos.eu/clock-speed"
KEY_FP32_TFLOPS = "gpu.fluidos.eu/fp32-tflops"
KEY_MULTI_GPU_EFFICIENCY = "gpu.fluidos.eu/multi-gpu-efficiency"
KEY_SHARING_STRATEGY = "gpu.fluidos.eu/sharing-strategy"
KEY_INTERCONNECT_BANDWIDTH = "gpu.fluidos.eu/interconnect-bandwidth-gbps"
KEY_SHARING_CAPABLE = "gpu.fluidos.eu/sharing-capable"
KEY_MIG_CAPABLE = "nvidia.fluidos.eu/mig-capable"
KEY_HOURLY_RATE = "cost.fluidos.eu/hourly-rate"
KEY_CURRENCY = "cost.fluidos.eu/currency"
KEY_REGION = "location.fluidos.eu/region"
KEY_ZONE = "location.fluidos.eu/zone"
KEY_PROVIDER = "provider.fluidos.eu/name"
KEY_PREEMPTIBLE = "provider.fluidos.eu/preemptible"
KEY_TRAINING_SCORE = "workload.fluidos.eu/training-score"
KEY_INFERENCE_SCORE = "workload.fluidos.eu/inference-score"
KEY_HPC_SCORE = "workload.fluidos.eu/hpc-score"
KEY_GRAPHICS_SCORE = "workload.fluidos.eu/graphics-score"
KEY_NETWORK_BANDWIDTH = "network.fluidos.eu/bandwidth-gbps"
KEY_NETWORK_LATENCY = "network.fluidos.eu/latency-ms"
KEY_NETWORK_TIER = "network.fluidos.eu/tier"

# Only nodes with this label become Flavors.
RESOURCE_NODE_LABEL = "node-role.fluidos.eu/resources"

# Domains whose keys are GPU traits: an unknown key there is probably a typo.
TRAIT_DOMAINS = (
    "gpu.fluidos.eu", "nvidia.fluidos.eu", "cost.fluidos.eu", "location.fluidos.eu",
    "provider.fluidos.eu", "workload.fluidos.eu", "network.fluidos.eu",
)

REQUIRED_KEYS = (KEY_VENDOR, KEY_MODEL, KEY_COUNT, KEY_MEMORY_PER_GPU)
_REQUIRED_TEXT = (
    f"a GPU node needs {KEY_VENDOR}, {KEY_MODEL}, {KEY_COUNT} (1 or more) and {KEY_MEMORY_PER_GPU}"
)

_MIN_GPU_MEMORY = 1 << 20     # below 1Mi the unit was forgotten ("80" is 80 bytes)
_MIN_CLOCK_HZ = 1_000_000     # below 1 MHz the unit was forgotten ("1980" is 1980 Hz)
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DIGITS = re.compile(r"\d+")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class AnnotationError:
    key: str                 # the key as written (the cluster key when it is missing; "" for the whole input)
    value: str | None        # None when the key is missing
    message: str             # what is wrong and what was expected, without the key

    def __str__(self) -> str:
        """"gpu.fluidos.eu/memory-per-gpu: expected a Kubernetes quantity such as '80Gi', got '40GB'"."""
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass
class ParseResult:
    traits: GpuTraits | None
    errors: list[AnnotationError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # GpuTraits field → where FLARE took it from when the annotations did not say
    # ("catalogue nvidia-h100", "label nvidia.com/gpu.memory").
    inferred: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid(Exception):
    """A value that does not parse; the message says what was expected."""


@dataclass(frozen=True)
class _Field:
    attr: str                          # GpuTraits field
    key: str                           # the key the FLUIDOS node reads
    aliases: tuple[str, ...]           # other spellings FLARE accepts (full keys)
    parse: Callable[[str], object]
    cluster_reads: bool = True         # False: a FLARE-only key (currency)


def _spellings(key: str, *extra: str) -> tuple[str, ...]:
    """The underscore spelling of a hyphenated key, plus `extra` (bare names get gpu.fluidos.eu/)."""
    domain, name = key.split("/", 1)
    found = []
    if "-" in name:
        found.append(f"{domain}/{name.replace('-', '_')}")
    for alias in extra:
        full = _full_key(alias)
        if full != key and full not in found:
            found.append(full)
    return tuple(found)


def _full_key(key: str) -> str:
    return key if "/" in key else f"{GPU_DOMAIN}/{key}"


# ---- value parsers: raise _Invalid(message without the key) --------------------------------


def _choice(allowed: Iterable[str], normalise: Callable[[str], str] = str.lower):
    allowed = tuple(allowed)

    def parse(text: str) -> str:
        value = normalise(text)
        if value in allowed:
            return value
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _Invalid(f"expected one of {', '.join(allowed)}, got {text!r}{hint}")

    return parse


def _model(text: str) -> str:
    value = gpu_catalog.canonical_model(text)
    if not _MODEL.fullmatch(value or ""):
        raise _Invalid(f"expected a GPU model id such as 'nvidia-h100', got {text!r}")
    return value


def _count(text: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise _Invalid(f"expected a whole number of GPUs (1 or more) such as '4', got {text!r}")
    return int(text)


def _memory(text: str) -> int:
    try:
        amount = strict_quantity(text)
    except ValueError:
        raise _Invalid(f"expected a Kubernetes quantity such as '80Gi', got {text!r}") from None
    if amount != amount.to_integral_value():
        raise _Invalid(f"expected a whole number of bytes as a Kubernetes quantity such as '80Gi', got {text!r}")
    if amount < _MIN_GPU_MEMORY:
        raise _Invalid(
            f"expected memory per GPU with a unit such as '80Gi', got {text!r} ({int(amount)} bytes)"
        )
    return int(amount)


def _cores(text: str) -> int:
    try:
        amount = strict_quantity(text)
    except ValueError:
        raise _Invalid(f"expected a whole number of cores per GPU such as '16896', got {text!r}") from None
    if amount != amount.to_integral_value() or amount < 1:
        raise _Invalid(f"expected a whole number of cores per GPU such as '16896', got {text!r}")
    return int(amount)


def _clock(text: str) -> int:
    try:
        amount = strict_quantity(text)
    except ValueError:
        raise _Invalid(f"expected a clock speed in Hz as a Kubernetes quantity such as '1.98G', got {text!r}") from None
    if amount < _MIN_CLOCK_HZ:
        raise _Invalid(
            f"expected a clock speed in Hz as a Kubernetes quantity such as '1.98G' or '1980M', got {text!r} "
            f"({amount} Hz)"
        )
    return int(amount)


def _gbps(text: str) -> float:
    try:
        amount = strict_quantity(text)
    except ValueError:
        raise _Invalid(f"expected a bandwidth in Gbps as a plain number such as '900', got {text!r}") from None
    if amount <= 0:
        raise _Invalid(f"expected a bandwidth in Gbps greater than 0 such as '900', got {text!r}")
    return float(amount)


def _float(text: str, expected: str, low: float | None = None, high: float | None = None) -> float:
    if not _NUMBER.fullmatch(text):
        raise _Invalid(f"expected {expected}, got {text!r}")
    value = float(text)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise _Invalid(f"expected {expected}, got {text!r}")
    return value


def _tflops(text: str) -> float:
    value = _float(text, "a number of FP32 TFLOPS per GPU such as '83.0'", low=0)
    if value == 0:
        raise _Invalid(f"expected a number of FP32 TFLOPS per GPU greater than 0 such as '83.0', got {text!r}")
    return value


def _fraction(text: str) -> float:
    return _float(text, "a number between 0 and 1 such as '0.95'", low=0, high=1)


def _score(text: str) -> float:
    return _float(text, "a score between 0 and 1 such as '0.85'", low=0, high=1)


def _bool(text: str) -> bool:
    if text not in _GO_BOOLS:
        raise _Invalid(f"expected true or false, got {text!r}")
    return _GO_BOOLS[text]


def _rate(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise _Invalid(
            f"expected a price per GPU-hour such as '4.5' (the currency goes in {KEY_CURRENCY}), got {text!r}"
        )
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Invalid(f"expected a price per GPU-hour such as '4.5', got {text!r}") from None
    if value < 0:
        raise _Invalid(f"expected a price per GPU-hour of 0 or more such as '4.5', got {text!r}")
    return value


def _currency(text: str) -> str:
    if text.upper() not in CURRENCIES or len(text) != 3:
        raise _Invalid(f"expected an ISO 4217 currency code such as 'EUR', got {text!r}")
    return text.upper()


def _latency(text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise _Invalid(f"expected a whole number of milliseconds such as '5', got {text!r}")
    return int(text)


def _compute_capability(text: str) -> str:
    try:
        return gpu_catalog.canonical_compute_capability(text)
    except ValueError:
        raise _Invalid(f"expected a CUDA compute capability such as '9.0' or '8.6', got {text!r}") from None


def _architecture(text: str) -> str:
    value = gpu_catalog.canonical_architecture(text)
    if not _MODEL.fullmatch(value):
        raise _Invalid(f"expected a GPU architecture such as 'hopper' or 'cdna3', got {text!r}")
    return value


def _token(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise _Invalid(f"expected a name of letters, digits, '.', '_', ':' or '-' such as 'eu-west-1', got {text!r}")
    return text


def _name(text: str) -> str:
    return text


FIELDS: tuple[_Field, ...] = (
    _Field("vendor", KEY_VENDOR, (), _choice(gpu_catalog.VENDORS)),
    _Field("model", KEY_MODEL, (), _model),
    _Field("count", KEY_COUNT, (), _count),
    _Field("memory_per_gpu", KEY_MEMORY_PER_GPU, _spellings(KEY_MEMORY_PER_GPU, "memory"), _memory),
    _Field("cores_per_gpu", KEY_CORES, _spellings(KEY_CORES, "cores_per_gpu", "cores-per-gpu"), _cores),
    _Field("tier", KEY_TIER, (), _choice(gpu_catalog.TIERS)),
    _Field("architecture", KEY_ARCHITECTURE, (), _architecture),
    _Field("interconnect", KEY_INTERCONNECT, (),
           _choice(gpu_catalog.INTERCONNECTS, lambda text: re.sub(r"[\s_]+", "-", text.lower()))),
    _Field("topology", KEY_TOPOLOGY, (),
           _choice(gpu_catalog.TOPOLOGIES, lambda text: re.sub(r"[\s_]+", "-", text.lower()))),
    _Field("dedicated", KEY_DEDICATED, (), _bool),
    _Field("interruptible", KEY_INTERRUPTIBLE, (), _bool),
    _Field("compute_capability", KEY_COMPUTE_CAPABILITY, _spellings(KEY_COMPUTE_CAPABILITY), _compute_capability),
    _Field("clock_speed", KEY_CLOCK_SPEED, _spellings(KEY_CLOCK_SPEED), _clock),
    _Field("fp32_tflops", KEY_FP32_TFLOPS, _spellings(KEY_FP32_TFLOPS), _tflops),
    _Field("multi_gpu_efficiency", KEY_MULTI_GPU_EFFICIENCY, _spellings(KEY_MULTI_GPU_EFFICIENCY), _fraction),
    _Field("sharing_strategy", KEY_SHARING_STRATEGY, _spellings(KEY_SHARING_STRATEGY),
           _choice(gpu_catalog.SHARING_STRATEGIES, lambda text: re.sub(r"[\s_]+", "-", text.lower()))),
    _Field("interconnect_bandwidth_gbps", KEY_INTERCONNECT_BANDWIDTH,
           _spellings(KEY_INTERCONNECT_BANDWIDTH, "interconnect_bandwidth", "interconnect-bandwidth"), _gbps),
    _Field("shared", KEY_SHARING_CAPABLE, _spellings(KEY_SHARING_CAPABLE, "shared"), _bool),
    _Field("multi_instance", KEY_MIG_CAPABLE, _spellings(KEY_MIG_CAPABLE, "multi_instance", "multi-instance"), _bool),
    _Field("hourly_rate", KEY_HOURLY_RATE, _spellings(KEY_HOURLY_RATE), _rate),
    _Field("currency", KEY_CURRENCY, (), _currency, cluster_reads=False),
    _Field("region", KEY_REGION, (), _token),
    _Field("zone", KEY_ZONE, (), _token),
    _Field("provider", KEY_PROVIDER, (), _name),
    _Field("preemptible", KEY_PREEMPTIBLE, _spellings(KEY_PREEMPTIBLE, "provider.fluidos.eu/pre-emptible",
                                                       "provider.fluidos.eu/pre_emptible"), _bool),
    _Field("training_score", KEY_TRAINING_SCORE, _spellings(KEY_TRAINING_SCORE, "training_score"), _score),
    _Field("inference_score", KEY_INFERENCE_SCORE, _spellings(KEY_INFERENCE_SCORE, "inference_score"), _score),
    _Field("hpc_score", KEY_HPC_SCORE, _spellings(KEY_HPC_SCORE, "hpc_score"), _score),
    _Field("graphics_score", KEY_GRAPHICS_SCORE, _spellings(KEY_GRAPHICS_SCORE, "graphics_score"), _score),
    _Field("network_bandwidth_gbps", KEY_NETWORK_BANDWIDTH,
           _spellings(KEY_NETWORK_BANDWIDTH, "network.fluidos.eu/bandwidth"), _gbps),
    _Field("network_latency_ms", KEY_NETWORK_LATENCY, _spellings(KEY_NETWORK_LATENCY), _latency),
    _Field("network_tier", KEY_NETWORK_TIER, (), _token),
)

CLUSTER_KEYS: dict[str, str] = {spec.attr: spec.key for spec in FIELDS}
# Every accepted spelling → the cluster key it stands for.
ACCEPTED_KEYS: dict[str, str] = {
    spelling: spec.key for spec in FIELDS for spelling in (spec.key, *spec.aliases)
}

# Filled from the catalogue when the annotations leave them out (FLUIDOS.md §4).
CATALOGUE_FIELDS = (
    "tier", "architecture", "cores_per_gpu", "fp32_tflops", "interconnect", "interconnect_bandwidth_gbps",
    "training_score", "inference_score", "hpc_score", "graphics_score",
)
_CATALOGUE_SOURCE = {
    "tier": "tier", "architecture": "architecture", "cores_per_gpu": "cores", "fp32_tflops": "fp32_tflops",
    "interconnect": "interconnect", "interconnect_bandwidth_gbps": "interconnect_bandwidth_gbps",
    "training_score": "training_score", "inference_score": "inference_score", "hpc_score": "hpc_score",
    "graphics_score": "graphics_score",
}


def _as_text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return None


def _normalise_keys(annotations: dict, warnings: list[str]) -> dict[str, tuple[str, object]]:
    """Full key → (key as written, value). A key written with its domain wins over the bare name."""
    found: dict[str, tuple[str, object]] = {}
    for written, value in annotations.items():
        written = str(written)
        full = _full_key(written)
        if full in found:
            previous = found[full][0]
            kept, dropped = (previous, written) if "/" in previous else (written, previous)
            warnings.append(f"{dropped} and {kept} name the same key; using {kept}")
            if kept == previous:
                continue
        found[full] = (written, value)
    return found


def _warn_unknown(found: dict[str, tuple[str, object]], warnings: list[str]) -> None:
    known = list(ACCEPTED_KEYS)
    for full, (written, _value) in found.items():
        domain = full.split("/", 1)[0]
        if full in ACCEPTED_KEYS or domain.lower() not in TRAIT_DOMAINS:
            continue
        close = difflib.get_close_matches(full.lower(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{written}: not a GPU trait FLARE or the FLUIDOS node reads{hint}")


def _label_fallback(labels: dict, warnings: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Annotations the GPU-operator labels give (only those read from labels, not the catalogue)."""
    from providers.gpu_labels import labels_to_annotations

    conversion = labels_to_annotations(labels)
    warnings.extend(f"labels: {error}" for error in conversion.errors)
    values = {}
    sources = {}
    for key, value in conversion.annotations.items():
        source = conversion.sources.get(key, "")
        if source.startswith("label "):
            values[key] = value
            sources[key] = source
    return values, sources


def parse_annotations(
    annotations: dict,
    labels: dict | None = None,
    *,
    infer_from_catalogue: bool = True,
) -> ParseResult:
    """Parse a node's annotations into GpuTraits, reporting every problem at once.

    `labels`, when given (an empty mapping counts as unknown), are checked for the FLUIDOS
    resource label and used as a fallback for the traits the NVIDIA/AMD GPU operators publish
    (model, count, memory, architecture, compute capability, MIG, sharing) unless they describe
    another model; what they supply is listed in `inferred`. Missing tier,
    architecture, cores, FP32, interconnect and workload scores come from the catalogue, also
    listed in `inferred`.
    """
    errors: list[AnnotationError] = []
    warnings: list[str] = []
    inferred: dict[str, str] = {}
    if not isinstance(annotations, dict):
        errors.append(AnnotationError(
            "", None, f"annotations must be a mapping of key to value, got {type(annotations).__name__}"
        ))
        return ParseResult(None, errors, warnings, inferred)

    found = _normalise_keys(annotations, warnings)
    _warn_unknown(found, warnings)

    label_values: dict[str, str] = {}
    label_sources: dict[str, str] = {}
    if labels is not None and not isinstance(labels, dict):
        warnings.append(f"labels: expected a mapping of label to value, got {type(labels).__name__}; ignored")
    elif labels:
        # An empty mapping means the labels are unknown; a real node always has some.
        if str(labels.get(RESOURCE_NODE_LABEL, "")).lower() != "true":
            warnings.append(
                f"the node is not labelled {RESOURCE_NODE_LABEL}=true, so the FLUIDOS node makes no Flavor from it"
            )
        label_values, label_sources = _label_fallback(labels, warnings)
        annotated_model = found.get(KEY_MODEL, ("", ""))[1]
        labelled_model = label_values.get(KEY_MODEL)
        if (isinstance(annotated_model, str) and annotated_model and labelled_model
                and gpu_catalog.canonical_model(annotated_model) != labelled_model):
            warnings.append(
                f"the GPU operator labels describe {labelled_model}, but {KEY_MODEL} is {annotated_model!r}; "
                "the labels are not used"
            )
            label_values, label_sources = {}, {}

    values: dict[str, object] = {}
    present_keys: dict[str, str] = {}
    for spec in FIELDS:
        spellings = [key for key in (spec.key, *spec.aliases) if key in found]
        if not spellings:
            if spec.key in label_values:
                values[spec.attr] = _parse_value(spec, spec.key, label_values[spec.key], errors)
                inferred[spec.attr] = label_sources[spec.key]
            continue
        used = spellings[0]
        written, raw = found[used]
        for other in spellings[1:]:
            other_written, other_raw = found[other]
            if other_raw != raw:
                warnings.append(f"{written} and {other_written} are both set and differ; using {written}")
        if used != spec.key and spec.cluster_reads:
            warnings.append(
                f"{written}: FLARE reads it, but the FLUIDOS node reads only {spec.key}; "
                f"rename it so the Flavor carries the trait too"
            )
        present_keys[spec.attr] = written
        values[spec.attr] = _parse_value(spec, written, raw, errors)
        if spec.attr == "model" and values["model"] and values["model"] != str(raw).lower():
            warnings.append(
                f"{written}: {raw!r} is read as {values['model']!r}; annotate the catalogue id so the Flavor "
                "carries it too"
            )

    for key in REQUIRED_KEYS:
        attr = next(spec.attr for spec in FIELDS if spec.key == key)
        if attr not in values:
            errors.append(AnnotationError(key, None, f"missing; {_REQUIRED_TEXT}"))

    _check_consistency(values, present_keys, errors, warnings)

    if infer_from_catalogue and not errors:
        _fill_from_catalogue(values, inferred, warnings)

    if errors:
        return ParseResult(None, errors, warnings, inferred)
    known = {f.name for f in fields(GpuTraits)}
    traits = GpuTraits(**{attr: value for attr, value in values.items() if attr in known and value is not None})
    return ParseResult(traits, errors, warnings, inferred)


def _parse_value(spec: _Field, written: str, raw, errors: list[AnnotationError]):
    text = _as_text(raw)
    if text is None:
        errors.append(AnnotationError(written, None, f"expected a string value, got {type(raw).__name__}"))
        return None
    if text != text.strip():
        errors.append(AnnotationError(
            written, text,
            f"has leading or trailing spaces, which the FLUIDOS node does not ignore; write {text.strip()!r}",
        ))
        return None
    if text == "":
        errors.append(AnnotationError(written, text, "is empty; remove the annotation or give a value"))
        return None
    try:
        return spec.parse(text)
    except _Invalid as invalid:
        errors.append(AnnotationError(written, text, str(invalid)))
        return None


def _check_consistency(values: dict, present_keys: dict, errors: list[AnnotationError], warnings: list[str]) -> None:
    vendor, model_id = values.get("vendor"), values.get("model")
    model = gpu_catalog.lookup(model_id) if model_id else None
    if model and vendor and model.vendor != vendor:
        written = present_keys.get("model", KEY_MODEL)
        errors.append(AnnotationError(
            written, model_id,
            f"{model_id} is an {model.vendor} GPU, but {KEY_VENDOR} is {vendor!r}",
        ))
    elif model_id and not model:
        if vendor and not model_id.startswith(f"{vendor}-"):
            values["model"] = f"{vendor}-{model_id}"
            warnings.append(f"{KEY_MODEL}: model ids start with the vendor; reading {model_id!r} as "
                            f"{values['model']!r}")
        warnings.append(
            f"{KEY_MODEL}: {values['model']} is not in FLARE's GPU catalogue; tier, architecture, cores, FP32, "
            "interconnect and workload scores cannot be inferred and must be annotated"
        )
    if model and values.get("memory_per_gpu"):
        memory = values["memory_per_gpu"]
        sizes = [size for size, _ in model.memory_variants]
        if not any(abs(size - memory) <= size * 0.05 for size in sizes):
            listed = " or ".join(format_gi(size) for size in sizes)
            warnings.append(
                f"{present_keys.get('memory_per_gpu', KEY_MEMORY_PER_GPU)}: {format_gi(memory)} per GPU, but "
                f"{model.id} is sold with {listed}; memory is per GPU, not per node"
            )
    if model and values.get("multi_instance") and not model.mig_capable:
        warnings.append(f"{present_keys.get('multi_instance', KEY_MIG_CAPABLE)}: {model.id} does not support MIG")
    if values.get("sharing_strategy") not in (None, "", "none") and values.get("shared") is not True:
        warnings.append(
            f"{present_keys.get('sharing_strategy', KEY_SHARING_STRATEGY)}: a sharing strategy without "
            f"{KEY_SHARING_CAPABLE}=true; filters see the GPU as not shared"
        )
    if values.get("hourly_rate") is None and "currency" in values:
        warnings.append(f"{KEY_CURRENCY}: set without {KEY_HOURLY_RATE}; it has no effect")


def _fill_from_catalogue(values: dict, inferred: dict, warnings: list[str]) -> None:
    model = gpu_catalog.lookup(values.get("model", ""), values.get("memory_per_gpu"))
    if model is None:
        return
    source = f"catalogue {model.id}"
    for attr in CATALOGUE_FIELDS:
        if values.get(attr) not in (None, ""):
            continue
        if attr == "interconnect_bandwidth_gbps" and values.get("interconnect") not in (None, model.interconnect):
            continue   # the catalogue's bandwidth is for a different interconnect
        values[attr] = getattr(model, _CATALOGUE_SOURCE[attr])
        inferred[attr] = source
    if values.get("architecture") and values["architecture"] != model.architecture and "architecture" not in inferred:
        warnings.append(
            f"{KEY_ARCHITECTURE}: {values['architecture']!r}, but the catalogue says {model.id} is "
            f"{model.architecture!r}"
        )
    if (values.get("compute_capability") and model.compute_capability
            and values["compute_capability"] != model.compute_capability):
        warnings.append(
            f"{KEY_COMPUTE_CAPABILITY}: {values['compute_capability']!r}, but the catalogue says {model.id} is "
            f"{model.compute_capability!r}"
        )


def _float_text(value: float) -> str:
    return str(float(value))


def to_annotations(traits: GpuTraits, *, omit: Iterable[str] = ()) -> dict[str, str]:
    """GpuTraits → the annotations the FLUIDOS node reads (cluster keys only), which parse back to
    the same traits. Empty, zero and false traits are left out; `omit` leaves out more fields
    (e.g. `ParseResult.inferred`, to annotate only what the operator stated)."""
    skip = set(omit)
    out: dict[str, str] = {}

    def put(attr: str, text: str | None):
        if attr not in skip and text not in (None, ""):
            out[CLUSTER_KEYS[attr]] = text

    put("vendor", traits.vendor)
    put("model", traits.model)
    put("count", str(traits.count) if traits.count else None)
    put("memory_per_gpu", format_quantity(traits.memory_per_gpu, binary=True) if traits.memory_per_gpu else None)
    put("cores_per_gpu", str(traits.cores_per_gpu) if traits.cores_per_gpu else None)
    put("clock_speed", format_quantity(traits.clock_speed) if traits.clock_speed else None)
    for attr in ("compute_capability", "architecture", "tier", "interconnect", "topology", "sharing_strategy",
                 "region", "zone", "provider", "network_tier"):
        put(attr, getattr(traits, attr))
    put("interconnect_bandwidth_gbps",
        format_quantity(traits.interconnect_bandwidth_gbps) if traits.interconnect_bandwidth_gbps else None)
    put("network_bandwidth_gbps",
        format_quantity(traits.network_bandwidth_gbps) if traits.network_bandwidth_gbps else None)
    for attr in ("multi_gpu_efficiency", "fp32_tflops", "training_score", "inference_score", "hpc_score",
                 "graphics_score"):
        value = getattr(traits, attr)
        put(attr, _float_text(value) if value is not None else None)
    for attr in ("shared", "dedicated", "interruptible", "multi_instance", "preemptible"):
        put(attr, "true" if getattr(traits, attr) else None)
    put("network_latency_ms", str(traits.network_latency_ms) if traits.network_latency_ms is not None else None)
    if traits.hourly_rate is not None:
        put("hourly_rate", str(traits.hourly_rate))
        put("currency", traits.currency)
    return out


def kubectl_annotate_command(node_name: str, traits_or_annotations: GpuTraits | dict) -> str:
    """`kubectl annotate node <name> --overwrite k=v …`, every argument shell-quoted."""
    if not node_name or not isinstance(node_name, str):
        raise ValueError("a node name is required")
    if isinstance(traits_or_annotations, GpuTraits):
        annotations = to_annotations(traits_or_annotations)
    else:
        annotations = {str(key): _as_text(value) for key, value in traits_or_annotations.items()}
        bad = [key for key, value in annotations.items() if value is None]
        if bad:
            raise ValueError(f"annotation values must be strings, numbers or booleans: {', '.join(bad)}")
    if not annotations:
        raise ValueError("there is nothing to annotate")
    parts = ["kubectl", "annotate", "node", shlex.quote(node_name), "--overwrite"]
    parts += [shlex.quote(f"{key}={value}") for key, value in sorted(annotations.items())]
    return " ".join(parts)

"""GPU traits ⇄ the FLUIDOS Flavor a provider node publishes (FLUIDOS.md §1, §3.9, §4).

`flavor_manifest` builds the `nodecore.fluidos.eu/v1alpha1` Flavor the GPU-enabled FLUIDOS node
makes from a node, so the simulator emits the same object; `traits_from_flavor` reads one back
(from a Flavor or a PeeringCandidate) for the Kubernetes backend.

What the cluster does, and this module copies:
- `typeData` is the marshalled K8Slice: `characteristics`, empty `properties`, and
  `policies.partitionability` with the node's default steps ("0").
- In `gpu`, `memory` and `cores` are node totals (per GPU × count); they and `clock_speed`,
  `network_bandwidth`, `interconnect_bandwidth` are quantities and always present ("0" when
  unknown). Every other field except `model` and `vendor` is dropped when 0, "" or false.
- Types are strict: `count` and `network_latency_ms` are JSON integers, scores, `fp32_tflops` and
  `hourly_rate` JSON numbers, `multi_gpu_efficiency` a string.
- Region and zone are swapped: `gpu.zone` holds the node's `location.fluidos.eu/region` (the
  real region) and `gpu.region` its zone. `GpuTraits` keeps them un-swapped.
"""

from __future__ import annotations

import hashlib
import re
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from flare_portal.units import parse_quantity
from providers.traits import GpuTraits

FLAVOR_API_VERSION = "nodecore.fluidos.eu/v1alpha1"
FLAVOR_KIND = "Flavor"
K8SLICE = "K8Slice"
FLUIDOS_NAMESPACE = "fluidos"

# The Kubernetes quantity grammar (apimachinery resource.Quantity), as the CRDs spell it.
QUANTITY_PATTERN = re.compile(
    r"(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)

_DECIMAL_SUFFIXES = [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m"), (-6, "u"), (-9, "n")]
_BINARY_SUFFIXES = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


class FlavorError(ValueError):
    """A Flavor FLARE cannot read; `problems` lists every field at fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def is_quantity(text: str) -> bool:
    """True when the FLUIDOS node (Go's resource.MustParse) accepts this string."""
    return isinstance(text, str) and QUANTITY_PATTERN.fullmatch(text) is not None


def strict_quantity(value) -> Decimal:
    """A quantity the cluster can parse → Decimal; ValueError otherwise.

    `flare_portal.units.parse_quantity` alone is more lenient than Go (" 80Gi", "1K", "1_000",
    "Infinity" pass), and a quantity Go rejects crashes the node's resource manager.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value))
        if not number.is_finite():
            raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
        return parse_quantity(number)
    if not is_quantity(value):
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
    return parse_quantity(value)


def _decimal_form(number: Decimal) -> str:
    for exponent, suffix in _DECIMAL_SUFFIXES:
        mantissa = number.scaleb(-exponent)
        if mantissa == mantissa.to_integral_value():
            return f"{int(mantissa)}{suffix}"
    # Finer than nano: Go rounds up to the next nano.
    return f"{int(number.scaleb(9).to_integral_value(rounding=ROUND_CEILING))}n"


def _binary_form(number: int) -> str | None:
    if number < 1024:
        return None
    power = 0
    while power < len(_BINARY_SUFFIXES) - 1 and number % (1024 ** (power + 1)) == 0:
        power += 1
    if power == 0:
        return None
    return f"{number // 1024 ** power}{_BINARY_SUFFIXES[power]}"


def format_quantity(value, *, binary: bool = False) -> str:
    """A number in Kubernetes canonical quantity form: 1980000000 → "1980M", 12.5 → "12500m".

    With `binary`, whole multiples of 1024 use Ki…Ei when that is the shorter spelling
    (85899345920 → "80Gi", but 320000000000 stays "320G").
    """
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite() or number < 0:
        raise ValueError(f"a quantity must be a finite, non-negative number, got {value!r}")
    if number == 0:
        return "0"
    decimal = _decimal_form(number)
    if binary and number == number.to_integral_value():
        binary_text = _binary_form(int(number))
        if binary_text and len(binary_text) <= len(decimal):
            return binary_text
    return decimal


def flavor_name(domain: str, seed: str) -> str:
    """"<domain>-k8slice-<hex4>", lower-case like the node's names; `seed` (e.g. the node name)
    makes it stable. The FLUIDOS node draws the suffix at random; FLARE derives it so re-seeding
    gives the same name."""
    if not domain:
        raise ValueError("a Flavor name needs the provider's FLUIDOS domain")
    suffix = hashlib.sha256(str(seed).encode()).hexdigest()[:4]
    return f"{domain}-k8slice-{suffix}".lower()


def _quantity_text(value, label: str) -> str:
    if isinstance(value, bool):
        raise ValueError(f"{label}: expected a Kubernetes quantity such as '8' or '32Gi', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{label}: a quantity cannot be negative, got {value!r}")
        return str(value)
    try:
        strict_quantity(value)
    except ValueError:
        raise ValueError(f"{label}: expected a Kubernetes quantity such as '8' or '32Gi', got {value!r}") from None
    return value if isinstance(value, str) else format_quantity(value)


def _float_text(value: float) -> str:
    return str(float(value))


def gpu_characteristics(traits: GpuTraits) -> dict:
    """The `characteristics.gpu` object the node publishes for these traits."""
    count = int(traits.count)
    gpu = {
        "model": traits.model,
        "vendor": traits.vendor,
        "memory": format_quantity(traits.memory_per_gpu * count, binary=True),
        "cores": format_quantity(traits.cores_per_gpu * count),
        "clock_speed": format_quantity(traits.clock_speed or 0),
        "network_bandwidth": format_quantity(traits.network_bandwidth_gbps or 0),
        "interconnect_bandwidth": format_quantity(traits.interconnect_bandwidth_gbps or 0),
    }
    optional = {
        "tier": traits.tier,
        "count": count,
        "multi_instance": bool(traits.multi_instance),
        "shared": bool(traits.shared),
        "sharing_strategy": traits.sharing_strategy,
        "dedicated": bool(traits.dedicated),
        "interruptible": bool(traits.interruptible),
        "network_latency_ms": int(traits.network_latency_ms or 0),
        "network_tier": traits.network_tier,
        "training_score": float(traits.training_score or 0),
        "inference_score": float(traits.inference_score or 0),
        "hpc_score": float(traits.hpc_score or 0),
        "graphics_score": float(traits.graphics_score or 0),
        "architecture": traits.architecture,
        "interconnect": traits.interconnect,
        "compute_capability": traits.compute_capability,
        "fp32_tflops": float(traits.fp32_tflops or 0),
        "topology": traits.topology,
        "multi_gpu_efficiency": _float_text(traits.multi_gpu_efficiency) if traits.multi_gpu_efficiency else "",
        # The swap (FLUIDOS.md §3.9): the node copies location.fluidos.eu/zone into gpu.region
        # and location.fluidos.eu/region into gpu.zone.
        "region": traits.zone,
        "zone": traits.region,
        "hourly_rate": float(traits.hourly_rate or 0),
        "provider": traits.provider,
        "pre_emptible": bool(traits.preemptible),
    }
    gpu.update({key: value for key, value in optional.items() if value not in (0, 0.0, "", False)})
    return gpu


def flavor_manifest(
    traits: GpuTraits | None,
    *,
    name: str,
    provider_id: str,
    owner: dict,
    cpu,
    memory,
    pods,
    architecture: str = "amd64",
    available: bool = True,
    namespace: str = FLUIDOS_NAMESPACE,
    storage=None,
) -> dict:
    """The Flavor for one provider node. `traits=None` gives a Flavor without a `gpu` object.

    `owner` is the provider's NodeIdentity {domain, nodeID, ip ("ip:port")}; `cpu`, `memory`,
    `pods` (and `storage`) are the node's free capacity as quantities ("8", "32Gi", 110).
    """
    missing = [key for key in ("domain", "nodeID", "ip") if not (owner or {}).get(key)]
    if missing:
        raise ValueError(f"owner: a NodeIdentity needs domain, nodeID and ip; missing {', '.join(missing)}")
    identity = {"domain": owner["domain"], "nodeID": owner["nodeID"], "ip": owner["ip"]}
    if owner.get("additionalInformation"):
        identity["additionalInformation"] = dict(owner["additionalInformation"])
    characteristics = {
        "architecture": architecture,
        "cpu": _quantity_text(cpu, "cpu"),
        "memory": _quantity_text(memory, "memory"),
        "pods": _quantity_text(pods, "pods"),
    }
    if storage is not None:
        characteristics["storage"] = _quantity_text(storage, "storage")
    if traits is not None:
        characteristics["gpu"] = gpu_characteristics(traits)
    return {
        "apiVersion": FLAVOR_API_VERSION,
        "kind": FLAVOR_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "providerID": provider_id,
            "owner": identity,
            # The node's --amount/--currency/--period flags default to "": FLARE prices per GPU-hour
            # through cost.fluidos.eu/hourly-rate (gpu.hourly_rate) instead.
            "price": {"amount": "", "currency": "", "period": ""},
            "availability": bool(available),
            "flavorType": {
                "typeIdentifier": K8SLICE,
                "typeData": {
                    "characteristics": characteristics,
                    "properties": {},
                    "policies": {
                        "partitionability": {
                            "cpuMin": "0", "memoryMin": "0", "podsMin": "0",
                            "cpuStep": "0", "memoryStep": "0", "podsStep": "0",
                        }
                    },
                },
            },
        },
    }


# Field → JSON type the node's Go struct accepts (encoding/json is strict: "4" is not an int64).
_STRING_FIELDS = (
    "model", "vendor", "tier", "architecture", "compute_capability", "interconnect", "topology",
    "sharing_strategy", "multi_gpu_efficiency", "network_tier", "provider", "region", "zone",
)
_INT_FIELDS = ("count", "network_latency_ms")
_FLOAT_FIELDS = ("fp32_tflops", "hourly_rate", "training_score", "inference_score", "hpc_score", "graphics_score")
_BOOL_FIELDS = ("multi_instance", "shared", "dedicated", "interruptible", "pre_emptible")
_QUANTITY_FIELDS = ("memory", "cores", "clock_speed", "network_bandwidth", "interconnect_bandwidth")


def _flavor_of(manifest: dict) -> dict:
    if not isinstance(manifest, dict):
        raise FlavorError([f"expected a Flavor or PeeringCandidate object, got {type(manifest).__name__}"])
    if manifest.get("kind") == "PeeringCandidate":
        flavor = (manifest.get("spec") or {}).get("flavor")
        if not isinstance(flavor, dict):
            raise FlavorError(["spec.flavor: the PeeringCandidate embeds no Flavor"])
        return flavor
    return manifest


def _gpu_object(manifest: dict) -> dict | None:
    flavor = _flavor_of(manifest)
    flavor_type = ((flavor.get("spec") or {}).get("flavorType")) or {}
    if flavor_type.get("typeIdentifier") != K8SLICE:
        raise FlavorError([
            f"spec.flavorType.typeIdentifier: expected {K8SLICE}, got {flavor_type.get('typeIdentifier')!r}"
        ])
    type_data = flavor_type.get("typeData")
    if not isinstance(type_data, dict):
        raise FlavorError(["spec.flavorType.typeData: expected an object"])
    characteristics = type_data.get("characteristics")
    if not isinstance(characteristics, dict):
        raise FlavorError(["spec.flavorType.typeData.characteristics: expected an object"])
    gpu = characteristics.get("gpu")
    if gpu is None:
        return None
    if not isinstance(gpu, dict):
        raise FlavorError([f"{_GPU_PATH}: expected an object, got {type(gpu).__name__}"])
    return gpu


_GPU_PATH = "spec.flavorType.typeData.characteristics.gpu"


def _check_types(gpu: dict) -> list[str]:
    problems = []

    def wrong(field: str, expected: str):
        value = gpu[field]
        problems.append(
            f"{_GPU_PATH}.{field}: expected {expected}, got {value!r} ({type(value).__name__}); "
            "the FLUIDOS node cannot parse this Flavor"
        )

    for field in _STRING_FIELDS:
        if field in gpu and not isinstance(gpu[field], str):
            wrong(field, "a string")
    for field in _INT_FIELDS:
        if field in gpu and (isinstance(gpu[field], bool) or not isinstance(gpu[field], int)):
            wrong(field, "an integer")
    for field in _FLOAT_FIELDS:
        if field in gpu and (isinstance(gpu[field], bool) or not isinstance(gpu[field], (int, float))):
            wrong(field, "a number")
    for field in _BOOL_FIELDS:
        if field in gpu and not isinstance(gpu[field], bool):
            wrong(field, "true or false")
    for field in _QUANTITY_FIELDS:
        if field not in gpu:
            continue
        value = gpu[field]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            wrong(field, "a quantity")
            continue
        try:
            strict_quantity(value)
        except ValueError:
            wrong(field, "a Kubernetes quantity such as '80Gi'")
    return problems


def _per_gpu(total: Decimal, count: int) -> int:
    if count <= 0:
        return 0
    return int((total / count).to_integral_value(rounding=ROUND_HALF_UP))


def traits_from_flavor(manifest: dict) -> GpuTraits | None:
    """GpuTraits of a Flavor (or of the Flavor a PeeringCandidate embeds), un-swapped and per GPU.

    Returns None for a Flavor without a `gpu` object. Raises FlavorError, listing every field at
    fault, when the Flavor would not parse on the node (strict types, bad quantities). A Flavor
    with `count` 0 (a sold-out remainder) gives count 0 and per-GPU memory and cores 0.
    """
    gpu = _gpu_object(manifest)
    if gpu is None:
        return None
    problems = _check_types(gpu)
    efficiency = None
    if isinstance(gpu.get("multi_gpu_efficiency"), str) and gpu["multi_gpu_efficiency"]:
        try:
            efficiency = float(gpu["multi_gpu_efficiency"])
        except ValueError:
            problems.append(
                f"{_GPU_PATH}.multi_gpu_efficiency: expected a number between 0 and 1 such as '0.95', "
                f"got {gpu['multi_gpu_efficiency']!r}"
            )
    if problems:
        raise FlavorError(problems)

    count = gpu.get("count", 0)

    def quantity(field: str) -> Decimal:
        return strict_quantity(gpu[field]) if field in gpu else Decimal(0)

    def number(field: str) -> float | None:
        return float(gpu[field]) if field in gpu else None

    network_bandwidth = quantity("network_bandwidth")
    rate = gpu.get("hourly_rate")
    return GpuTraits(
        vendor=gpu.get("vendor", ""),
        model=gpu.get("model", ""),
        count=count,
        memory_per_gpu=_per_gpu(quantity("memory"), count),
        cores_per_gpu=_per_gpu(quantity("cores"), count),
        clock_speed=int(quantity("clock_speed").to_integral_value(rounding=ROUND_HALF_UP)),
        compute_capability=gpu.get("compute_capability", ""),
        architecture=gpu.get("architecture", ""),
        tier=gpu.get("tier", ""),
        interconnect=gpu.get("interconnect", ""),
        interconnect_bandwidth_gbps=float(quantity("interconnect_bandwidth")),
        topology=gpu.get("topology", ""),
        multi_gpu_efficiency=efficiency,
        fp32_tflops=number("fp32_tflops"),
        sharing_strategy=gpu.get("sharing_strategy", ""),
        shared=gpu.get("shared", False),
        dedicated=gpu.get("dedicated", False),
        interruptible=gpu.get("interruptible", False),
        multi_instance=gpu.get("multi_instance", False),
        training_score=number("training_score"),
        inference_score=number("inference_score"),
        hpc_score=number("hpc_score"),
        graphics_score=number("graphics_score"),
        hourly_rate=Decimal(str(rate)) if rate is not None else None,
        region=gpu.get("zone", ""),
        zone=gpu.get("region", ""),
        provider=gpu.get("provider", ""),
        preemptible=gpu.get("pre_emptible", False),
        network_bandwidth_gbps=float(network_bandwidth) if network_bandwidth else None,
        network_latency_ms=gpu.get("network_latency_ms"),
        network_tier=gpu.get("network_tier", ""),
    )

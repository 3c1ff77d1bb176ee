"""The intent document of API.md: DRF serializers, published aliases, defaults and errors.

`validate_intent(payload, now=None)` takes the request body `{"intent": {...}}` and returns the
normalised document `{"objective", "workload", "constraints", "sla"}`: canonical spellings, every
documented default filled, JSON-serialisable, and valid input to `validate_intent` again once
wrapped in `{"intent": ...}`. Anything else raises `IntentValidationError` listing every problem,
each with its JSON path (`intent.workload.resources.gpu.modle`) and an API error code.

Why serializers rather than a JSON Schema: the spellings of the published FLARE reference
(`workload.job`, `gpu.memory`, `max_network_latency: "50ms"`, `flexibile`) must be accepted and
rewritten, unknown fields need a "did you mean" hint, quantities/durations/money go through
`flare_portal.units`, and drf-spectacular documents the same classes in the OpenAPI schema.

The DRF fields here are strict on purpose: JSON `"8"` is not a boolean and `1` is not a string,
and no value is ever `str()`-ed before its type is known, so hostile or absurd input (deep nesting,
NaN, 10**400) is reported, never crashes.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import SkipField, empty
from rest_framework.settings import api_settings

from flare_portal import units

INVALID_FORMAT = "INVALID_FORMAT"
MISSING_REQUIRED_FIELD = "MISSING_REQUIRED_FIELD"

OBJECTIVES = [
    "Performance_Maximization",
    "Cost_Minimization",
    "Latency_Minimization",
    "Energy_Efficiency",
    "Balanced_Optimization",
]
WORKLOAD_TYPES = ["service", "batch"]
DEPLOYMENT_STRATEGIES = ["colocated", "distributed", "flexible"]
COMMUNICATION_PATTERNS = ["all-reduce", "pipeline", "independent"]
PROTOCOLS = ["TCP", "UDP"]
VOLUME_TYPES = ["persistent", "temporary"]
VOLUME_SOURCE_TYPES = ["s3", "gcs", "azure"]
COMPLETION_POLICIES = ["All", "Any"]
# Models listed by API.md; any other well-formed model id is accepted (the federation may
# advertise it), so this list only feeds "did you mean" hints.
KNOWN_GPU_MODELS = [
    "nvidia-h100", "nvidia-a100", "nvidia-rtx-4090", "nvidia-rtx-4080", "nvidia-rtx-3090",
    "nvidia-v100", "nvidia-t4", "amd-mi300x", "amd-rx-7900xtx", "any",
]
GPU_ARCHITECTURES = ["hopper", "ada-lovelace", "ampere", "turing", "volta", "cdna3", "rdna3", "any"]
GPU_TIERS = ["premium", "standard", "gaming", "inference", "budget", "any"]
GPU_INTERCONNECTS = ["nvlink", "nvswitch", "infiniband", "pcie", "infinity-fabric", "any"]
GPU_TOPOLOGIES = ["all-to-all", "nvswitch", "ring", "mesh", "any"]
KNOWN_COMPUTE_CAPABILITIES = ["9.0", "8.9", "8.6", "8.0", "7.5", "7.0", "any"]
GPU_BOOLEANS = ["shared", "interruptible", "multi_instance", "dedicated"]
LOCATIONS = ["EU", "US", "Asia", "Canada", "Australia", "Brazil", "India", "Japan", "Singapore", "any"]
DAYS_OF_WEEK = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MAINTENANCE_FREQUENCIES = ["weekly", "monthly"]
ENERGY_RATINGS = ["A", "B", "C", "D", "E", "F"]
NETWORK_ISOLATION = ["public", "private"]
FIREWALL_ACTIONS = ["allow", "deny"]
FALLBACK_STRATEGIES = ["queue", "lower_tier", "shared", "spot", "fail"]

DEFAULT_MAX_LATENCY_MS = 100
SCALING_DEFAULT_MAX_REPLICAS = 10
MAX_MONEY = Decimal(10**12)

_NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
_MAX_SHOWN = 60


class IntentValidationError(Exception):
    """Every problem of one intent document.

    `errors`: `[{"field": <JSON path>, "message": <sentence>, "code": INVALID_FORMAT |
    MISSING_REQUIRED_FIELD}]`; `error_code`: MISSING_REQUIRED_FIELD when every problem is a
    missing field, else INVALID_FORMAT; `message`: one human summary.
    """

    def __init__(self, errors: list[dict]):
        self.errors = list(errors)
        if self.errors and all(e["code"] == MISSING_REQUIRED_FIELD for e in self.errors):
            self.error_code = MISSING_REQUIRED_FIELD
        else:
            self.error_code = INVALID_FORMAT
        self.message = _summarise(self.errors, self.error_code)
        super().__init__(self.message)

    @property
    def details(self) -> list[dict]:
        """The API envelope's `details`: `[{"field", "message"}]`."""
        return [{"field": e["field"], "message": e["message"]} for e in self.errors]


def _summarise(errors: list[dict], error_code: str) -> str:
    if not errors:
        return "The intent document is invalid."
    if error_code == MISSING_REQUIRED_FIELD:
        names = ", ".join(e["field"] for e in errors)
        noun = "field is" if len(errors) == 1 else "fields are"
        return f"Required {noun} missing: {names}."
    first = errors[0]
    text = f"The intent document is invalid: {first['field']}: {first['message']}"
    if len(errors) > 1:
        more = len(errors) - 1
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return text


# --------------------------------------------------------------------------------------------
# Describing values without touching their contents (deeply nested input must not recurse).


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _show(value) -> str:
    """A short quotation of a scalar for messages; containers are named, never printed."""
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…"
        return repr(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 200 else "a very large number"
        return text
    if isinstance(value, float):
        return repr(value)
    return _type_name(value)


def _key_text(key) -> str:
    text = key if isinstance(key, str) else _show(key)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"


def _closest(word: str, candidates) -> str | None:
    matches = difflib.get_close_matches(word.lower()[:200], list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _invalid(message: str):
    raise ValidationError(message, code="invalid")


def _guarded(parser, value, *args):
    """Call a `flare_portal.units` parser; every way it can fail becomes ValueError."""
    try:
        return parser(value, *args)
    except ValueError:
        raise
    except (TypeError, ArithmeticError, OverflowError) as exc:
        raise ValueError(f"{_show(value)} is not a valid value ({exc.__class__.__name__})") from None


# --------------------------------------------------------------------------------------------
# Strict scalar fields.


@extend_schema_field(OpenApiTypes.STR)
class TextField(serializers.Field):
    """A string, trimmed; optionally lower-cased and checked against a pattern."""

    def __init__(self, *, max_length=256, pattern=None, hint="", lower=False, **kwargs):
        self.max_length = max_length
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.hint = hint
        self.lower = lower
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected a string, got {_type_name(data)}.")
        value = data.strip()
        if self.lower:
            value = value.lower()
        if not value:
            _invalid("Must not be empty.")
        if len(value) > self.max_length:
            _invalid(f"Must be at most {self.max_length} characters long (got {len(value)}).")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            _invalid(f"{_show(value)} is not valid: {self.hint}")
        return self.clean(value)

    def clean(self, value: str):
        return value

    def to_representation(self, value):
        return value


DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
# The distribution/reference grammar of container image references.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_IMAGE_DOMAIN = rf"{_IMAGE_HOST_PART}(?:\.{_IMAGE_HOST_PART})*(?::[0-9]+)?"
IMAGE_REFERENCE = (
    rf"(?:{_IMAGE_DOMAIN}/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
GPU_MODEL = r"[a-z0-9]+(-[a-z0-9]+)*"
PROVIDER_NAME = r"[A-Za-z0-9]([A-Za-z0-9 ._-]*[A-Za-z0-9])?"
ZONE_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"
CERTIFICATION = r"[A-Za-z0-9]([A-Za-z0-9 ._:/-]*[A-Za-z0-9])?"


class DnsLabelField(TextField):
    def __init__(self, **kwargs):
        kwargs.setdefault("hint", "use a DNS-1123 label: lower-case letters, digits and '-', "
                                  "starting and ending with a letter or digit, at most 63 characters.")
        super().__init__(max_length=63, pattern=DNS_LABEL, **kwargs)


class DnsSubdomainField(TextField):
    """A DNS-1123 subdomain. Host names ignore case (`lower=True`); Kubernetes object names do not."""

    def __init__(self, *, lower=False, **kwargs):
        kwargs.setdefault("hint", "use a DNS name such as 'api.example.com' (lower-case letters, "
                                  "digits, '-' and '.').")
        super().__init__(max_length=253, pattern=DNS_SUBDOMAIN, lower=lower, **kwargs)


class EnvNameField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=256, pattern=ENV_NAME,
                         hint="an environment variable name uses letters, digits, '_', '-' and '.', "
                              "and does not start with a digit.", **kwargs)


class EnvVarField(TextField):
    """`KEY=value`; the value may itself contain '='."""

    def __init__(self, **kwargs):
        super().__init__(max_length=32768, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected a string 'KEY=value', got {_type_name(data)}.")
        if len(data) > self.max_length:
            _invalid(f"Must be at most {self.max_length} characters long.")
        key, sep, value = data.partition("=")
        key = key.strip()
        if not sep or not key:
            _invalid(f"{_show(data)} is not of the form 'KEY=value'.")
        if not re.fullmatch(ENV_NAME, key):
            _invalid(f"{_show(key)} is not a valid environment variable name: use letters, digits, "
                     "'_', '-' and '.', not starting with a digit.")
        return f"{key}={value}"


class PathField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=4096, **kwargs)

    def clean(self, value):
        if not value.startswith("/") or value == "/" or "\x00" in value:
            _invalid(f"{_show(value)} is not an absolute mount path such as '/data'.")
        if ".." in value.split("/"):
            _invalid(f"{_show(value)} must not contain '..'.")
        return value


class GpuModelField(TextField):
    """Free-form lower-case model id: the federation may advertise models API.md does not list."""

    def __init__(self, **kwargs):
        super().__init__(max_length=63, pattern=GPU_MODEL, lower=True,
                         hint="a GPU model id is lower-case words joined by '-', e.g. 'nvidia-h100'.",
                         **kwargs)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except ValidationError:
            if isinstance(data, str):
                guess = _closest(re.sub(r"[\s_]+", "-", data.strip()), KNOWN_GPU_MODELS)
                if guess:
                    _invalid(f"{_show(data)} is not a valid GPU model id; did you mean '{guess}'?")
            raise


class EnumField(serializers.ChoiceField):
    """A closed vocabulary, case-insensitive on input, canonical spelling on output."""

    def __init__(self, choices, *, aliases=None, **kwargs):
        self.canonical = {c.lower(): c for c in choices}
        self.value_aliases = {k.lower(): v for k, v in (aliases or {}).items()}
        super().__init__(choices=list(choices), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected one of {', '.join(self.canonical.values())}; got {_type_name(data)}.")
        key = data.strip().lower()
        key = self.value_aliases.get(key, key).lower()
        if key in self.canonical:
            return self.canonical[key]
        message = f"{_show(data)} is not one of {', '.join(self.canonical.values())}."
        guess = _closest(key, self.canonical)
        if guess:
            message += f" Did you mean '{self.canonical[guess]}'?"
        _invalid(message)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            _invalid(f"Expected true or false, got {_type_name(data)}.")
        return data


class StrictIntegerField(serializers.IntegerField):
    """A whole JSON number (2 or 2.0); strings and booleans are wrong types."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            _invalid(f"Expected a whole number, got {_type_name(data)}.")
        if isinstance(data, float):
            if not math.isfinite(data) or not data.is_integer():
                _invalid(f"Expected a whole number, got {_show(data)}.")
            data = int(data)
        return data


class StrictFloatField(serializers.FloatField):
    """A finite JSON number; `allow_string` also takes "0.95" (the older published reference)."""

    def __init__(self, *, allow_string=False, positive=False, **kwargs):
        self.allow_string = allow_string
        self.positive = positive
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and self.allow_string:
            text = data.strip()
            if len(text) > 40 or not re.fullmatch(r"[0-9]+(\.[0-9]+)?|\.[0-9]+", text):
                _invalid(f"Expected a number, got {_show(data)}.")
            data = float(text)
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            _invalid(f"Expected a number, got {_type_name(data)}.")
        try:
            value = float(data)
        except OverflowError:
            _invalid("The number is too large.")
        if not math.isfinite(value):
            _invalid(f"Expected a finite number, got {_show(data)}.")
        if self.positive and value <= 0:
            _invalid(f"Must be greater than zero, got {_show(data)}.")
        return value


# Kubernetes' own quantity grammar (resource.ParseQuantity): what a Solver filter may carry.
_K8S_QUANTITY = re.compile(
    r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3}|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)


@extend_schema_field(OpenApiTypes.STR)
class QuantityField(serializers.Field):
    """A Kubernetes quantity ("32Gi", "4.5", "1.5G"; or a JSON number), kept as a canonical string."""

    def __init__(self, *, example="32Gi", maximum: Decimal | None = None, **kwargs):
        self.example = example
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            _invalid(f"Expected a Kubernetes quantity such as '{self.example}', got {_type_name(data)}.")
        if isinstance(data, str):
            text = data.strip()
        else:
            if isinstance(data, float) and not math.isfinite(data):
                _invalid(f"Expected a Kubernetes quantity such as '{self.example}', got {_show(data)}.")
            if isinstance(data, int) and data.bit_length() > 100:
                _invalid("The quantity is unrealistically large.")
            text = format(Decimal(str(data)), "f")
        text = text.lstrip("+")
        if len(text) > 40 or not _K8S_QUANTITY.fullmatch(text):
            _invalid(f"{_show(data)} is not a Kubernetes quantity such as '{self.example}'.")
        try:
            amount = _guarded(units.parse_quantity, text)
        except ValueError as exc:
            _invalid(str(exc))
        if not amount.is_finite() or amount <= 0:
            _invalid(f"Must be greater than zero, got {_show(data)}.")
        if self.maximum is not None and amount > self.maximum:
            _invalid(f"{_show(data)} is unrealistically large.")
        return text

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class DurationField(serializers.Field):
    """"2h", "30m", "1h30m": validated by `units.parse_duration`, kept as written."""

    def __init__(self, *, maximum_seconds=366 * 86400, **kwargs):
        self.maximum_seconds = maximum_seconds
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected a duration such as '30m', '2h' or '1h30m', got {_type_name(data)}.")
        text = data.strip()
        if len(text) > 40:
            _invalid(f"{_show(data)} is not a duration such as '30m', '2h' or '1h30m'.")
        try:
            seconds = _guarded(units.parse_duration, text)
        except ValueError as exc:
            _invalid(str(exc)[:1].upper() + str(exc)[1:] + ".")
        if seconds > self.maximum_seconds:
            _invalid(f"{_show(data)} is longer than the maximum of {self.maximum_seconds // 86400} days.")
        return text

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class MoneyField(serializers.Field):
    """"10 EUR" (or a bare number, in EUR) → canonical "<amount> <ISO 4217>"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            _invalid(f"Expected an amount such as '10 EUR', got {_type_name(data)}.")
        if isinstance(data, str) and len(data) > 40:
            _invalid(f"{_show(data)} is not an amount such as '10 EUR'.")
        if isinstance(data, int) and data.bit_length() > 100:
            _invalid("The amount is unrealistically large.")
        try:
            amount, currency = _guarded(units.parse_money, data)
        except ValueError as exc:
            _invalid(str(exc)[:1].upper() + str(exc)[1:] + ".")
        if amount <= 0:
            _invalid(f"Must be greater than zero, got {_show(data)}.")
        if amount > MAX_MONEY:
            _invalid(f"{_show(data)} is unrealistically large.")
        if amount != amount.quantize(Decimal("0.000001")):
            _invalid(f"Use at most 6 decimal places, got {_show(data)}.")
        return f"{format(amount, 'f')} {currency}"

    def to_representation(self, value):
        return value


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def parse_rfc3339(text: str) -> datetime:
    if not isinstance(text, str) or not _RFC3339.fullmatch(text.strip()):
        raise ValueError("not an RFC 3339 timestamp")
    text = text.strip()
    text = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:  # Python keeps microseconds
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6], 1)
    return datetime.fromisoformat(text.replace("t", "T"))


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeField(serializers.Field):
    """RFC 3339 with an explicit offset ("2025-12-15T00:00:00Z"); normalised, UTC written as Z."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected an RFC 3339 timestamp such as '2025-12-15T00:00:00Z', got {_type_name(data)}.")
        try:
            moment = parse_rfc3339(data)
        except ValueError:
            _invalid(f"{_show(data)} is not an RFC 3339 timestamp with a time zone, "
                     "such as '2025-12-15T00:00:00Z' or '2025-12-15T08:00:00+01:00'.")
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DATE)
class DateField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected a date such as '2025-12-25', got {_type_name(data)}.")
        text = data.strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            _invalid(f"{_show(data)} is not an ISO 8601 date such as '2025-12-25'.")

    def to_representation(self, value):
        return value


class ClockTimeField(TextField):
    """"HH:MM" in 24-hour time; "9:00" is written back as "09:00"."""

    def __init__(self, **kwargs):
        super().__init__(max_length=5, pattern=r"([01]?[0-9]|2[0-3]):[0-5][0-9]",
                         hint="use 24-hour 'HH:MM', e.g. '09:00' or '17:30'.", **kwargs)

    def clean(self, value):
        hours, minutes = value.split(":")
        return f"{int(hours):02d}:{minutes}"


class TimezoneField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=64, pattern=r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*",
                         hint="use an IANA time zone such as 'Europe/Berlin' or 'UTC'.", **kwargs)

    def clean(self, value):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            _invalid(f"{_show(value)} is not an IANA time zone such as 'Europe/Berlin' or 'UTC'.")
        return value


class DayOfWeekField(EnumField):
    def __init__(self, **kwargs):
        full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        super().__init__(DAYS_OF_WEEK, aliases={name: name[:3] for name in full}, **kwargs)


class CidrField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=64, **kwargs)

    def clean(self, value):
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            _invalid(f"{_show(value)} is not a CIDR block such as '10.0.0.0/8' ({exc}).")


@extend_schema_field(OpenApiTypes.STR)
class UnitStringField(serializers.Field):
    """A string checked by one `flare_portal.units` parser and kept as written."""

    def __init__(self, parser, example: str, **kwargs):
        self.parser = parser
        self.example = example
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            _invalid(f"Expected a string such as '{self.example}', got {_type_name(data)}.")
        text = data.strip()
        if len(text) > 40:
            _invalid(f"{_show(data)} is not a value such as '{self.example}'.")
        try:
            _guarded(self.parser, text)
        except ValueError as exc:
            _invalid(str(exc)[:1].upper() + str(exc)[1:] + ".")
        return text

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class PercentField(serializers.Field):
    """"99.9%" (or 99.9) → canonical "99.9%"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            _invalid(f"Expected a percentage such as '99.9%', got {_type_name(data)}.")
        if isinstance(data, str) and len(data) > 20:
            _invalid(f"{_show(data)} is not a percentage such as '99.9%'.")
        if isinstance(data, int) and data.bit_length() > 100:
            _invalid("A percentage must be between 0 and 100.")
        try:
            percent = _guarded(units.parse_percent, data)
        except ValueError as exc:
            _invalid(str(exc)[:1].upper() + str(exc)[1:] + ".")
        return f"{format(percent.quantize(Decimal('0.000001')).normalize(), 'f')}%"

    def to_representation(self, value):
        return value


_LATENCY = re.compile(r"(?P<amount>[0-9]+(\.[0-9]+)?)\s*(?P<unit>ms|s)?", re.IGNORECASE)


@extend_schema_field(OpenApiTypes.INT)
class LatencyMsField(serializers.Field):
    """Milliseconds: 50, or "50ms"/"0.05s" (the published `max_network_latency` spelling)."""

    def __init__(self, *, maximum=600000, **kwargs):
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            _invalid(f"Expected milliseconds such as 50 or '50ms', got {_type_name(data)}.")
        if isinstance(data, str):
            match = _LATENCY.fullmatch(data.strip()) if len(data) <= 40 else None
            if not match:
                _invalid(f"{_show(data)} is not a latency such as 50 or '50ms'.")
            ms = Decimal(match["amount"]) * (1000 if (match["unit"] or "ms").lower() == "s" else 1)
        else:
            if isinstance(data, float) and not math.isfinite(data):
                _invalid(f"Expected milliseconds such as 50, got {_show(data)}.")
            if isinstance(data, int) and data.bit_length() > 100:
                _invalid(f"Must be at most {self.maximum} ms.")
            ms = Decimal(str(data))
        if ms != ms.to_integral_value():
            _invalid(f"Use whole milliseconds, got {_show(data)}.")
        if not 1 <= ms <= self.maximum:
            _invalid(f"Must be between 1 and {self.maximum} ms, got {_show(data)}.")
        return int(ms)

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class ComputeCapabilityField(serializers.Field):
    """CUDA compute capability "major.minor" ("9" → "9.0"; a JSON number 8.6 is accepted) or "any"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            _invalid(f"Expected a compute capability such as '9.0', got {_type_name(data)}.")
        if isinstance(data, float):
            text = repr(data) if math.isfinite(data) else ""
        elif isinstance(data, int):
            text = str(data) if data.bit_length() < 16 else ""
        else:
            text = data.strip().lower()
        if text == "any":
            return text
        match = re.fullmatch(r"(\d{1,2})(?:\.(\d))?", text) if len(text) <= 10 else None
        if not match:
            _invalid(f"{_show(data)} is not a compute capability such as "
                     f"{', '.join(KNOWN_COMPUTE_CAPABILITIES)}.")
        return f"{int(match[1])}.{match[2] or '0'}"

    def to_representation(self, value):
        return value


# --------------------------------------------------------------------------------------------
# The object machinery: unknown fields, aliases, every error collected, cross-field rules.


def _add_error(errors: dict, path, message: str, code: str = "invalid") -> None:
    """Record a cross-field error at `path` (a key, or a tuple of keys/indices) below `errors`."""
    path = path if isinstance(path, tuple) else (path,)
    node = errors
    for i, key in enumerate(path):
        last = i == len(path) - 1
        existing = node.get(key)
        if last:
            if isinstance(existing, dict):
                existing.setdefault(_NON_FIELD, []).append(ErrorDetail(message, code=code))
            elif isinstance(existing, list):
                existing.append(ErrorDetail(message, code=code))
            else:
                node[key] = [ErrorDetail(message, code=code)]
        else:
            if existing is None:
                existing = node[key] = {}
            elif not isinstance(existing, dict):
                existing.append(ErrorDetail(message, code=code))
                return
            node = existing


class StrictSerializer(serializers.Serializer):
    """A JSON object with a closed set of fields.

    - `aliases` maps a published spelling to its canonical field; both at once is an error.
    - An unknown field is an error that names the closest known field.
    - `null` for an optional field means "absent" (its default applies).
    - Every field is validated even when another fails, then `cross_validate` checks rules
      between the fields that did validate, so one response lists every problem.
    - Fields in `always_present` that are nested objects are filled from their own defaults.
    """

    aliases: dict[str, str] = {}
    always_present: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise ValidationError({_NON_FIELD: [ErrorDetail(
                f"Expected an object, got {_type_name(data)}.", code="invalid")]})
        fields = self.fields
        errors: dict = {}
        spelled: dict[str, str] = {}
        values: dict = {}
        duplicates: list[tuple[str, str]] = []
        for key, value in data.items():
            canonical = (key if key in fields else self.aliases.get(key)) if isinstance(key, str) else None
            if canonical is not None:
                if canonical in values:  # both the published spelling and the canonical one
                    if value is None:
                        continue
                    if values[canonical] is not None:
                        alias = key if key != canonical else spelled[canonical]
                        duplicates.append((alias, f"'{alias}' is another spelling of '{canonical}'; give only one."))
                        continue
                values[canonical] = value
                if key != canonical:
                    spelled[canonical] = key
                else:
                    spelled.pop(canonical, None)
            else:
                text = _key_text(key)
                message = f"Unknown field '{text}'."
                guess = _closest(text, list(fields) + list(self.aliases)) if isinstance(key, str) else None
                if guess:
                    message += f" Did you mean '{self.aliases.get(guess, guess)}'?"
                else:
                    message += f" Known fields: {', '.join(fields)}."
                errors[text] = [ErrorDetail(message, code="unknown")]

        validated: dict = {}
        for name, field in fields.items():
            value = values.get(name, empty)
            if value is None and not field.required:
                value = empty
            try:
                result = field.run_validation(value)
            except ValidationError as exc:
                errors[name] = exc.detail
            except SkipField:
                pass
            else:
                validated[name] = result

        for name in self.always_present:
            if name not in validated and name not in errors:
                validated[name] = fields[name].run_validation({})

        self.cross_validate(validated, errors, values)

        if errors or duplicates:
            errors = {spelled.get(k, k): v for k, v in errors.items()}
            for alias, message in duplicates:  # reported at the published spelling
                _add_error(errors, alias, message)
            raise ValidationError(errors)
        return validated

    def cross_validate(self, attrs: dict, errors: dict, raw: dict) -> None:
        """Rules between fields; only fields present in `attrs` (validated) may be relied on."""

    def to_representation(self, instance):
        return instance


def _quantity(text: str) -> Decimal:
    return units.parse_quantity(text)


# --------------------------------------------------------------------------------------------
# resources.gpu and the rest of the workload.


class GpuSerializer(StrictSerializer):
    aliases = {"memory": "memory_min"}

    model = GpuModelField(required=False)
    count = StrictIntegerField(required=False, default=1, min_value=1, max_value=256)
    memory_min = QuantityField(required=False, example="80Gi", maximum=Decimal(2**50))
    memory_max = QuantityField(required=False, example="80Gi", maximum=Decimal(2**50))
    cores_min = StrictIntegerField(required=False, min_value=1, max_value=10**7)
    cores_max = StrictIntegerField(required=False, min_value=1, max_value=10**7)
    clock_speed_min = QuantityField(required=False, example="1.5G", maximum=Decimal(10**12))
    compute_capability = ComputeCapabilityField(required=False)
    architecture = EnumField(GPU_ARCHITECTURES, required=False)
    tier = EnumField(GPU_TIERS, required=False)
    interconnect = EnumField(GPU_INTERCONNECTS, required=False)
    topology = EnumField(GPU_TOPOLOGIES, required=False)
    fp32_tflops = StrictFloatField(required=False, allow_string=True, positive=True, max_value=10**6)
    multi_gpu_efficiency = StrictFloatField(required=False, allow_string=True, min_value=0, max_value=1)
    shared = StrictBooleanField(required=False, default=False)
    interruptible = StrictBooleanField(required=False, default=False)
    multi_instance = StrictBooleanField(required=False, default=False)
    dedicated = StrictBooleanField(required=False, default=False)

    def cross_validate(self, attrs, errors, raw):
        if "memory_min" in attrs and "memory_max" in attrs:
            if _quantity(attrs["memory_min"]) > _quantity(attrs["memory_max"]):
                _add_error(errors, "memory_max", f"memory_max ({attrs['memory_max']}) is smaller than "
                                                 f"memory_min ({attrs['memory_min']}).")
        if "cores_min" in attrs and "cores_max" in attrs and attrs["cores_min"] > attrs["cores_max"]:
            _add_error(errors, "cores_max", f"cores_max ({attrs['cores_max']}) is smaller than "
                                            f"cores_min ({attrs['cores_min']}).")


class ResourcesSerializer(StrictSerializer):
    always_present = ("gpu",)

    cpu = QuantityField(required=False, example="8", maximum=Decimal(100000))
    memory = QuantityField(required=False, example="32Gi", maximum=Decimal(2**60))
    gpu = GpuSerializer(required=False)


class PortSerializer(StrictSerializer):
    port = StrictIntegerField(min_value=1, max_value=65535)
    protocol = EnumField(PROTOCOLS, required=False, default="TCP")
    expose = StrictBooleanField(required=False, default=False)
    domain = DnsSubdomainField(required=False, lower=True)


_SOURCE_SCHEMES = {
    "s3": ("s3://",),
    "gcs": ("gs://", "gcs://"),
    "azure": ("https://", "az://", "abfs://", "abfss://", "wasb://", "wasbs://"),
}


class VolumeSourceSerializer(StrictSerializer):
    type = EnumField(VOLUME_SOURCE_TYPES)
    uri = TextField(max_length=2048, pattern=r"\S+", hint="a URI has no spaces.")
    credentials = TextField(max_length=253)

    def cross_validate(self, attrs, errors, raw):
        if "type" in attrs and "uri" in attrs:
            schemes = _SOURCE_SCHEMES[attrs["type"]]
            if not attrs["uri"].lower().startswith(schemes):
                _add_error(errors, "uri", f"A {attrs['type']} source URI starts with "
                                          f"{' or '.join(repr(s) for s in schemes)}, got {_show(attrs['uri'])}.")


class VolumeSerializer(StrictSerializer):
    name = DnsLabelField()
    size = QuantityField(example="100Gi", maximum=Decimal(2**70))
    type = EnumField(VOLUME_TYPES)
    path = PathField()
    source = VolumeSourceSerializer(required=False)


class StorageSerializer(StrictSerializer):
    volumes = VolumeSerializer(many=True, required=False, max_length=64)

    def cross_validate(self, attrs, errors, raw):
        for key in ("name", "path"):
            seen: dict[str, int] = {}
            for index, volume in enumerate(attrs.get("volumes", [])):
                if volume[key] in seen:
                    _add_error(errors, ("volumes", index, key),
                               f"Volume {key} {_show(volume[key])} is also used by volumes[{seen[volume[key]]}]; "
                               f"each volume needs its own {key}.")
                else:
                    seen[volume[key]] = index


class SecretSerializer(StrictSerializer):
    name = DnsSubdomainField()
    env = EnvNameField()


class ScalingSerializer(StrictSerializer):
    min_replicas = StrictIntegerField(required=False, default=1, min_value=1, max_value=1000)
    max_replicas = StrictIntegerField(required=False, min_value=1, max_value=1000)
    auto_scale = StrictBooleanField(required=False, default=False)
    target_cpu_percent = StrictIntegerField(required=False, default=70, min_value=1, max_value=100)
    target_gpu_percent = StrictIntegerField(required=False, default=80, min_value=1, max_value=100)

    def cross_validate(self, attrs, errors, raw):
        if "max_replicas" in attrs:
            if "min_replicas" in attrs and attrs["min_replicas"] > attrs["max_replicas"]:
                _add_error(errors, "max_replicas", f"max_replicas ({attrs['max_replicas']}) is smaller than "
                                                   f"min_replicas ({attrs['min_replicas']}).")
        elif "max_replicas" not in errors and "min_replicas" in attrs:
            # Not given: the documented default, raised to min_replicas when that is larger.
            attrs["max_replicas"] = max(SCALING_DEFAULT_MAX_REPLICAS, attrs["min_replicas"])


class BatchSerializer(StrictSerializer):
    parallel_tasks = StrictIntegerField(required=False, default=1, min_value=1, max_value=1000)
    max_retries = StrictIntegerField(required=False, default=3, min_value=0, max_value=100)
    timeout = DurationField(required=False)
    completion_policy = EnumField(COMPLETION_POLICIES, required=False, default="All")


class WorkloadSerializer(StrictSerializer):
    aliases = {"job": "batch"}

    type = EnumField(WORKLOAD_TYPES, aliases={"job": "batch"})
    name = DnsLabelField()
    image = TextField(max_length=512, pattern=IMAGE_REFERENCE,
                      hint="use a container image reference such as 'nvcr.io/nvidia/pytorch:24.01-py3'.")
    commands = serializers.ListField(child=TextField(max_length=16384), required=False, max_length=64)
    env = serializers.ListField(child=EnvVarField(), required=False, max_length=512)
    ports = PortSerializer(many=True, required=False, max_length=64)
    resources = ResourcesSerializer()
    storage = StorageSerializer(required=False)
    secrets = SecretSerializer(many=True, required=False, max_length=128)
    deployment_strategy = EnumField(DEPLOYMENT_STRATEGIES, aliases={"flexibile": "flexible"}, required=False)
    communication_pattern = EnumField(COMMUNICATION_PATTERNS, required=False)
    scaling = ScalingSerializer(required=False)
    batch = BatchSerializer(required=False)

    def cross_validate(self, attrs, errors, raw):
        kind = attrs.get("type")
        if kind == "service":
            if raw.get("batch") is not None:
                _add_error(errors, "batch", "Batch settings apply only to workloads of type 'batch'; "
                                            "this workload is a 'service' (use 'scaling').")
            if "scaling" not in attrs and "scaling" not in errors:
                attrs["scaling"] = self.fields["scaling"].run_validation({})
        elif kind == "batch":
            if raw.get("scaling") is not None:
                _add_error(errors, "scaling", "Scaling applies only to workloads of type 'service'; "
                                              "this workload is a 'batch' job (use 'batch').")
            if "batch" not in attrs and "batch" not in errors:
                attrs["batch"] = self.fields["batch"].run_validation({})

        seen_ports: dict[tuple, int] = {}
        for index, port in enumerate(attrs.get("ports", [])):
            key = (port["port"], port["protocol"])
            if key in seen_ports:
                _add_error(errors, ("ports", index, "port"),
                           f"Port {port['port']}/{port['protocol']} is already declared by ports[{seen_ports[key]}].")
            else:
                seen_ports[key] = index

        env_names: dict[str, int] = {}
        for index, item in enumerate(attrs.get("env", [])):
            key = item.partition("=")[0]
            if key in env_names:
                _add_error(errors, ("env", index), f"Environment variable {_show(key)} is already set by "
                                                   f"env[{env_names[key]}].")
            else:
                env_names[key] = index
        secret_envs: dict[str, int] = {}
        for index, secret in enumerate(attrs.get("secrets", [])):
            key = secret["env"]
            if key in env_names:
                _add_error(errors, ("secrets", index, "env"),
                           f"Environment variable {_show(key)} is also set by env[{env_names[key]}].")
            elif key in secret_envs:
                _add_error(errors, ("secrets", index, "env"),
                           f"Environment variable {_show(key)} is already filled by secrets[{secret_envs[key]}].")
            else:
                secret_envs[key] = index


# --------------------------------------------------------------------------------------------
# constraints and sla.


class MaintenanceWindowSerializer(StrictSerializer):
    start = DateTimeField()
    end = DateTimeField()
    frequency = EnumField(MAINTENANCE_FREQUENCIES, required=False, default="weekly")

    def cross_validate(self, attrs, errors, raw):
        if "start" in attrs and "end" in attrs and parse_rfc3339(attrs["end"]) <= parse_rfc3339(attrs["start"]):
            _add_error(errors, "end", f"The maintenance window ends ({attrs['end']}) before it starts "
                                      f"({attrs['start']}).")


class AvailabilitySerializer(StrictSerializer):
    window_start = ClockTimeField(required=False)
    window_end = ClockTimeField(required=False)
    timezone = TimezoneField(required=False)
    days_of_week = serializers.ListField(child=DayOfWeekField(), required=False, max_length=7)
    blackout_dates = serializers.ListField(child=DateField(), required=False, max_length=366)
    maintenance_windows = MaintenanceWindowSerializer(many=True, required=False, max_length=64)

    def cross_validate(self, attrs, errors, raw):
        for given, other in (("window_start", "window_end"), ("window_end", "window_start")):
            if raw.get(given) is not None and raw.get(other) is None:
                _add_error(errors, other, f"'{other}' is required when '{given}' is given.", code="required")
        if "window_start" in attrs and "window_end" in attrs and attrs["window_start"] == attrs["window_end"]:
            _add_error(errors, "window_end", f"The availability window starts and ends at "
                                             f"{attrs['window_start']}; it would be empty.")
        for key in ("days_of_week", "blackout_dates"):
            seen: set = set()
            for index, item in enumerate(attrs.get(key, [])):
                if item in seen:
                    _add_error(errors, (key, index), f"{_show(item)} is listed twice.")
                seen.add(item)


class EnergySerializer(StrictSerializer):
    max_carbon_footprint = UnitStringField(units.parse_carbon_rate, "50g CO2/h", required=False)
    renewable_energy_only = StrictBooleanField(required=False, default=False)
    energy_efficiency_rating = EnumField(ENERGY_RATINGS, required=False)
    power_usage_effectiveness = StrictFloatField(required=False, default=2.0, min_value=1.0, max_value=10.0)
    green_certified_only = StrictBooleanField(required=False, default=False)


class FirewallRuleSerializer(StrictSerializer):
    port = StrictIntegerField(min_value=1, max_value=65535)
    protocol = EnumField(PROTOCOLS)
    source = CidrField()
    action = EnumField(FIREWALL_ACTIONS)


class SecuritySerializer(StrictSerializer):
    network_isolation = EnumField(NETWORK_ISOLATION, required=False, default="public")
    firewall_rules = FirewallRuleSerializer(many=True, required=False, max_length=256)
    vpn_access = StrictBooleanField(required=False, default=False)
    bastion_host = StrictBooleanField(required=False, default=False)
    intrusion_detection = StrictBooleanField(required=False, default=False)
    vulnerability_scanning = StrictBooleanField(required=False, default=False)


class PerformanceSerializer(StrictSerializer):
    min_network_bandwidth = UnitStringField(units.parse_bandwidth, "10Gbps", required=False)
    max_jitter_ms = StrictIntegerField(required=False, min_value=0, max_value=600000)
    min_uptime_percent = StrictFloatField(required=False, min_value=0, max_value=100)
    max_cold_start_time = DurationField(required=False, maximum_seconds=86400)
    gpu_utilization_target = StrictFloatField(required=False, min_value=0, max_value=1)
    memory_utilization_target = StrictFloatField(required=False, min_value=0, max_value=1)


class RegionField(TextField):
    """A data-residency region: a location group of API.md (canonical spelling) or a region name."""

    def __init__(self, **kwargs):
        super().__init__(max_length=63, pattern=ZONE_NAME,
                         hint="use a location such as 'EU' or a region such as 'eu-west-1'.", **kwargs)

    def clean(self, value):
        return {loc.lower(): loc for loc in LOCATIONS}.get(value.lower(), value)


class ComplianceSerializer(StrictSerializer):
    data_residency = serializers.ListField(child=RegionField(), required=False, max_length=64)
    certifications = serializers.ListField(
        child=TextField(max_length=64, pattern=CERTIFICATION, hint="use a certification name such as 'ISO27001'."),
        required=False, max_length=64)
    encryption_at_rest = StrictBooleanField(required=False, default=False)
    encryption_in_transit = StrictBooleanField(required=False, default=False)
    audit_logging = StrictBooleanField(required=False, default=False)
    gdpr_compliant = StrictBooleanField(required=False, default=False)
    hipaa_compliant = StrictBooleanField(required=False, default=False)

    def cross_validate(self, attrs, errors, raw):
        if "certifications" in attrs:
            attrs["certifications"] = [c.upper() for c in attrs["certifications"]]


class NegotiationSerializer(StrictSerializer):
    max_negotiation_rounds = StrictIntegerField(required=False, default=3, min_value=1, max_value=100)
    price_flexibility = StrictFloatField(required=False, default=0.15, min_value=0, max_value=1)
    resource_flexibility = StrictFloatField(required=False, default=0.10, min_value=0, max_value=1)
    timeout_seconds = StrictIntegerField(required=False, default=300, min_value=1, max_value=86400)
    fallback_strategy = EnumField(FALLBACK_STRATEGIES, required=False, default="queue")
    auto_accept_threshold = StrictFloatField(required=False, default=0.05, min_value=0, max_value=1)


class ConstraintsSerializer(StrictSerializer):
    aliases = {"max_network_latency": "max_latency_ms"}
    always_present = ("negotiation",)

    max_hourly_cost = MoneyField(required=False)
    max_total_cost = MoneyField(required=False)
    location = EnumField(LOCATIONS, required=False)
    availability_zone = TextField(required=False, max_length=63, pattern=ZONE_NAME,
                                  hint="use a zone name such as 'eu-west-1a'.")
    max_latency_ms = LatencyMsField(required=False, default=DEFAULT_MAX_LATENCY_MS)
    deadline = DateTimeField(required=False)
    preemptible = StrictBooleanField(required=False, default=False)
    providers = serializers.ListField(
        child=TextField(max_length=63, pattern=PROVIDER_NAME, hint="use a provider name such as 'aws'."),
        required=False, max_length=64)
    availability = AvailabilitySerializer(required=False)
    energy = EnergySerializer(required=False)
    security = SecuritySerializer(required=False)
    performance = PerformanceSerializer(required=False)
    compliance = ComplianceSerializer(required=False)
    negotiation = NegotiationSerializer(required=False)

    def cross_validate(self, attrs, errors, raw):
        if "deadline" in attrs:
            now = self.context.get("now") or datetime.now(timezone.utc)
            if parse_rfc3339(attrs["deadline"]) <= now:
                _add_error(errors, "deadline", f"The deadline {attrs['deadline']} is not in the future "
                                               f"(now is {now.isoformat(timespec='seconds')}).")
        seen: dict[str, int] = {}
        for index, name in enumerate(attrs.get("providers", [])):
            if name.lower() in seen:
                _add_error(errors, ("providers", index), f"Provider {_show(name)} is already listed as "
                                                         f"providers[{seen[name.lower()]}] (names ignore case).")
            else:
                seen[name.lower()] = index


class SlaSerializer(StrictSerializer):
    availability = PercentField(required=False)
    max_interruption_time = DurationField(required=False)
    backup_strategy = TextField(required=False, max_length=63, pattern=r"[A-Za-z0-9]([A-Za-z0-9 ._-]*[A-Za-z0-9])?",
                                hint="use a short name such as 'checkpoint' or 'snapshot'.")


class IntentSerializer(StrictSerializer):
    """The document inside `{"intent": ...}`."""

    always_present = ("constraints", "sla")

    objective = EnumField(OBJECTIVES)
    workload = WorkloadSerializer()
    constraints = ConstraintsSerializer(required=False)
    sla = SlaSerializer(required=False)


class SubmitIntentSerializer(StrictSerializer):
    """The body of `POST /intents`."""

    intent = IntentSerializer()


# --------------------------------------------------------------------------------------------
# Public API.


def _flatten(detail, path: str, out: list) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == _NON_FIELD:
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            _flatten(value, child, out)
    elif isinstance(detail, list):
        if all(isinstance(item, (str, ErrorDetail)) for item in detail):
            for item in detail:
                _flatten(item, path, out)
        else:  # a list serializer: one entry (possibly empty) per item
            for index, item in enumerate(detail):
                _flatten(item, f"{path}[{index}]", out)
    else:
        code = getattr(detail, "code", "invalid")
        name = path.rsplit(".", 1)[-1] if path else "intent"
        message = str(detail)
        if code == "required":
            api_code = MISSING_REQUIRED_FIELD
            if message == "This field is required.":
                message = f"'{name}' is required."
        elif code == "null":
            api_code = MISSING_REQUIRED_FIELD
            message = f"'{name}' is required and cannot be null."
        else:
            api_code = INVALID_FORMAT
        out.append({"field": path or "$", "message": message, "code": api_code})


def validate_intent(payload, *, now: datetime | None = None) -> dict:
    """Validate a `POST /intents` body and return the normalised intent document.

    `now` (default: the current time) is what `constraints.deadline` must be after; a naive
    datetime is taken as UTC. Raises `IntentValidationError` and nothing else.
    """
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)

    if not isinstance(payload, Mapping):
        raise IntentValidationError([{
            "field": "$",
            "message": f'The body must be a JSON object {{"intent": {{...}}}}, got {_type_name(payload)}.',
            "code": INVALID_FORMAT,
        }])
    if "intent" not in payload and payload and all(isinstance(k, str) for k in payload) \
            and set(payload) <= set(IntentSerializer._declared_fields):
        raise IntentValidationError([{
            "field": "intent",
            "message": "'intent' is required: send the document wrapped as {\"intent\": {\"objective\": …, "
                       "\"workload\": …}}.",
            "code": MISSING_REQUIRED_FIELD,
        }])

    serializer = SubmitIntentSerializer(context={"now": now})
    try:
        validated = serializer.run_validation(payload)
    except ValidationError as exc:
        errors: list[dict] = []
        _flatten(exc.detail, "", errors)
        raise IntentValidationError(errors) from None
    except RecursionError:
        raise IntentValidationError([{"field": "$", "message": "The document is nested too deeply.",
                                      "code": INVALID_FORMAT}]) from None
    return validated["intent"]


def document_gpus(doc: dict) -> int:
    """GPUs an intent reserves: count × min_replicas (service) or × parallel_tasks (batch)."""
    doc = doc.get("intent", doc)
    workload = doc["workload"]
    count = workload.get("resources", {}).get("gpu", {}).get("count", 1)
    if workload["type"] == "service":
        return count * workload.get("scaling", {}).get("min_replicas", 1)
    return count * workload.get("batch", {}).get("parallel_tasks", 1)


def gpu_field_names() -> list[str]:
    """The GPU requirement fields of the document, in declaration order."""
    return list(GpuSerializer._declared_fields)

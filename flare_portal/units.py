"""Quantities, durations and money strings, parsed once and the same way everywhere.

Each parser raises `ValueError` with a message a user can act on; callers turn that into
the API's `INVALID_FORMAT` detail.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from kubernetes.utils import parse_quantity as _k8s_parse_quantity
from moneyed import CURRENCIES
from pytimeparse2 import parse as _parse_duration

DEFAULT_CURRENCY = "EUR"


# The API server's own quantity grammar: what it would refuse, we refuse too.
_QUANTITY = re.compile(
    r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def parse_quantity(value) -> Decimal:
    """Kubernetes quantity ("80Gi", "1.5G", "4.5", 8) → Decimal. Unit-aware: Gi = 2**30, G = 10**9."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
    if isinstance(value, str) and not _QUANTITY.match(value):
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}")
    try:
        quantity = _k8s_parse_quantity(value)
    except (ValueError, TypeError, InvalidOperation):
        raise ValueError(f"expected a Kubernetes quantity such as '80Gi' or '4', got {value!r}") from None
    if quantity < 0:
        raise ValueError(f"a quantity cannot be negative, got {value!r}")
    return quantity


def parse_bytes(value) -> int:
    return int(parse_quantity(value))


_DURATION_SHAPE = re.compile(r"^\s*(\d+(\.\d+)?\s*[a-zA-Z]+\s*)+$")


def parse_duration(value) -> int:
    """"2h", "30m", "1h30m", "45s", "2d" → seconds (int > 0)."""
    if not isinstance(value, str) or not _DURATION_SHAPE.match(value):
        raise ValueError(f"expected a duration such as '30m', '2h' or '1h30m', got {value!r}")
    seconds = _parse_duration(value.replace(" ", ""))
    if seconds is None or seconds <= 0:
        raise ValueError(f"expected a positive duration such as '30m', '2h' or '1h30m', got {value!r}")
    return int(seconds)


def format_duration(seconds: float) -> str:
    """Seconds → "2h 15m" (API `runtime`)."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


_MONEY = re.compile(r"^\s*(?P<amount>\d+(\.\d+)?)\s*(?P<currency>[A-Za-z]{3})?\s*(/\s*(hour|h|hr))?\s*$")


def parse_money(value, default_currency: str = DEFAULT_CURRENCY) -> tuple[Decimal, str]:
    """"10 EUR", "8.50 USD", "12", 12.5 → (Decimal amount, ISO 4217 code)."""
    if isinstance(value, bool):
        raise ValueError(f"expected an amount such as '10 EUR', got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        amount = Decimal(str(value))
        currency = default_currency
    elif isinstance(value, str):
        match = _MONEY.match(value)
        if not match:
            raise ValueError(f"expected an amount such as '10 EUR' (number, then ISO 4217 code), got {value!r}")
        amount = Decimal(match["amount"])
        currency = (match["currency"] or default_currency).upper()
    else:
        raise ValueError(f"expected an amount such as '10 EUR', got {value!r}")
    if amount < 0 or not amount.is_finite():
        raise ValueError(f"an amount cannot be negative, got {value!r}")
    if currency not in CURRENCIES:
        raise ValueError(f"'{currency}' is not an ISO 4217 currency code")
    return amount, currency


def format_money(amount, currency: str = DEFAULT_CURRENCY, per_hour: bool = False) -> str:
    text = f"{Decimal(amount).quantize(Decimal('0.01'))} {currency}"
    return f"{text}/hour" if per_hour else text


def format_gi(num_bytes: int) -> str:
    gib = Decimal(num_bytes) / (1 << 30)
    if gib == gib.to_integral_value():
        return f"{int(gib)}Gi"
    return f"{gib.quantize(Decimal('0.1')).normalize()}Gi"


_BANDWIDTH = re.compile(r"^\s*(?P<amount>\d+(\.\d+)?)\s*(?P<prefix>[kKmMgGtT]?)(bps|bit/s|b/s)\s*$")
_BANDWIDTH_TO_GBPS = {
    "": Decimal("1e-9"), "k": Decimal("1e-6"), "m": Decimal("1e-3"), "g": Decimal(1), "t": Decimal(1000),
}


def parse_bandwidth(value) -> Decimal:
    """"10Gbps", "400Mbps", "1.6 Tbps", or a bare number of Gbps → Gbps (Decimal > 0). Bits, not bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a bandwidth such as '10Gbps', got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        gbps = Decimal(str(value))
    elif isinstance(value, str) and (match := _BANDWIDTH.match(value)):
        gbps = Decimal(match["amount"]) * _BANDWIDTH_TO_GBPS[match["prefix"].lower()]
    else:
        raise ValueError(f"expected a bandwidth such as '10Gbps' or '400Mbps', got {value!r}")
    if not gbps.is_finite() or gbps <= 0:
        raise ValueError(f"a bandwidth must be a positive amount, got {value!r}")
    return gbps


_CARBON_RATE = re.compile(
    r"^\s*(?P<amount>\d+(\.\d+)?)\s*(?P<unit>mg|g|kg|t)\s*(co2e?|co₂e?)?\s*(/|per\s+)\s*(h|hr|hour)\s*$",
    re.IGNORECASE,
)
_CARBON_TO_GRAMS = {"mg": Decimal("0.001"), "g": Decimal(1), "kg": Decimal(1000), "t": Decimal(1000000)}


def parse_carbon_rate(value) -> Decimal:
    """"50g CO2/h", "1.2 kg CO2/h", "500 g/hour" → grams of CO2 per hour (Decimal > 0)."""
    match = _CARBON_RATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a carbon rate such as '50g CO2/h', got {value!r}")
    grams = Decimal(match["amount"]) * _CARBON_TO_GRAMS[match["unit"].lower()]
    if grams <= 0:
        raise ValueError(f"a carbon rate must be a positive amount, got {value!r}")
    return grams


_PERCENT = re.compile(r"^\s*(?P<amount>\d+(\.\d+)?)\s*%\s*$")


def parse_percent(value) -> Decimal:
    """"99.9%", "95 %" or a bare number 0–100 → Decimal percentage."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as '99.9%', got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        percent = Decimal(str(value))
    elif isinstance(value, str) and (match := _PERCENT.match(value)):
        percent = Decimal(match["amount"])
    else:
        raise ValueError(f"expected a percentage such as '99.9%', got {value!r}")
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise ValueError(f"a percentage must be between 0 and 100, got {value!r}")
    return percent

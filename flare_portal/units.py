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


def parse_quantity(value) -> Decimal:
    """Kubernetes quantity ("80Gi", "1.5G", "4.5", 8) → Decimal. Unit-aware: Gi = 2**30, G = 10**9."""
    if isinstance(value, bool) or value is None:
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

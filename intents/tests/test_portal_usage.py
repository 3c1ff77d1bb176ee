"""The dashboard's usage endpoint: time series from the ledger, gauges against the tenant's quotas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest

from intents.views import usage_series

from .test_portal import drive, login, small_job, submit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=dt_timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def value_at(points, minutes):
    stamp = at(minutes).isoformat().replace("+00:00", "Z")
    return [p for p in points if p["t"] <= stamp][-1]


def test_usage_series_is_exact():
    rows = [
        # held at 10', contract at 12', released at 40': 2 GPUs × 3.00/h
        (at(10), at(12), at(40), 2, Decimal("3.00")),
        # running since before the window: 1 GPU × 1.50/h
        (at(-30), at(-29), None, 1, Decimal("1.50")),
        # released before the window: invisible
        (at(-50), at(-49), at(-5), 4, Decimal("9.00")),
        # held but never activated (reservation failed): GPUs count, no spend
        (at(50), None, at(55), 1, Decimal("5.00")),
    ]
    points = usage_series(rows, at(0), at(60), samples=12)
    assert points[0]["t"] == "2026-03-01T12:00:00Z" and points[-1]["t"] == "2026-03-01T13:00:00Z"
    assert value_at(points, 5) == {"t": "2026-03-01T12:05:00Z", "gpus": 1, "hourly": 1.5, "spent": 0.125}
    assert value_at(points, 11)["gpus"] == 3 and value_at(points, 11)["hourly"] == 1.5
    assert value_at(points, 20)["gpus"] == 3 and value_at(points, 20)["hourly"] == 7.5
    assert value_at(points, 52)["gpus"] == 2 and value_at(points, 52)["hourly"] == 1.5
    assert value_at(points, 57)["gpus"] == 1
    # 60' × 1.50/h + 28' × 6.00/h
    assert points[-1]["spent"] == pytest.approx(1.5 + 2.8)
    assert all(a["t"] <= b["t"] for a, b in zip(points, points[1:]))
    assert all(a["spent"] <= b["spent"] for a, b in zip(points, points[1:]))


@pytest.mark.django_db
def test_usage_endpoint_reports_real_usage(user_a, tenant_a, tenant_b, user_b, demo_federation):
    intent = submit(tenant_a, user_a, small_job("usage-job", count=2))
    intent = drive(tenant_a, intent.intent_id, "Running")
    other = submit(tenant_b, user_b, small_job("other-tenant-job", count=4))
    drive(tenant_b, other.intent_id, "Running")
    client = login(user_a)
    data = client.get("/dashboard/usage.json?window=15m").json()
    assert data["window"] == "15m" and data["currency"] == "EUR"
    assert data["points"][-1]["gpus"] == 2  # tenant B's four GPUs are not ours
    assert data["points"][-1]["hourly"] == pytest.approx(float(intent.agreed_cost_per_hour))
    gauges = {g["key"]: g for g in data["gauges"]}
    assert gauges["gpus"]["used"] == 2 and gauges["gpus"]["limit"] == tenant_a.max_concurrent_gpus
    assert gauges["intents"]["used"] == 1
    assert gauges["hourly"]["used"] == pytest.approx(float(intent.agreed_cost_per_hour))
    assert [m["intent_id"] for m in data["markers"]] == [intent.intent_id]
    assert data["markers"][0]["phase"] == "Running"
    assert set(data["live_costs"]) == {intent.intent_id}
    assert client.get("/dashboard/usage.json?window=2y").status_code == 400

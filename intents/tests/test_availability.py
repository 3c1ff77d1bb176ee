"""constraints.availability as time arithmetic."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from intents.availability import start_allowed_at

UTC = timezone.utc
# 2026-12-02 is a Wednesday.
WED_10 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def at(*args):
    return datetime(*args, tzinfo=UTC)


def test_no_constraint_starts_now():
    assert start_allowed_at(None, WED_10) == WED_10
    assert start_allowed_at({}, WED_10) == WED_10


def test_inside_and_before_a_daily_window():
    window = {"window_start": "09:00", "window_end": "17:00"}
    assert start_allowed_at(window, WED_10) == WED_10
    assert start_allowed_at(window, at(2026, 12, 2, 18, 0)) == at(2026, 12, 3, 9, 0)
    assert start_allowed_at(window, at(2026, 12, 2, 7, 30)) == at(2026, 12, 2, 9, 0)


def test_night_window_past_midnight():
    night = {"window_start": "22:00", "window_end": "06:00"}
    assert start_allowed_at(night, at(2026, 12, 2, 3, 0)) == at(2026, 12, 2, 3, 0)   # opened the night before
    assert start_allowed_at(night, WED_10) == at(2026, 12, 2, 22, 0)


def test_days_of_week_and_time_zone():
    weekend_mornings = {"window_start": "08:00", "window_end": "12:00", "days_of_week": ["Sat", "Sun"],
                        "timezone": "Europe/Rome"}
    # Saturday 2026-12-05 08:00 in Rome is 07:00 UTC.
    assert start_allowed_at(weekend_mornings, WED_10) == at(2026, 12, 5, 7, 0)


def test_blackout_dates():
    window = {"window_start": "09:00", "window_end": "17:00", "blackout_dates": ["2026-12-02", "2026-12-03"]}
    assert start_allowed_at(window, WED_10) == at(2026, 12, 4, 9, 0)


@pytest.mark.parametrize("frequency,expected", [("weekly", at(2026, 12, 2, 12, 0)), ("monthly", WED_10)])
def test_recurring_maintenance_windows(frequency, expected):
    # First occurrence Wednesday 2026-11-25 09:00–12:00: a week later it recurs weekly, not monthly.
    maintenance = {"maintenance_windows": [{"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T12:00:00Z",
                                            "frequency": frequency}]}
    assert start_allowed_at(maintenance, WED_10) == expected


def test_monthly_maintenance_recurs_on_the_same_day_of_month():
    maintenance = {"maintenance_windows": [{"start": "2026-10-02T08:00:00Z", "end": "2026-10-02T11:00:00Z",
                                            "frequency": "monthly"}]}
    assert start_allowed_at(maintenance, WED_10) == at(2026, 12, 2, 11, 0)


def test_a_window_that_never_opens():
    # Mondays only, and a weekly maintenance window covers every Monday entirely.
    never = {"window_start": "09:00", "window_end": "17:00", "days_of_week": ["Mon"],
             "maintenance_windows": [{"start": "2026-11-30T00:00:00Z", "end": "2026-12-01T00:00:00Z",
                                      "frequency": "weekly"}]}
    assert start_allowed_at(never, WED_10) is None

"""When an intent may start: `constraints.availability` as time arithmetic (pure, no ORM).

- `window_start`/`window_end` ("HH:MM", in `timezone`, default UTC): the daily window. A window
  whose end is before its start runs past midnight (22:00–06:00). No window: the whole day.
- `days_of_week`: the days on which a window opens (a night window belongs to the day it opens).
- `blackout_dates`: local dates on which nothing starts.
- `maintenance_windows`: `{start, end, frequency weekly|monthly}`, recurring from their first
  occurrence; nothing starts inside one.

The window gates the start only: a workload already running is not stopped when it closes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400
START_NOTE = ("constraints.availability gates when the workload starts; a workload already running is not "
              "stopped when its window closes")


def _clock(text: str) -> time:
    hours, minutes = str(text).split(":")
    return time(int(hours), int(minutes))


def _parse(value) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _day_window(day: date, start: time | None, end: time | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    if start is None or end is None:
        lo = datetime.combine(day, time(0, 0), tzinfo=tz)
        return lo, datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    lo = datetime.combine(day, start, tzinfo=tz)
    hi_day = day if end > start else day + timedelta(days=1)
    return lo, datetime.combine(hi_day, end, tzinfo=tz)


def _covering_maintenance(moment: datetime, windows: list[tuple[datetime, datetime, str]]) -> datetime | None:
    """The end of a maintenance occurrence that covers `moment`, if any."""
    for start, end, frequency in windows:
        if moment < start:
            continue
        if frequency == "monthly":
            months = (moment.year - start.year) * 12 + (moment.month - start.month)
            candidates = [start + relativedelta(months=k) for k in (months - 1, months) if k >= 0]
            occurrences = [(s, s + (end - start)) for s in candidates]
        else:
            weeks = int((moment - start) // timedelta(days=7))
            offset = timedelta(days=7 * weeks)
            occurrences = [(start + offset, end + offset)]
        for occ_start, occ_end in occurrences:
            if occ_start <= moment < occ_end:
                return occ_end
    return None


def start_allowed_at(availability: dict | None, now: datetime) -> datetime | None:
    """The earliest instant ≥ `now` at which the intent may start (`now` itself when it may start
    right away), or None when no window opens within the next ~13 months."""
    if not availability:
        return now
    tz = ZoneInfo(availability.get("timezone") or "UTC")
    start = _clock(availability["window_start"]) if availability.get("window_start") else None
    end = _clock(availability["window_end"]) if availability.get("window_end") else None
    days = {str(d).lower()[:3] for d in (availability.get("days_of_week") or DAYS)}
    blackout = {date.fromisoformat(str(d)) for d in availability.get("blackout_dates") or []}
    maintenance = [(_parse(m["start"]), _parse(m["end"]), m.get("frequency") or "weekly")
                   for m in availability.get("maintenance_windows") or []]
    local_today = now.astimezone(tz).date()
    for offset in range(-1, HORIZON_DAYS):  # -1: a night window that opened yesterday may still be open
        day = local_today + timedelta(days=offset)
        if DAYS[day.weekday()] not in days or day in blackout:
            continue
        lo, hi = _day_window(day, start, end, tz)
        moment = max(lo, now)
        while moment < hi:
            if moment.astimezone(tz).date() in blackout:
                moment = datetime.combine(moment.astimezone(tz).date() + timedelta(days=1), time(0, 0), tzinfo=tz)
                continue
            busy_until = _covering_maintenance(moment, maintenance)
            if busy_until is None:
                return moment
            moment = busy_until
    return None

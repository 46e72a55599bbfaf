"""The one clock override: the day a plan is made for.

`plan --as-of YYYY-MM-DD` (and `reconcile --dry-run --as-of`) evaluate effective dates
(the HR source), prehire windows and grace periods as of that day; every rule takes its
day from here, so none needs the system clock faked to be tested.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo


def parse_day(text: str) -> date:
    """A --as-of value; ValueError with the sentence to show."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, e.g. 2026-03-15)") from None


def moment_of(day: date, zone: str) -> datetime:
    """Noon of `day` in the policy's time zone: the same day there whatever the offset."""
    return datetime.combine(day, time(12), tzinfo=ZoneInfo(zone))


def today(now: datetime | None, zone: str) -> date:
    """The day `now` (None: this moment) falls on in the policy's time zone."""
    return (now or datetime.now(timezone.utc)).astimezone(ZoneInfo(zone)).date()


def day_of(stamp: str, zone: str) -> date:
    """The day an ISO UTC time written by the state DB falls on in the policy's time zone."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(zone)).date()


def utcnow() -> str:
    """This moment in UTC as the state DB writes it (ISO 8601, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

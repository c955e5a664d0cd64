"""Times on staff pages in the hospital's zone, labelled: stored in UTC, read where the staff work.

Staff in Shanghai reading "15:00" for a slot the patient was offered at 23:00 their time were misled by
UTC on screen; every page now converts with one filter and names the zone once, in the column heading
or beside the time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from backend.app.settings import get_settings


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def hospital_zone() -> str:
    """The zone staff pages show times in (the hospital's day)."""
    return get_settings().default_timezone


def from_local_field(value: str) -> datetime | None:
    """A `datetime-local` form field, read in the hospital's zone, as UTC; None when empty. Raises
    ValueError when it is not a date and time."""
    if not value:
        return None
    local = datetime.fromisoformat(value)
    if local.tzinfo is not None:
        raise ValueError("a local time carries no zone")
    return local.replace(tzinfo=_zone(hospital_zone())).astimezone(UTC)


def local_time(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time in the hospital's zone; naive values are UTC, as the database keeps them."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return value.strftime(fmt)  # a calendar date has no zone to convert
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(_zone(hospital_zone())).strftime(fmt)

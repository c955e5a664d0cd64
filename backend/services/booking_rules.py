"""Booking rules as plain functions (no I/O): slot times from a schedule, time of day, overlap, limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RESCHEDULES_PER_DAY = 3  # a patient may move appointments at most 3 times a day
REMINDER_OFFSETS = (timedelta(hours=24), timedelta(hours=2))  # default reminders before the start
MAX_SLOT_MINUTES = 8 * 60


class ScheduleError(ValueError):
    """A schedule cannot produce slots; the message says which field is wrong."""


class TimeOfDay(StrEnum):
    MORNING = "morning"  # before 12:00 local time
    AFTERNOON = "afternoon"  # 12:00 to 17:59
    EVENING = "evening"  # from 18:00


class Refusal(StrEnum):
    """Why a booking, move or cancellation was refused; each has a patient message `booking.refused.*`."""

    SLOT_UNKNOWN = "slot_unknown"
    SLOT_PAST = "slot_past"
    SLOT_FULL = "slot_full"
    OVERLAP = "overlap"
    RESCHEDULE_LIMIT = "reschedule_limit"
    SAME_SLOT = "same_slot"
    NOT_FOUND = "not_found"  # no such appointment of this patient
    NOT_ACTIVE = "not_active"  # already cancelled, attended or missed
    STARTED = "started"  # the appointment has begun or passed: it can no longer be moved or cancelled
    HOSPITAL_BOOKED = "hospital_booked"  # booked in the hospital's own system: changed there, not here


def time_of_day(local: time) -> TimeOfDay:
    if local < time(12):
        return TimeOfDay.MORNING
    if local < time(18):
        return TimeOfDay.AFTERNOON
    return TimeOfDay.EVENING


def parse_clock(raw: object) -> time:
    """'08:30' -> 08:30. Only HH:MM on the 24-hour clock."""
    text = str(raw).strip()
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ScheduleError(f"time {text!r} is not HH:MM")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ScheduleError(f"time {text!r} is not HH:MM")
    return time(h, m)


def parse_sessions(raw: Iterable[object]) -> tuple[tuple[time, time], ...]:
    """[{"start": "08:00", "end": "12:00"}, …] -> ordered (start, end) pairs; sessions must not overlap."""
    sessions: list[tuple[time, time]] = []
    for item in raw:
        if not isinstance(item, dict) or "start" not in item or "end" not in item:
            raise ScheduleError("each session needs a start and an end")
        start, end = parse_clock(item["start"]), parse_clock(item["end"])
        if start >= end:
            raise ScheduleError(f"session {start:%H:%M}-{end:%H:%M} ends before it starts")
        sessions.append((start, end))
    if not sessions:
        raise ScheduleError("a schedule needs at least one session")
    sessions.sort()
    for (_, end), (start, _) in pairwise(sessions):
        if start < end:
            raise ScheduleError("sessions overlap")
    return tuple(sessions)


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """What a doctor schedule says, checked: build it with `ScheduleRule.of(...)`."""

    weekdays: frozenset[int]
    sessions: tuple[tuple[time, time], ...]
    slot_minutes: int
    timezone: str
    valid_from: date
    valid_until: date | None = None

    @classmethod
    def of(
        cls,
        *,
        weekdays: Iterable[int],
        sessions: Iterable[object],
        slot_minutes: int,
        timezone: str,
        valid_from: date,
        valid_until: date | None = None,
    ) -> ScheduleRule:
        days = frozenset(weekdays)
        if not days or not days <= set(range(7)):
            raise ScheduleError("weekdays must be a non-empty set of 0 (Monday) to 6 (Sunday)")
        if not 5 <= slot_minutes <= MAX_SLOT_MINUTES:
            raise ScheduleError(f"slot length must be 5 to {MAX_SLOT_MINUTES} minutes")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown time zone {timezone!r}") from exc
        if valid_until is not None and valid_until < valid_from:
            raise ScheduleError("valid_until is before valid_from")
        return cls(days, parse_sessions(sessions), slot_minutes, timezone, valid_from, valid_until)


def _local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall time, or None if that time does not exist (a DST gap). An
    ambiguous time (clocks going back) means its first occurrence."""
    local = datetime.combine(day, clock, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def slot_times(
    rule: ScheduleRule,
    first_day: date,
    last_day: date,
    overrides: Mapping[date, int | None] | None = None,
) -> list[tuple[datetime, datetime]]:
    """Every slot (start, end) in UTC the rule gives on local days first_day..last_day inclusive. A session
    is cut into whole slots; a remainder shorter than a slot is not offered. Slots that would start in a
    DST gap are skipped. Deterministic, so generating twice gives the same starts (idempotency).
    `overrides` maps a day to the weekday whose sessions it runs instead of its own, or None for no clinic
    (holidays, make-up workdays, leave: backend/services/working_calendar.day_overrides)."""
    overrides = overrides or {}
    zone = ZoneInfo(rule.timezone)
    start_day = max(first_day, rule.valid_from)
    end_day = last_day if rule.valid_until is None else min(last_day, rule.valid_until)
    step = timedelta(minutes=rule.slot_minutes)
    out: list[tuple[datetime, datetime]] = []
    day = start_day
    while day <= end_day:
        weekday = overrides.get(day, day.weekday()) if day in overrides else day.weekday()
        if weekday is not None and weekday in rule.weekdays:
            for session_start, session_end in rule.sessions:
                cursor = datetime.combine(day, session_start)
                limit = datetime.combine(day, session_end)
                while cursor + step <= limit:
                    start = _local_instant(day, cursor.time(), zone)
                    if start is not None:
                        out.append((start, start + step))
                    cursor += step
        day += timedelta(days=1)
    return out


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals: one ending at 09:30 does not overlap one starting at 09:30."""
    return a_start < b_end and b_start < a_end


def first_overlap(
    start: datetime, end: datetime, others: Sequence[tuple[int, datetime, datetime]]
) -> int | None:
    """The id of the first of `others` (id, start, end) overlapping [start, end), or None."""
    for other_id, other_start, other_end in others:
        if overlaps(start, end, other_start, other_end):
            return other_id
    return None


def slot_refusal(*, starts_at: datetime, booked: int, capacity: int, now: datetime) -> Refusal | None:
    """Whether a slot can take one more patient now (the database re-checks this atomically)."""
    if starts_at <= now:
        return Refusal.SLOT_PAST
    if booked >= capacity:
        return Refusal.SLOT_FULL
    return None


def may_reschedule(moves_today: int, limit: int = RESCHEDULES_PER_DAY) -> bool:
    return moves_today < limit


def local_day_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The UTC start and end of the patient's local calendar day containing `now`."""
    zone = ZoneInfo(timezone)
    local_day = now.astimezone(zone).date()
    start = datetime.combine(local_day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def reminder_plan(
    starts_at: datetime, now: datetime, offsets: Sequence[timedelta] = REMINDER_OFFSETS
) -> list[tuple[int, datetime, bool]]:
    """For each offset: (minutes before, due time, still in the future). A reminder whose time has passed
    (booked 3 hours ahead: no 24-hour reminder) is reported as not due so it is recorded as skipped."""
    plan = []
    for offset in sorted(offsets, reverse=True):
        due = starts_at - offset
        plan.append((int(offset.total_seconds() // 60), due, due > now))
    return plan


def slot_clashes(
    mine: Sequence[tuple[datetime, datetime]],
    theirs: Sequence[tuple[datetime, datetime, int]],
    limit: int = 50,
) -> list[tuple[datetime, datetime, int]]:
    """The first `limit` slots of `theirs` (start, end, schedule id) that overlap any of `mine`: a doctor
    cannot be in two clinics at once. `mine` are one schedule's slots (all one length, so their ends sort
    with their starts); a sweep over the sorted starts."""
    mine_sorted = sorted(mine)
    out: list[tuple[datetime, datetime, int]] = []
    i = 0
    for start, end, schedule_id in sorted(theirs):
        while i < len(mine_sorted) and mine_sorted[i][1] <= start:
            i += 1
        j = i
        while j < len(mine_sorted) and mine_sorted[j][0] < end:
            if overlaps(start, end, *mine_sorted[j]):
                out.append((start, end, schedule_id))
                break
            j += 1
        if len(out) >= limit:
            break
    return out

"""Quiet hours and daily caps from several levels (the global setting, the hospital's, the department's),
combined so the strictest applies: quiet whenever any level is quiet, the lowest cap. Pure functions;
the gates (`backend.outbox.gates`) load the levels and apply the result in the patient's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta


@dataclass(frozen=True, slots=True)
class Quiet:
    """Local hours [start, end): overnight when start > end; start == end is no quiet time at all."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise ValueError("quiet hours are hours 0-23")

    @property
    def empty(self) -> bool:
        return self.start == self.end

    def covers(self, moment: time) -> bool:
        start, end = time(self.start), time(self.end)
        if self.empty:
            return False
        if start > end:
            return moment >= start or moment < end
        return start <= moment < end


@dataclass(frozen=True, slots=True)
class Level:
    """What one level sets; None sets nothing here (the other levels decide)."""

    quiet: Quiet | None = None
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """The rules that apply to one patient: every level's quiet window, and the lowest cap."""

    quiet: tuple[Quiet, ...]
    cap: int


def combine(base: Level, *levels: Level) -> Limits:
    """The strictest of `base` (the global setting, which always has a cap) and `levels`. A level that
    says "no quiet hours" (start == end) or a higher cap relaxes nothing."""
    if base.cap is None:
        raise ValueError("the global level needs a cap")
    every = (base, *levels)
    windows: list[Quiet] = []
    for level in every:
        if level.quiet is not None and not level.quiet.empty and level.quiet not in windows:
            windows.append(level.quiet)
    return Limits(tuple(windows), min(level.cap for level in every if level.cap is not None))


def quiet_until(limits: Limits, local: datetime) -> datetime | None:
    """If `local` (an aware time in the patient's zone) is inside any quiet window, when the quiet time
    ends: windows that overlap or touch are one quiet time. None when she may be contacted now."""
    moment = local
    for _ in range(len(limits.quiet) + 1):  # each step leaves one window; more steps would loop
        covering = next((q for q in limits.quiet if q.covers(moment.time())), None)
        if covering is None:
            return None if moment == local else moment
        end = time(covering.end)
        day = moment.date() if moment.time() < end else moment.date() + timedelta(days=1)
        moment = datetime.combine(day, end, tzinfo=local.tzinfo)
    # the windows together cover the whole day: nothing may go; look again a day later
    return moment


@dataclass(frozen=True, slots=True)
class Rules:
    """The levels set in the admin console: the hospital's, and each department's that has its own."""

    hospital: Level = Level()
    departments: dict[int, Level] | None = None

    def limits(self, base: Level, department_id: int | None) -> Limits:
        own = (self.departments or {}).get(department_id) if department_id is not None else None
        return combine(base, self.hospital, *([own] if own is not None else []))

    @property
    def by_department(self) -> bool:
        return bool(self.departments)

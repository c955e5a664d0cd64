"""Quiet hours and caps from several levels: the strictest applies, checked against a brute-force
minute-by-minute reading of every combination of windows."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.outbox.limits import Level, Limits, Quiet, Rules, combine, quiet_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 7, tzinfo=SHANGHAI)


def _quiet_at(windows: tuple[Quiet, ...], moment: datetime) -> bool:
    return any(q.covers(moment.time()) for q in windows)


def _brute_until(windows: tuple[Quiet, ...], local: datetime) -> datetime | None:
    """Walk forward hour by hour (windows are whole hours) until no window covers the moment."""
    if not _quiet_at(windows, local):
        return None
    moment = local.replace(minute=0)
    for _ in range(49):
        moment += timedelta(hours=1)
        if not _quiet_at(windows, moment):
            return moment
    return None  # quiet all day


def test_a_window_covers_its_hours_overnight_or_not() -> None:
    for start, end, hour in itertools.product(range(24), range(24), range(24)):
        covered = Quiet(start, end).covers(time(hour, 30))
        if start == end:
            assert not covered
        elif start < end:
            assert covered == (start <= hour < end)
        else:
            assert covered == (hour >= start or hour < end)


def test_out_of_range_hours_are_refused() -> None:
    for start, end in ((24, 8), (21, -1)):
        with pytest.raises(ValueError):
            Quiet(start, end)


# every pair of windows on a 3-hour grid, with and without a third level, at every hour of the day
GRID = [Quiet(s, e) for s in range(0, 24, 3) for e in range(0, 24, 3)]


@pytest.mark.parametrize("first", GRID, ids=lambda q: f"{q.start}-{q.end}")
def test_the_combined_quiet_time_ends_when_no_level_is_quiet_any_more(first: Quiet) -> None:
    for second in GRID:
        limits = combine(Level(first, 5), Level(second), Level(None, None))
        whole_day = all(_quiet_at(limits.quiet, DAY + timedelta(hours=h)) for h in range(24))
        for hour in range(24):
            local = DAY + timedelta(hours=hour, minutes=20)
            until = quiet_until(limits, local)
            if not _quiet_at(limits.quiet, local):
                assert until is None
            elif whole_day:
                assert until is not None and until > local  # never now: looked at again later
            else:
                assert until == _brute_until(limits.quiet, local), (first, second, hour)
                assert not _quiet_at(limits.quiet, until)


def test_the_lowest_cap_wins_and_a_level_without_one_changes_nothing() -> None:
    for caps in itertools.product((None, 1, 3, 9), repeat=3):
        limits = combine(Level(None, 5), *(Level(None, cap) for cap in caps))
        assert limits.cap == min([5, *(c for c in caps if c is not None)])


def test_no_level_relaxes_another() -> None:
    strict = combine(Level(Quiet(21, 8), 5), Level(Quiet(0, 0), 50))  # "no quiet hours", a higher cap
    assert strict == Limits((Quiet(21, 8),), 5)
    assert quiet_until(strict, DAY + timedelta(hours=22)) == DAY + timedelta(days=1, hours=8)


def test_a_department_rule_adds_to_the_hospitals() -> None:
    rules = Rules(Level(Quiet(20, 7), 4), {3: Level(Quiet(12, 14), 2)})
    base = Level(Quiet(21, 8), 5)
    assert rules.limits(base, 3) == Limits((Quiet(21, 8), Quiet(20, 7), Quiet(12, 14)), 2)
    assert rules.limits(base, 4) == Limits((Quiet(21, 8), Quiet(20, 7)), 4)  # no rule of its own
    assert rules.limits(base, None) == rules.limits(base, 4)
    evening = DAY + timedelta(hours=20, minutes=5)  # the hospital is quiet from 20:00, the global at 21:00
    assert quiet_until(rules.limits(base, 4), evening) == DAY + timedelta(days=1, hours=8)


def test_the_global_level_must_carry_a_cap() -> None:
    with pytest.raises(ValueError):
        combine(Level(Quiet(21, 8)))

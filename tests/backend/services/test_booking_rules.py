"""Pure booking rules: schedule checks, slot times (zones, DST), time of day, overlap, limits, reminders."""

from __future__ import annotations

import ast
import itertools
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backend.services import booking_rules
from backend.services.booking_rules import (
    Refusal,
    ScheduleError,
    ScheduleRule,
    TimeOfDay,
    first_overlap,
    local_day_bounds,
    may_reschedule,
    overlaps,
    parse_clock,
    parse_sessions,
    reminder_plan,
    slot_refusal,
    slot_times,
    time_of_day,
)

SH = "Asia/Shanghai"
MONDAY = date(2026, 12, 7)


def rule(**kwargs: object) -> ScheduleRule:
    args: dict[str, object] = {
        "weekdays": [0],
        "sessions": [{"start": "08:00", "end": "12:00"}],
        "slot_minutes": 30,
        "timezone": SH,
        "valid_from": date(2026, 1, 1),
    }
    args.update(kwargs)
    return ScheduleRule.of(**args)  # type: ignore[arg-type]


def test_the_rules_module_does_no_io() -> None:
    tree = ast.parse(Path(booking_rules.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "enum",
        "itertools",
        "zoneinfo",
    }


def test_time_of_day_boundaries_for_every_minute() -> None:
    for minute in range(24 * 60):
        clock = time(minute // 60, minute % 60)
        expected = (
            TimeOfDay.MORNING
            if minute < 12 * 60
            else TimeOfDay.AFTERNOON
            if minute < 18 * 60
            else TimeOfDay.EVENING
        )
        assert time_of_day(clock) is expected, clock


@pytest.mark.parametrize("raw", ["8:00", "08:00", "23:59", "00:00", " 07:05 "])
def test_clock_times_parse(raw: str) -> None:
    h, m = raw.strip().split(":")
    assert parse_clock(raw) == time(int(h), int(m))


@pytest.mark.parametrize(
    "raw", ["24:00", "12:60", "0800", "8", "ab:cd", "08:0", "-1:00", "", "08:00:00", 800]
)
def test_bad_clock_times_are_refused(raw: object) -> None:
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_clock(raw)


def test_sessions_are_ordered_and_checked() -> None:
    assert parse_sessions([{"start": "14:00", "end": "17:00"}, {"start": "08:00", "end": "12:00"}]) == (
        (time(8), time(12)),
        (time(14), time(17)),
    )
    assert parse_sessions(
        [{"start": "08:00", "end": "12:00"}, {"start": "12:00", "end": "13:00"}]
    )  # touching
    for bad, message in [
        ([], "at least one"),
        ([{"start": "08:00"}], "start and an end"),
        (["08:00-12:00"], "start and an end"),
        ([{"start": "12:00", "end": "08:00"}], "ends before"),
        ([{"start": "08:00", "end": "08:00"}], "ends before"),
        ([{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}], "overlap"),
    ]:
        with pytest.raises(ScheduleError, match=message):
            parse_sessions(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": [7]}, "weekdays"),
        ({"weekdays": [-1]}, "weekdays"),
        ({"slot_minutes": 4}, "slot length"),
        ({"slot_minutes": 481}, "slot length"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"timezone": ""}, "time zone"),
        ({"valid_until": date(2025, 12, 31)}, "valid_until"),
    ],
)
def test_bad_schedules_are_refused_with_the_field_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        rule(**kwargs)


def test_a_session_is_cut_into_whole_slots_in_utc() -> None:
    times = slot_times(rule(sessions=[{"start": "08:00", "end": "10:10"}]), MONDAY, MONDAY)
    assert times == [
        (
            datetime(2026, 12, 7, h, m, tzinfo=UTC),
            datetime(2026, 12, 7, h, m, tzinfo=UTC) + timedelta(minutes=30),
        )
        for h, m in [
            (0, 0),
            (0, 30),
            (1, 0),
            (1, 30),
        ]  # 08:00 Shanghai is 00:00 UTC; 10:00-10:10 is too short
    ]
    assert all(start.tzinfo is UTC and end - start == timedelta(minutes=30) for start, end in times)


def test_every_weekday_combination_gives_slots_on_exactly_those_days() -> None:
    week = [MONDAY + timedelta(days=i) for i in range(7)]
    for size in range(1, 8):
        for days in itertools.combinations(range(7), size):
            times = slot_times(rule(weekdays=days), week[0], week[-1])
            local_days = {start.astimezone(ZoneInfo(SH)).date().weekday() for start, _ in times}
            assert local_days == set(days)
            assert len(times) == 8 * len(days)


def test_every_slot_length_divides_sessions_without_overrun() -> None:
    session = rule().sessions[0]
    length = (datetime.combine(MONDAY, session[1]) - datetime.combine(MONDAY, session[0])).seconds // 60
    for minutes in range(5, 8 * 60 + 1):
        times = slot_times(rule(slot_minutes=minutes), MONDAY, MONDAY)
        assert len(times) == length // minutes
        assert all(b[0] == a[1] for a, b in itertools.pairwise(times))  # back to back
        if times:
            assert times[-1][1] <= datetime(2026, 12, 7, 4, tzinfo=UTC)  # 12:00 Shanghai


def test_validity_window_limits_the_days() -> None:
    r = rule(weekdays=range(7), valid_from=MONDAY + timedelta(days=2), valid_until=MONDAY + timedelta(days=3))
    days = {s.astimezone(ZoneInfo(SH)).date() for s, _ in slot_times(r, MONDAY, MONDAY + timedelta(days=6))}
    assert days == {MONDAY + timedelta(days=2), MONDAY + timedelta(days=3)}
    assert slot_times(r, MONDAY + timedelta(days=4), MONDAY + timedelta(days=9)) == []


def test_generation_is_deterministic() -> None:
    r = rule(weekdays=range(7))
    assert slot_times(r, MONDAY, MONDAY + timedelta(days=30)) == slot_times(
        r, MONDAY, MONDAY + timedelta(days=30)
    )


def test_daylight_saving_gap_is_skipped_and_the_overlap_happens_once() -> None:
    berlin = "Europe/Berlin"
    spring = date(2026, 3, 29)  # 02:00 -> 03:00
    night = rule(
        weekdays=[6], sessions=[{"start": "01:00", "end": "04:00"}], slot_minutes=60, timezone=berlin
    )
    starts = [s for s, _ in slot_times(night, spring, spring)]
    assert starts == [
        datetime(2026, 3, 29, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, tzinfo=UTC),
    ]  # 01:00, 03:00
    autumn = date(2026, 10, 25)  # 03:00 -> 02:00: 02:00 happens twice
    starts = [s for s, _ in slot_times(night, autumn, autumn)]
    assert len(starts) == len(set(starts)) == 3
    assert starts[1] == datetime(2026, 10, 25, 0, tzinfo=UTC)  # the first 02:00 (CEST)


def test_overlap_is_half_open_for_every_arrangement() -> None:
    base = datetime(2026, 12, 7, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return base + timedelta(minutes=minutes)

    for a0, a1, b0, b1 in itertools.product(range(0, 5), repeat=4):
        if a0 >= a1 or b0 >= b1:
            continue
        expected = bool(set(range(a0, a1)) & set(range(b0, b1)))
        assert overlaps(at(a0), at(a1), at(b0), at(b1)) is expected
        assert overlaps(at(b0), at(b1), at(a0), at(a1)) is expected


def test_first_overlap_names_the_clashing_appointment() -> None:
    t = datetime(2026, 12, 7, 6, tzinfo=UTC)
    half = timedelta(minutes=30)
    others = [(1, t - half, t), (2, t + half, t + 2 * half), (3, t, t + half)]
    assert first_overlap(t, t + half, others) == 3
    assert first_overlap(t, t + half, others[:2]) is None
    assert first_overlap(t, t + half, []) is None


def test_slot_refusal_for_past_and_full_slots() -> None:
    now = datetime(2026, 12, 7, 6, tzinfo=UTC)
    later = now + timedelta(minutes=1)
    assert slot_refusal(starts_at=later, booked=0, capacity=1, now=now) is None
    assert slot_refusal(starts_at=later, booked=2, capacity=3, now=now) is None
    assert slot_refusal(starts_at=later, booked=1, capacity=1, now=now) is Refusal.SLOT_FULL
    assert slot_refusal(starts_at=now, booked=0, capacity=1, now=now) is Refusal.SLOT_PAST
    assert slot_refusal(starts_at=now - timedelta(days=1), booked=9, capacity=1, now=now) is Refusal.SLOT_PAST


def test_reschedule_limit_is_three_a_day() -> None:
    assert [may_reschedule(n) for n in range(6)] == [True, True, True, False, False, False]
    assert may_reschedule(4, limit=5) and not may_reschedule(5, limit=5)


def test_local_day_bounds_follow_the_patients_zone() -> None:
    now = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 01:00 on the 8th in Shanghai, 17:00 on the 7th in London
    assert local_day_bounds(now, SH) == (
        datetime(2026, 12, 7, 16, tzinfo=UTC),
        datetime(2026, 12, 8, 16, tzinfo=UTC),
    )
    assert local_day_bounds(now, "Europe/London") == (
        datetime(2026, 12, 7, tzinfo=UTC),
        datetime(2026, 12, 8, tzinfo=UTC),
    )
    start, end = local_day_bounds(datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Berlin")
    assert end - start == timedelta(hours=23)  # the spring-forward day is short


def test_reminder_plan_is_24_and_2_hours_before_and_marks_passed_ones() -> None:
    start = datetime(2026, 12, 9, 6, tzinfo=UTC)
    assert reminder_plan(start, start - timedelta(days=3)) == [
        (1440, start - timedelta(hours=24), True),
        (120, start - timedelta(hours=2), True),
    ]
    assert reminder_plan(start, start - timedelta(hours=3)) == [
        (1440, start - timedelta(hours=24), False),
        (120, start - timedelta(hours=2), True),
    ]
    assert [due for _, _, due in reminder_plan(start, start - timedelta(hours=2))] == [False, False]
    assert reminder_plan(start, start - timedelta(days=3), [timedelta(minutes=30)]) == [
        (30, start - timedelta(minutes=30), True)
    ]

"""Working calendars as pure rules: every kind of day in every weekday, a year of China's 2027 calendar,
make-up workdays in slot generation, and the import sheet's bad rows."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from itertools import product

import pytest
from openpyxl import Workbook

from backend.models.booking import CalendarDayKind
from backend.services.booking_rules import ScheduleRule, slot_clashes, slot_times
from backend.services.working_calendar import (
    CalendarDay,
    CalendarError,
    check_day,
    clinic_weekday,
    day_overrides,
    is_working_day,
    parse_rows,
    read_sheet,
    to_rows,
)

HOLIDAY, WORKDAY = CalendarDayKind.HOLIDAY, CalendarDayKind.WORKDAY
MONDAY = date(2027, 3, 1)  # a Monday
WEEK = [MONDAY + timedelta(days=i) for i in range(7)]


@pytest.mark.parametrize(("day", "entry"), list(product(WEEK, [None, HOLIDAY, WORKDAY])))
def test_every_weekday_with_every_kind_of_entry(day: date, entry: CalendarDayKind | None) -> None:
    calendar = {}
    if entry is HOLIDAY:
        calendar[day] = CalendarDay(day, HOLIDAY)
    elif entry is WORKDAY:
        calendar[day] = CalendarDay(day, WORKDAY, as_weekday=2)
    working = is_working_day(day, calendar)
    weekday = clinic_weekday(day, calendar)
    if entry is None:
        assert working is (day.weekday() < 5)
        assert weekday == day.weekday()
    elif entry is HOLIDAY:
        assert working is False and weekday is None
    else:
        assert working is True and weekday == 2
    # the entry of another day changes nothing here
    other = {day + timedelta(days=1): CalendarDay(day + timedelta(days=1), HOLIDAY)}
    assert is_working_day(day, other) is (day.weekday() < 5)


def test_a_make_up_workday_without_a_weekday_runs_its_own() -> None:
    saturday = WEEK[5]
    assert clinic_weekday(saturday, {saturday: CalendarDay(saturday, WORKDAY)}) == 5


# China 2027, Spring Festival (as the State Council would publish it): 6–12 Feb off; 7 Feb (Sun) and
# 20 Feb (Sat) worked as Friday and Monday.
SPRING = {
    **{date(2027, 2, d): CalendarDay(date(2027, 2, d), HOLIDAY, None, "春节") for d in (8, 9, 10, 11, 12)},
    date(2027, 2, 6): CalendarDay(date(2027, 2, 6), WORKDAY, 4, "春节调休"),
    date(2027, 2, 20): CalendarDay(date(2027, 2, 20), WORKDAY, 0, "春节调休"),
}


def test_a_festival_fortnight_day_by_day() -> None:
    days = [date(2027, 2, 1) + timedelta(days=i) for i in range(28)]
    working = [d.day for d in days if is_working_day(d, SPRING)]
    assert working == [1, 2, 3, 4, 5, 6, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26]


def test_slots_follow_the_calendar() -> None:
    weekdays_only = ScheduleRule.of(
        weekdays=[0, 4],  # Monday and Friday mornings
        sessions=[{"start": "08:00", "end": "09:00"}],
        slot_minutes=30,
        timezone="Asia/Shanghai",
        valid_from=date(2027, 1, 1),
    )
    first, last = date(2027, 2, 1), date(2027, 2, 28)
    closed = [(date(2027, 2, 22), date(2027, 2, 22))]  # the doctor's leave
    overrides = day_overrides(SPRING, closed, first, last)
    slots = slot_times(weekdays_only, first, last, overrides)
    local = sorted({(s + timedelta(hours=8)).date() for s, _ in slots})  # Shanghai is UTC+8 all year
    # Mon 1, Fri 5, Sat 6 (as Friday), [Mon 8 and Fri 12 holidays], Mon 15, Fri 19, Sat 20 (as Monday),
    # [Mon 22 the doctor's leave], Fri 26
    assert [d.day for d in local] == [1, 5, 6, 15, 19, 20, 26]
    assert len(slots) == 14  # two slots a morning
    assert len(slot_times(weekdays_only, first, last)) == 16  # without the calendar: 8 Mondays and Fridays


def test_overrides_outside_the_window_are_left_out() -> None:
    assert day_overrides(
        SPRING, [(date(2027, 1, 1), date(2027, 1, 3))], date(2027, 2, 9), date(2027, 2, 9)
    ) == {date(2027, 2, 9): None}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (CalendarDay(WEEK[5], WORKDAY, None), "weekday_required"),
        (CalendarDay(WEEK[5], WORKDAY, 5), "weekday_required"),
        (CalendarDay(WEEK[2], WORKDAY, 2), "workday_on_weekday"),
        (CalendarDay(WEEK[2], HOLIDAY, 1), "holiday_weekday"),
        (CalendarDay(WEEK[2], HOLIDAY, None, "x" * 101), "name_too_long"),
    ],
)
def test_bad_entries(entry: CalendarDay, problem: str) -> None:
    with pytest.raises(CalendarError) as refused:
        check_day(entry)
    assert refused.value.problem == problem


def test_a_sheet_round_trips_and_accepts_chinese_and_vietnamese_kinds() -> None:
    rows = [
        ["day", "kind", "as_weekday", "name"],
        ["2027-02-08", "节假日", "", "春节"],
        ["2027-02-06", "调休", "5", "春节调休"],
        ["2027-02-09", "nghỉ", "", "Tết"],
        ["2027-02-20", "làm bù", "1", ""],
        ["", "", "", ""],
    ]
    days = parse_rows(rows)
    assert [(d.day.day, d.kind, d.as_weekday) for d in days] == [
        (6, WORKDAY, 4),
        (8, HOLIDAY, None),
        (9, HOLIDAY, None),
        (20, WORKDAY, 0),
    ]
    assert parse_rows(to_rows(days)) == days


@pytest.mark.parametrize(
    ("rows", "problem", "row"),
    [
        ([["2027-02-30", "holiday"]], "bad_date", 1),
        ([["2027-02-08", "vacation"]], "bad_kind", 1),
        ([["2027-02-06", "workday", "7"]], "weekday_required", 1),
        ([["2027-02-08", "holiday"], ["2027-02-08", "holiday"]], "duplicate_day", 2),
        ([["day", "kind"]], "empty_sheet", None),
        ([["2027-02-10", "workday", "1"]], "workday_on_weekday", 1),
    ],
)
def test_a_bad_sheet_names_its_first_bad_row(rows: list[list[str]], problem: str, row: int | None) -> None:
    with pytest.raises(CalendarError) as refused:
        parse_rows(rows)
    assert (refused.value.problem, refused.value.row) == (problem, row)


def test_an_excel_sheet_with_date_cells_reads_as_text() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["day", "kind", "as_weekday", "name"])
    sheet.append([datetime(2027, 2, 6), "workday", 5, "调休"])
    out = io.BytesIO()
    book.save(out)
    days = parse_rows(read_sheet(out.getvalue(), "cal.xlsx"))
    assert days == [CalendarDay(date(2027, 2, 6), WORKDAY, 4, "调休")]
    with pytest.raises(CalendarError):
        read_sheet(b"not a workbook", "cal.xlsx")
    with pytest.raises(CalendarError):
        read_sheet(b"\xff\xfe\x00bad", "cal.csv")


def test_clashes_are_overlaps_only() -> None:
    base = datetime(2027, 3, 1, 8)
    mine = [(base + timedelta(minutes=30 * i), base + timedelta(minutes=30 * (i + 1))) for i in range(4)]
    theirs = [
        (base - timedelta(minutes=30), base, 7),  # ends as mine starts
        (base + timedelta(minutes=45), base + timedelta(minutes=75), 8),  # across two of mine
        (base + timedelta(hours=2), base + timedelta(hours=3), 9),  # starts as mine end
        (base + timedelta(minutes=100), base + timedelta(minutes=110), 10),  # inside the last
    ]
    assert [c[2] for c in slot_clashes(mine, theirs)] == [8, 10]
    assert slot_clashes(mine, theirs, limit=1) == [theirs[1]]
    assert slot_clashes([], theirs) == []

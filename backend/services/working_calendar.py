"""Working calendars as pure rules: which days a site works, and which weekday's clinics a day runs.

A site's ordinary week works Monday to Friday. The admin lists the exceptions: public holidays (no
clinics, whatever the weekday) and make-up workdays (China's 调休, Vietnam's Tết swaps: a weekend day
worked *as* a given weekday, usually the one of the bridge day it pays back). A doctor schedule then runs
on a make-up workday the sessions it has on that weekday. Doctor schedules may still hold clinics on an
ordinary Saturday or Sunday (a weekend clinic): the weekend is "not a working day" for the calendar, but
only holidays close a clinic.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from backend.models.booking import CalendarDayKind

WORKING_WEEKDAYS = frozenset(range(5))  # Monday (0) to Friday (4)
MAX_NAME = 100
MAX_IMPORT_ROWS = 1000  # a year is at most 366; more is a wrong file


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: date
    kind: CalendarDayKind
    as_weekday: int | None = None  # make-up workdays only
    name: str = ""


Calendar = Mapping[date, CalendarDay]


class CalendarError(ValueError):
    """A calendar entry that cannot be kept; `problem` is a code the page translates, `row` the sheet row."""

    def __init__(self, problem: str, row: int | None = None) -> None:
        super().__init__(problem if row is None else f"row {row}: {problem}")
        self.problem = problem
        self.row = row


def is_working_day(day: date, calendar: Calendar) -> bool:
    """Whether the site works on `day`: a make-up workday does, a holiday does not, else Monday–Friday."""
    entry = calendar.get(day)
    if entry is not None:
        return entry.kind is CalendarDayKind.WORKDAY
    return day.weekday() in WORKING_WEEKDAYS


def clinic_weekday(day: date, calendar: Calendar) -> int | None:
    """The weekday whose clinics run on `day` (0 = Monday): None on a holiday, the replaced weekday on a
    make-up workday, else the day's own weekday."""
    entry = calendar.get(day)
    if entry is None:
        return day.weekday()
    if entry.kind is CalendarDayKind.HOLIDAY:
        return None
    return entry.as_weekday if entry.as_weekday is not None else day.weekday()


def day_overrides(
    calendar: Calendar, closed: Iterable[tuple[date, date]], first: date, last: date
) -> dict[date, int | None]:
    """For slot generation: each day in first..last whose clinics differ from its own weekday, mapped to
    the weekday to run (None: no clinic). `closed` are a schedule's exception ranges (inclusive)."""
    out: dict[date, int | None] = {}
    for day, entry in calendar.items():
        if first <= day <= last:
            weekday = clinic_weekday(day, calendar)
            if weekday != day.weekday() or entry.kind is CalendarDayKind.HOLIDAY:
                out[day] = weekday
    for start, end in closed:
        day = max(start, first)
        while day <= min(end, last):
            out[day] = None
            day += timedelta(days=1)
    return out


def check_day(entry: CalendarDay) -> CalendarDay:
    """Raises CalendarError: a make-up workday needs a weekday to run and must fall on a weekend (a
    weekday is a working day already); a holiday has no weekday to run; names are short."""
    if len(entry.name) > MAX_NAME:
        raise CalendarError("name_too_long")
    if entry.kind is CalendarDayKind.WORKDAY:
        if entry.as_weekday is None or not 0 <= entry.as_weekday <= 4:
            raise CalendarError("weekday_required")
        if entry.day.weekday() in WORKING_WEEKDAYS:
            raise CalendarError("workday_on_weekday")
    elif entry.as_weekday is not None:
        raise CalendarError("holiday_weekday")
    return entry


_KINDS = {
    "holiday": CalendarDayKind.HOLIDAY,
    "假日": CalendarDayKind.HOLIDAY,
    "节假日": CalendarDayKind.HOLIDAY,
    "nghỉ": CalendarDayKind.HOLIDAY,
    "workday": CalendarDayKind.WORKDAY,
    "调休": CalendarDayKind.WORKDAY,
    "补班": CalendarDayKind.WORKDAY,
    "làm bù": CalendarDayKind.WORKDAY,
}
SHEET_COLUMNS = ("day", "kind", "as_weekday", "name")


def parse_row(cells: list[str], row: int) -> CalendarDay:
    """One sheet row: date (YYYY-MM-DD), kind (holiday/workday, or 节假日/调休, nghỉ/làm bù), the weekday
    a workday runs (1 = Monday … 5 = Friday, as people count), a name. Raises CalendarError."""
    cells = [c.strip() for c in cells] + [""] * (4 - len(cells))
    try:
        day = date.fromisoformat(cells[0])
    except ValueError as exc:
        raise CalendarError("bad_date", row) from exc
    kind = _KINDS.get(cells[1].casefold())
    if kind is None:
        raise CalendarError("bad_kind", row)
    as_weekday = None
    if cells[2]:
        if not cells[2].isdigit() or not 1 <= int(cells[2]) <= 5:
            raise CalendarError("weekday_required", row)
        as_weekday = int(cells[2]) - 1
    try:
        return check_day(CalendarDay(day, kind, as_weekday, cells[3]))
    except CalendarError as exc:
        raise CalendarError(exc.problem, row) from exc


def parse_rows(rows: Iterable[list[str]]) -> list[CalendarDay]:
    """A whole sheet (a header row whose first cell is not a date is skipped). Raises CalendarError for
    the first bad row, a day listed twice, or too many rows: nothing of a bad sheet is kept."""
    out: dict[date, CalendarDay] = {}
    for number, cells in enumerate(rows, start=1):
        if not any(c.strip() for c in cells):
            continue
        if number == 1 and cells and not cells[0].strip()[:1].isdigit():
            continue  # the header
        entry = parse_row(cells, number)
        if entry.day in out:
            raise CalendarError("duplicate_day", number)
        out[entry.day] = entry
        if len(out) > MAX_IMPORT_ROWS:
            raise CalendarError("too_many_rows", number)
    if not out:
        raise CalendarError("empty_sheet")
    return sorted(out.values(), key=lambda e: e.day)


def read_sheet(data: bytes, filename: str) -> list[list[str]]:
    """The rows of an uploaded .xlsx or .csv (UTF-8, with or without BOM) as text cells."""
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
            raise CalendarError("bad_file") from exc
        sheet = book.worksheets[0]
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarError("bad_file") from exc
    return [list(row) for row in csv.reader(io.StringIO(text))]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and callable(value.date):  # a datetime cell: Excel dates
        return str(value.date())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_rows(days: Iterable[CalendarDay]) -> list[list[str]]:
    """The export: the same columns the import reads, so a year can be exported, edited and imported."""
    return [
        [d.day.isoformat(), d.kind.value, "" if d.as_weekday is None else str(d.as_weekday + 1), d.name]
        for d in days
    ]

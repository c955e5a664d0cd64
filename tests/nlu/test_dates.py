"""Dates as patients type them, relative to a given day: weekday phrases in three languages (which
dateparser misses or reads differently), numeric forms by language, day-month without a year, and
no dependence on the real clock."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from nlu.dates import parse_date

ROOT = Path(__file__).resolve().parents[2]
WEDNESDAY = date(2026, 3, 11)
MONDAY = date(2026, 3, 9)
SUNDAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", date(2026, 3, 11)),
        ("明天", date(2026, 3, 12)),
        ("后天", date(2026, 3, 13)),
        ("大后天", date(2026, 3, 14)),
        ("昨天", date(2026, 3, 10)),
        ("前天", date(2026, 3, 9)),
        ("下周三", date(2026, 3, 18)),
        ("下星期三", date(2026, 3, 18)),
        ("下礼拜三", date(2026, 3, 18)),
        ("下个星期一", date(2026, 3, 16)),
        ("下周日", date(2026, 3, 22)),
        ("下下周一", date(2026, 3, 23)),
        ("这周五", date(2026, 3, 13)),
        ("本周五", date(2026, 3, 13)),
        ("这周一", date(2026, 3, 9)),  # this week's Monday, already past
        ("上周三", date(2026, 3, 4)),
        ("周五", date(2026, 3, 13)),
        ("星期三", date(2026, 3, 11)),  # a bare weekday includes today
        ("周二", date(2026, 3, 17)),
        ("3天后", date(2026, 3, 14)),
        ("三天后", date(2026, 3, 14)),
        ("两周后", date(2026, 3, 25)),
        ("3天前", date(2026, 3, 8)),
        ("3月12日", date(2026, 3, 12)),
        ("3月12号", date(2026, 3, 12)),
        ("三月十二号", date(2026, 3, 12)),
        ("2026年12月3日", date(2026, 12, 3)),
        ("2026-12-03", date(2026, 12, 3)),
        ("3/12", date(2026, 3, 12)),  # Chinese reads month first
        ("20号", date(2026, 3, 20)),
        ("下个月3号", date(2026, 4, 3)),
        ("２０２６年１２月３日", date(2026, 12, 3)),
    ],
)
def test_chinese(text: str, expected: date) -> None:
    assert parse_date(text, "zh-CN", WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hôm nay", date(2026, 3, 11)),
        ("ngày mai", date(2026, 3, 12)),
        ("mai", date(2026, 3, 12)),
        ("ngày kia", date(2026, 3, 13)),
        ("ngày mốt", date(2026, 3, 13)),
        ("hôm qua", date(2026, 3, 10)),
        ("hôm kia", date(2026, 3, 9)),
        ("thứ ba tuần sau", date(2026, 3, 17)),
        ("Thứ Ba tuần sau", date(2026, 3, 17)),
        ("thu ba tuan sau", date(2026, 3, 17)),  # without tone marks
        ("thứ 3 tuần sau", date(2026, 3, 17)),
        ("thứ ba tuần tới", date(2026, 3, 17)),
        ("thứ hai tuần sau", date(2026, 3, 16)),
        ("chủ nhật tuần sau", date(2026, 3, 22)),
        ("thứ sáu tuần này", date(2026, 3, 13)),
        ("thứ sáu tuần sau", date(2026, 3, 20)),
        ("thứ năm tuần trước", date(2026, 3, 5)),
        ("thứ ba", date(2026, 3, 17)),
        ("thứ ba tới", date(2026, 3, 17)),
        ("3 ngày nữa", date(2026, 3, 14)),
        ("sau 3 ngày", date(2026, 3, 14)),
        ("2 tuần sau", date(2026, 3, 25)),
        ("3/12", date(2025, 12, 3)),  # Vietnamese reads day first; nearest 3 December
        ("03/12/2026", date(2026, 12, 3)),
        ("3-12-2026", date(2026, 12, 3)),
        ("ngày 3 tháng 12 năm 2026", date(2026, 12, 3)),
        ("20/3", date(2026, 3, 20)),
        ("ngày 20", date(2026, 3, 20)),
    ],
)
def test_vietnamese(text: str, expected: date) -> None:
    assert parse_date(text, "vi", WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2026, 3, 11)),
        ("Tomorrow", date(2026, 3, 12)),
        ("the day after tomorrow", date(2026, 3, 13)),
        ("yesterday", date(2026, 3, 10)),
        ("next Tuesday", date(2026, 3, 17)),
        ("next week Tuesday", date(2026, 3, 17)),
        ("Tuesday next week", date(2026, 3, 17)),
        ("this Friday", date(2026, 3, 13)),
        ("Friday", date(2026, 3, 13)),
        ("on Friday", date(2026, 3, 13)),
        ("fri", date(2026, 3, 13)),
        ("this coming Monday", date(2026, 3, 16)),
        ("last Monday", date(2026, 3, 2)),
        ("in 3 days", date(2026, 3, 14)),
        ("in two weeks", date(2026, 3, 25)),
        ("a week from today", date(2026, 3, 18)),  # dateparser says a week ago
        ("2 weeks ago", date(2026, 2, 25)),
        ("3 December 2026", date(2026, 12, 3)),
        ("December 3, 2026", date(2026, 12, 3)),
        ("3rd of December 2026", date(2026, 12, 3)),
        ("dec 3rd 2026", date(2026, 12, 3)),
        ("25/12/2026", date(2026, 12, 25)),
        ("12/25/2026", date(2026, 12, 25)),
        ("2026-12-03", date(2026, 12, 3)),
        ("20 March", date(2026, 3, 20)),
        ("Jan 5", date(2026, 1, 5)),
        # dateparser covers the rest
        ("in 1 month", date(2026, 4, 11)),
        ("2 months ago", date(2026, 1, 11)),
        ("Thursday, 3 December 2026", date(2026, 12, 3)),
        # as a recogniser spells them: ordinal words beside a month name
        ("the first of march", date(2026, 3, 1)),
        ("march the twenty first", date(2026, 3, 21)),
        ("april thirtieth", date(2026, 4, 30)),
        ("the thirty first of january", date(2026, 1, 31)),
        ("three days ago", date(2026, 3, 8)),
        ("the day before yesterday", date(2026, 3, 9)),
    ],
)
def test_english(text: str, expected: date) -> None:
    assert parse_date(text, "en", WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("next Tuesday", "en", date(2026, 3, 17)),  # not tomorrow: Tuesday of next week
        ("Tuesday", "en", date(2026, 3, 10)),
        ("下周二", "zh-CN", date(2026, 3, 17)),
        ("thứ ba tuần sau", "vi", date(2026, 3, 17)),
        ("Monday", "en", date(2026, 3, 9)),
    ],
)
def test_next_weekday_means_that_day_in_next_calendar_week(text: str, lang: str, expected: date) -> None:
    assert parse_date(text, lang, MONDAY) == expected


def test_weeks_start_on_monday() -> None:
    assert parse_date("下周一", "zh-CN", SUNDAY) == date(2026, 3, 16)
    assert parse_date("这周一", "zh-CN", SUNDAY) == date(2026, 3, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/12", None),
        ("3.12.2026", None),
        ("25/12", date(2025, 12, 25)),
        ("12/25", date(2025, 12, 25)),
        ("3/3", date(2026, 3, 3)),
    ],
)
def test_english_numeric_dates_are_refused_when_day_and_month_could_swap(
    text: str, expected: date | None
) -> None:
    assert parse_date(text, "en", WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 3, 11), date(2025, 12, 3)),
        (date(2026, 11, 20), date(2026, 12, 3)),
        (date(2026, 6, 1), date(2025, 12, 3)),
        (date(2026, 6, 5), date(2026, 12, 3)),
    ],
)
def test_a_date_without_a_year_is_the_nearest_one(today: date, expected: date) -> None:
    assert parse_date("12月3日", "zh-CN", today) == expected
    assert parse_date("3 December", "en", today) == expected


def test_spoken_ordinals_need_a_month_and_a_real_day() -> None:
    assert parse_date("the second", "en", WEDNESDAY) is None
    assert parse_date("february the thirtieth", "en", WEDNESDAY) is None


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("", "en"),
        ("   ", "vi"),
        ("hello", "en"),
        ("whenever", "en"),
        ("不知道", "zh-CN"),
        ("next week", "en"),
        ("下周", "zh-CN"),
        ("tuần sau", "vi"),
        ("next month", "en"),
        ("2026年3月", "zh-CN"),
        ("5", "en"),
        ("31/2", "vi"),
        ("2026-02-30", "en"),
        ("13月1日", "zh-CN"),
        ("1700000000", "en"),
    ],
)
def test_text_that_names_no_single_day(text: str, lang: str) -> None:
    assert parse_date(text, lang, WEDNESDAY) is None


@pytest.mark.parametrize(("text", "lang"), [("tomorrow", "vi"), ("明天", "en"), ("ngày mai", "zh-CN")])
def test_the_session_language_does_not_limit_the_words(text: str, lang: str) -> None:
    assert parse_date(text, lang, WEDNESDAY) == date(2026, 3, 12)


@pytest.mark.parametrize("text", ["tomorrow", "in 1 month", "下周三", "Thursday, 3 December 2001"])
def test_results_follow_the_given_day_not_the_clock(text: str) -> None:
    long_ago = date(2001, 5, 9)  # a Wednesday
    found = parse_date(text, "en", long_ago)
    assert found is not None and found.year == 2001


def test_dateparser_is_imported_only_when_needed() -> None:
    code = (
        "import sys; from datetime import date; from nlu.dates import parse_date; "
        "assert 'dateparser' not in sys.modules; parse_date('明天', 'zh-CN', date(2026, 3, 11)); "
        "assert 'dateparser' not in sys.modules; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr

"""Dates as patients type them ("下周三", "thứ ba tuần sau", "next Tuesday", "3/12"), relative to a given day.

Our own rules come first because dateparser 1.5 misses or misreads these (checked with a fixed
RELATIVE_BASE): it returns None for 下周三, 这周五, 本周五, 12月3日, 三天后, thứ ba tuần sau, thứ 3,
ngày kia, hôm kia, 3 ngày nữa; it reads "a week from today" as a week *ago*; it turns "next week"
and "tuần sau" into today + 7 although no day was named; and its "next Tuesday" is simply the
coming Tuesday. dateparser then handles the rest ("in 2 weeks", "3 dec 2026", "2 weeks ago").

Conventions (weeks start on Monday, as in China and Vietnam):
- "next <weekday>", 下周X, "thứ X tuần sau/tới" is that day in next calendar week; "this <weekday>",
  这周X/本周X, "thứ X tuần này" is that day in this week (possibly past); "last"/上周X/"tuần trước"
  the week before. A bare weekday is the next such day, today included.
- Numbers with "/", "." or "-": year first is always Y-M-D; otherwise Vietnamese is day first,
  Chinese month first (3/12 = 3月12日), and English is ambiguous, so an English 3/12 is refused
  (None) unless one part is above 12 or both are equal; the re-prompt asks for "3 December".
- A day and month without a year is the occurrence nearest to today (within half a year), so it
  works both for "when did you measure it" and "when is your appointment".
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from datetime import date, datetime, timedelta
from typing import Any

from nlu.numbers import parse_number, parse_zh_numeral

_DATEPARSER_LANG = {"zh-CN": "zh", "vi": "vi", "en": "en"}
_WEEKDAYS_EN = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_WEEKDAYS_ZH = {"一": 0, "1": 0, "二": 1, "2": 1, "三": 2, "3": 2, "四": 3, "4": 3, "五": 4, "5": 4,
                "六": 5, "6": 5, "日": 6, "天": 6, "七": 6, "7": 6}  # fmt: skip
# Vietnamese without tone marks; "thứ hai" (the second day) is Monday.
_WEEKDAYS_VI = {"hai": 0, "2": 0, "ba": 1, "3": 1, "tu": 2, "4": 2, "nam": 3, "5": 3, "sau": 4, "6": 4,
                "bay": 5, "7": 5}  # fmt: skip
_MONTHS_EN = {
    name: number
    for number, names in enumerate(
        (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")),
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS_EN, key=len, reverse=True))
_WEEKDAY_EN = "|".join(sorted(_WEEKDAYS_EN, key=len, reverse=True))
_ZH_NUM = r"[0-9零〇一二两三四五六七八九十]+"

_ISO = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号號]?")
_NUMERIC = re.compile(r"(\d{1,2})\s*[-/.]\s*(\d{1,2})(?:\s*[-/.]\s*(\d{4}|\d{2}))?")
_ZH_MONTH_DAY = re.compile(rf"(?:(\d{{4}}|\d{{2}})年)?({_ZH_NUM})月({_ZH_NUM})[日号號]?")
_ZH_DAY = re.compile(rf"(?:这个月|本月|下个?月)?({_ZH_NUM})[日号號]")
_VI_MONTH_DAY = re.compile(r"(?:ngay\s*)?(\d{1,2})\s*thang\s*(\d{1,2})(?:\s*(?:nam\s*)?(\d{4}))?")
_VI_DAY = re.compile(r"ngay\s*(\d{1,2})")
_EN_DAY_MONTH = re.compile(
    rf"(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s*(?:of\s+)?({_MONTH})\.?(?:,?\s*(\d{{4}}))?"
)
_EN_MONTH_DAY = re.compile(rf"({_MONTH})\.?\s*(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s*(\d{{4}}))?")
# Spoken days ("the first of november", "november twenty first"): ordinal words to 1st .. 31st.
ORDINALS_EN = {
    word: n
    for n, word in enumerate(
        ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
         "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
         "eighteenth", "nineteenth", "twentieth"),
        start=1,
    )
}  # fmt: skip
_MONTH_WORD = re.compile(rf"\b(?:{_MONTH})\b")
_EN_ORDINAL = re.compile(
    r"\b(?:(twenty|thirty)[ -](first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
    r"|(" + "|".join(ORDINALS_EN) + r"|thirtieth))\b"
)

_ZH_WEEKDAY = re.compile(r"(下下|下|这|這|本|上上|上)?个?(?:周|星期|礼拜|禮拜)([一二三四五六日天七1-7])")
_VI_WEEKDAY = re.compile(
    r"(?:vao\s+)?(?:(?:tuan\s*(sau|toi|nay|truoc)\s*)?)"
    r"(?:thu\s*(hai|ba|tu|nam|sau|bay|[2-7])|(chu\s*nhat|cn))"
    r"(?:\s*(tuan\s*(?:sau|toi|nay|truoc)|toi|nay))?"
)
_EN_WEEKDAY = re.compile(
    rf"(?:on\s+)?(?:(next|this|last|coming|this\s+coming)\s+(?:week\s+)?)?({_WEEKDAY_EN})\.?"
    rf"(?:\s+(next|this|last)\s+week)?"
)
_EN_NEXT_WEEK_DAY = re.compile(rf"(next|this|last)\s+week\s+(?:on\s+)?({_WEEKDAY_EN})")

_RELATIVE_DAYS = {
    "today": 0, "tomorrow": 1, "the day after tomorrow": 2, "day after tomorrow": 2, "yesterday": -1,
    "the day before yesterday": -2, "day before yesterday": -2,
    "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "後天": 2, "大后天": 3, "大後天": 3,
    "昨天": -1, "昨日": -1, "前天": -2, "大前天": -3,
    "hom nay": 0, "ngay hom nay": 0, "ngay mai": 1, "mai": 1, "sang mai": 1, "ngay mot": 2, "mot": 2,
    "ngay kia": 2, "hom qua": -1, "hom kia": -2,
}  # fmt: skip
_COUNT = r"(\d+|[a-z]+(?:[ -][a-z]+)?|[零〇一二两三四五六七八九十]+)"
_SPAN_AFTER = [
    re.compile(rf"(?:in|after)\s+{_COUNT}\s+(day|week)s?(?:\s+from\s+(?:now|today))?(?:\s+time)?"),
    re.compile(rf"{_COUNT}\s+(day|week)s?\s+(?:from\s+(?:now|today)|later)"),
    re.compile(rf"(?:过|過)?{_COUNT}\s*(天|周|週|个星期|個星期|星期|个礼拜|礼拜)(?:后|後|以后|以後|之后|之後)"),
    re.compile(rf"(?:sau\s+)?{_COUNT}\s+(ngay|tuan)\s*(?:nua|sau|toi)"),
    re.compile(rf"sau\s+{_COUNT}\s+(ngay|tuan)"),
]
_SPAN_BEFORE = [
    re.compile(rf"{_COUNT}\s+(day|week)s?\s+ago"),
    re.compile(rf"{_COUNT}\s*(天|周|週|个星期|個星期|星期|个礼拜|礼拜)(?:前|以前|之前)"),
    re.compile(rf"(?:cach\s+day\s+)?{_COUNT}\s+(ngay|tuan)\s*(?:truoc)"),
]
# Named a week or a month but no day: not a date we can record.
_VAGUE = re.compile(
    r"(?:next|this|last)\s+(?:week|month|year)|(?:下|这|這|本|上)个?(?:周|星期|礼拜|月)|明年|今年"
    r"|(?:tuan|thang|nam)\s*(?:sau|toi|nay|truoc)"
)


def _plain(text: str) -> str:
    """NFKC, case-folded, spacing collapsed, closing punctuation dropped."""
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    return re.sub(r"\s+", " ", re.sub(r"[,，。.!！?？、~～\s]+$", "", text))


def _fold(text: str) -> str:
    """Vietnamese tone marks removed (đ -> d), so rules match with or without them; Chinese unchanged."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d"))
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _safe(year: int, month: int, day: int) -> date | None:
    if not (1900 <= year <= 2100 and 1 <= month <= 12):
        return None
    return date(year, month, day) if 1 <= day <= monthrange(year, month)[1] else None


def _year(raw: str | None) -> int | None:
    if raw is None:
        return None
    return int(raw) + 2000 if len(raw) == 2 else int(raw)


def _nearest(month: int, day: int, today: date) -> date | None:
    candidates = [d for y in (today.year - 1, today.year, today.year + 1) if (d := _safe(y, month, day))]
    return min(candidates, key=lambda d: (abs((d - today).days), d < today), default=None)


def _day_month(month: int, day: int, year: int | None, today: date) -> date | None:
    return _safe(year, month, day) if year is not None else _nearest(month, day, today)


def _count(raw: str) -> int | None:
    if raw in {"a", "an", "one"}:
        return 1
    chinese = re.fullmatch(r"[零〇一二两三四五六七八九十]+", raw)
    value = parse_zh_numeral(raw) if chinese else parse_number(raw)
    return int(value) if value is not None and value == int(value) and 0 <= value <= 3650 else None


def _week_of(today: date, offset_weeks: int, weekday: int) -> date:
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(weeks=offset_weeks, days=weekday)


def _upcoming(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7)


_WEEK_OFFSET = {
    "next": 1, "this": 0, "last": -1, "下": 1, "下下": 2, "这": 0, "這": 0, "本": 0, "上": -1, "上上": -2,
    "tuan sau": 1, "tuan toi": 1, "tuan nay": 0, "tuan truoc": -1, "sau": 1, "toi": 1, "nay": 0, "truoc": -1,
}  # fmt: skip


def _weekday(text: str, today: date) -> date | None:
    if m := _ZH_WEEKDAY.fullmatch(text):
        weekday = _WEEKDAYS_ZH[m.group(2)]
        return _week_of(today, _WEEK_OFFSET[m.group(1)], weekday) if m.group(1) else _upcoming(today, weekday)
    if m := _VI_WEEKDAY.fullmatch(text):
        weekday = 6 if m.group(3) else _WEEKDAYS_VI[m.group(2)]
        before, after = m.group(1), m.group(4)
        if before and after:
            return None
        which = re.sub(r"\s+", " ", before or after or "")
        if which in {"", "toi"}:  # "thứ ba tới": the coming Tuesday
            return _upcoming(today, weekday)
        return _week_of(today, _WEEK_OFFSET[which], weekday)
    m = _EN_WEEKDAY.fullmatch(text)
    if m and not (m.group(1) and m.group(3)):
        weekday = _WEEKDAYS_EN[m.group(2)]
        which = m.group(1) or m.group(3)
        if which is None or "coming" in which:
            return _upcoming(today, weekday)
        return _week_of(today, _WEEK_OFFSET[which], weekday)
    if m := _EN_NEXT_WEEK_DAY.fullmatch(text):
        return _week_of(today, _WEEK_OFFSET[m.group(1)], _WEEKDAYS_EN[m.group(2)])
    return None


def _numeric(text: str, lang: str, today: date) -> date | None:
    if m := _ISO.fullmatch(text):
        return _safe(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _NUMERIC.fullmatch(text)
    if m is None:
        return None
    first, second, year = int(m.group(1)), int(m.group(2)), _year(m.group(3))
    if lang == "vi":
        day, month = first, second
    elif lang == "zh-CN" or first == second or second > 12:
        month, day = first, second
    elif first > 12:
        day, month = first, second
    else:
        return None  # English 3/12: 3 December or March 12? Ask again rather than guess.
    return _day_month(month, day, year, today)


def _nearest_day_of_month(day: int, today: date, months_ahead: int | None = None) -> date | None:
    first = today.replace(day=1)
    candidates = []
    for shift in (-1, 0, 1) if months_ahead is None else (months_ahead,):
        y, m = divmod(first.month - 1 + shift, 12)
        if found := _safe(first.year + y, m + 1, day):
            candidates.append(found)
    return min(candidates, key=lambda d: (abs((d - today).days), d < today), default=None)


def _ordinal_digits(match: re.Match[str]) -> str:
    tens, unit, alone = match.groups()
    if alone:
        return "30th" if alone == "thirtieth" else f"{ORDINALS_EN[alone]}th"
    return f"{(20 if tens == 'twenty' else 30) + ORDINALS_EN[unit]}th"


def _named(text: str, lang: str, today: date) -> date | None:
    if _MONTH_WORD.search(text):  # only beside a month name: "second" alone is not a day
        text = _EN_ORDINAL.sub(_ordinal_digits, text)
    if text in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[text])
    if found := _weekday(text, today):
        return found
    if (m := _ZH_MONTH_DAY.fullmatch(text)) and (month := _count(m.group(2))) and (day := _count(m.group(3))):
        return _day_month(month, day, _year(m.group(1)), today)
    if (m := _ZH_DAY.fullmatch(text)) and (day := _count(m.group(1))):
        ahead = 1 if text.startswith("下") else 0 if text.startswith(("这", "本")) else None
        return _nearest_day_of_month(day, today, ahead)
    if m := _VI_MONTH_DAY.fullmatch(text):
        return _day_month(int(m.group(2)), int(m.group(1)), _year(m.group(3)), today)
    if m := _VI_DAY.fullmatch(text):
        return _nearest_day_of_month(int(m.group(1)), today)
    if m := _EN_DAY_MONTH.fullmatch(text):
        return _day_month(_MONTHS_EN[m.group(2)], int(m.group(1)), _year(m.group(3)), today)
    if m := _EN_MONTH_DAY.fullmatch(text):
        return _day_month(_MONTHS_EN[m.group(1)], int(m.group(2)), _year(m.group(3)), today)
    for sign, patterns in ((1, _SPAN_AFTER), (-1, _SPAN_BEFORE)):
        for pattern in patterns:
            if (m := pattern.fullmatch(text)) and (count := _count(m.group(1))) is not None:
                unit = 1 if m.group(2) in {"day", "天", "ngay"} else 7
                return today + timedelta(days=sign * count * unit)
    return _numeric(text, lang, today)


def _dateparser(text: str, lang: str, today: date) -> date | None:
    import dateparser  # slow to import (~0.1 s) and to warm up; only date answers need it

    settings: dict[str, Any] = {
        "RELATIVE_BASE": datetime(today.year, today.month, today.day),
        "TIMEZONE": "UTC",  # never the machine's zone
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DATES_FROM": "current_period",
        # Without a day and a month, dateparser fills them from the real clock.
        "REQUIRE_PARTS": ["day", "month"],
        "PARSERS": ["relative-time", "custom-formats", "absolute-time"],  # no Unix timestamps
        "DATE_ORDER": "DMY" if lang == "vi" else "MDY" if lang == "zh-CN" else "YMD",
    }
    # Our rules already read every language's day words; dateparser gets the patient's language and
    # English (month names, "in 2 weeks"), not all three: each attempt costs about a millisecond.
    for code in dict.fromkeys((lang if lang in _DATEPARSER_LANG else "en", "en")):
        parsed = dateparser.parse(text, languages=[_DATEPARSER_LANG.get(code, "en")], settings=settings)
        if parsed is not None:
            return _safe(parsed.year, parsed.month, parsed.day)
    return None


def parse_date(text: str, lang: str, today: date) -> date | None:
    """The date the text names, relative to `today`, else None. Deterministic: never reads the clock."""
    plain = _plain(text)
    if not plain or len(plain) > 60:
        return None
    folded = _fold(plain)
    found = _named(folded, lang, today)
    if found is not None:
        return found
    if _VAGUE.search(folded) or re.fullmatch(r"[\d\s/.\-]+", folded):
        return None  # "next week", or digits our rules refused (an ambiguous English 3/12)
    return _dateparser(plain, lang, today)

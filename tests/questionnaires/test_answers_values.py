"""Answer acceptance for values: numbers with words and units, dates as patients type them, text and
blanks, and what every item type refuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from questionnaires.answers import (
    Reason,
    can_skip,
)
from questionnaires.model import Item, ItemType
from tests.questionnaires.answer_items import (
    ANY_INTEGER,
    APPOINTMENT,
    COMMENTS,
    COUNT,
    EVERY_ANSWERABLE,
    FEVER,
    GLUCOSE,
    NAME,
    ONE_BLANK,
    PAIN,
    RESULTS,
    SATISFACTION,
    STARS,
    SYSTOLIC,
    TEMPERATURE,
    accepted,
    answer,
    item,
    rejected,
)

# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("it", "text", "value"),
    [
        (STARS, "4", 4),
        (STARS, "4 stars", 4),
        (STARS, "四星", 4),
        (STARS, "bốn sao", 4),
        (STARS, "⭐⭐⭐⭐", 4),
        (STARS, "★★★☆☆", 3),
        (STARS, "５", 5),
        (STARS, "5.0", 5),
        (PAIN, "0", 0),
        (PAIN, "7", 7),
        (PAIN, "10", 10),
        (PAIN, "五分", 5),
        (PAIN, "5分", 5),
        (PAIN, "năm", 5),
        (PAIN, "7 điểm", 7),
        (PAIN, "five", 5),
        (PAIN, "8 points", 8),
        (PAIN, "about 6", 6),
        (PAIN, "7/10", 7),
        (PAIN, "7 out of 10", 7),
        (PAIN, "7 trên 10", 7),
        (PAIN, "１０", 10),
        (PAIN, "không đau", 0),
        (SYSTOLIC, "135", 135),
        (SYSTOLIC, "一百", 100),
        (COUNT, "không", 0),
        (COUNT, "3 lần", 3),
        (ANY_INTEGER, "-3", -3),
        (ANY_INTEGER, "âm 3", -3),
        (ANY_INTEGER, "负三", -3),
        (TEMPERATURE, "37.5", Decimal("37.5")),
        (TEMPERATURE, "37,5", Decimal("37.5")),
        (TEMPERATURE, "38度", Decimal("38")),
        (TEMPERATURE, "38度5", Decimal("38.5")),
        (TEMPERATURE, "37.5°C", Decimal("37.5")),
        (TEMPERATURE, "三十八点五", Decimal("38.5")),
        (TEMPERATURE, "ba mươi tám", Decimal("38")),
        (GLUCOSE, "6,8", Decimal("6.8")),
    ],
)
def test_numeric_items_accept_digits_words_and_units(it: Item, text: str, value: int | Decimal) -> None:
    result = accepted(it, text)
    assert result == value
    assert type(result) is type(value)  # int for ratings, scales and counts; Decimal for decimals


@pytest.mark.parametrize(
    ("it", "text", "reason"),
    [
        (STARS, "0", Reason.OUT_OF_RANGE),
        (STARS, "6", Reason.OUT_OF_RANGE),
        (STARS, "3.5", Reason.NOT_WHOLE),
        (PAIN, "11", Reason.OUT_OF_RANGE),
        (PAIN, "-1", Reason.OUT_OF_RANGE),
        (PAIN, "5.5", Reason.NOT_WHOLE),
        (PAIN, "7/9", Reason.AMBIGUOUS),
        (PAIN, "5 or 6", Reason.AMBIGUOUS),
        (PAIN, "5-6", Reason.AMBIGUOUS),
        (PAIN, "hurts a lot", Reason.NOT_A_NUMBER),
        (PAIN, "không biết", Reason.NOT_A_NUMBER),
        (PAIN, "一般", Reason.NOT_A_NUMBER),
        (SYSTOLIC, "50", Reason.OUT_OF_RANGE),
        (SYSTOLIC, "300", Reason.OUT_OF_RANGE),
        (COUNT, "-1", Reason.OUT_OF_RANGE),
        (TEMPERATURE, "45", Reason.OUT_OF_RANGE),
        (TEMPERATURE, "34.9", Reason.OUT_OF_RANGE),
        (TEMPERATURE, "hot", Reason.NOT_A_NUMBER),
        (TEMPERATURE, "120/80", Reason.AMBIGUOUS),
    ],
)
def test_numeric_items_refuse(it: Item, text: str, reason: Reason) -> None:
    assert rejected(it, text).reason is reason


def test_range_edges_are_inside() -> None:
    assert accepted(TEMPERATURE, "35") == Decimal(35)
    assert accepted(TEMPERATURE, "42") == Decimal(42)
    assert accepted(GLUCOSE, "33.3") == Decimal("33.3")
    assert rejected(GLUCOSE, "33.4").reason is Reason.OUT_OF_RANGE


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "value"),
    [
        ("下周三", "zh-CN", date(2026, 3, 18)),
        ("thứ ba tuần sau", "vi", date(2026, 3, 17)),
        ("next Tuesday", "en", date(2026, 3, 17)),
        ("明天", "zh-CN", date(2026, 3, 12)),
        ("ngày mai", "vi", date(2026, 3, 12)),
        ("tomorrow", "en", date(2026, 3, 12)),
        ("2026-12-03", "en", date(2026, 12, 3)),
        ("３/１２/２０２６", "vi", date(2026, 12, 3)),
    ],
)
def test_date_items_accept_what_patients_type(text: str, lang: str, value: date) -> None:
    assert accepted(APPOINTMENT, text, lang) == value


@pytest.mark.parametrize(
    ("text", "lang"), [("whenever", "en"), ("3/12", "en"), ("下周", "zh-CN"), ("tuần sau", "vi")]
)
def test_date_items_refuse_text_that_names_no_single_day(text: str, lang: str) -> None:
    assert rejected(APPOINTMENT, text, lang).reason is Reason.NOT_A_DATE


# --- text and blanks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("it", "text", "value"),
    [
        (NAME, "  Lan  ", "Lan"),
        (NAME, "x" * 200, "x" * 200),
        (COMMENTS, "Cảm ơn bác sĩ!\nRất tốt.", "Cảm ơn bác sĩ!\nRất tốt."),
        (COMMENTS, "y" * 2000, "y" * 2000),
        (COMMENTS, "  " + "z" * 2000 + "  ", "z" * 2000),
    ],
)
def test_text_items_are_trimmed(it: Item, text: str, value: str) -> None:
    assert accepted(it, text) == value


@pytest.mark.parametrize(("it", "text"), [(NAME, "x" * 201), (COMMENTS, "y" * 2001)])
def test_text_items_refuse_answers_over_their_limit(it: Item, text: str) -> None:
    assert rejected(it, text).reason is Reason.TOO_LONG


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7.2\n70", {"hba1c": "7.2", "weight": "70"}),
        ("7.2; 70", {"hba1c": "7.2", "weight": "70"}),
        ("7,2；70", {"hba1c": "7,2", "weight": "70"}),
        ("7.2", {"hba1c": "7.2"}),  # "if you know them": blanks may stay empty
        ("\n70", {"weight": "70"}),
        ("weight: 70", {"weight": "70"}),
        ("Cân nặng: 70\nHbA1c: 7.2", {"hba1c": "7.2", "weight": "70"}),
        ("体重：70", {"weight": "70"}),
    ],
)
def test_multi_blank_takes_one_blank_per_line_or_semicolon_or_by_label(
    text: str, value: dict[str, str]
) -> None:
    assert accepted(RESULTS, text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1; 2; 3", Reason.TOO_MANY_PARTS),
        ("weight: 70\nweight: 71", Reason.TOO_MANY_PARTS),
        (";", Reason.EMPTY),
        ("x" * 201, Reason.TOO_LONG),
    ],
)
def test_multi_blank_refuses(text: str, reason: Reason) -> None:
    assert rejected(RESULTS, text).reason is reason


def test_a_single_blank_keeps_its_semicolons() -> None:
    assert accepted(ONE_BLANK, "home; then clinic") == {"where": "home; then clinic"}


# --- every item type ---------------------------------------------------------------------------


@pytest.mark.parametrize("it", EVERY_ANSWERABLE, ids=lambda it: it.type.value)
@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_an_empty_answer_is_refused_for_every_item_type(it: Item, text: str) -> None:
    assert rejected(it, text).reason is Reason.EMPTY


@pytest.mark.parametrize("kind", [ItemType.DISPLAY, ItemType.GROUP])
def test_items_that_take_no_answer_are_a_caller_error(kind: ItemType) -> None:
    with pytest.raises(ValueError, match="takes no answer"):
        answer(item(kind), "1")


def test_skipping_is_allowed_exactly_when_the_item_is_not_required() -> None:
    assert can_skip(FEVER)
    assert not can_skip(SATISFACTION)


def test_equal_items_built_separately_give_the_same_answers() -> None:
    twin = item(ItemType.SINGLE_CHOICE, required=True, options=SATISFACTION.options)
    for text in ("2", "very satisfied", "satisfed", "banana"):
        assert answer(twin, text) == answer(SATISFACTION, text)

"""Answer acceptance for choices, one definition for every channel: numbers, codes, labels in any
language, synonyms, misspellings and yes/no words, and button or form payloads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from questionnaires.answers import (
    Reason,
)
from questionnaires.model import AnswerValue, Item, ItemType, Option
from tests.questionnaires.answer_items import (
    APPOINTMENT,
    FEVER,
    NAME,
    PAIN,
    READINGS,
    RESULTS,
    SATISFACTION,
    STARS,
    TEMPERATURE,
    WOUND,
    accepted,
    item,
    rejected,
    tx,
)

# --- choices -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "code"),
    [
        ("1", "en", "very_satisfied"),
        ("5", "zh-CN", "very_dissatisfied"),
        ("３", "zh-CN", "neutral"),  # full-width
        ("2.", "vi", "satisfied"),
        ("(4)", "en", "dissatisfied"),
        ("第2个", "zh-CN", "satisfied"),
        ("số 2", "vi", "satisfied"),
        ("option 2", "en", "satisfied"),
        ("three", "en", "neutral"),
        ("三", "zh-CN", "neutral"),
        ("ba", "vi", "neutral"),
        ("very_satisfied", "en", "very_satisfied"),
        ("Very satisfied", "en", "very_satisfied"),
        ("VERY SATISFIED!", "en", "very_satisfied"),
        ("非常满意", "zh-CN", "very_satisfied"),
        ("非常满意", "en", "very_satisfied"),  # any language's text, whatever the session language
        ("Rất hài lòng", "zh-CN", "very_satisfied"),
        ("rat hai long", "vi", "very_satisfied"),  # without tone marks
        ("khong hai long", "vi", "dissatisfied"),
        ("不满意", "zh-CN", "dissatisfied"),
        ("so so", "en", "neutral"),  # synonyms
        ("还行", "zh-CN", "neutral"),
        ("tạm được", "vi", "neutral"),
        ("satisfed", "en", "satisfied"),  # misspellings
        ("very satisfed", "en", "very_satisfied"),
        ("dissatisifed", "en", "dissatisfied"),
        ("hai lonh", "vi", "satisfied"),
        ("I am very satisfied", "en", "very_satisfied"),  # a label inside a short sentence
        ("我很不满意", "zh-CN", "dissatisfied"),
        ("tôi rất hài lòng", "vi", "very_satisfied"),
    ],
)
def test_single_choice_accepts_numbers_codes_labels_synonyms_and_misspellings(
    text: str, lang: str, code: str
) -> None:
    assert accepted(SATISFACTION, text, lang) == code


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("6", Reason.UNKNOWN_OPTION),
        ("0", Reason.UNKNOWN_OPTION),
        ("six", Reason.UNKNOWN_OPTION),
        ("banana", Reason.NOT_UNDERSTOOD),
        ("not satisfied", Reason.NOT_UNDERSTOOD),  # a negated label is never that label
        ("不是很满意", Reason.NOT_UNDERSTOOD),
        ("1, 3", Reason.ONE_ONLY),
        ("1和3", Reason.ONE_ONLY),
        ("satisfied and dissatisfied", Reason.ONE_ONLY),
        ("satisfied or dissatisfied", Reason.AMBIGUOUS),
        ("", Reason.EMPTY),
        ("  ", Reason.EMPTY),
        ("?!", Reason.NOT_UNDERSTOOD),
    ],
)
def test_single_choice_refuses(text: str, reason: Reason) -> None:
    assert rejected(SATISFACTION, text).reason is reason


def test_a_close_misspelling_between_two_options_is_ambiguous() -> None:
    close = item(
        ItemType.SINGLE_CHOICE,
        options=(Option("a", tx("甲", "Một", "Pain in arm")), Option("b", tx("乙", "Hai", "Pain in arms"))),
    )
    assert rejected(close, "pain in arn").reason is Reason.AMBIGUOUS


@pytest.mark.parametrize(
    ("text", "lang", "code"),
    [
        ("yes", "en", "yes"),
        ("Y", "en", "yes"),
        ("ok", "en", "yes"),
        ("是的", "zh-CN", "yes"),
        ("有", "zh-CN", "yes"),
        ("vâng", "vi", "yes"),
        ("có", "vi", "yes"),
        ("发烧了", "zh-CN", "yes"),
        ("I have a fever", "en", "yes"),
        ("no", "en", "no"),
        ("nope", "en", "no"),
        ("没有", "zh-CN", "no"),
        ("不是", "zh-CN", "no"),
        ("không", "vi", "no"),
        ("ko", "vi", "no"),
        ("không sốt", "vi", "no"),
        ("no fever", "en", "no"),
        ("1", "en", "yes"),
        ("2", "vi", "no"),
    ],
)
def test_yes_no_options_accept_yes_and_no_words_in_every_language(text: str, lang: str, code: str) -> None:
    assert accepted(FEVER, text, lang) == code


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("1,3", ["none", "swelling"]),
        ("2, 3", ["redness", "swelling"]),
        ("2 3", ["redness", "swelling"]),
        ("3 2", ["redness", "swelling"]),  # in the options' order
        ("2，3", ["redness", "swelling"]),
        ("2、3", ["redness", "swelling"]),
        ("2和3", ["redness", "swelling"]),
        ("2 và 3", ["redness", "swelling"]),
        ("2 and 3", ["redness", "swelling"]),
        ("2,2", ["redness"]),
        ("４，５", ["bleeding", "discharge"]),
        ("2", ["redness"]),
        ("Redness", ["redness"]),
        ("redness, swelling", ["redness", "swelling"]),
        ("Redness and swelling", ["redness", "swelling"]),
        ("发红、肿胀", ["redness", "swelling"]),
        ("发红和出血", ["redness", "bleeding"]),
        ("tấy đỏ và sưng", ["redness", "swelling"]),
        ("Fluid or pus leaking", ["discharge"]),
        ("fluid or pus leaking, bleeding", ["bleeding", "discharge"]),
        ("redness, 4", ["redness", "bleeding"]),
        ("swelin", ["swelling"]),
        ("no problems", ["none"]),
    ],
)
def test_multiple_choice_accepts_lists_of_numbers_and_labels(text: str, codes: list[str]) -> None:
    assert accepted(WOUND, text) == codes


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2, 8", Reason.UNKNOWN_OPTION),
        ("0", Reason.UNKNOWN_OPTION),
        ("redness, banana", Reason.NOT_UNDERSTOOD),
        ("没有发红", Reason.NOT_UNDERSTOOD),
        (",,", Reason.NOT_UNDERSTOOD),
        ("", Reason.EMPTY),
    ],
)
def test_multiple_choice_refuses(text: str, reason: Reason) -> None:
    assert rejected(WOUND, text).reason is reason


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1", "once"),
        ("1次", "once"),
        ("2", "two_to_three"),
        ("2-3次", "two_to_three"),
        ("2–3 lần", "two_to_three"),
        ("4-6 times", "four_to_six"),
        ("once", "once"),
    ],
)
def test_dropdown_numbers_are_the_positions_shown_even_when_labels_hold_numbers(text: str, code: str) -> None:
    assert accepted(READINGS, text, "zh-CN") == code


def test_shown_numbers_win_over_numeric_codes() -> None:
    numeric = item(
        ItemType.SINGLE_CHOICE,
        options=(Option("1", tx("差", "Kém", "Poor")), Option("2", tx("好", "Tốt", "Good"))),
    )
    assert accepted(numeric, "1") == "1"
    assert accepted(numeric, "2") == "2"
    assert accepted(numeric, "good") == "2"


# --- payloads (buttons, form controls) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("it", "payload", "value"),
    [
        (SATISFACTION, "neutral", "neutral"),
        (SATISFACTION, ["neutral"], "neutral"),
        (WOUND, ["swelling", "redness"], ["redness", "swelling"]),
        (WOUND, "bleeding", ["bleeding"]),
        (PAIN, "7", 7),
        (STARS, "５", 5),
        (TEMPERATURE, "37,5", Decimal("37.5")),
        (APPOINTMENT, "2026-12-03", date(2026, 12, 3)),
        (NAME, "  Lan  ", "Lan"),
        (RESULTS, ["7.2", "70"], {"hba1c": "7.2", "weight": "70"}),
    ],
)
def test_a_payload_skips_text_parsing(it: Item, payload: str | list[str], value: AnswerValue) -> None:
    assert accepted(it, "whatever the button said", payload=payload) == value


@pytest.mark.parametrize(
    ("it", "payload", "reason"),
    [
        (SATISFACTION, "excellent", Reason.UNKNOWN_OPTION),
        (SATISFACTION, "1", Reason.UNKNOWN_OPTION),  # a payload is a code, not a position
        (SATISFACTION, ["satisfied", "neutral"], Reason.ONE_ONLY),
        (WOUND, ["redness", "infection"], Reason.UNKNOWN_OPTION),
        (PAIN, "seven", Reason.NOT_A_NUMBER),
        (PAIN, "11", Reason.OUT_OF_RANGE),
        (PAIN, ["3", "4"], Reason.NOT_A_NUMBER),
        (APPOINTMENT, "next tuesday", Reason.NOT_A_DATE),
        (NAME, "x" * 201, Reason.TOO_LONG),
        (RESULTS, ["1", "2", "3"], Reason.TOO_MANY_PARTS),
    ],
)
def test_a_payload_is_still_validated(it: Item, payload: str | list[str], reason: Reason) -> None:
    assert rejected(it, "", payload=payload).reason is reason


def test_an_empty_payload_falls_back_to_the_text() -> None:
    assert accepted(SATISFACTION, "2", payload=[]) == "satisfied"
    assert rejected(SATISFACTION, "", payload="  ").reason is Reason.EMPTY

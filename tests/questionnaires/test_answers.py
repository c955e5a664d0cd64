"""Answer acceptance, one definition for every channel: what each item type accepts (numbers, labels in
any language, synonyms, misspellings, words, dates, blanks, button payloads), what it refuses and why,
and that the re-prompt says so in the patient's language, from catalogues complete in all three."""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from questionnaires.answers import (
    MESSAGE_KEYS,
    Accepted,
    Messages,
    Reason,
    Rejected,
    accept,
    can_skip,
)
from questionnaires.model import LANGS, AnswerValue, Blank, Item, ItemType, Option

MESSAGES_DIR = Path(__file__).resolve().parents[2] / "content" / "questionnaires" / "messages"
TODAY = date(2026, 3, 11)  # a Wednesday


def load_messages() -> dict[str, dict[str, str]]:
    return {
        lang: yaml.safe_load((MESSAGES_DIR / f"{lang}.yaml").read_text(encoding="utf-8")) for lang in LANGS
    }


MESSAGES: Messages = load_messages()


def tx(zh: str, vi: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "vi": vi, "en": en}


def item(kind: ItemType, **fields: object) -> Item:
    return Item(id=f"q_{kind.value}", type=kind, text=tx("问题", "Câu hỏi", "Question"), **fields)  # type: ignore[arg-type]


SATISFACTION = item(
    ItemType.SINGLE_CHOICE,
    required=True,
    options=(
        Option("very_satisfied", tx("非常满意", "Rất hài lòng", "Very satisfied"), 5),
        Option("satisfied", tx("满意", "Hài lòng", "Satisfied"), 4),
        Option(
            "neutral",
            tx("一般", "Bình thường", "Neither satisfied nor dissatisfied"),
            3,
            {"en": ("ok", "so so"), "zh-CN": ("还行",), "vi": ("tạm được",)},
        ),
        Option("dissatisfied", tx("不满意", "Không hài lòng", "Dissatisfied"), 2),
        Option("very_dissatisfied", tx("非常不满意", "Rất không hài lòng", "Very dissatisfied"), 1),
    ),
)
FEVER = item(
    ItemType.SINGLE_CHOICE,
    options=(
        Option("yes", tx("有", "Có", "Yes"), words={"zh-CN": ("发烧了",), "en": ("i have a fever",)}),
        Option("no", tx("没有", "Không", "No"), words={"vi": ("không sốt",), "en": ("no fever",)}),
    ),
)
WOUND = item(
    ItemType.MULTIPLE_CHOICE,
    options=(
        Option("none", tx("没有异常", "Không có gì bất thường", "No problems")),
        Option("redness", tx("发红", "Tấy đỏ", "Redness")),
        Option("swelling", tx("肿胀", "Sưng", "Swelling")),
        Option("bleeding", tx("出血", "Chảy máu", "Bleeding")),
        Option("discharge", tx("有渗液或流脓", "Rỉ dịch hoặc chảy mủ", "Fluid or pus leaking")),
    ),
)
READINGS = item(
    ItemType.DROPDOWN,
    options=(
        Option("once", tx("1次", "1 lần", "Once")),
        Option("two_to_three", tx("2–3次", "2–3 lần", "2–3 times")),
        Option("four_to_six", tx("4–6次", "4–6 lần", "4–6 times")),
    ),
)
STARS = item(ItemType.STAR_RATING, maximum=Decimal(5))
PAIN = item(ItemType.SCALE, minimum=Decimal(0), maximum=Decimal(10))
SYSTOLIC = item(ItemType.INTEGER, minimum=Decimal(60), maximum=Decimal(280))
COUNT = item(ItemType.INTEGER, minimum=Decimal(0))
ANY_INTEGER = item(ItemType.INTEGER)
TEMPERATURE = item(ItemType.DECIMAL, minimum=Decimal(35), maximum=Decimal(42))
GLUCOSE = item(ItemType.DECIMAL, minimum=Decimal(1), maximum=Decimal("33.3"))
APPOINTMENT = item(ItemType.DATE)
NAME = item(ItemType.SHORT_TEXT)
COMMENTS = item(ItemType.LONG_TEXT)
RESULTS = item(
    ItemType.MULTI_BLANK,
    blanks=(
        Blank("hba1c", tx("糖化血红蛋白（%）", "Chỉ số HbA1c (%)", "HbA1c (%)")),
        Blank("weight", tx("体重（公斤）", "Cân nặng (kg)", "Weight (kg)")),
    ),
)
ONE_BLANK = item(ItemType.MULTI_BLANK, blanks=(Blank("where", tx("地点", "Nơi", "Where")),))
EVERY_ANSWERABLE = [
    SATISFACTION,
    FEVER,
    WOUND,
    READINGS,
    STARS,
    PAIN,
    SYSTOLIC,
    TEMPERATURE,
    APPOINTMENT,
    NAME,
    COMMENTS,
    RESULTS,
]


def answer(
    it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None
) -> Accepted | Rejected:
    return accept(it, text, lang, today=TODAY, messages=MESSAGES, payload=payload)


def accepted(it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None) -> AnswerValue:
    result = answer(it, text, lang, payload)
    assert isinstance(result, Accepted), result
    return result.value


def rejected(it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None) -> Rejected:
    result = answer(it, text, lang, payload)
    assert isinstance(result, Rejected), result
    return result


# --- the catalogues ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_key_exists_in_every_language(lang: str) -> None:
    assert set(MESSAGES[lang]) == MESSAGE_KEYS


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(MESSAGE_KEYS))
def test_every_message_takes_the_same_placeholders_in_every_language(key: str) -> None:
    assert (
        fields_of(MESSAGES["zh-CN"][key]) == fields_of(MESSAGES["vi"][key]) == fields_of(MESSAGES["en"][key])
    )


def test_every_reason_has_a_problem_message() -> None:
    assert {f"problem.{reason.value}" for reason in Reason} <= MESSAGE_KEYS


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


# --- re-prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("it", "text", "lang", "reprompt"),
    [
        (
            PAIN,
            "11",
            "en",
            "Sorry, 11 is outside the range for this question. Please reply with a number from 0 to 10.",
        ),
        (PAIN, "11", "zh-CN", "抱歉，11 超出了本题的范围。请回复 0 到 10 之间的数字。"),
        (
            PAIN,
            "11",
            "vi",
            "Xin lỗi, 11 nằm ngoài phạm vi của câu hỏi này. Vui lòng trả lời một số từ 0 đến 10.",
        ),
        (
            GLUCOSE,
            "40,5",
            "vi",
            "Xin lỗi, 40,5 nằm ngoài phạm vi của câu hỏi này. Vui lòng trả lời một số từ 1 đến 33,3.",
        ),
        (
            SYSTOLIC,
            "12.5",
            "en",
            "Sorry, 12.5 is not a whole number. Please reply with a whole number from 60 to 280.",
        ),
        (
            COUNT,
            "abc",
            "en",
            "Sorry, I could not find a number in your reply. Please reply with a whole number of 0 or more.",
        ),
        (STARS, "6", "zh-CN", "抱歉，6 超出了本题的范围。请回复 1 到 5 之间的星数。"),
        (
            FEVER,
            "maybe",
            "en",
            "Sorry, I did not quite understand your answer. Please reply 1 for “Yes” or 2 for “No”.",
        ),
        (FEVER, "maybe", "zh-CN", "抱歉，没有看懂您的回答。请回复 1 表示“有”，或回复 2 表示“没有”。"),
        (
            SATISFACTION,
            "9",
            "vi",
            "Xin lỗi, không có lựa chọn này. Vui lòng trả lời bằng số thứ tự của câu trả lời, từ 1 đến 5.",
        ),
        (WOUND, "", "zh-CN", "您的回复好像是空的。请回复所有符合情况的答案序号，用逗号隔开，例如：1，3。"),
        (
            APPOINTMENT,
            "soon",
            "vi",
            "Xin lỗi, tôi chưa rõ bạn muốn nói ngày nào. "
            "Vui lòng trả lời một ngày, ví dụ “25/12” hoặc “thứ ba tuần sau”.",
        ),
        (
            NAME,
            "x" * 201,
            "en",
            "Sorry, your answer is a little too long. Please keep it under 200 characters.",
        ),
        (
            RESULTS,
            "1;2;3",
            "zh-CN",
            "抱歉，您回复的内容比本题需要填写的项目多。请按以下顺序填写，每行一项或用“；”隔开：糖化血红蛋白（%）、体重（公斤）。",
        ),
    ],
)
def test_the_reprompt_says_what_was_wrong_and_how_to_answer_in_the_patients_language(
    it: Item, text: str, lang: str, reprompt: str
) -> None:
    assert rejected(it, text, lang).reprompt == reprompt


BAD_ANSWER = {ItemType.SHORT_TEXT: "x" * 201, ItemType.LONG_TEXT: "x" * 2001, ItemType.MULTI_BLANK: "1;2;3"}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("it", EVERY_ANSWERABLE, ids=lambda it: it.type.value)
def test_every_item_type_has_a_reprompt_in_every_language(it: Item, lang: str) -> None:
    bad = BAD_ANSWER.get(it.type, "?")
    reprompt = rejected(it, bad, lang).reprompt
    assert reprompt and "{" not in reprompt
    other = [other for other in LANGS if other != lang]
    assert all(reprompt != rejected(it, bad, o).reprompt for o in other)


def test_an_unknown_language_gets_english() -> None:
    assert rejected(PAIN, "11", "fr").reprompt == rejected(PAIN, "11", "en").reprompt

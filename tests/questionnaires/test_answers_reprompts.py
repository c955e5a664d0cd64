"""The re-prompt says what was wrong and how to answer, in the patient's language, from catalogues
complete in all three."""

from __future__ import annotations

import string

import pytest

from questionnaires.answers import (
    MESSAGE_KEYS,
    Reason,
)
from questionnaires.model import LANGS, Item, ItemType
from tests.questionnaires.answer_items import (
    APPOINTMENT,
    COUNT,
    EVERY_ANSWERABLE,
    FEVER,
    GLUCOSE,
    MESSAGES,
    NAME,
    PAIN,
    RESULTS,
    SATISFACTION,
    STARS,
    SYSTOLIC,
    WOUND,
    rejected,
)

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

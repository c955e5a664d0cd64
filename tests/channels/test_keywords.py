"""STOP/START/HELP keywords: whole message only, in three languages, forgiving of case, width and marks."""

from __future__ import annotations

import pytest

from channels.keywords import Keyword, keyword_of


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOP!",
        "Ｓｔｏｐ",  # full width, as Chinese input methods type it
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "Cancel",
        "END",
        "quit",
        "退订",
        "退订。",
        "「退订」",
        "退 订",
        "TD",
        "td",
        "ＴＤ",
        "取消订阅",
        "HỦY",
        "hủy",
        "Huỷ",  # the older tone placement
        "HUY",
        "DỪNG",
        "Dừng!",
        "DUNG",
        "dung",
        "TỪ CHỐI",
        "tu choi",
        "Hủy đăng ký",
        "STOP 🙏",
    ],
)
def test_opt_out_words_are_stop(text: str) -> None:
    assert keyword_of(text) is Keyword.STOP


@pytest.mark.parametrize(
    "text", ["START", "start", "Unstop", "订阅", "重新订阅", "BẮT ĐẦU", "bat dau", "Bắt đầu."]
)
def test_opt_in_words_are_start(text: str) -> None:
    assert keyword_of(text) is Keyword.START


@pytest.mark.parametrize(
    "text", ["HELP", "help?", "INFO", "帮助", "帮助？", "TRỢ GIÚP", "tro giup", "Ｈｅｌｐ"]
)
def test_help_words_are_help(text: str) -> None:
    assert keyword_of(text) is Keyword.HELP


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop my medicine",
        "stop the pain please",
        "I want to stop smoking",
        "我不想退订",
        "请不要停药",
        "không muốn dừng thuốc",
        "help me I can't breathe",  # an emergency, for the safety rules, not a HELP keyword
        "",
        "   ",
        "1",
        "stops",
        "stopp",
    ],
)
def test_a_message_that_merely_contains_the_word_is_not_a_keyword(text: str) -> None:
    assert keyword_of(text) is None


@pytest.mark.parametrize("text", ["Đúng", "ĐÚNG", "đúng rồi", "Dũng"])
def test_vietnamese_words_that_lose_their_marks_to_a_keyword_are_not_that_keyword(text: str) -> None:
    # "Đúng" (correct/yes) and "Dũng" (a name) fold to "dung" like "Dừng" (stop) does.
    assert keyword_of(text) is None


@pytest.mark.parametrize("text", ["YES", "Có", "取消", "đăng ký", "好"])
def test_answers_that_some_providers_treat_as_keywords_stay_answers(text: str) -> None:
    assert keyword_of(text) is None


def test_keyword_values_are_stable_strings() -> None:
    assert [k.value for k in Keyword] == ["stop", "start", "help"]

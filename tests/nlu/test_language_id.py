"""The message-language detector: clear messages get their language, short and mixed ones none."""

from __future__ import annotations

import pytest

from nlu.language_id import detect, message_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("My chest hurts and I cannot breathe", "en"),
        ("I feel fine today, thank you", "en"),
        ("tôi bị đau ngực dữ dội", "vi"),
        ("toi bi dau bung qua", "vi"),  # Vietnamese typed without diacritics
        ("Tôi muốn đặt lịch khám", "vi"),
        ("我胸口很痛，喘不过气", "zh-CN"),
        ("我想改一下预约的时间", "zh-CN"),
    ],
)
def test_clear_messages_are_recognised(text: str, lang: str) -> None:
    found = detect(text)
    assert found.lang == lang and found.confident
    assert message_language(text, "fallback") == lang


@pytest.mark.parametrize(
    "text",
    ["ok", "yes please", "胸痛", "chest pain", "🙂", "???", "12345", "我的chest很痛", "I need bác sĩ now"],
)
def test_short_or_mixed_messages_are_not_clear_and_keep_the_records_language(text: str) -> None:
    assert not detect(text).confident
    assert message_language(text, "vi") == "vi"

"""Symptom words in three languages, with or without Vietnamese diacritics, whole words only."""

from __future__ import annotations

import pytest

from nlu.symptoms import mentions_symptom


@pytest.mark.parametrize(
    "text",
    [
        "the wound looks weird",
        "my stomach feels strange",
        "伤口怪怪的",
        "我肚子不舒服",
        "vết mổ hơi lạ",
        "vet mo hoi la",
        "tôi thấy mệt",
        "dau bung qua",
    ],
)
def test_symptom_words_are_found(text: str) -> None:
    assert mentions_symptom(text)


@pytest.mark.parametrize(
    "text",
    ["where do I park", "I met the doctor", "a trip to spain", "🙂", "???", "预约时间", "cho tôi hỏi giờ"],
)
def test_everyday_words_are_not_symptoms(text: str) -> None:
    assert not mentions_symptom(text)

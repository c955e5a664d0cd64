"""Normalisation before the safety rules: widths, scripts, apostrophes, chat spellings, Vietnamese marks."""

from __future__ import annotations

import pytest

from nlu import safety_text
from nlu.safety_text import accepts, fold, plain


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ＣＨＥＳＴ　ＰＡＩＮ", "chest pain"),  # full-width letters and ideographic space
        ("胸口痛，出冷汗！", "胸口痛,出冷汗!"),  # full-width punctuation
        ("傷口化膿了，全身發冷", "伤口化脓了,全身发冷"),  # traditional to simplified
        ("喉嚨腫起來", "喉咙肿起来"),
        ("I can’t breathe", "i cant breathe"),  # typographic apostrophe, then dropped
        ("can't", "cant"),
        ("self-harm", "self harm"),
        ("soooo much pain", "soo much pain"),
        ("ko tho dc nua", "không tho được nua"),  # Vietnamese chat spellings
        ("k thở đc", "không thở được"),
        ("  lots   of\tspace ", "lots of space"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_plain_lines_up_with_the_folded_text() -> None:
    for text in ["tôi bị khó thở", "Đau ngực dữ dội", "胸口痛 and khó thở", "ƯỚC GÌ"]:
        folded = fold(text)
        assert len(plain(folded)) == len(folded)
    assert plain(fold("Đau ngực, khó thở")) == "dau nguc, kho tho"


@pytest.mark.parametrize(
    ("term", "span", "same"),
    [
        ("khó thở", "kho tho", True),  # no marks typed at all
        ("khó thở", "kho thở", True),  # some marks typed
        ("tự tử", "từ từ", False),  # "slowly" is not "suicide": a mark that is not the term's own
        ("dừng", "đúng", False),  # "correct" is not "stop"
        ("xỉu", "xíu", False),  # "a little" is not "faint"
        ("họng", "hồng", False),  # "pink" is not "throat"
        ("hôi", "hơi", False),  # "a bit" is not "smelly"
        ("ngất", "ngắt", False),  # "cut off" is not "faint"
    ],
)
def test_marks_decide_when_plain_forms_collide(term: str, span: str, same: bool) -> None:
    assert accepts(fold(term), fold(span)) is same


def test_marked_only_terms_need_a_mark() -> None:
    assert not accepts("ngất", "ngat", marked_only=True)
    assert accepts("ngất", "ngất", marked_only=True)


def test_without_opencc_a_builtin_table_folds_the_rule_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    def fallback(text: str) -> str:
        return text.translate(safety_text._T2S_FALLBACK)

    monkeypatch.setattr(safety_text, "_converter", lambda: fallback)
    safety_text.fold.cache_clear()
    try:
        assert fold("傷口化膿，頭暈，喉嚨腫") == "伤口化脓,头晕,喉咙肿"
    finally:
        safety_text.fold.cache_clear()

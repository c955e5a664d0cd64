"""Deterministic answer parsing: text normalised for matching, and yes/no in three languages (options are
matched by questionnaires.options, on every channel)."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[\s\.,!?;:'\"()\[\]{}。，！？；：、“”‘’（）【】~～…-]+")

# Whole-message affirmations and negations, matched after normalise(); per language, then merged,
# because patients answer in whichever language comes to hand.
YES_WORDS = {
    "en": {"yes", "y", "yeah", "yep", "ok", "okay", "sure", "agree", "i agree", "of course"},
    "zh-CN": {"是", "是的", "好", "好的", "同意", "我同意", "可以", "行", "对", "嗯", "要", "愿意"},
    "vi": {
        "có",
        "co",
        "đồng ý",
        "dong y",
        "vâng",
        "vang",
        "dạ",
        "da",
        "ừ",
        "được",
        "duoc",
        "ok",
        "tôi đồng ý",
    },
}
NO_WORDS = {
    "en": {"no", "n", "nope", "disagree", "i disagree", "not now", "don't", "do not"},
    "zh-CN": {"不", "否", "不是", "不同意", "不要", "不用", "不行", "不可以", "不愿意", "没有"},
    "vi": {"không", "khong", "ko", "k", "không đồng ý", "khong dong y", "thôi", "không muốn"},
}
_ALL_YES = set().union(*YES_WORDS.values())
_ALL_NO = set().union(*NO_WORDS.values())


def normalise(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII), case-folded, punctuation and spacing collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub(" ", folded).strip()


def parse_yes_no(text: str) -> bool | None:
    norm = normalise(text)
    if norm in _ALL_YES:
        return True
    if norm in _ALL_NO:
        return False
    return None


"""Whether a message mentions a bodily symptom at all, in zh-CN, vi or en; pure, no models.

Not a safety rule (nlu/safety.py decides emergencies): a coarse net for messages the bot could not read.
A patient who is not understood twice and names a symptom ("the wound is weird", "伤口怪怪的") is handed
to staff at a higher priority than one asking about parking. Vietnamese matches with or without
diacritics; Latin-script words match whole words, Chinese anywhere.
"""

from __future__ import annotations

import re
import unicodedata

_WORDS = {
    "en": (
        "pain", "painful", "hurt", "hurts", "hurting", "ache", "aching", "sore", "fever", "temperature",
        "bleed", "bleeding", "blood", "swelling", "swollen", "dizzy", "dizziness", "vomit", "vomiting",
        "nausea", "sick", "cough", "coughing", "rash", "itch", "itchy", "headache", "diarrhea", "diarrhoea",
        "constipated", "wound", "stitches", "incision", "pus", "numb", "weak", "weakness", "breath",
        "breathless", "faint", "tired", "palpitations", "chest", "stomach", "infection", "red", "cramp",
    ),
    "zh-CN": (
        "痛", "疼", "发烧", "发热", "烧", "出血", "流血", "血", "肿", "头晕", "晕", "呕吐", "吐", "恶心",
        "咳", "皮疹", "疹", "痒", "腹泻", "拉肚子", "便秘", "伤口", "刀口", "流脓", "脓", "麻", "无力",
        "乏力", "气短", "气急", "喘", "胸闷", "心慌", "心悸", "不舒服", "难受", "红肿", "感染", "抽筋",
    ),
    "vi": (
        "đau", "nhức", "sốt", "chảy máu", "ra máu", "máu", "sưng", "phù", "chóng mặt", "choáng", "nôn",
        "ói", "buồn nôn", "ho", "phát ban", "ngứa", "tiêu chảy", "táo bón", "vết mổ", "vết thương", "mủ",
        "tê", "yếu", "mệt", "khó thở", "hụt hơi", "tức ngực", "hồi hộp", "khó chịu", "nhiễm trùng",
        "chuột rút", "đỏ",
    ),
}  # fmt: skip
# Vietnamese words whose unmarked form is an everyday English word ("do", "met", "non"): marks required.
_MARKED_ONLY = frozenset({"đỏ", "mệt", "nôn"})


def _plain(text: str) -> str:
    text = text.replace("đ", "d")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).casefold())


def _words(words: list[str]) -> re.Pattern[str]:
    """Whole words only (a letter of any script next to it is part of another word)."""
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])")


def _compile() -> tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...]]:
    plain, marked, han = [], [], []
    for words in _WORDS.values():
        for word in words:
            folded = _fold(word)
            if any("\u4e00" <= ch <= "\u9fff" for ch in folded):
                han.append(folded)
            elif word in _MARKED_ONLY:
                marked.append(folded)
            else:
                plain.append(_plain(folded))
    return _words(plain), _words(marked), tuple(han)


_PLAIN, _MARKED, _HAN = _compile()


def mentions_symptom(text: str) -> bool:
    """True when any symptom word of any of our languages appears in the message."""
    folded = _fold(text)
    return (
        any(word in folded for word in _HAN)
        or bool(_PLAIN.search(_plain(folded)))
        or bool(_MARKED.search(folded))
    )

"""Which of our three languages a message is written in, with a confidence; pure, no models.

Replies follow the message's language only when it is clear, so a Chinese patient who writes one English
word is still answered in Chinese, and one message never changes the patient's recorded language.

- Chinese: Han characters. Three or more, and little Latin text beside them.
- Vietnamese: Latin words carrying Vietnamese letters (ă â đ ê ô ơ ư and the tone marks), or, typed
  without diacritics, common Vietnamese syllables ("toi bi dau nguc").
- English: Latin words without those marks, with common English words among them.
Short messages (fewer than three words, fewer than three Han characters) and mixed ones are not clear.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CONFIDENT = 0.8
MIN_WORDS = 3
MIN_HAN = 3

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Letters only Vietnamese uses among our languages (lower case, NFC): the modified vowels and đ, and any
# vowel carrying a tone mark (grave, acute, hook, tilde, dot below).
_VI_BASE = set("ăâđêôơư")
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
# Frequent Vietnamese syllables written without diacritics, chosen to be rare as English words.
_VI_PLAIN_WORDS = (
    "toi khong ko bi dau nguc tho kho duoc cua minh nhung nhieu qua rat roi chua benh vien bac si thuoc "
    "em anh chi ong cho voi nay nguoi lam viec bung sot met chong mat ngay hom nao sao gi vay "
    "muon chet song va cac mot hai dang phai"
)
_VI_PLAIN = frozenset(_VI_PLAIN_WORDS.split())
_EN_LIST = (
    "the i im my me is am are was and to a an of have has had it in on at can cant not dont "
    "do does with for you this that be been feel feeling pain please help what when where why how "
    "he she we they our your his her from about just very so but or if no yes chest breathe hurts"
)
_EN_WORDS = frozenset(_EN_LIST.split())


@dataclass(frozen=True, slots=True)
class Detected:
    lang: str | None  # "zh-CN", "vi", "en", or None when nothing points anywhere
    confidence: float  # 0..1

    @property
    def confident(self) -> bool:
        return self.lang is not None and self.confidence >= CONFIDENT


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def _vietnamese_marked(word: str) -> bool:
    if any(ch in _VI_BASE for ch in word):
        return True
    return any(mark in _TONES for mark in unicodedata.normalize("NFD", word))


def detect(text: str) -> Detected:
    """The message's language and how sure we are."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    han = sum(1 for ch in folded if _is_han(ch))
    words = _WORD.findall("".join(" " if _is_han(ch) else ch for ch in folded))
    if han:
        if han < MIN_HAN:
            return Detected("zh-CN", 0.5)
        # each Latin word weighs like two characters: "我的chest很痛" is mixed, "我胸口很痛，喘不过气" is not
        return Detected("zh-CN", han / (han + 2 * len(words)))
    if len(words) < MIN_WORDS:
        return Detected(None, 0.0)
    marked = sum(1 for w in words if _vietnamese_marked(w))
    plain_vi = sum(1 for w in words if w in _VI_PLAIN)
    english = sum(1 for w in words if w in _EN_WORDS)
    vietnamese = (marked + plain_vi) / len(words)  # the share of words that read as Vietnamese
    if marked or plain_vi > english:
        return Detected("vi", vietnamese)
    if english:
        return Detected("en", 1.0 - vietnamese)
    return Detected(None, 0.0)


def message_language(text: str, fallback: str) -> str:
    """The language to answer this message in: its own when clear, else `fallback` (the patient's)."""
    found = detect(text)
    return found.lang if found.confident and found.lang is not None else fallback

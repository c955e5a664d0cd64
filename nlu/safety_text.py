"""Normalisation for the safety rules: one folded form of a message that every rule matches against.

- NFKC (full-width letters, digits and punctuation become half-width), case folding, typographic
  apostrophes and dashes unified; apostrophes dropped so "can't", "cant" and "can’t" are one word.
- Traditional Chinese to simplified with OpenCC ("傷口化膿" is "伤口化脓"); without OpenCC a small
  built-in table covers the characters the rules use, so the rules never depend on it.
- Letters repeated three times or more are cut to two ("sooo" is "soo", "helppp" is "helpp").
- Vietnamese keeps its marks in the folded form; `plain` strips them character by character so the
  two line up, and `accepts` decides whether a span typed with or without marks is a rule's term:
  each character is either the term's own or unmarked ("kho thở" is "khó thở"; "từ từ" is not "tự tử").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache, lru_cache

# Regular expressions rather than str.translate with a table: translate looks every character up in a
# dict, 80-170 µs for 4 KB against 10-25 µs.
_APOSTROPHES = re.compile("['‘’`´]")
_DASHES = re.compile("[-_–—\u3000]")
_REPEATS = re.compile(r"([a-z])\1{2,}")
# Vietnamese chat spellings: "ko tho dc" is "không thở được", "j" is "gì".
_TEEN_CODE = {"ko": "không", "k": "không", "kg": "không", "khg": "không", "hok": "không", "hông": "không",
              "dc": "được", "đc": "được", "dk": "được", "đk": "được", "j": "gì"}  # fmt: skip
_TEEN_WORD = re.compile(r"\b(?:" + "|".join(sorted(_TEEN_CODE, key=len, reverse=True)) + r")\b")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = "0-9a-z\u00c0-\u024f\u1e00-\u1eff"

# Used only when OpenCC is not installed: the traditional forms of characters the rules rely on.
_T2S_FALLBACK = str.maketrans(
    "傷腫喉嚨發燒頭暈過氣話說動腳邊臟絞悶壓緊膿熱癇殺輕藥劑產懷週寶兒識來體殘沒樣麼這們會應讓還個"
    "歲嘔裡裏幾點鐘開術後麻無斷聽見慢劇烈癢紅圍風際厲嚴當決單從爾吞瓶腦衛師為難礙續臉導邏歡",
    "伤肿喉咙发烧头晕过气话说动脚边脏绞闷压紧脓热痫杀轻药剂产怀周宝儿识来体残没样么这们会应让还个"
    "岁呕里里几点钟开术后麻无断听见慢剧烈痒红围风际厉严当决单从尔吞瓶脑卫师为难碍续脸导逻欢",
)


@cache
def _converter() -> Callable[[str], str]:
    try:
        import opencc

        convert: Callable[[str], str] = opencc.OpenCC("t2s").convert
        return convert
    except Exception:  # missing package or data: the built-in table still folds the rule characters
        return lambda text: text.translate(_T2S_FALLBACK)


def to_simplified(text: str) -> str:
    # OpenCC keeps 著 (it is also a simplified character), but in messages it is almost always the
    # aspect particle 着 written the traditional way ("躺著", "捂著胸口"): the rules' terms use 着.
    return _converter()(text).replace("著", "着") if _HAN.search(text) else text


@lru_cache(maxsize=32)
def fold(text: str) -> str:
    """NFKC, case-folded, simplified Chinese, apostrophes dropped, dashes as spaces, whitespace collapsed."""
    if not unicodedata.is_normalized("NFKC", text):  # the check is nearly free; normalising 4 KB is not
        text = unicodedata.normalize("NFKC", text)
    folded = _DASHES.sub(" ", _APOSTROPHES.sub("", text.casefold()))
    folded = _REPEATS.sub(r"\1\1", to_simplified(folded))
    folded = _TEEN_WORD.sub(lambda m: _TEEN_CODE[m.group()], folded)
    return " ".join(folded.split())


def strip_mark(ch: str) -> str:
    if ch == "đ":
        return "d"
    return unicodedata.normalize("NFD", ch)[0]


_PLAIN = str.maketrans(
    {chr(c): strip_mark(chr(c)) for c in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)] if chr(c).islower()}
)


_MARKED = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")


@lru_cache(maxsize=32)
def plain(folded: str) -> str:
    """Diacritics removed character by character, so positions line up with the folded text."""
    return folded.translate(_PLAIN) if _MARKED.search(folded) else folded


def has_marks(text: str) -> bool:
    return plain(text) != text


def accepts(term: str, span: str, *, marked_only: bool = False) -> bool:
    """True when `span` (folded) is `term` (folded) typed with, without or with some of its marks."""
    if marked_only and not has_marks(span):
        return False
    return all(s == t or s == strip_mark(s) for s, t in zip(span, term, strict=True))


def is_word_char(ch: str) -> bool:
    """A letter or digit of a Latin-script word (English, Vietnamese): where whole-word matching applies."""
    return ch.isascii() and ch.isalnum()


LATIN_WORD_CLASS = _LATIN_WORD


def trim(folded: str) -> str:
    """The whole message without surrounding punctuation, symbols (emoji) and spaces."""
    start, end = 0, len(folded)
    while start < end and unicodedata.category(folded[start])[0] in "PSZC":
        start += 1
    while end > start and unicodedata.category(folded[end - 1])[0] in "PSZC":
        end -= 1
    return folded[start:end]

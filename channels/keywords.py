"""SMS/WhatsApp control keywords (STOP, START, HELP) in English, Chinese and Vietnamese, whole message only.

A message is a keyword only when, after trimming surrounding punctuation, symbols and spaces, the whole
of it is one: "stop", "STOP!", "Ｓｔｏｐ" (full width), "退订。", "Dừng", "DUNG" are; "please don't stop
my medicine" is not. Case and character width never matter; spaces inside do not either ("TU CHOI",
"退 订").

Diacritics: a message typed *without* them matches the plain form ("HUY", "DUNG", "BAT DAU"), but a
message that carries diacritics must carry the keyword's own: "Đúng" ("correct", a common answer) must
not read as "Dừng" (stop), though both lose their marks to "dung". Both Vietnamese tone placements are
accepted ("hủy" and "huỷ").

Deliberately not keywords: Twilio's opt-in "YES" and bare "取消"/"đăng ký" (answers in surveys and the
booking flows: yes, cancel the appointment, register); STOP/START/HELP that arrive inside a sentence go
to the safety rules in `nlu`, not here.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


_WORDS: dict[Keyword, tuple[str, ...]] = {
    Keyword.STOP: (
        # English (Twilio's standard opt-out set plus its newer additions)
        "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "optout", "opt out",
        "revoke",
        # Chinese: 退订 and the carriers' "回复TD退订" convention
        "退订", "td", "取消订阅", "退订短信", "停止", "停止发送", "退定",
        # Vietnamese
        "hủy", "huỷ", "huy", "dừng", "dung", "từ chối", "tu choi", "hủy đăng ký", "huỷ đăng ký",
        "huy dang ky", "ngừng", "ngung", "dừng lại", "dung lai",
    ),
    Keyword.START: (
        "start", "unstop", "subscribe", "resume",
        "订阅", "重新订阅", "恢复订阅", "开始",
        "bắt đầu", "bat dau", "tiếp tục nhận", "tiep tuc nhan",
    ),
    Keyword.HELP: (
        "help", "info",
        "帮助", "幫助", "客服帮助",
        "trợ giúp", "tro giup", "giúp đỡ", "giup do", "hỗ trợ", "ho tro",
    ),
}  # fmt: skip

_TRIM_CATEGORIES = ("P", "S", "Z", "C")  # punctuation, symbols (emoji), separators, controls


def _fold(text: str) -> str:
    """Width- and case-folded, trimmed of punctuation/symbols at both ends, inner spaces removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and unicodedata.category(folded[start])[0] in _TRIM_CATEGORIES:
        start += 1
    while end > start and unicodedata.category(folded[end - 1])[0] in _TRIM_CATEGORIES:
        end -= 1
    return "".join(ch for ch in folded[start:end] if not ch.isspace())


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _has_marks(text: str) -> bool:
    return "đ" in text or any(unicodedata.combining(ch) for ch in unicodedata.normalize("NFD", text))


def _index() -> tuple[dict[str, Keyword], dict[str, Keyword]]:
    exact: dict[str, Keyword] = {}
    plain: dict[str, Keyword] = {}
    for keyword, words in _WORDS.items():
        for word in words:
            folded = unicodedata.normalize("NFC", _fold(word))
            exact[folded] = keyword
            plain.setdefault(_strip_marks(folded), keyword)
    return exact, plain


_EXACT, _PLAIN = _index()


def keyword_of(text: str) -> Keyword | None:
    """The control keyword the whole message is, or None (it is an ordinary message)."""
    folded = unicodedata.normalize("NFC", _fold(text))
    if not folded or len(folded) > 24:
        return None
    if folded in _EXACT:
        return _EXACT[folded]
    if _has_marks(folded):
        return None  # marks present but not the keyword's own ("đúng" is not "dừng")
    return _PLAIN.get(folded)

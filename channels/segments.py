"""SMS encoding and segmentation: GSM-7 or UCS-2, and where a long text is cut into concatenated parts.

Used to count what a message costs before it goes (pre-flight, previews) and by gateways that want
pre-split parts. The rules are those of GSM 03.38 / 3GPP TS 23.038 as carriers and Twilio apply them:

- GSM-7: 160 septets in a single message, 153 per part of a concatenated one (the UDH takes 7).
  Characters of the extension table (``^ { } [ ] ~ \\ | €`` and form feed) cost two septets (escape +
  char) and are never split from their escape, so a part never ends half-way through one.
- UCS-2: 70 code units in a single message, 67 per part. Counted in UTF-16 code units, as handsets
  and carriers do: an emoji outside the BMP costs two and its surrogate pair is never split.
- One character outside GSM-7 (Chinese, Vietnamese letters with diacritics, an emoji, a curly quote)
  makes the whole message UCS-2.

Parts are cut at the last whitespace that fits within the last quarter of the part (the whitespace
stays at the end of the earlier part; looking further back would waste space and can add a part),
else between characters but never before a combining mark, a zero-width joiner or a variation
selector (so "e" + U+0301 or a ZWJ emoji sequence stays whole where possible). The parts joined give
back the text exactly.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

_JOINERS = frozenset("\u200d\u200c\u034f")  # ZWJ, ZWNJ, combining grapheme joiner


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 basic or extension table, else UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return "GSM-7"
    return "UCS-2"


def _cost(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def length_in_units(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes, in its own encoding."""
    encoding = encoding_of(text)
    return sum(_cost(ch, encoding) for ch in text)


def _glued_to_previous(ch: str) -> bool:
    """True when cutting just before `ch` would break a visible character apart."""
    return (
        unicodedata.combining(ch) != 0
        or ch in _JOINERS
        or 0xFE00 <= ord(ch) <= 0xFE0F  # variation selectors (emoji presentation)
        or 0x1F3FB <= ord(ch) <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= ord(ch) <= 0xE007F  # tag characters (subdivision flags)
    )


def split_segments(text: str) -> list[str]:
    """The parts a carrier delivers `text` in: one part when it fits a single message; [] for ""."""
    if not text:
        return []
    encoding = encoding_of(text)
    costs = [_cost(ch, encoding) for ch in text]
    single, per_part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    if sum(costs) <= single:
        return [text]

    parts: list[str] = []
    start = 0
    while start < len(text):
        end, used = start, 0
        while end < len(text) and used + costs[end] <= per_part:
            used += costs[end]
            end += 1
        if end < len(text):
            end = _best_cut(text, start, end)
        parts.append(text[start:end])
        start = end
    return parts


def _best_cut(text: str, start: int, limit: int) -> int:
    """Where to end the part text[start:limit] that overflows: after whitespace, else a safe boundary."""
    floor = start + (limit - start) * 3 // 4
    for cut in range(limit, max(floor, start + 1) - 1, -1):
        if text[cut - 1].isspace():
            return cut
    for cut in range(limit, start, -1):
        if not _glued_to_previous(text[cut]) and text[cut - 1] not in _JOINERS:
            return cut
    return limit  # one unbreakable cluster longer than a part: cut it, there is no better choice

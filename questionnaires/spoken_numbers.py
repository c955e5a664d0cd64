"""Numbers as words for voice prompts and recognition grammars, from each language's word list.

The words come from the voice phrase files (content/questionnaires/voice/<lang>.yaml, keys `numbers.*`);
how they combine is a per-language rule here, chosen by `numbers.style`: en (twenty one, one hundred
five), zh (二十一, 一百零五, 一百一十), vi (hai mươi mốt, mười lăm, một trăm lẻ năm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

LIMIT = 999_999  # wide enough for any answer range a call can sensibly listen for
REQUIRED = {
    "en": ("ones", "tens", "hundred", "thousand", "point"),
    "zh": ("ones", "ten", "hundred", "thousand", "ten_thousand", "point"),
    "vi": ("ones", "ten", "tens_suffix", "one_after_tens", "five_after_tens", "hundred", "zero_tens",
           "thousand", "point"),
}  # fmt: skip


def words_of(raw: Any) -> tuple[str, ...]:
    """A word list from a phrase table: "a|b|c" (tables hold strings only) or a YAML list."""
    items = raw.split("|") if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else None
    if items is None:
        raise ValueError(f"expected words separated by |, got {raw!r}")
    return tuple(word for word in (str(item).strip() for item in items) if word)


@dataclass(frozen=True, slots=True)
class NumberWords:
    style: str
    words: Mapping[str, Any]

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> NumberWords:
        """From the `numbers.*` entries of a voice phrase table."""
        raw = {
            key.removeprefix("numbers."): value for key, value in table.items() if key.startswith("numbers.")
        }
        if raw.get("style") not in REQUIRED:
            raise ValueError(f"numbers.style: one of {', '.join(REQUIRED)}, not {raw.get('style')!r}")
        style = str(raw["style"])
        missing = [f"numbers.{key}" for key in REQUIRED[style] if not raw.get(key)]
        if missing:
            raise ValueError(f"voice phrases: missing {', '.join(missing)}")
        words = dict(raw, ones=words_of(raw["ones"]), tens=words_of(raw.get("tens", "")))
        if len(words["ones"]) != (20 if style == "en" else 10):
            raise ValueError("numbers.ones: 0 to 19 for en, 0 to 9 otherwise")
        if style == "en" and len(words["tens"]) != 8:
            raise ValueError("numbers.tens: twenty to ninety")
        return cls(style, words)

    def w(self, key: str) -> str:
        return str(self.words[key])

    def one(self, n: int) -> str:
        return str(self.words["ones"][n])

    @property
    def joiner(self) -> str:
        return "" if self.style == "zh" else " "


def _en(n: int, w: NumberWords) -> str:
    if n < 20:
        return w.one(n)
    if n < 100:
        tens, unit = divmod(n, 10)
        head = str(w.words["tens"][tens - 2])
        return f"{head} {w.one(unit)}" if unit else head
    for size, key in ((1000, "thousand"), (100, "hundred")):
        if n >= size:
            high, rest = divmod(n, size)
            head = f"{_en(high, w)} {w.w(key)}"
            return f"{head} {_en(rest, w)}" if rest else head
    raise AssertionError(n)


def _zh_section(n: int, w: NumberWords, *, leading: bool) -> str:
    """0 < n < 10000. A leading 10-19 is 十…, inside a larger number 一十…; gaps read 零 once."""
    out, gap, started = "", False, False
    for size, key in ((1000, "thousand"), (100, "hundred"), (10, "ten")):
        digit = n // size % 10
        if digit:
            out += w.one(0) if gap else ""
            gap = False
            out += "" if (size == 10 and digit == 1 and leading and not started) else w.one(digit)
            out += w.w(key)
            started = True
        elif started:
            gap = True
    if n % 10:
        out += (w.one(0) if gap else "") + w.one(n % 10)
    return out


def _zh(n: int, w: NumberWords) -> str:
    if n < 10:
        return w.one(n)
    if n < 10_000:
        return _zh_section(n, w, leading=True)
    high, low = divmod(n, 10_000)
    head = _zh(high, w) + w.w("ten_thousand")
    if not low:
        return head
    return head + (w.one(0) if low < 1000 else "") + _zh_section(low, w, leading=False)


def _vi(n: int, w: NumberWords) -> str:
    if n < 10:
        return w.one(n)
    if n < 100:
        tens, unit = divmod(n, 10)
        head = w.w("ten") if tens == 1 else f"{w.one(tens)} {w.w('tens_suffix')}"
        if not unit:
            return head
        if unit == 5:
            tail = w.w("five_after_tens")
        elif unit == 1 and tens > 1:
            tail = w.w("one_after_tens")
        else:
            tail = w.one(unit)
        return f"{head} {tail}"
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = f"{w.one(hundreds)} {w.w('hundred')}"
        if not rest:
            return head
        return f"{head} {w.w('zero_tens')} {w.one(rest)}" if rest < 10 else f"{head} {_vi(rest, w)}"
    high, rest = divmod(n, 1000)
    head = f"{_vi(high, w)} {w.w('thousand')}"
    if not rest:
        return head
    if rest < 100:  # 1005: một nghìn không trăm lẻ năm
        tail = f"{w.w('zero_tens')} {w.one(rest)}" if rest < 10 else _vi(rest, w)
        return f"{head} {w.one(0)} {w.w('hundred')} {tail}"
    return f"{head} {_vi(rest, w)}"


SPELLERS = {"en": _en, "zh": _zh, "vi": _vi}


def spell(value: int | Decimal, words: NumberWords) -> str:
    """The number in words: whole part, then the point word and each decimal digit."""
    number = Decimal(value)
    if number < 0 or number > LIMIT or not number.is_finite():
        raise ValueError(f"{value} cannot be spelled (0 to {LIMIT})")
    whole = int(number)
    text = SPELLERS[words.style](whole, words)
    fraction = format(number.normalize() - whole, "f")  # "0.5", "0"
    if "." not in fraction:
        return text
    digits = [words.one(int(d)) for d in fraction.split(".", 1)[1]]
    return words.joiner.join([text, words.w("point"), *digits])

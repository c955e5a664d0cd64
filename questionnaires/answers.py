"""Answer acceptance, the same on every channel: a normalised value, or a reason and a re-prompt."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from nlu.dates import parse_date
from nlu.numbers import parse_number
from questionnaires.model import LANGS, AnswerValue, Item, ItemType
from questionnaires.options import label_key, match_option, match_options, names_several, table_of
from questionnaires.reasons import Reason

# lang -> message key -> str.format template (content/questionnaires/messages/<lang>.yaml).
Messages = Mapping[str, Mapping[str, str]]
Payload = str | Sequence[str] | None

TEXT_LIMITS = {ItemType.SHORT_TEXT: 200, ItemType.LONG_TEXT: 2000, ItemType.MULTI_BLANK: 200}


@dataclass(frozen=True, slots=True)
class Accepted:
    value: AnswerValue


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    reprompt: str


HOW_KEYS = (
    "how.choice", "how.choice_two", "how.choices", "how.stars", "how.number", "how.number_range",
    "how.number_min", "how.number_max", "how.whole_number", "how.whole_number_range",
    "how.whole_number_min", "how.whole_number_max", "how.date", "how.text", "how.text_limit", "how.blanks",
)  # fmt: skip
MESSAGE_KEYS = frozenset(
    {"reprompt", "list.separator", "number.decimal_point", *HOW_KEYS, *(f"problem.{r}" for r in Reason)}
)


def can_skip(item: Item) -> bool:
    return not item.required


_STARS = re.compile(r"[★⭐✭☆✩\s]+")
# The ItemType properties build a set on every call; accept() is hot enough to notice.
_CHOICES = frozenset(t for t in ItemType if t.has_options)
_NUMERIC = frozenset(t for t in ItemType if t.is_numeric)
_NO_ANSWER = frozenset(t for t in ItemType if not t.answerable)


# --- accepting one answer ----------------------------------------------------------------------


def _format_number(value: Decimal, table: Mapping[str, str]) -> str:
    text = format(value.normalize(), "f") if value == value else str(value)
    return text.replace(".", table["number.decimal_point"])


def _range(item: Item) -> tuple[Decimal | None, Decimal | None]:
    if item.type is ItemType.STAR_RATING:
        return Decimal(1), item.maximum
    return item.minimum, item.maximum


def _how(item: Item, lang: str, table: Mapping[str, str], reason: Reason) -> str:
    values: dict[str, object] = {"count": len(item.options)}
    if item.type is ItemType.MULTIPLE_CHOICE:
        return table["how.choices"].format(**values)
    if item.type.has_options:
        if len(item.options) == 2:
            first, second = (o.text.get(lang) or o.text.get("en") or o.code for o in item.options)
            return table["how.choice_two"].format(first=first, second=second)
        return table["how.choice"].format(**values)
    if item.type.is_numeric:
        low, high = _range(item)
        values["minimum"] = _format_number(low, table) if low is not None else ""
        values["maximum"] = _format_number(high, table) if high is not None else ""
        if item.type is ItemType.STAR_RATING:
            return table["how.stars"].format(**values)
        # A scale's ends make "a number from 0 to 10" clear enough; a count says "whole number".
        base = "how.whole_number" if item.type is ItemType.INTEGER else "how.number"
        suffix = "_range" if low is not None and high is not None else "_min" if low is not None else (
            "_max" if high is not None else "")  # fmt: skip
        return table[base + suffix].format(**values)
    if item.type is ItemType.DATE:
        return table["how.date"]
    if item.type is ItemType.MULTI_BLANK:
        labels = [b.text.get(lang) or b.text.get("en") or b.id for b in item.blanks]
        return table["how.blanks"].format(labels=table["list.separator"].join(labels), count=len(labels))
    if reason is Reason.TOO_LONG:
        return table["how.text_limit"].format(limit=TEXT_LIMITS[item.type])
    return table["how.text"]


def _reject(item: Item, lang: str, messages: Messages, reason: Reason, value: str = "") -> Rejected:
    table = messages.get(lang) or messages["en"]
    problem = table[f"problem.{reason.value}"].format(value=value, limit=TEXT_LIMITS.get(item.type, ""))
    return Rejected(reason, table["reprompt"].format(problem=problem, how=_how(item, lang, table, reason)))


def _strict_number(raw: str) -> Decimal | None:
    raw = unicodedata.normalize("NFKC", raw).strip()
    if not re.fullmatch(r"[-−]?\d+(?:[.,]\d+)?", raw):
        return None
    try:
        return Decimal(raw.replace(",", ".").replace("−", "-"))
    except InvalidOperation:
        return None


_OUT_OF = re.compile(
    r"(.+?)\s*(?:/|out of|of|trên|tren|分之)\s*(\S+?)\s*(?:分|điểm|diem|points?|stars?|sao|星)?"
)


def _number(item: Item, text: str, payload: str | None) -> Decimal | Reason:
    if payload is not None:
        strict = _strict_number(payload)
        return Reason.NOT_A_NUMBER if strict is None else strict
    if item.type is ItemType.STAR_RATING and _STARS.fullmatch(text) and text.strip():
        return Decimal(sum(1 for ch in text if ch in "★⭐✭"))
    number = parse_number(text)
    out_of = _OUT_OF.fullmatch(text.strip()) if number is None and item.maximum is not None else None
    if out_of and parse_number(out_of.group(2)) == item.maximum:  # "7/10", "7 out of 10", "7 trên 10"
        number = parse_number(out_of.group(1))
    if number is None:
        digits = set(re.findall(r"\d+", unicodedata.normalize("NFKC", text)))
        return Reason.AMBIGUOUS if len(digits) > 1 else Reason.NOT_A_NUMBER
    return number


def _numeric(
    item: Item, text: str, payload: str | None, lang: str, messages: Messages
) -> Accepted | Rejected:
    number = _number(item, text, payload)
    if isinstance(number, Reason):
        return _reject(item, lang, messages, number)
    shown = _format_number(number, messages.get(lang) or messages["en"])
    whole = item.type is not ItemType.DECIMAL
    if whole and number != number.to_integral_value():
        return _reject(item, lang, messages, Reason.NOT_WHOLE, shown)
    low, high = _range(item)
    if (low is not None and number < low) or (high is not None and number > high):
        return _reject(item, lang, messages, Reason.OUT_OF_RANGE, shown)
    return Accepted(int(number) if whole else number + 0)  # + 0 turns -0 into 0


def _blanks(item: Item, text: str, payload: Sequence[str] | None) -> dict[str, str] | Reason:
    if payload is not None:
        parts = list(payload)
    elif "\n" in text:
        parts = text.split("\n")
    else:
        parts = re.split(r"[;；]", text) if len(item.blanks) > 1 else [text]
    labels = {
        label_key(label): blank.id for blank in item.blanks for label in (blank.id, *blank.text.values())
    }
    values: dict[str, str] = {}
    for position, raw in enumerate(parts):
        part, blank_id = raw.strip(), None
        pieces = re.split(r"[:：=]", part, maxsplit=1)
        if len(pieces) == 2 and (head := label_key(pieces[0])):  # "weight: 70" names its blank
            blank_id = next((b for label, b in labels.items() if label.startswith(head)), None)
            part = pieces[1].strip() if blank_id else part
        if blank_id is None:
            if position >= len(item.blanks):
                return Reason.TOO_MANY_PARTS if part else Reason.EMPTY
            blank_id = item.blanks[position].id
        if part:
            if blank_id in values or len(part) > TEXT_LIMITS[ItemType.MULTI_BLANK]:
                return Reason.TOO_MANY_PARTS if blank_id in values else Reason.TOO_LONG
            values[blank_id] = part
    return {b.id: values[b.id] for b in item.blanks if b.id in values} or Reason.EMPTY


def accept(
    item: Item, text: str, lang: str, *, today: date, messages: Messages, payload: Payload = None
) -> Accepted | Rejected:
    """Accept a reply to `item` (typed or spoken `text`, or a button/form `payload`) or say why not.

    A payload (an option code, a list of codes, a number or ISO date from a form control) skips text
    parsing but is validated all the same. The re-prompt is in `lang`, from `messages`.
    """
    if item.type in _NO_ANSWER:
        raise ValueError(f"{item.id}: a {item.type.value} item takes no answer")
    if lang not in LANGS and lang not in messages:
        lang = "en"
    if isinstance(payload, str):
        payload = payload if payload.strip() else None
    elif payload is not None:
        payload = [str(p) for p in payload if str(p).strip()] or None
    if payload is None and not text.strip():
        return _reject(item, lang, messages, Reason.EMPTY)
    result = _accept(item, text, lang, today, messages, payload)
    return _reject(item, lang, messages, result) if isinstance(result, Reason) else result


def _accept(
    item: Item, text: str, lang: str, today: date, messages: Messages, payload: Payload
) -> Accepted | Rejected | Reason:
    kind = item.type
    if kind in _CHOICES:
        codes = [o.code for o in item.options]
        if payload is not None:
            picked = [payload] if isinstance(payload, str) else list(payload)
            if any(code not in codes for code in picked):
                return Reason.UNKNOWN_OPTION
            if kind is not ItemType.MULTIPLE_CHOICE:
                return Accepted(picked[0]) if len(set(picked)) == 1 else Reason.ONE_ONLY
            return Accepted([c for c in codes if c in picked])
        table = table_of(item)
        one = match_option(table, text, lang, loose=kind is not ItemType.MULTIPLE_CHOICE)
        if kind is ItemType.MULTIPLE_CHOICE:
            several = [one] if isinstance(one, int) else match_options(table, text, lang)
            return several if isinstance(several, Reason) else Accepted([codes[i] for i in several])
        if isinstance(one, int):
            return Accepted(codes[one])
        if not names_several(text):
            return one
        several = match_options(table, text, lang)  # "1, 3" for a single choice: say "just one"
        if isinstance(several, list) and len(several) > 1:
            return Reason.ONE_ONLY
        return Accepted(codes[several[0]]) if isinstance(several, list) and several else one
    if kind in _NUMERIC:
        if payload is not None and not isinstance(payload, str):
            payload = payload[0] if len(payload) == 1 else "?"
        return _numeric(item, text, payload, lang, messages)
    if kind is ItemType.DATE:
        if payload is not None:
            try:
                return Accepted(date.fromisoformat(payload if isinstance(payload, str) else payload[0]))
            except ValueError:
                return Reason.NOT_A_DATE
        found = parse_date(text, lang, today)
        return Reason.NOT_A_DATE if found is None else Accepted(found)
    if kind is ItemType.MULTI_BLANK:
        blanks = _blanks(item, text, [payload] if isinstance(payload, str) else payload)
        return blanks if isinstance(blanks, Reason) else Accepted(blanks)
    answer = (payload if isinstance(payload, str) else "\n".join(payload) if payload else text).strip()
    return Reason.TOO_LONG if len(answer) > TEXT_LIMITS[kind] else Accepted(answer)

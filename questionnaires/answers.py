"""Answer acceptance, the same on every channel: a normalised value, or a reason and a re-prompt."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from nlu.dates import parse_date
from nlu.numbers import parse_number
from nlu.parsing import normalise, parse_yes_no
from questionnaires.model import LANGS, AnswerValue, Item, ItemType

# lang -> message key -> str.format template (content/questionnaires/messages/<lang>.yaml).
Messages = Mapping[str, Mapping[str, str]]
Payload = str | Sequence[str] | None

TEXT_LIMITS = {ItemType.SHORT_TEXT: 200, ItemType.LONG_TEXT: 2000, ItemType.MULTI_BLANK: 200}
FUZZY_THRESHOLD = 0.8  # difflib ratio a misspelling must reach ("satisfed" vs "satisfied" is 0.94)
FUZZY_MARGIN = 0.06  # ...and beat every other option by, or it is ambiguous
MAX_CONTAINING = 80  # longer texts are free text: do not hunt for option labels inside them


class Reason(StrEnum):
    EMPTY = "empty"
    NOT_UNDERSTOOD = "not_understood"
    AMBIGUOUS = "ambiguous"
    ONE_ONLY = "one_only"  # several options for a single-choice item
    UNKNOWN_OPTION = "unknown_option"
    NOT_A_NUMBER = "not_a_number"
    NOT_WHOLE = "not_whole"
    OUT_OF_RANGE = "out_of_range"
    NOT_A_DATE = "not_a_date"
    TOO_LONG = "too_long"
    TOO_MANY_PARTS = "too_many_parts"  # more parts than a multi-blank item has blanks


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


# --- option tables, built once per Item --------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])")
_DASHES = re.compile(r"[‐‑‒–—―]+")
_OPTION_NUMBER = re.compile(
    r"(?:#|no|number|option|số|so|câu|cau|chọn|chon|第|选|選|选项|選項)?\s*(\d{1,3})\s*(?:个|個|项|項|号|號)?"
)
_NUMBER_LIST = re.compile(r"\d{1,3}(?:\s*(?:and|và|va|和|与|與|及|跟|还有|&|\+|/)?\s*\d{1,3})+")
_LIST_SEP = re.compile(r"(\s*(?:[,，、;；/\n&+]|\band\b|\bvà\b|\bva\b|以及|还有|還有|和|与|與|及|跟)\s*)")
_NEGATION_CJK = re.compile(r"[不没沒未无無别別否]")
_NEGATION_WORDS = {"not", "no", "never", "dont", "don't", "didnt", "didn't", "isnt", "wasnt", "khong",
                   "chua", "chang", "cha", "ko", "k", "hok", "hong"}  # fmt: skip
_STARS = re.compile(r"[★⭐✭☆✩\s]+")
_DIGIT = re.compile(r"\d")
# The ItemType properties build a set on every call; accept() is hot enough to notice.
_CHOICES = frozenset(t for t in ItemType if t.has_options)
_NUMERIC = frozenset(t for t in ItemType if t.is_numeric)
_NO_ANSWER = frozenset(t for t in ItemType if not t.answerable)


def _key(text: str) -> str:
    """normalise(), plus dashes as spaces and no spaces between Chinese characters."""
    key = " ".join(_DASHES.sub(" ", normalise(text)).split())
    return _CJK_GAP.sub("", key) if " " in key else key


def _fold(key: str) -> str:
    """Vietnamese without tone marks (đ -> d): "khong hai long" finds "Không hài lòng"."""
    if key.isascii():
        return key
    stripped = unicodedata.normalize("NFD", key.replace("đ", "d"))
    return unicodedata.normalize("NFC", "".join(ch for ch in stripped if not unicodedata.combining(ch)))


Entries = dict[str, list[tuple[int, str | None]]]  # label key -> (option index, language or None)


@dataclass(slots=True)
class _Table:
    item: Item  # held so the id() key cannot be reused while the entry lives
    exact: Entries
    folded: Entries
    contained: list[tuple[str, int]]  # label keys worth finding inside a longer reply, longest first
    fuzzy: list[tuple[str, int, tuple[tuple[str, int], ...]]]  # Latin-script label keys, their letters
    yes: int | None
    no: int | None


def _build(item: Item) -> _Table:
    exact: Entries = {}
    folded: Entries = {}
    for index, option in enumerate(item.options):
        labels: list[tuple[str, str | None]] = [(option.code, None)]
        labels += [(text, lang) for lang, text in option.text.items()]
        labels += [(word, lang) for lang, words in option.words.items() for word in words]
        for label, lang in labels:
            key = _key(label)
            if key:
                exact.setdefault(key, []).append((index, lang))
                folded.setdefault(_fold(key), []).append((index, lang))
    contained = sorted(
        ((key, entries[0][0]) for key, entries in exact.items() if len({i for i, _ in entries}) == 1
         and (len(key) >= 2 if _CJK.search(key) else len(key) >= 4 and parse_yes_no(key) is None)),
        key=lambda pair: -len(pair[0]),
    )  # fmt: skip
    # Codes are not typed by patients, so only texts and synonyms are candidates for misspellings.
    fuzzy = [
        (key, entries[0][0], tuple(Counter(key).items()))
        for key, entries in folded.items()
        if key.isascii()
        and len(key) >= 4
        and len({i for i, _ in entries}) == 1
        and any(lang for _, lang in entries)
    ]
    codes = [o.code for o in item.options]
    return _Table(
        item, exact, folded, contained, fuzzy,
        codes.index("yes") if "yes" in codes else None, codes.index("no") if "no" in codes else None,
    )  # fmt: skip


_TABLES: dict[int, _Table] = {}
_TABLES_MAX = 4096


def _table(item: Item) -> _Table:
    # Items hold dicts, so they are not hashable; key on identity and keep the item alive with it.
    table = _TABLES.get(id(item))
    if table is None or table.item is not item:
        table = _build(item)
        if len(_TABLES) >= _TABLES_MAX:
            del _TABLES[next(iter(_TABLES))]
        _TABLES[id(item)] = table
    return table


def _resolve(entries: list[tuple[int, str | None]], lang: str) -> int | Reason:
    indices = {index for index, _ in entries}
    if len(indices) == 1:
        return indices.pop()
    in_lang = {index for index, label_lang in entries if label_lang in {lang, None}}
    return in_lang.pop() if len(in_lang) == 1 else Reason.AMBIGUOUS


def _at_boundary(text: str, start: int, end: int) -> bool:
    def word(ch: str) -> bool:
        return ch.isascii() and ch.isalnum()

    before_ok = start == 0 or not (word(text[start]) and word(text[start - 1]))
    return before_ok and (end == len(text) or not (word(text[end - 1]) and word(text[end])))


def _containing(table: _Table, key: str) -> int | Reason | None:
    """An option label inside a longer reply ("我很不满意", "i am very satisfied"), unless negated."""
    spans: list[tuple[int, int, int]] = []
    for label, index in table.contained:
        start = key.find(label)
        while start >= 0:
            end = start + len(label)
            if _at_boundary(key, start, end) and not any(s <= start and end <= e for s, e, _ in spans):
                spans.append((start, end, index))
                break
            start = key.find(label, start + 1)
    if not spans:
        return None
    if len({index for _, _, index in spans}) > 1:
        return Reason.AMBIGUOUS
    rest = key
    for start, end, _ in sorted(spans, reverse=True):
        rest = rest[:start] + " " + rest[end:]
    if _NEGATION_CJK.search(rest) or _NEGATION_WORDS & set(_fold(rest).split()):
        return Reason.NOT_UNDERSTOOD  # "not satisfied" must never become "satisfied"
    return spans[0][2]


def _fuzzy(table: _Table, folded: str) -> int | Reason | None:
    if len(folded) < 4 or not folded.isascii():
        return None
    letters, size = Counter(folded), len(folded)
    candidates = []
    for label, index, label_letters in table.fuzzy:
        # Upper bounds of difflib's ratio (its quick ratios, with each label's letters counted once).
        total = size + len(label)
        if 2 * min(size, len(label)) >= FUZZY_THRESHOLD * total:
            bound = 2 * sum(min(n, letters.get(ch, 0)) for ch, n in label_letters) / total
            if bound >= FUZZY_THRESHOLD:
                candidates.append((bound, label, index))
    best: dict[int, float] = {}
    matcher = difflib.SequenceMatcher(None, "", folded, autojunk=False)
    for bound, label, index in sorted(candidates, reverse=True):
        if bound < max(best.values(), default=0.0) - FUZZY_MARGIN:
            break  # no label left can win, nor come close enough to make the winner ambiguous
        if bound > best.get(index, 0.0):
            matcher.set_seq1(label)
            best[index] = max(best.get(index, 0.0), matcher.ratio())
    ranked = sorted(best.items(), key=lambda pair: -pair[1])
    if not ranked or ranked[0][1] < FUZZY_THRESHOLD:
        return None
    if len(ranked) > 1 and ranked[1][1] > ranked[0][1] - FUZZY_MARGIN:
        return Reason.AMBIGUOUS
    return ranked[0][0]


def _one_option(table: _Table, text: str, lang: str, *, loose: bool = True) -> int | Reason:
    """The option a reply names; `loose` also looks for a label inside a longer reply and misspellings."""
    count = len(table.item.options)
    plain = text.strip()
    if plain.isascii() and plain.isdigit() and 1 <= int(plain) <= count:  # the common case, "2"
        return int(plain) - 1
    key = _key(text)
    if not key:  # only punctuation, such as "?"
        return Reason.NOT_UNDERSTOOD
    numbered = _OPTION_NUMBER.fullmatch(key)
    if numbered and 1 <= int(numbered.group(1)) <= count:  # the numbers shown win over codes like "1"
        return int(numbered.group(1)) - 1
    if key in table.exact:
        return _resolve(table.exact[key], lang)
    folded = _fold(key)
    if folded in table.folded:
        return _resolve(table.folded[folded], lang)
    if numbered:
        return Reason.UNKNOWN_OPTION
    yes_no = parse_yes_no(text)
    if yes_no is not None and (index := table.yes if yes_no else table.no) is not None:
        return index
    if not _DIGIT.search(key):  # "three", "三", "ba"; digits among words are no option number
        number = parse_number(key)
        if number is not None:
            known = number == int(number) and 1 <= number <= count
            return int(number) - 1 if known else Reason.UNKNOWN_OPTION
    if not loose:
        return Reason.NOT_UNDERSTOOD
    found = _containing(table, key) if len(key) <= MAX_CONTAINING else None
    if found is None:
        found = _fuzzy(table, folded)
    return Reason.NOT_UNDERSTOOD if found is None else found


def _several_options(table: _Table, text: str, lang: str) -> list[int] | Reason:
    key = _key(text)
    if _NUMBER_LIST.fullmatch(key):
        numbers = [int(n) for n in re.findall(r"\d{1,3}", key)]
        if any(not 1 <= n <= len(table.item.options) for n in numbers):
            return Reason.UNKNOWN_OPTION
        return sorted({n - 1 for n in numbers})
    parts = _LIST_SEP.split(unicodedata.normalize("NFKC", text).casefold())
    segments, seps = parts[0::2], parts[1::2]
    found: set[int] = set()
    i = 0
    while i < len(segments):
        for j in range(len(segments), i, -1):  # the longest run of segments that names one option
            joined = "".join(s + (seps[k] if k < j - 1 else "") for k, s in enumerate(segments[i:j], i))
            if not _key(joined):
                result: int | Reason = Reason.EMPTY
                break
            result = _one_option(table, joined, lang, loose=j == i + 1)
            if isinstance(result, int):
                break
        if isinstance(result, Reason) and result is not Reason.EMPTY:
            return result
        if isinstance(result, int):
            found.add(result)
        i = j
    return sorted(found) if found else Reason.NOT_UNDERSTOOD


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
    labels = {_key(label): blank.id for blank in item.blanks for label in (blank.id, *blank.text.values())}
    values: dict[str, str] = {}
    for position, raw in enumerate(parts):
        part, blank_id = raw.strip(), None
        pieces = re.split(r"[:：=]", part, maxsplit=1)
        if len(pieces) == 2 and (head := _key(pieces[0])):  # "weight: 70" names its blank
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
        table = _table(item)
        one = _one_option(table, text, lang, loose=kind is not ItemType.MULTIPLE_CHOICE)
        if kind is ItemType.MULTIPLE_CHOICE:
            several = [one] if isinstance(one, int) else _several_options(table, text, lang)
            return several if isinstance(several, Reason) else Accepted([codes[i] for i in several])
        if isinstance(one, int):
            return Accepted(codes[one])
        if not (_LIST_SEP.search(text) or _NUMBER_LIST.fullmatch(_key(text))):
            return one
        several = _several_options(table, text, lang)  # "1, 3" for a single choice: say "just one"
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

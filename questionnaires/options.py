"""Which option a reply names, the same for chat menus, forms and voice: its number, its label or a
synonym in any language (Vietnamese with or without tone marks), a number word or an ordinal ("two",
"the second one", "第二个", "thứ hai"), yes or no for a yes/no pair; forms and voice (`loose`) also
find a label inside a longer reply unless negated, and a misspelt label, where chat menus leave such
free words to Rasa; else why not (unknown number, ambiguous, not understood)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nlu.dates import ORDINALS_EN
from nlu.numbers import parse_number
from nlu.parsing import normalise, parse_yes_no
from questionnaires.model import Item, Option
from questionnaires.reasons import Reason

FUZZY_THRESHOLD = 0.8  # difflib ratio a misspelling must reach ("satisfed" vs "satisfied" is 0.94)
FUZZY_MARGIN = 0.06  # ...and beat every other option by, or it is ambiguous
MAX_CONTAINING = 80  # longer texts are free text: do not hunt for option labels inside them

_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])")
_DASHES = re.compile(r"[‐‑‒–—―]+")
_OPTION_NUMBER = re.compile(
    r"(?:#|no|number|option|số|so|câu|cau|chọn|chon|第|选|選|选项|選項)?\s*(\d{1,3})\s*(?:个|個|项|項|号|號)?"
)
_NUMBER_LIST = re.compile(r"\d{1,3}(?:\s*(?:and|và|va|和|与|與|及|跟|还有|&|\+|/)?\s*\d{1,3})+")
_LIST_SEP = re.compile(r"(\s*(?:[,，、;；/\n&+]|\band\b|\bvà\b|\bva\b|以及|还有|還有|和|与|與|及|跟)\s*)")
_NEGATION_CJK = re.compile(r"[不没沒未无無别別否]")
# normalise() turns "don't" into "don t": the contractions' first halves are negations too.
_NEGATION_WORDS = {"not", "no", "never", "dont", "don't", "didnt", "didn't", "isnt", "wasnt", "khong",
                   "chua", "chang", "cha", "ko", "k", "hok", "hong", "don", "doesn", "didn", "isn",
                   "wasn", "aren", "weren", "haven", "hasn", "couldn", "wouldn", "shouldn"}  # fmt: skip
_NEGATIVE_NUMBER = re.compile(r"[-−]\s*\d{1,3}")
# "the second one", "2nd", "第二个", "(cái) thứ hai": an option by its place in the list, matched on
# the folded key (Vietnamese without tone marks).
_ORDINAL = re.compile(
    r"(?:the )?(?P<en>\d{1,3}(?:st|nd|rd|th)|[a-z]+)(?: (?:one|option|choice))?"
    r"|第(?P<zh>[^个個项項种種]+)(?:个|個|项|項|种|種)?"
    r"|(?:cai |cau |so )?thu (?P<vi>.+)"
)
_ORDINAL_WORDS = {**ORDINALS_EN, "last": -1, "nhat": 1, "tu": 4}  # thứ nhất, thứ tư
_DIGIT = re.compile(r"\d")


def label_key(text: str) -> str:
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
class OptionTable:
    """An option list's labels, prepared once for every reply to it."""

    count: int
    exact: Entries
    folded: Entries
    contained: list[tuple[str, int]]  # label keys worth finding inside a longer reply, longest first
    fuzzy: list[tuple[str, int, tuple[tuple[str, int], ...]]]  # Latin-script label keys, their letters
    yes: int | None
    no: int | None
    weekdays: bool  # a label begins "thứ ...": "thứ hai" may be Monday there, not the second option


def option_table(options: Sequence[Option]) -> OptionTable:
    """The table of `options`: each matched by its code, its texts and its words (synonyms)."""
    exact: Entries = {}
    folded: Entries = {}
    for index, option in enumerate(options):
        labels: list[tuple[str, str | None]] = [(option.code, None)]
        labels += [(text, lang) for lang, text in option.text.items()]
        labels += [(word, lang) for lang, words in option.words.items() for word in words]
        for label, lang in labels:
            key = label_key(label)
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
    codes = [o.code for o in options]
    return OptionTable(
        len(codes), exact, folded, contained, fuzzy,
        codes.index("yes") if "yes" in codes else None, codes.index("no") if "no" in codes else None,
        any(key.startswith("thu ") for key in folded),
    )  # fmt: skip


_TABLES: dict[int, tuple[Item, OptionTable]] = {}
_TABLES_MAX = 4096


def table_of(item: Item) -> OptionTable:
    """An item's table, built once: accept() is hot enough to notice."""
    # Items hold dicts, so they are not hashable; key on identity and keep the item alive with it.
    held = _TABLES.get(id(item))
    if held is None or held[0] is not item:
        held = (item, option_table(item.options))
        if len(_TABLES) >= _TABLES_MAX:
            del _TABLES[next(iter(_TABLES))]
        _TABLES[id(item)] = held
    return held[1]


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


def _containing(table: OptionTable, key: str) -> int | Reason | None:
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


def _fuzzy(table: OptionTable, folded: str) -> int | Reason | None:
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


def _ordinal(table: OptionTable, key: str) -> int | Reason | None:
    """The index an ordinal names ("the second one", "第二个", "thứ hai"), else None."""
    found = _ORDINAL.fullmatch(key)
    if found is None or (found.group("vi") and table.weekdays):
        return None
    count = table.count
    word = found.group("en") or found.group("zh") or found.group("vi")
    if word[0].isdigit() and found.group("en"):
        number: int | None = int(word[:-2])
    elif word in _ORDINAL_WORDS:
        number = _ORDINAL_WORDS[word] if _ORDINAL_WORDS[word] > 0 else count
    elif found.group("en"):
        return None  # a single English word that is no ordinal
    else:
        value = parse_number(word)
        number = int(value) if value is not None and value == int(value) else None
    if number is None:
        return None
    return number - 1 if 1 <= number <= count else Reason.UNKNOWN_OPTION


def match_option(table: OptionTable, text: str, lang: str, *, loose: bool = True) -> int | Reason:
    """The index of the option a reply names; `loose` also looks for a label inside a longer reply and
    for misspellings. Labels in `lang` win where a word names different options in two languages."""
    count = table.count
    plain = text.strip()
    if plain.isascii() and plain.isdigit() and 1 <= int(plain) <= count:  # the common case, "2"
        return int(plain) - 1
    if _NEGATIVE_NUMBER.fullmatch(unicodedata.normalize("NFKC", plain)):
        return Reason.UNKNOWN_OPTION  # "-1" is no option's number (normalise() would drop the sign)
    key = label_key(text)
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
    ordinal = _ordinal(table, folded)
    if ordinal is not None:
        return ordinal
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


def names_several(text: str) -> bool:
    """Whether a reply lists several options ("1, 3", "tea and coffee")."""
    return bool(_LIST_SEP.search(text) or _NUMBER_LIST.fullmatch(label_key(text)))


def match_options(table: OptionTable, text: str, lang: str) -> list[int] | Reason:
    """The indices of the options a reply lists, for a multiple-choice question."""
    key = label_key(text)
    if _NUMBER_LIST.fullmatch(key):
        numbers = [int(n) for n in re.findall(r"\d{1,3}", key)]
        if any(not 1 <= n <= table.count for n in numbers):
            return Reason.UNKNOWN_OPTION
        return sorted({n - 1 for n in numbers})
    parts = _LIST_SEP.split(unicodedata.normalize("NFKC", text).casefold())
    segments, seps = parts[0::2], parts[1::2]
    found: set[int] = set()
    i = 0
    while i < len(segments):
        for j in range(len(segments), i, -1):  # the longest run of segments that names one option
            joined = "".join(s + (seps[k] if k < j - 1 else "") for k, s in enumerate(segments[i:j], i))
            if not label_key(joined):
                result: int | Reason = Reason.EMPTY
                break
            result = match_option(table, joined, lang, loose=j == i + 1)
            if isinstance(result, int):
                break
        if isinstance(result, Reason) and result is not Reason.EMPTY:
            return result
        if isinstance(result, int):
            found.add(result)
        i = j
    return sorted(found) if found else Reason.NOT_UNDERSTOOD


def match_choice(choices: Sequence[tuple[str, str]], text: str, lang: str) -> int | None:
    """The index of the (code, label) chat menu entry a reply names, labels in `lang`; None when none is.

    Not loose: in chat, a longer reply or a misspelling goes to Rasa, whose reading (intent, entities)
    the sub-flow behind an option may branch on; a label found inside it would lose that reading."""
    table = option_table([Option(code, {lang: label}) for code, label in choices])
    found = match_option(table, text, lang, loose=False)
    return found if isinstance(found, int) else None

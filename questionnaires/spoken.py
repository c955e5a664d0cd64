"""How an item is asked on a voice call: the prompt read aloud, the words listened for, the DTMF keys.

Closed answers can always be given two ways, by speech and by keypad, because recognition on a phone
line fails often and a caller must never be stuck: options get keys 1-9 (0, * and # stay free for the
call itself), numbers and dates are typed and ended with #, a decimal point is typed as *.
Multiple choice is asked one option at a time (yes: 1, no: 2). Open answers are recorded and
transcribed. The sentences around the authored texts come from content/questionnaires/voice/<lang>.yaml,
a flat table of strings passed in as a mapping: the package does no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_CEILING, Decimal
from typing import Any

from nlu.parsing import normalise
from questionnaires.model import Item, ItemType, Option
from questionnaires.spoken_numbers import LIMIT, NumberWords, spell, words_of

KEYS = "123456789"
GRAMMAR_LIMIT = 10_000  # beyond this a number is typed only: a recogniser cannot tell so many apart
YES, NO = "yes", "no"
_DIGITS = re.compile(r"\d+")
SENTENCE_ENDS = set(".!?;:,。！？；：，…")
PLACEHOLDERS = {
    "press": {"option", "key"},
    "or_say": {"options"},
    "option_question": {"option"},
    "number": {"min", "max"},
    "unit": {"unit"},
}


@dataclass(frozen=True, slots=True)
class VoicePhrases:
    """One language's voice phrase file, checked."""

    lang: str
    separator: str
    full_stop: str
    press: str
    or_say: str
    each_option: str
    option_question: str
    yes_label: str
    no_label: str
    yes_words: tuple[str, ...]
    no_words: tuple[str, ...]
    number: str
    decimal_key: str
    unit: str
    date: str
    date_order: str
    date_words: tuple[str, ...]
    record: str
    numbers: NumberWords
    # Optional: whole spoken dates for recognisers that take whole phrases (pocketsphinx), e.g.
    # "the {day} of {month}", "{count} days ago"; without them a date is the free-order date_words.
    date_phrases: tuple[str, ...] = ()
    date_days: tuple[str, ...] = ()  # ordinals, the 1st to the 31st
    date_months: tuple[str, ...] = ()
    # Optional: phrases a call listens for beside every closed question's answers: asking for a person,
    # and red flags (the safety rules decide what they mean); recognisers skip those they cannot say.
    person_words: tuple[str, ...] = ()
    alarm_words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any], lang: str) -> VoicePhrases:
        """From a phrase table: a flat mapping of strings, word lists separated by |."""
        optional = ("date_phrases", "date_days", "date_months", "person_words", "alarm_words")
        names = [f.name for f in fields(cls) if f.name not in {"numbers", *optional}]
        missing = [name for name in names if name not in raw]
        if missing:
            raise ValueError(f"voice phrases: missing {', '.join(missing)}")
        if raw["lang"] != lang:
            raise ValueError(f"voice phrases are for {raw['lang']!r}, not {lang!r}")
        for key, wanted in PLACEHOLDERS.items():
            found = {name for _, name, _, _ in string.Formatter().parse(str(raw[key])) if name}
            if found != wanted:
                raise ValueError(f"voice phrases: {key} must use {sorted(wanted)}, uses {sorted(found)}")
        if sorted(str(raw["date_order"])) != sorted("DMY"):
            raise ValueError("voice phrases: date_order is an order of D, M and Y")
        values: dict[str, Any] = {name: str(raw[name]) for name in names}
        for name in ("yes_words", "no_words", "date_words"):
            values[name] = words_of(raw[name])
        for name in optional:
            values[name] = words_of(raw[name]) if name in raw else ()
        if values["date_phrases"] and (len(values["date_days"]) != 31 or len(values["date_months"]) != 12):
            raise ValueError("voice phrases: date_phrases need 31 date_days and 12 date_months")
        return cls(**values, numbers=NumberWords.parse(raw))


@dataclass(frozen=True, slots=True)
class Keypad:
    """A number or date typed on the keypad, ended with the terminator."""

    max_digits: int
    decimal_key: str | None = None  # typed for the decimal point
    date_order: str | None = None  # a date as eight digits in this order, e.g. "DMY"
    terminator: str = "#"


@dataclass(frozen=True, slots=True)
class SpokenForm:
    prompt: str
    grammar: tuple[str, ...] = ()  # normalised phrases the recogniser listens for
    dtmf: Mapping[str, str] = field(default_factory=dict)  # key -> option code, or yes/no
    meanings: Mapping[str, str] = field(default_factory=dict)  # phrase -> option code, number, yes/no
    keypad: Keypad | None = None
    free_order: bool = False  # grammar words combine in any order (dates), not whole answers
    recorded: bool = False  # an open answer: recorded and transcribed
    per_option: Mapping[str, SpokenForm] = field(default_factory=dict)  # multiple choice: yes/no each
    per_blank: Mapping[str, SpokenForm] = field(default_factory=dict)  # multi-blank: one blank at a time

    @property
    def keyed(self) -> set[str]:
        return set(self.dtmf.values())

    @property
    def sayable(self) -> set[str]:
        return set(self.meanings.values())


def speakable(text: str) -> bool:
    """Has something a speech synthesiser says: a letter or a digit, not only symbols or emoji."""
    return any(ch.isalnum() for ch in text)


def _say(value: Decimal | int, p: VoicePhrases) -> str:
    return spell(value, p.numbers) if 0 <= value <= LIMIT else str(value)


def phrase(text: str, p: VoicePhrases) -> str:
    """A text as a recogniser hears it: normalised, digits as words ("3 or more" -> "three or more")."""
    space = " " if p.numbers.joiner else ""  # Chinese words are not spaced: 0分 -> 零分
    spelled = _DIGITS.sub(lambda m: f"{space}{_say(int(m.group()), p)}{space}", normalise(text))
    return " ".join(spelled.split())


def _join(p: VoicePhrases, *parts: str | None) -> str:
    """Sentences in order; one without closing punctuation gets a full stop, so none run together."""
    sentences = [part.strip() for part in parts if part and part.strip()]
    ended = [s if s[-1] in SENTENCE_ENDS else s + p.full_stop for s in sentences]
    return p.separator.join(ended)


def _unambiguous(candidates: Iterable[tuple[str, str]]) -> dict[str, str]:
    """phrase -> answer, leaving out phrases that would mean two different answers."""
    seen: dict[str, set[str]] = {}
    for said, meaning in candidates:
        if said and speakable(said):
            seen.setdefault(said, set()).add(meaning)
    return {said: meanings.pop() for said, meanings in seen.items() if len(meanings) == 1}


def _yes_no(prompt: str, p: VoicePhrases) -> SpokenForm:
    keys = {"1": YES, "2": NO}
    candidates = [(phrase(w, p), YES) for w in (p.yes_label, *p.yes_words)]
    candidates += [(phrase(w, p), NO) for w in (p.no_label, *p.no_words)]
    candidates += [(phrase(key, p), meaning) for key, meaning in keys.items()]
    meanings = _unambiguous(candidates)
    full = _join(
        p, prompt, p.press.format(option=p.yes_label, key=1), p.press.format(option=p.no_label, key=2)
    )
    return SpokenForm(prompt=full, grammar=tuple(meanings), dtmf=keys, meanings=meanings)


def _choice(item: Item, lang: str, p: VoicePhrases) -> SpokenForm:
    dtmf = {key: option.code for key, option in zip(KEYS, item.options, strict=False)}
    candidates: list[tuple[str, str]] = []
    for option in item.options:
        candidates += [
            (phrase(text, p), option.code) for text in (option.text[lang], *option.words.get(lang, ()))
        ]
    if {o.code for o in item.options} == {YES, NO}:
        candidates += [(phrase(w, p), YES) for w in p.yes_words] + [(phrase(w, p), NO) for w in p.no_words]
    candidates += [(phrase(key, p), code) for key, code in dtmf.items()]  # "two" for key 2
    meanings = _unambiguous(candidates)
    keyed = [p.press.format(option=o.text[lang], key=key) for key, o in zip(KEYS, item.options, strict=False)]
    unkeyed = [o.text[lang] for o in item.options[len(KEYS) :]]
    extra = p.or_say.format(options=", ".join(unkeyed)) if unkeyed else None
    return SpokenForm(
        prompt=_join(p, item.text[lang], _hint(item, lang), *keyed, extra),
        grammar=tuple(meanings),
        dtmf=dtmf,
        meanings=meanings,
    )


def _hint(item: Item, lang: str) -> str | None:
    return item.hint[lang] if item.hint else None


def _places(item: Item) -> int:
    if item.type is not ItemType.DECIMAL:
        return 0
    exponents = [int(v.as_tuple().exponent) for v in (item.minimum, item.maximum) if v is not None]
    return min(2, max([1, *(-e for e in exponents)]))  # one decimal place unless the range says more


def numeric_range(item: Item) -> tuple[Decimal | None, Decimal | None]:
    low = item.minimum if item.minimum is not None or item.type is not ItemType.STAR_RATING else Decimal(1)
    return low, item.maximum


def _numeric(item: Item, lang: str, p: VoicePhrases) -> SpokenForm:
    low, high = numeric_range(item)
    labels = (
        item.min_label[lang] if item.min_label else None,
        item.max_label[lang] if item.max_label else None,
    )
    unit = p.unit.format(unit=item.unit[lang]) if item.unit else None
    if low is None or high is None or low < 0:  # not carried; channels.plan says why
        return SpokenForm(prompt=_join(p, item.text[lang], _hint(item, lang), *labels, unit))
    places = _places(item)
    step = Decimal(1).scaleb(-places)
    start = (low / step).to_integral_value(ROUND_CEILING) * step
    count = int((high - start) / step) + 1 if high >= start else 0
    meanings: dict[str, str] = {}
    if count <= GRAMMAR_LIMIT and high <= LIMIT:
        for n in range(count):
            value = (start + n * step).normalize()
            meanings[spell(value, p.numbers)] = format(value, "f")
    keypad = Keypad(max_digits=len(str(int(high))) + places, decimal_key="*" if places else None)
    prompt = _join(
        p,
        item.text[lang],
        _hint(item, lang),
        *labels,
        p.number.format(min=_say(low, p), max=_say(high, p)),
        p.decimal_key if places else None,
        unit,
    )
    return SpokenForm(prompt=prompt, grammar=tuple(meanings), meanings=meanings, keypad=keypad)


DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29th exists in some years
DAYS_AGO = range(2, 31)  # "{count} days ago"


def date_phrases(p: VoicePhrases) -> list[str]:
    """Every whole date the phrase file's patterns make: real days of each month only."""
    out: list[str] = []
    for pattern in p.date_phrases:
        if "{day}" in pattern or "{month}" in pattern:
            out += [
                pattern.format(day=p.date_days[day], month=name)
                for name, days in zip(p.date_months, DAYS_IN_MONTH, strict=True)
                for day in range(days)
            ]
        elif "{count}" in pattern:
            out += [pattern.format(count=_say(n, p)) for n in DAYS_AGO]
        else:
            out.append(pattern)
    return list(dict.fromkeys(phrase(text, p) for text in out))


def _date(item: Item, lang: str, p: VoicePhrases) -> SpokenForm:
    if p.date_phrases:
        grammar, free_order = tuple(date_phrases(p)), False
    else:
        words = dict.fromkeys([phrase(w, p) for w in p.date_words] + [_say(n, p) for n in range(1, 32)])
        grammar, free_order = tuple(w for w in words if w), True
    return SpokenForm(
        prompt=_join(p, item.text[lang], _hint(item, lang), p.date),
        grammar=grammar,
        keypad=Keypad(max_digits=8, date_order=p.date_order),
        free_order=free_order,
    )


def _open(text: str, hint: str | None, p: VoicePhrases) -> SpokenForm:
    return SpokenForm(prompt=_join(p, text, hint, p.record), recorded=True)


def _per_option(option: Option, lang: str, p: VoicePhrases) -> SpokenForm:
    return _yes_no(p.option_question.format(option=option.text[lang]), p)


def spoken_form(item: Item, lang: str, phrases: Mapping[str, Any] | VoicePhrases) -> SpokenForm:
    """How `item` is asked on a call in `lang`; `phrases` is that language's voice phrase file."""
    p = phrases if isinstance(phrases, VoicePhrases) else VoicePhrases.parse(phrases, lang)
    text, hint = item.text[lang], _hint(item, lang)
    if item.type is ItemType.MULTIPLE_CHOICE:
        return SpokenForm(
            prompt=_join(p, text, hint, p.each_option),
            per_option={o.code: _per_option(o, lang, p) for o in item.options},
        )
    if item.type.has_options:
        return _choice(item, lang, p)
    if item.type.is_numeric:
        return _numeric(item, lang, p)
    if item.type is ItemType.DATE:
        return _date(item, lang, p)
    if item.type in {ItemType.SHORT_TEXT, ItemType.LONG_TEXT}:
        return _open(text, hint, p)
    if item.type is ItemType.MULTI_BLANK:
        per_blank = {b.id: _open(b.text[lang], None, p) for b in item.blanks}
        return SpokenForm(prompt=_join(p, text, hint), per_blank=per_blank)
    return SpokenForm(prompt=_join(p, text, hint))  # display, and a group's heading

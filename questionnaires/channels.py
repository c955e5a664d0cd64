"""How each item is carried on each channel, and the pre-flight check that refuses to publish a
questionnaire with an item some channel cannot carry (REDCap silently skips such items; we must not).

Channels: web (a form page, also behind SMS and WeChat links), chat (WeChat, SMS, WhatsApp, web chat:
text with numbered options) and voice (prompts read aloud, speech or keypad answers; spoken_form).
Groups are flattened on chat and voice: their text goes out as a heading before their items.

The rules, each from what the channel physically offers, never from taste:
- every channel: a patient must be able to tell the options apart, so no two options of an item may
  read the same in the language (after case, width and punctuation are folded).
- chat and voice: a reply "2" (typed, said or keyed) means option number 2. An option labelled with a
  bare number that is not its own position ("0", "1", "2", "3 or more" as options 1-4) makes that
  reply ambiguous. Voice asks multiple choice option by option, so there it applies to single choice.
- voice: everything is read aloud, so the question, every option and every blank needs something a
  synthesiser can say (letters or digits, not only symbols or emoji).
- voice: an option must be choosable: it has a key (only 1-9 exist) or words the recogniser can tell
  from every other option's. Options after the ninth therefore need distinct, speakable labels.
- voice: a number needs min and max: they bound the words the recogniser listens for and the digits
  typed, and catch a misheard number; and min must not be negative (the keypad has no minus key).
- not refused: dates (said, or typed as eight digits), free text and blanks (recorded and
  transcribed, one blank at a time), multiple choice (yes or no per option, any number of options),
  decimals (typed with * for the point), displays (read or sent), numbers on chat and web without a
  range (typed; any value is taken).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from nlu.parsing import normalise
from questionnaires.model import Item, ItemType, Questionnaire
from questionnaires.spoken import (
    GRAMMAR_LIMIT,
    Keypad,
    SpokenForm,
    VoicePhrases,
    numeric_range,
    speakable,
    spoken_form,
)

__all__ = [
    "ChannelKind",
    "ItemPlan",
    "Keypad",
    "PublishRefused",
    "Refusal",
    "SpokenForm",
    "VoicePhrases",
    "plan",
    "preflight",
    "spoken_form",
]

_BARE_NUMBER = re.compile(r"\d+")


class ChannelKind(StrEnum):
    WEB = "web"  # a form page
    CHAT = "chat"  # WeChat, SMS, WhatsApp, web chat: text with numbered options
    VOICE = "voice"  # an automated call


@dataclass(frozen=True, slots=True)
class ItemPlan:
    item_id: str
    how: str  # how the item is asked on the channel, for the editor's pre-flight report
    carried: bool
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    channel: ChannelKind
    item_id: str
    problem: str


class PublishRefused(ValueError):
    """Some channel cannot carry some item; `refusals` lists every one."""

    def __init__(self, refusals: Iterable[Refusal]) -> None:
        self.refusals = tuple(refusals)
        lines = "; ".join(f"{r.channel.value}: {r.item_id}: {r.problem}" for r in self.refusals)
        super().__init__(f"cannot publish: {lines}")


# --- problems ---------------------------------------------------------------------------------------


def _same_reading(item: Item, lang: str) -> list[str]:
    first: dict[str, str] = {}
    problems = []
    for option in item.options:
        key = normalise(option.text[lang])
        if key in first:
            problems.append(
                f"options {first[key]!r} and {option.code!r} read the same ({option.text[lang]!r})"
            )
        else:
            first[key] = option.code
    return problems


def _numbered_wrongly(item: Item, lang: str) -> list[str]:
    problems = []
    for position, option in enumerate(item.options, start=1):
        label = normalise(option.text[lang])
        if _BARE_NUMBER.fullmatch(label) and int(label) != position:
            problems.append(
                f"option {option.code!r} is labelled {label!r} but is number {position}: "
                f"a reply of {label} would be ambiguous"
            )
    return problems


def _voice_problems(item: Item, lang: str, form: SpokenForm) -> list[str]:
    problems = []
    if not speakable(item.text[lang]):
        problems.append("its text has nothing to say aloud")
    problems += [
        f"option {o.code!r} has nothing to say aloud" for o in item.options if not speakable(o.text[lang])
    ]
    problems += [
        f"blank {b.id!r} has nothing to say aloud" for b in item.blanks if not speakable(b.text[lang])
    ]
    if item.type.has_options and item.type is not ItemType.MULTIPLE_CHOICE:
        problems += [
            f"option {o.code!r} has no key (only 1-9 exist) and no words that tell it from the other options"
            for o in item.options
            if o.code not in form.keyed and o.code not in form.sayable and speakable(o.text[lang])
        ]
    if item.type.is_numeric:
        low, high = numeric_range(item)
        if low is None or high is None:
            problems.append(
                "a spoken number needs min and max (they bound what to listen for and catch mishearing)"
            )
        elif low < 0:
            problems.append("the range goes below zero and the keypad has no minus key")
    return problems


# --- how ---------------------------------------------------------------------------------------------


def _span(item: Item) -> str:
    low, high = numeric_range(item)
    if low is None and high is None:
        return "any number"
    return f"{'' if low is None else low}..{'' if high is None else high}"


def _how_web(item: Item) -> str:
    count = len(item.options)
    return {
        ItemType.SINGLE_CHOICE: f"radio buttons ({count})",
        ItemType.MULTIPLE_CHOICE: f"check boxes ({count})",
        ItemType.DROPDOWN: f"drop-down list ({count})",
        ItemType.STAR_RATING: f"star rating ({_span(item)})",
        ItemType.SCALE: f"slider ({_span(item)})",
        ItemType.INTEGER: f"whole-number field ({_span(item)})",
        ItemType.DECIMAL: f"number field ({_span(item)})",
        ItemType.DATE: "date picker",
        ItemType.SHORT_TEXT: "text field",
        ItemType.LONG_TEXT: "text area",
        ItemType.MULTI_BLANK: f"{len(item.blanks)} labelled text fields",
        ItemType.DISPLAY: "shown as text",
        ItemType.GROUP: f"section of {len(item.items)} items",
    }[item.type]


def _how_chat(item: Item) -> str:
    count = len(item.options)
    if item.type is ItemType.MULTIPLE_CHOICE:
        return f"numbered options 1-{count}; reply with every number that applies"
    if item.type.has_options:
        return f"numbered options 1-{count}; reply with a number or the option's words"
    if item.type.is_numeric:
        return f"reply with a number ({_span(item)})"
    return {
        ItemType.DATE: "reply with a date",
        ItemType.SHORT_TEXT: "reply with text",
        ItemType.LONG_TEXT: "reply with text",
        ItemType.MULTI_BLANK: f"asked one blank at a time ({len(item.blanks)})",
        ItemType.DISPLAY: "sent as a message",
        ItemType.GROUP: f"heading sent before its {len(item.items)} items",
    }[item.type]


def _keypad(keypad: Keypad | None) -> str:
    if keypad is None:
        return "no keypad entry"
    if keypad.date_order is not None:
        return f"typed as {keypad.max_digits} digits ({keypad.date_order}) then {keypad.terminator}"
    point = f", {keypad.decimal_key} for the point" if keypad.decimal_key else ""
    return f"typed, up to {keypad.max_digits} digits{point}, then {keypad.terminator}"


def _how_voice(item: Item, form: SpokenForm) -> str:
    if item.type is ItemType.MULTIPLE_CHOICE:
        return f"each of {len(form.per_option)} options asked as yes (1) or no (2)"
    if item.type.has_options:
        unkeyed = len(item.options) - len(form.dtmf)
        said_only = f"; {unkeyed} more said only" if unkeyed > 0 else ""
        return f"options read with keys 1-{len(form.dtmf)}, said or keyed{said_only}"
    if item.type.is_numeric:
        if form.keypad is None:
            return "not asked: no usable range"
        if not form.grammar:
            too_many = f"more than {GRAMMAR_LIMIT} values to listen for"
            return f"number ({_span(item)}) {_keypad(form.keypad)} only; {too_many}"
        return f"number ({_span(item)}) said, or {_keypad(form.keypad)}"
    return {
        ItemType.DATE: f"date said, or {_keypad(form.keypad)}",
        ItemType.SHORT_TEXT: "recorded and transcribed",
        ItemType.LONG_TEXT: "recorded and transcribed",
        ItemType.MULTI_BLANK: f"each of {len(form.per_blank)} blanks recorded in turn",
        ItemType.DISPLAY: "read aloud",
        ItemType.GROUP: f"heading read before its {len(item.items)} items",
    }[item.type]


# --- plan and pre-flight -----------------------------------------------------------------------------


def _item_plan(
    channel: ChannelKind, item: Item, lang: str, voice: VoicePhrases | None
) -> tuple[ItemPlan, list[str]]:
    problems = _same_reading(item, lang)
    # Voice asks multiple choice option by option (yes or no), so no number is said or keyed for them.
    numbered = channel is ChannelKind.CHAT or (
        channel is ChannelKind.VOICE and item.type is not ItemType.MULTIPLE_CHOICE
    )
    if numbered:
        problems += _numbered_wrongly(item, lang)
    if channel is ChannelKind.VOICE:
        assert voice is not None
        form = spoken_form(item, lang, voice)
        problems += _voice_problems(item, lang, form)
        how = _how_voice(item, form)
    else:
        how = _how_web(item) if channel is ChannelKind.WEB else _how_chat(item)
    entry = ItemPlan(item.id, how, carried=not problems, problem="; ".join(problems) or None)
    return entry, problems


def _plans(
    q: Questionnaire, lang: str, phrases: Mapping[str, Any] | VoicePhrases, channels: Iterable[ChannelKind]
) -> dict[ChannelKind, list[tuple[ItemPlan, list[str]]]]:
    wanted = tuple(channels)
    voice = None
    if ChannelKind.VOICE in wanted:
        voice = phrases if isinstance(phrases, VoicePhrases) else VoicePhrases.parse(phrases, lang)
    return {channel: [_item_plan(channel, item, lang, voice) for item in q.walk()] for channel in wanted}


def plan(
    q: Questionnaire,
    lang: str,
    phrases: Mapping[str, Any] | VoicePhrases,
    channels: Iterable[ChannelKind] = tuple(ChannelKind),
) -> dict[ChannelKind, list[ItemPlan]]:
    """Per channel, how every item (groups and displays too, in order) is asked, and whether it can be.
    `phrases` is the language's voice phrase file (content/questionnaires/voice/<lang>.yaml)."""
    return {
        channel: [entry for entry, _ in entries]
        for channel, entries in _plans(q, lang, phrases, channels).items()
    }


def preflight(
    q: Questionnaire,
    lang: str,
    phrases: Mapping[str, Any] | VoicePhrases,
    channels: Iterable[ChannelKind] = tuple(ChannelKind),
) -> dict[ChannelKind, list[ItemPlan]]:
    """The plan, or PublishRefused listing every (channel, item, problem) when anything is not carried.
    Run it for each language the questionnaire is published in."""
    plans = _plans(q, lang, phrases, channels)
    refusals = [
        Refusal(channel, entry.item_id, problem)
        for channel, entries in plans.items()
        for entry, problems in entries
        for problem in problems
    ]
    if refusals:
        raise PublishRefused(refusals)
    return {channel: [entry for entry, _ in entries] for channel, entries in plans.items()}

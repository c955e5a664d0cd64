"""What a simulated patient answers to a questionnaire by voice: the intended answers and the caller's turns.

The order of questions comes from the questionnaire engine itself (next_item over the intended
answers), so branching is followed as a call would follow it. Phrases are chosen from each question's
own grammar; some are avoided because pocketsphinx's bundled model mishears espeak-ng saying them
over the 8 kHz path (measured, see MISHEARD): the test says which, and does not hide them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from questionnaires.answers import Accepted, accept
from questionnaires.channels import VoicePhrases, spoken_form
from questionnaires.logic import next_item
from questionnaires.model import AnswerValue, Item, ItemType, Questionnaire
from questionnaires.spoken_numbers import spell
from voice_ai.gateway_sim import Press, Say, Silent, Turn, say
from voice_ai.tts import Synthesizer

# Measured through espeak-ng -> mu-law 8 kHz -> VAD -> pocketsphinx (en-US, JSGF) on this machine:
# "satisfied" was heard as "two", "dissatisfied" as "satisfied", "very satisfied" as "very",
# "i did not" as "i did", "correct" as "i" (a partial path, now refused), "sixty one" as "one hundred";
# the digits zero/six/seven/eight are unreliable (the previous session).
MISHEARD = frozenset(
    {"satisfied", "dissatisfied", "very satisfied", "i did not", "correct", "zero", "six", "seven", "eight"}
)
BAD_WORDS = frozenset({"zero", "six", "seven", "eight"})
FREE_TEXT = "the nurses were kind"
DAYS_AGO = 3  # a date answer: "three days ago", the same phrase whatever day the test runs


@dataclass
class Plan:
    answers: dict[str, AnswerValue] = field(default_factory=dict)  # what must be stored
    recorded: list[str] = field(default_factory=list)  # open answers: audio + transcript, not exact
    skipped: list[str] = field(default_factory=list)
    spoken: dict[str, str] = field(default_factory=dict)  # item -> phrase said (or keys pressed)
    turns: list[Turn] = field(default_factory=list)


def _usable(phrase: str, known: Any) -> bool:
    # "sixty one" was heard as "one hundred": words built on the unreliable digits are avoided too
    return phrase not in MISHEARD and not any(bad in phrase for bad in BAD_WORDS) and known(phrase)


def _phrase_for(meanings: dict[str, str], payload: str, known: Any) -> str | None:
    candidates = [p for p, m in meanings.items() if m == payload and _usable(p, known)]
    return max(candidates, key=len) if candidates else None  # the label over "two": more distinctive


def _pick(item: Item, form: Any, known: Any, n: int) -> tuple[str, str] | None:
    """(payload, phrase) for the n-th usable meaning of the item's grammar."""
    payloads = list(dict.fromkeys(form.meanings.values()))
    usable = [(p, ph) for p in payloads if (ph := _phrase_for(dict(form.meanings), p, known))]
    return usable[n % len(usable)] if usable else None


def plan_for(
    q: Questionnaire,
    phrases: VoicePhrases,
    messages: Any,
    synth: Synthesizer,
    known: Any,
    *,
    birth_keys: str,
    today: date,
    seed: int = 0,
) -> Plan:
    plan = Plan(turns=[Press(birth_keys)])
    answers: dict[str, AnswerValue] = {}
    skipped: set[str] = set()
    for step in range(200):
        item = next_item(q, answers, frozenset(skipped))
        if item is None:
            return plan
        form = spoken_form(item, "en", phrases)
        n = seed + step
        if item.type is ItemType.MULTIPLE_CHOICE:
            codes = [o.code for o in item.options]
            chosen = [codes[n % len(codes)]]
            for code in codes:
                plan.turns.append(say(synth, "yes" if code in chosen else "no"))
            answers[item.id] = plan.answers[item.id] = chosen
            plan.spoken[item.id] = f"yes to {chosen[0]}, no to the others"
            continue
        if item.type is ItemType.MULTI_BLANK:  # asked as one recorded answer (session.py), for now
            form = next(iter(form.per_blank.values()))
        if form.recorded:
            if item.required:
                plan.turns.append(say(synth, FREE_TEXT))
                plan.recorded.append(item.id)
                answers[item.id] = FREE_TEXT
            else:
                plan.turns.append(Press("#"))
                plan.skipped.append(item.id)
                skipped.add(item.id)
            continue
        if item.type is ItemType.DATE:  # said as one of the date grammar's phrases, read by nlu.dates
            said = f"{spell(DAYS_AGO, phrases.numbers)} days ago"
            assert said in form.grammar, f"{item.id}: {said!r} is not in the date grammar"
            plan.turns.append(say(synth, said))
            answers[item.id] = plan.answers[item.id] = today - timedelta(days=DAYS_AGO)
            plan.spoken[item.id] = said
            continue
        picked = _pick(item, form, known, n)
        if picked is None:
            raise AssertionError(f"{q.id}/{item.id}: no phrase of its grammar is reliably recognised")
        payload, phrase = picked
        result = accept(item, "", "en", today=today, messages=messages, payload=payload)
        assert isinstance(result, Accepted), f"{item.id}: {payload!r} is not an answer"
        plan.turns.append(say(synth, phrase))
        answers[item.id] = plan.answers[item.id] = result.value
        plan.spoken[item.id] = phrase
    raise AssertionError(f"{q.id}: more than 200 questions")


def silent() -> Turn:
    return Silent()


def spoken(synth: Synthesizer, text: str, *, barge_in: bool = False) -> Say:
    return say(synth, text, barge_in=barge_in)

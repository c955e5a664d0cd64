"""What a call would say for a questionnaire revision, question by question: the prompt, the phrases the
recogniser listens for, the keys, and any problem the voice channel has with it. Built by the same
spoken-form code the call session runs, so the preview cannot drift from the call."""

from __future__ import annotations

from dataclasses import dataclass

from backend.dialogue.content import load_voice_phrases
from questionnaires import channels
from questionnaires.model import Questionnaire
from questionnaires.spoken import SpokenForm, VoicePhrases, spoken_form


@dataclass(frozen=True)
class Prompt:
    item_id: str
    part: str  # "" for the question itself, else the option or blank asked on its own
    text: str
    grammar: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]  # DTMF key -> what it means (a number or date typed: see `how`)
    recorded: bool


def _prompts(item_id: str, part: str, form: SpokenForm) -> list[Prompt]:
    out = [Prompt(item_id, part, form.prompt, form.grammar, tuple(sorted(form.dtmf.items())), form.recorded)]
    for code, sub in {**form.per_option, **form.per_blank}.items():
        out += _prompts(item_id, code, sub)
    return out


@dataclass(frozen=True)
class VoiceItem:
    item_id: str
    how: str  # the pre-flight's summary of how the call asks it
    problem: str | None
    prompts: list[Prompt]


def spoken_prompts(q: Questionnaire, lang: str) -> list[VoiceItem]:
    phrases = VoicePhrases.parse(load_voice_phrases(lang), lang)
    plans = {
        p.item_id: p
        for p in channels.plan(q, lang, phrases, (channels.ChannelKind.VOICE,))[channels.ChannelKind.VOICE]
    }
    return [
        VoiceItem(
            item.id,
            plans[item.id].how,
            plans[item.id].problem,
            _prompts(item.id, "", spoken_form(item, lang, phrases)),
        )
        for item in q.walk()
    ]

"""Read-back, say-or-press, keypad fallback, a person at any time and red flags: event sequences in, actions
out, over real questionnaires and the real phrase files in three languages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from nlu.safety import SafetyKind
from questionnaires.channels import VoicePhrases, spoken_form
from questionnaires.loader import parse_questionnaire
from questionnaires.model import ItemType, Questionnaire
from voice_ai.call_events import (
    Answered,
    Event,
    Hangup,
    Heard,
    Key,
    Listen,
    Outcome,
    Play,
    PromptDone,
    Record,
    Recorded,
    RedFlag,
    SaveAnswer,
    Silence,
    StaffCallback,
)
from voice_ai.session import CallSession, Phase, Script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Script(
    greeting="Hello.", ask_birth_date="Your date of birth?", identity_failed="Sorry.",
    confirm="I heard {answer}. Is that right?", keypad_only="Please use the keypad.", voicemail="Call us.",
    goodbye="Goodbye.", callback="We will call back.", to_staff="A nurse will call you.",
    offer_staff="Say yes or press 1 for a nurse; no or 2 to go on.",
    audio_only="(audio)", advice={"chest_pain": "Call 120 now.", "breathing": "Call 120 now; sit upright."},
)  # fmt: skip
DOB = date(1950, 3, 5)
SURE, UNSURE = 0.9, 0.2


@cache
def phrases(lang: str = "en") -> VoicePhrases:
    raw = yaml.safe_load((ROOT / f"content/questionnaires/voice/{lang}.yaml").read_text())
    return VoicePhrases.parse(raw, lang)


@cache
def questionnaire(name: str) -> Questionnaire:
    return parse_questionnaire(yaml.safe_load((ROOT / f"content/questionnaires/{name}.yaml").read_text()))


@cache
def messages(lang: str) -> dict[str, Any]:
    return {lang: yaml.safe_load((ROOT / f"content/questionnaires/messages/{lang}.yaml").read_text())}


def session(name: str = "nps", lang: str = "en") -> CallSession:
    q = questionnaire(name)
    s = CallSession(q, lang, phrases(lang), messages(lang), SCRIPT, birth_date=DOB, today=date(2025, 1, 1))
    s.confirm_below = 0.5
    s.handle(Answered())
    s.handle(PromptDone())
    parts = {"D": "05", "M": "03", "Y": "1950"}
    for k in "".join(parts[c] for c in phrases(lang).date_order):
        acts = s.handle(Key(k))
    assert isinstance(acts[-1], Listen), acts
    return s


def run(s: CallSession, *events: Event) -> list[object]:
    return [a for e in events for a in s.handle(e)]


def saved(acts: Sequence[object]) -> list[SaveAnswer]:
    return [a for a in acts if isinstance(a, SaveAnswer)]


def test_a_sure_answer_is_stored_at_once_unconfirmed() -> None:
    s = session()
    [answer] = saved(run(s, Heard("four", SURE)))
    assert (answer.value, answer.via, answer.confirmed, answer.confidence) == (4, "speech", False, SURE)


def test_an_unsure_answer_is_read_back_and_stored_only_after_yes() -> None:
    for yes in (Heard("yes", SURE), Heard("yeah", SURE), Key("1")):
        s = session()
        acts = s.handle(Heard("four", UNSURE))
        assert acts[0] == Play("I heard four. Is that right?") and not saved(acts)
        assert isinstance(acts[1], Listen) and {"yes", "no"} <= set(acts[1].grammar)
        [answer] = saved(s.handle(yes))
        assert (answer.value, answer.confirmed, answer.transcript) == (4, True, "four")
        assert answer.confidence == UNSURE


@pytest.mark.parametrize("no", [Heard("no", SURE), Key("2"), Heard("", 0.0), Silence(), Key("7")])
def test_anything_but_yes_to_a_read_back_asks_the_question_again(no: Event) -> None:
    s = session()
    s.handle(Heard("four", UNSURE))
    acts = s.handle(no)
    assert not saved(acts) and "recommend" not in s.answers
    assert isinstance(acts[-1], Listen) and "four" in acts[-1].grammar  # the question again, by speech


def test_any_yes_to_a_read_back_confirms_it_the_caller_has_just_heard_the_answer() -> None:
    s = session()
    s.handle(Heard("four", UNSURE))
    [answer] = saved(s.handle(Heard("yes", UNSURE)))
    assert answer.confirmed and answer.value == 4


def test_a_second_failure_after_a_read_back_moves_to_the_keypad_and_speech_is_no_longer_taken() -> None:
    s = session()
    acts = run(s, Heard("four", UNSURE), Heard("no", SURE), Heard("one", UNSURE), Key("2"))
    assert acts[-1] == Listen(()) and acts[-2].text.startswith(SCRIPT.keypad_only)  # type: ignore[attr-defined]
    assert not saved(run(s, Heard("nine", SURE)))  # keypad only now
    [answer] = saved(run(s, Key("9"), Key("#")))
    assert (answer.value, answer.via, answer.confirmed) == (9, "keypad", False)


def test_the_keypad_is_always_accepted_while_listening_for_speech() -> None:
    s = session()
    [answer] = saved(run(s, Key("1"), Key("0")))  # 0-10: two digits complete the entry
    assert answer.value == 10 and answer.via == "keypad"


def test_a_never_confirmed_answer_is_never_stored_whatever_the_sequence() -> None:
    """Every sequence of up to three events from a set of unsure answers, noes, silences and keys: a
    speech answer is stored only when sure or confirmed."""
    import itertools

    pool: list[Event] = [Heard("four", UNSURE), Heard("four", SURE), Heard("no", SURE), Heard("yes", SURE),
                         Heard("yes", UNSURE), Silence(), Key("1"), Key("2")]  # fmt: skip
    for events in itertools.product(pool, repeat=3):
        s = session()
        unsure_pending = False
        for event in events:
            acts = s.handle(event)
            for answer in saved(acts):
                if answer.via == "speech":
                    assert answer.confidence is not None
                    assert answer.confidence >= s.confirm_below or answer.confirmed, events
                    assert answer.confirmed == unsure_pending, events
                    assert not answer.confirmed or answer.value == 4  # only "four" was ever unsure
            unsure_pending = any(isinstance(a, Play) and a.text.startswith("I heard") for a in acts)
            if s.phase is not Phase.ITEM:
                break


def test_a_choice_is_read_back_by_its_label_and_each_prompt_says_which_key() -> None:
    s = session("hypertension_follow_up")
    s.handle(Heard("no", SURE))  # measured at home: no
    acts = s.handle(Heard("two", UNSURE))  # key 2's word, unsure
    assert acts[0] == Play("I heard I missed a dose once or twice. Is that right?")
    p = phrases()
    for path in sorted((ROOT / "content/questionnaires").glob("*.yaml")):
        for item in questionnaire(path.stem).walk():
            if item.type.has_options and item.type is not ItemType.MULTIPLE_CHOICE:
                form = spoken_form(item, "en", p)
                for key, code in form.dtmf.items():
                    label = next(o.text["en"] for o in item.options if o.code == code)
                    assert p.press.format(option=label, key=key) in form.prompt


def test_multiple_choice_is_marked_confirmed_when_an_option_was_read_back() -> None:
    s = session("hypertension_follow_up")
    run(s, Heard("no", SURE), Heard("two", SURE))
    acts = run(s, Heard("yes", UNSURE), Key("1"), *[Heard("no", SURE)] * 8)
    [answer] = saved(acts)
    first = next(i for i in questionnaire("hypertension_follow_up").walk() if i.id == "symptoms").options[0]
    assert answer.item_id == "symptoms" and answer.confirmed and answer.value == [first.code]


def test_the_birth_date_is_not_read_back_the_record_checks_it() -> None:
    q = questionnaire("nps")
    s = CallSession(q, "en", phrases(), {}, SCRIPT, birth_date=DOB, today=date(2025, 1, 1), confirm_below=0.5)
    s.handle(Answered())
    acts = s.handle(Heard("the fifth of march", UNSURE))
    assert not any(isinstance(a, Play) and a.text.startswith("I heard") for a in acts)


def test_every_closed_question_also_spots_a_person_and_red_flags_in_a_grammar_of_their_own() -> None:
    s = session()
    listen = s.handle(Silence())[-1]
    assert isinstance(listen, Listen)
    assert {"nurse", "chest pain", "i can't breathe"} <= set(listen.spot)
    assert listen.grammar == tuple(spoken_form(s.questionnaire.items[0], "en", phrases()).grammar)


def test_pressing_0_ends_the_call_with_a_staff_callback() -> None:
    s = session("hypertension_follow_up")
    acts = s.handle(Key("0"))
    assert isinstance(acts[0], StaffCallback) and not acts[0].urgent
    assert acts[1] == Play(SCRIPT.to_staff, barge_in=False)
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.TO_STAFF)


@pytest.mark.parametrize("ask", [Heard("nurse", SURE), Heard("operator", SURE)])
def test_asking_for_a_person_by_speech_is_confirmed_first(ask: Event) -> None:
    s = session("hypertension_follow_up")
    acts = s.handle(ask)
    assert acts[0] == Play(SCRIPT.offer_staff) and isinstance(acts[1], Listen)
    taken = s.handle(Heard("yes", SURE))
    assert isinstance(taken[0], StaffCallback) and not taken[0].urgent
    s2 = session("hypertension_follow_up")
    s2.handle(ask)
    again = s2.handle(Key("2"))  # misheard: the question again
    assert isinstance(again[-1], Listen) and "yes" in again[-1].grammar and s2.phase is Phase.ITEM


def test_0_is_a_digit_while_typing_a_number() -> None:
    s = session()  # 0-10
    [answer] = saved(run(s, Key("0"), Key("#")))
    assert answer.value == 0


def test_chest_pain_mid_survey_plays_the_guidance_offers_a_person_and_raises_a_red_flag() -> None:
    s = session("hypertension_follow_up")
    acts = s.handle(Heard("chest pain", UNSURE))
    flag = acts[0]
    assert isinstance(flag, RedFlag) and flag.hit.kind is SafetyKind.EMERGENCY
    assert flag.hit.emergency is not None and flag.hit.emergency.value == "chest_pain"
    assert flag.item_id == "measured" and flag.heard == "chest pain"
    assert acts[1] == Play("Call 120 now.", barge_in=False) and acts[2] == Play(SCRIPT.offer_staff)
    assert isinstance(acts[3], Listen) and "nurse" in acts[3].grammar
    taken = s.handle(Key("1"))
    assert isinstance(taken[0], StaffCallback) and taken[0].urgent
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.TO_STAFF)


@pytest.mark.parametrize("go_on", [Key("2"), Heard("no", SURE), Silence()])
def test_declining_the_person_goes_back_to_the_question(go_on: Event) -> None:
    s = session("hypertension_follow_up")
    s.handle(Heard("i can't breathe", SURE))
    acts = s.handle(go_on)
    assert isinstance(acts[-1], Listen) and "yes" in acts[-1].grammar and s.phase is Phase.ITEM
    [answer] = saved(s.handle(Heard("no", SURE)))
    assert answer.item_id == "measured" and answer.value == "no"


def test_a_red_flag_in_an_open_answer_keeps_the_answer_then_plays_the_guidance() -> None:
    s = session()
    run(s, Heard("nine", SURE))
    acts = s.handle(Recorded("rec-1", "since yesterday i have chest pain"))
    assert isinstance(acts[0], SaveAnswer) and acts[0].via == "recording"
    assert isinstance(acts[1], RedFlag) and acts[1].item_id == "reason"
    assert acts[2] == Play("Call 120 now.", barge_in=False)
    goodbye = s.handle(Key("2"))  # no person: the survey goes on, and it was the last question
    assert goodbye == [Play(SCRIPT.goodbye, barge_in=False)]
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.COMPLETED)


def test_an_open_answer_without_a_red_flag_goes_on_as_before() -> None:
    s = session()
    run(s, Heard("nine", SURE))
    acts = s.handle(Recorded("rec-1", "the nurses were kind"))
    assert not any(isinstance(a, RedFlag) for a in acts) and isinstance(acts[0], SaveAnswer)


@pytest.mark.parametrize("lang", ["zh-CN", "vi"])
def test_zh_and_vi_listen_for_their_own_red_flags_and_a_person(lang: str) -> None:
    s = session(lang=lang)
    listen = s.handle(Silence())[-1]
    assert isinstance(listen, Listen)
    flag = "胸痛" if lang == "zh-CN" else "đau ngực"
    assert flag in listen.spot
    assert isinstance(s.handle(Heard(flag, SURE))[0], RedFlag)


def _key_answer(item: Any, form: Any) -> str:
    """Keys a caller would press for the item: the first option, the lowest number, or a date."""
    if form.keypad is None:
        return "1"
    if form.keypad.date_order is not None:
        parts = {"D": "01", "M": "12", "Y": "2024"}
        return "".join(parts[c] for c in form.keypad.date_order) + "#"
    low = item.minimum if item.minimum is not None else 1
    return f"{int(low)}#"


@pytest.mark.parametrize("lang", ["zh-CN", "vi", "en"])
def test_every_built_in_questionnaire_can_be_answered_by_keypad_alone(lang: str) -> None:
    """A call in a language with no speech model: the opening says to use the keypad, no question listens
    for speech, and every built-in questionnaire reaches the goodbye by keys (open answers are recorded)."""
    for path in sorted((ROOT / "content/questionnaires").glob("*.yaml")):
        q = questionnaire(path.stem)
        s = CallSession(q, lang, phrases(lang), messages(lang), SCRIPT, birth_date=DOB,
                        today=date(2025, 1, 1), speech=False)  # fmt: skip
        acts = s.handle(Answered())
        parts = {"D": "05", "M": "03", "Y": "1950"}
        acts = run(s, *[Key(k) for k in "".join(parts[c] for c in phrases(lang).date_order)])
        for _ in range(400):
            last = acts[-1]
            if isinstance(last, Record):
                acts = s.handle(Recorded("rec", ""))
                continue
            if not isinstance(last, Listen):
                break
            assert last.grammar == (), (path.name, s._asking)
            asking = s._asking
            assert asking is not None
            keys = "1" if asking.option is not None else _key_answer(asking.item, asking.form)
            acts = run(s, *[Key(k) for k in keys])
        assert acts[-1] == Play(SCRIPT.goodbye, barge_in=False), (path.name, lang, acts[-3:])
        assert s.handle(PromptDone())[-1] == Hangup(Outcome.COMPLETED)


def test_an_open_question_is_recorded_whatever_the_threshold() -> None:
    s = session()
    acts = s.handle(Heard("nine", UNSURE))
    acts = s.handle(Key("1"))
    assert isinstance(acts[-1], Record)

"""The call-session machine: events in, actions out, over a real questionnaire and real phrase files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from questionnaires.channels import VoicePhrases
from questionnaires.loader import parse_questionnaire
from voice_ai.call_events import (
    Answered,
    CallEnded,
    CallState,
    Hangup,
    Heard,
    Ignored,
    Key,
    Listen,
    Outcome,
    Play,
    PromptDone,
    Record,
    Recorded,
    Ringing,
    SaveAnswer,
    Silence,
    SpeechStarted,
    StaffCallback,
    StopPlaying,
)
from voice_ai.session import CallSession, Script  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Script(
    greeting="Hello, this is the hospital.", ask_birth_date="What is your date of birth?",
    identity_failed="Sorry, we could not confirm who you are.", confirm="I heard {answer}. Is that right?",
    keypad_only="Please use the keypad.", voicemail="Please call us back.", goodbye="Thank you, goodbye.",
    callback="A nurse will call you back.",
)  # fmt: skip
DOB = date(1950, 3, 5)


def session(questionnaire: str = "nps") -> CallSession:
    path = ROOT / f"content/questionnaires/{questionnaire}.yaml"
    q = parse_questionnaire(yaml.safe_load(path.read_text()))
    raw = yaml.safe_load((ROOT / "content/questionnaires/voice/en.yaml").read_text())
    phrases = VoicePhrases.parse(raw, "en")
    messages = {"en": yaml.safe_load((ROOT / "content/questionnaires/messages/en.yaml").read_text())}
    return CallSession(q, "en", phrases, messages, SCRIPT, birth_date=DOB, today=date(2025, 1, 1))


def into_survey(s: CallSession) -> None:
    s.handle(Ringing())
    s.handle(Answered())
    s.handle(PromptDone())
    assert s.handle(Key("0")) == [] and s.handle(Key("5")) == []
    for k in "031950":
        s.handle(Key(k))


def test_busy_no_answer_and_failure_before_answer() -> None:
    for status in (CallState.BUSY, CallState.NO_ANSWER, CallState.FAILED):
        s = session()
        s.handle(Ringing())
        s.handle(CallEnded(status))
        assert s.state is status
        assert isinstance(s.handle(Heard("yes", 1.0))[0], Ignored)


def test_machine_gets_a_voicemail_then_a_hangup() -> None:
    s = session()
    acts = s.handle(Answered(machine=True))
    assert s.state is CallState.MACHINE and Play(SCRIPT.voicemail, barge_in=False) in acts
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.MACHINE)


def test_identity_by_keypad_then_every_item_by_speech_then_goodbye() -> None:
    s = session()
    s.handle(Ringing())
    acts = s.handle(Answered())  # the greeting and the birth date question back to back, no gap
    plays = [a for a in acts if isinstance(a, Play)]
    assert plays[0] == Play(SCRIPT.greeting, barge_in=False)
    assert plays[1].text.startswith(SCRIPT.ask_birth_date)
    assert s.state is CallState.IN_SURVEY and isinstance(acts[-1], Listen)
    assert "the fifth of march" in acts[-1].grammar
    assert s.handle(PromptDone()) == []  # the listener is already open
    acts = [a for k in "05031950" for a in s.handle(Key(k))]
    assert isinstance(acts[-1], Listen)  # the first question
    answered = []
    for _ in range(10):
        listen = acts[-1]
        if isinstance(listen, Record):  # free text: recorded and transcribed
            acts = s.handle(Recorded("rec-1", "the nurses were kind"))
            answered += [a for a in acts if isinstance(a, SaveAnswer)]
            continue
        if not isinstance(listen, Listen):
            break
        word = "nine" if "nine" in listen.grammar else listen.grammar[0]
        acts = s.handle(Heard(word, 0.95))
        answered += [a for a in acts if isinstance(a, SaveAnswer)]
    assert [a.via for a in answered] == ["speech", "recording"] and answered[0].value == 9
    assert acts[-1] == Play(SCRIPT.goodbye, barge_in=False)
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.COMPLETED) and s.state is CallState.COMPLETED


def test_wrong_birth_date_twice_ends_the_call() -> None:
    s = session()
    s.handle(Answered())
    s.handle(PromptDone())
    s.handle(Heard("first of january", 0.9))
    acts = s.handle(Heard("first of january", 0.9))
    assert acts == [Play(SCRIPT.identity_failed, barge_in=False)]
    assert s.handle(PromptDone())[-1] == Hangup(Outcome.IDENTITY_FAILED)


def test_barge_in_stops_the_prompt() -> None:
    s = session()
    into_survey(s)
    assert s.handle(SpeechStarted()) == [StopPlaying()]


def test_low_confidence_is_confirmed_yes_saves_no_reasks() -> None:
    s = session()
    into_survey(s)
    acts = s.handle(Heard("four", 0.3))
    assert acts[0] == Play("I heard four. Is that right?") and "yes" in acts[1].grammar  # type: ignore[union-attr]
    saved = s.handle(Heard("yes", 0.9))
    assert isinstance(saved[0], SaveAnswer) and saved[0].value == 4
    s2 = session()
    into_survey(s2)
    s2.handle(Heard("four", 0.3))
    assert not any(isinstance(a, SaveAnswer) for a in s2.handle(Heard("no", 0.9)))


def test_two_failures_fall_back_to_keypad_then_staff_callback() -> None:
    s = session()
    into_survey(s)
    s.handle(Silence())
    acts = s.handle(Heard("", 0.0))
    assert acts[0].text.startswith(SCRIPT.keypad_only) and acts[1] == Listen(())  # type: ignore[union-attr]
    saved = [s.handle(Key(k)) for k in "7#"][-1]
    assert isinstance(saved[0], SaveAnswer) and saved[0].value == 7 and saved[0].via == "keypad"
    s2 = session()
    into_survey(s2)
    for event in (Silence(), Silence(), Silence()):
        s2.handle(event)
    acts = s2.handle(Silence())
    assert isinstance(acts[0], StaffCallback)
    assert s2.handle(PromptDone())[-1] == Hangup(Outcome.UNANSWERABLE)


def test_hang_up_mid_survey_keeps_answers_and_fails_the_call() -> None:
    s = session()
    into_survey(s)
    s.handle(Heard("eight", 0.9))
    s.handle(CallEnded(CallState.COMPLETED))
    assert s.state is CallState.FAILED and s.answers == {"recommend": 8}


def test_multiple_choice_is_asked_option_by_option_and_its_transcript_says_what_was_heard() -> None:
    s = session("hypertension_follow_up")
    into_survey(s)
    s.handle(Heard("no", 0.9))  # measured at home: no, so no readings are asked
    s.handle(Heard("two", 0.9))  # medication: key 2's word
    assert s.answers == {"measured": "no", "medication": "sometimes_missed"}
    acts = []
    for said in ("no", "yes", "no", "no", "no", "no", "no", "yes", "no"):  # one per symptom, in order
        acts = s.handle(Heard(said, 0.9))
    saved = next(a for a in acts if isinstance(a, SaveAnswer))
    assert saved.item_id == "symptoms" and saved.value == ["headache", "one_sided_weakness"]
    assert saved.transcript == "no, yes, no, no, no, no, no, yes, no" and saved.via == "speech"

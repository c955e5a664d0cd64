"""The call session: a typed state machine from dialling to goodbye; events in, actions out, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from nlu.safety import SafetyHit, SafetyKind, check
from questionnaires.answers import Accepted, Messages, accept
from questionnaires.channels import SpokenForm, VoicePhrases, spoken_form
from questionnaires.logic import next_item
from questionnaires.model import AnswerValue, Item, ItemType, Option, Questionnaire
from voice_ai.call_events import (
    FINAL,
    Action,
    Answered,
    AnswerVia,
    CallEnded,
    CallState,
    Event,
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
    RedFlag,
    Ringing,
    SaveAnswer,
    Silence,
    SpeechStarted,
    StaffCallback,
    StateChanged,
    StopPlaying,
)
from voice_ai.dtmf import BadKeys, KeyCollector

CONFIRM_BELOW = 0.6  # recognitions less sure than this are read back for a yes or no
SPEECH_TRIES = 2  # failed recognitions (a "no" to a read-back counts) before the keypad only
KEYPAD_TRIES = 2  # failed keypad entries before the call ends with a staff callback
PERSON_KEY = "0"  # a person, on any question where 0 is not a digit being typed


@dataclass(frozen=True, slots=True)
class Script:
    """The sentences around the questionnaire, in the call's language, from a catalogue."""

    greeting: str  # who calls, that it is automated, whether it is recorded, and how to reach a person
    ask_birth_date: str
    identity_failed: str
    confirm: str  # "I heard {answer}. Is that right? Say yes or press 1, say no or press 2."
    keypad_only: str  # said before asking again by keypad
    voicemail: str
    goodbye: str
    callback: str  # said when neither speech nor keypad worked
    to_staff: str = ""  # the caller asked for a person: a member of staff will call back now
    offer_staff: str = ""  # after emergency guidance: yes or 1 for a person, no or 2 to go on
    keypad_call: str = ""  # said after the greeting when the call's language has no speech model
    # stored as an open answer's text when nothing transcribed it (no model for the language): staff
    # listen to the audio, kept with the answer
    audio_only: str = ""
    # emergency guidance per red-flag category (nlu.red_flags.Emergency value), the site's number filled in
    advice: Mapping[str, str] = field(default_factory=dict)


class Phase(StrEnum):
    IDENTITY = "identity"
    ITEM = "item"
    CONFIRM = "confirm"
    OFFER_STAFF = "offer_staff"  # after emergency guidance: a person, or go on with the questions
    GOODBYE = "goodbye"


@dataclass(slots=True)
class _Asking:
    item: Item
    form: SpokenForm
    option: str | None = None  # multiple choice: the option asked about
    failures: int = 0
    keypad_only: bool = False
    pending: tuple[str, str, float] | None = None  # (payload or text, heard, confidence) to confirm
    keys: KeyCollector | None = None
    confirmed: bool = False  # the answer being taken was read back and confirmed


@dataclass
class CallSession:
    questionnaire: Questionnaire
    lang: str
    phrases: VoicePhrases
    messages: Messages
    script: Script
    birth_date: date
    today: date
    # Below this a recognition is read back for a yes or no: per recogniser, from settings (its scores
    # are measured against right and wrong recognitions; docs/voice.md).
    confirm_below: float = CONFIRM_BELOW
    # The safety rules over what was heard (nlu.safety.check: rules only, no classifier to load mid-call).
    safety: Callable[[str], SafetyHit | None] = check
    # False when no recogniser speaks the call's language: every closed question by keypad from the start.
    speech: bool = True
    spotting: bool = True  # listen for a person and red flags on closed questions (Listen.spot)
    state: CallState = CallState.QUEUED
    phase: Phase | None = None
    answers: dict[str, AnswerValue] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    _asking: _Asking | None = None
    _chosen: list[str] = field(default_factory=list)  # multiple choice: yes so far
    _remaining: list[str] = field(default_factory=list)  # multiple choice: options still to ask
    _heard_options: list[str] = field(default_factory=list)  # multiple choice: what was heard for each
    _options_confirmed: bool = False  # multiple choice: some option's yes or no was read back
    _outcome: Outcome = Outcome.COMPLETED
    _offer_from: _Asking | None = None  # the question to go back to after the offer of a person
    _offer_phase: Phase | None = None
    _offer_urgent: bool = False  # the offer follows emergency guidance

    def _to(self, state: CallState) -> list[Action]:
        self.state = state
        return [StateChanged(state)]

    def handle(self, event: Event) -> list[Action]:
        if self.state in FINAL:
            return [Ignored(event, f"the call is {self.state.value}")]
        match event:
            case Ringing() if self.state is CallState.QUEUED:
                return self._to(CallState.RINGING)
            case Answered(machine=True) if self.state in {CallState.QUEUED, CallState.RINGING}:
                return [*self._to(CallState.MACHINE), Play(self.script.voicemail, barge_in=False)]
            case Answered() if self.state in {CallState.QUEUED, CallState.RINGING}:
                # The greeting and the first question go out as one batch, played back to back: a gap
                # after the greeting (the question rendered only once the greeting had played) is
                # where a caller takes their turn, and answers nothing (the barge-in test's flakiness).
                self.phase = Phase.IDENTITY
                dob = Item("_birth_date", ItemType.DATE, {self.lang: self.script.ask_birth_date})
                asking = _Asking(dob, spoken_form(dob, self.lang, self.phrases))
                keypad = "" if self.speech else self.script.keypad_call
                opening = _join(self.script.greeting, keypad)
                return [*self._to(CallState.ANSWERED), Play(opening, barge_in=False),
                        *self._to(CallState.IN_SURVEY), *self._ask(asking)]  # fmt: skip
            case CallEnded(status=status):
                return self._ended(status)
            case PromptDone() if self.state is CallState.MACHINE:
                return [*self._to(CallState.COMPLETED), Hangup(Outcome.MACHINE)]
            case PromptDone() if self.phase is Phase.GOODBYE:
                return [*self._to(CallState.COMPLETED), Hangup(self._outcome)]
            case PromptDone() | SpeechStarted() if self._asking is None:
                return [Ignored(event, "nothing is being asked")]
            case PromptDone():
                return []  # the listener is already open: barge-in is allowed
            case SpeechStarted():
                return [StopPlaying()]
            case Heard() if self._asking is not None and self._asking.form.recorded:
                return [Ignored(event, "an open answer is recorded, not recognised with a grammar")]
            case Heard(text=text, confidence=confidence) if self._asking is not None:
                return self._spotted(self._asking, text) or self._heard(self._asking, text, confidence)
            case Silence() if self.phase is Phase.OFFER_STAFF:
                return self._offer_answer(None)
            case Silence() if self._asking is not None:
                return self._failed(self._asking, None)
            case Key(digit=digit) if self._asking is not None:
                return self._key(self._asking, digit)
            case Recorded(reference=ref, transcript=transcript) if self._asking is not None:
                return self._open_answer(self._asking, ref, transcript)
        return [Ignored(event, f"not expected in {self.state.value}/{self.phase}")]

    def _ended(self, status: CallState) -> list[Action]:
        if self.state in {CallState.QUEUED, CallState.RINGING}:
            final = status if status in {CallState.BUSY, CallState.NO_ANSWER} else CallState.FAILED
            return self._to(final)
        if self.state is CallState.MACHINE:
            return [*self._to(CallState.COMPLETED)]
        self._asking = None
        incomplete = self.phase is not Phase.GOODBYE
        return self._to(CallState.FAILED if incomplete else CallState.COMPLETED)

    # --- a person, and red flags at any time ----------------------------------------------------------
    def _spotted(self, asking: _Asking, text: str) -> list[Action]:
        """What was heard asks for a person or names an emergency: that comes before the question."""
        if not text or self.phase is Phase.OFFER_STAFF or text in asking.form.meanings:
            return []  # an answer to the question (a phrase that is also a spotting phrase counts as one)
        item_id = None if self.phase is Phase.IDENTITY else asking.item.id
        flagged = self._red_flag(text, asking, item_id)
        if flagged:
            return flagged
        hit = self.safety(text)
        if text in self.phrases.person_words or (hit is not None and hit.kind is SafetyKind.HUMAN):
            # Spoken, so perhaps misheard: the caller confirms before the call ends (0 needs no confirming).
            return self._offer(asking, urgent=False)
        return []

    def _open_answer(self, asking: _Asking, reference: str, transcript: str) -> list[Action]:
        """The open answer is kept (audio and transcript) first; then, if it names an emergency, the
        guidance and the offer of a person come before the next question."""
        taken = self._recorded(asking, reference, transcript)
        hit = self.safety(transcript) if transcript else None
        if hit is None or hit.kind is not SafetyKind.EMERGENCY:
            return taken
        saved = [a for a in taken if isinstance(a, SaveAnswer)]
        return [*saved, *self._red_flag(transcript, self._asking, asking.item.id)]

    def _red_flag(self, text: str, back: _Asking | None, item_id: str | None) -> list[Action]:
        """Emergency guidance, then the offer of a person; `back` is the question asked after it (None:
        the next one)."""
        hit = self.safety(text)
        if hit is None or hit.kind is not SafetyKind.EMERGENCY or hit.emergency is None:
            return []
        guidance = self.script.advice.get(hit.emergency.value, "")
        return [RedFlag(hit, text, item_id), Play(guidance, barge_in=False), *self._offer(back, urgent=True)]

    def _offer(self, back: _Asking | None, urgent: bool) -> list[Action]:
        """A member of staff (yes, 1, 0, "nurse"), or on with the questions (no, 2, anything else)."""
        self._offer_from, self._offer_phase, self._offer_urgent = back, self.phase, urgent
        self.phase = Phase.OFFER_STAFF
        offer = _Asking(back.item if back else Item("_offer", ItemType.DISPLAY, {self.lang: ""}),
                        _offer_form(self.phrases, self.script.offer_staff))  # fmt: skip
        self._asking = offer
        offer.keys = KeyCollector(offer.form)
        grammar = tuple(dict.fromkeys([*offer.form.grammar, *self.phrases.person_words]))
        return [Play(offer.form.prompt), Listen(grammar)]

    def _offer_answer(self, said: str | None) -> list[Action]:
        """After the guidance: a person (0, 1, yes, "nurse"), or on with the questions (anything else)."""
        if said in {"yes", "person"}:
            return self._to_staff(self._offer_from, urgent=self._offer_urgent)
        back, self._offer_from = self._offer_from, None
        self.phase = self._offer_phase
        if back is None:
            return self._next()
        return self._ask(back)

    def _to_staff(self, asking: _Asking | None, urgent: bool = False) -> list[Action]:
        item = f"{asking.item.id}: " if asking is not None else ""
        self.phase, self._asking, self._outcome = Phase.GOODBYE, None, Outcome.TO_STAFF
        return [StaffCallback(f"{item}the caller asked for a person", urgent=urgent),
                Play(self.script.to_staff, barge_in=False)]  # fmt: skip

    # --- asking ---------------------------------------------------------------------------------
    def _spot(self, form: SpokenForm) -> tuple[str, ...]:
        """The phrases spotted at any time (a person, red flags) that the question does not use itself;
        the recogniser leaves out those its model cannot say."""
        spot = (*self.phrases.person_words, *self.phrases.alarm_words) if self.spotting else ()
        return tuple(dict.fromkeys(p for p in spot if p not in form.meanings))

    def _ask(self, asking: _Asking, prefix: str = "") -> list[Action]:
        self._asking = asking
        asking.pending = None
        asking.keypad_only |= not self.speech
        asking.keys = KeyCollector(asking.form)
        if asking.form.recorded:
            return [Play(_join(prefix, asking.form.prompt)), Record(asking.item.id)]
        if asking.keypad_only or not asking.form.grammar:
            return [Play(_join(prefix, asking.form.prompt)), Listen(())]
        listen = Listen(asking.form.grammar, spot=self._spot(asking.form))
        return [Play(_join(prefix, asking.form.prompt)), listen]

    def _next(self) -> list[Action]:
        self.phase = Phase.ITEM
        item = next_item(self.questionnaire, self.answers, frozenset(self.skipped))
        if item is None:
            self.phase, self._asking = Phase.GOODBYE, None
            return [Play(self.script.goodbye, barge_in=False)]
        form = spoken_form(item, self.lang, self.phrases)
        if item.type is ItemType.MULTIPLE_CHOICE:
            self._chosen, self._remaining, self._heard_options = [], [o.code for o in item.options], []
            self._options_confirmed = False
            return [Play(form.prompt, barge_in=False), *self._next_option(item, form)]
        if item.type is ItemType.MULTI_BLANK:
            form = next(iter(form.per_blank.values()))  # blanks are recorded as one answer, for now
        return self._ask(_Asking(item, form))

    def _next_option(self, item: Item, form: SpokenForm) -> list[Action]:
        if not self._remaining:
            if not self._chosen:
                return self._skip(item)
            # the transcript is each option's yes or no as heard (or keyed), in the order asked
            heard = ", ".join(self._heard_options)
            return self._save(item, self._chosen, AnswerVia.SPEECH, heard, None, self._options_confirmed)
        code = self._remaining.pop(0)
        return self._ask(_Asking(item, form.per_option[code], option=code))

    def _heard(self, asking: _Asking, text: str, confidence: float) -> list[Action]:
        if self.phase is Phase.OFFER_STAFF:
            meaning = asking.form.meanings.get(text)
            return self._offer_answer("person" if text in self.phrases.person_words else meaning)
        if asking.pending is not None:  # the answer to "I heard ... is that right?"
            meaning = _yes_no_form(self.phrases).meanings.get(text)
            payload, heard, conf = asking.pending
            asking.pending = None
            # Any "yes" confirms: the grammar is a handful of words and the caller has just heard the answer.
            if meaning == "yes":
                asking.confirmed = True
                return self._take(asking, payload, AnswerVia.SPEECH, heard, conf)
            return self._failed(asking, None)
        if not text or asking.keypad_only:
            return self._failed(asking, None)
        payload = asking.form.meanings.get(text, text)
        # The birth date is checked against the record, which is confirmation enough.
        if confidence < self.confirm_below and self.phase is not Phase.IDENTITY:
            asking.pending = (payload, text, confidence)
            confirm = _yes_no_form(self.phrases)
            answer = self._readback(asking, payload, text)
            return [Play(self.script.confirm.format(answer=answer)), Listen(confirm.grammar)]
        return self._take(asking, payload, AnswerVia.SPEECH, text, confidence)

    def _readback(self, asking: _Asking, payload: str, heard: str) -> str:
        """An option is read back by its label ("Agree", not "two"), anything else as it was heard."""
        option = next((o for o in asking.item.options if o.code == payload), None)
        if asking.option is None and option is not None:
            return option.text[self.lang]
        return heard

    def _key(self, asking: _Asking, digit: str) -> list[Action]:
        assert asking.keys is not None
        if self.phase is Phase.OFFER_STAFF:
            meaning = "person" if digit == PERSON_KEY else asking.form.dtmf.get(digit)
            return self._offer_answer(meaning)
        if digit == PERSON_KEY and not asking.keys.typed and (asking.pending or asking.form.keypad is None):
            return self._to_staff(asking)  # 0 is not a digit of an entry here: the caller wants a person
        if asking.form.recorded:  # an open answer: # before speaking passes on an optional one
            if digit == "#" and not asking.item.required:
                return self._skip(asking.item)
            return self._failed(asking, None)
        if asking.pending is not None:
            payload, heard, conf = asking.pending
            asking.pending = None
            if digit == "1":
                asking.confirmed = True
                return self._take(asking, payload, AnswerVia.SPEECH, heard, conf)
            return self._failed(asking, None)
        pressed = asking.keys.press(digit)
        if pressed is None:
            return []
        if isinstance(pressed, BadKeys):
            return self._failed(asking, None)
        return self._take(asking, pressed.payload, AnswerVia.KEYPAD, pressed.payload, None)

    def _recorded(self, asking: _Asking, reference: str, transcript: str) -> list[Action]:
        text = transcript or (self.script.audio_only if reference else "")
        return self._take(asking, text, AnswerVia.RECORDING, transcript, None, reference=reference)

    def _take(
        self, asking: _Asking, said: str, via: AnswerVia, heard: str, conf: float | None, reference: str = ""
    ) -> list[Action]:
        item = asking.item
        if asking.option is not None:  # one option of a multiple choice: yes or no
            if said not in {"yes", "no"}:
                return self._failed(asking, None)
            if said == "yes":
                self._chosen.append(asking.option)
            self._heard_options.append(heard)
            self._options_confirmed |= asking.confirmed
            return self._next_option(item, spoken_form(item, self.lang, self.phrases))
        is_payload = via is AnswerVia.KEYPAD or said != heard or asking.form.recorded
        result = accept(item, heard if not is_payload else "", self.lang, today=self.today,
                        messages=self.messages, payload=said if is_payload else None)  # fmt: skip
        if not isinstance(result, Accepted):
            return self._failed(asking, result.reprompt)
        if self.phase is Phase.IDENTITY:
            if result.value != self.birth_date:
                return self._failed(asking, None)
            return self._next()
        return self._save(item, result.value, via, heard, conf, asking.confirmed)

    def _save(
        self, item: Item, value: AnswerValue, via: AnswerVia, heard: str, conf: float | None, confirmed: bool
    ) -> list[Action]:
        self.answers[item.id] = value
        return [SaveAnswer(item.id, value, via, heard, conf, confirmed), *self._next()]

    def _skip(self, item: Item) -> list[Action]:
        self.skipped.add(item.id)
        return self._next()

    def _failed(self, asking: _Asking, reprompt: str | None) -> list[Action]:
        asking.failures += 1
        asking.confirmed = False
        if self.phase is Phase.IDENTITY and asking.failures >= SPEECH_TRIES:
            self.phase, self._asking, self._outcome = Phase.GOODBYE, None, Outcome.IDENTITY_FAILED
            return [Play(self.script.identity_failed, barge_in=False)]
        if asking.failures >= SPEECH_TRIES + KEYPAD_TRIES or (asking.form.recorded and asking.failures >= 2):
            self.phase, self._asking, self._outcome = Phase.GOODBYE, None, Outcome.UNANSWERABLE
            return [StaffCallback(f"{asking.item.id}: not understood by speech or keypad"),
                    Play(self.script.callback, barge_in=False)]  # fmt: skip
        if asking.failures >= SPEECH_TRIES and (asking.form.dtmf or asking.form.keypad):
            first = not asking.keypad_only
            asking.keypad_only = True
            return self._ask(asking, self.script.keypad_only if first else (reprompt or ""))
        return self._ask(asking, reprompt or "")


def _join(prefix: str, text: str) -> str:
    return f"{prefix} {text}".strip()


def _yes_no_form(phrases: VoicePhrases) -> SpokenForm:
    lang = phrases.lang
    options = (Option("yes", {lang: phrases.yes_label}), Option("no", {lang: phrases.no_label}))
    item = Item("_confirm", ItemType.SINGLE_CHOICE, {phrases.lang: phrases.yes_label}, options=options)
    return spoken_form(item, phrases.lang, phrases)


def _offer_form(phrases: VoicePhrases, offer: str) -> SpokenForm:
    """Yes (1) for a person, no (2) to go on; the offer's own sentence says so, and 0 works too."""
    form = _yes_no_form(phrases)
    return SpokenForm(prompt=offer, grammar=form.grammar, dtmf=form.dtmf, meanings=form.meanings)

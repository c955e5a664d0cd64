"""The call session: a typed state machine from dialling to goodbye; events in, actions out, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from questionnaires.answers import Accepted, Messages, accept
from questionnaires.channels import SpokenForm, VoicePhrases, spoken_form
from questionnaires.logic import next_item
from questionnaires.model import AnswerValue, Item, ItemType, Option, Questionnaire
from voice_ai.dtmf import BadKeys, KeyCollector

CONFIRM_BELOW = 0.6  # recognitions less sure than this are read back for a yes or no
SPEECH_TRIES = 2  # failed recognitions before the item is asked by keypad only
KEYPAD_TRIES = 2  # failed keypad entries before the call ends with a staff callback


class CallState(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    MACHINE = "machine"
    IN_SURVEY = "in_survey"
    COMPLETED = "completed"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"


FINAL = frozenset({CallState.COMPLETED, CallState.FAILED, CallState.NO_ANSWER, CallState.BUSY})


class Outcome(StrEnum):
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"  # hung up or stopped mid-survey; partial answers kept
    IDENTITY_FAILED = "identity_failed"
    MACHINE = "machine"
    UNANSWERABLE = "unanswerable"  # neither speech nor keypad worked: staff call back


class AnswerVia(StrEnum):
    """How an answer arrived on a call: stored on its transcript line."""

    SPEECH = "speech"
    KEYPAD = "keypad"
    RECORDING = "recording"  # an open answer, kept as audio


# --- events -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ringing: ...


@dataclass(frozen=True, slots=True)
class Answered:
    machine: bool = False  # Twilio's AnsweredBy says machine_*


@dataclass(frozen=True, slots=True)
class CallEnded:
    status: CallState  # BUSY, NO_ANSWER or FAILED before answer; anything after answer is a hang-up


@dataclass(frozen=True, slots=True)
class PromptDone: ...


@dataclass(frozen=True, slots=True)
class SpeechStarted: ...


@dataclass(frozen=True, slots=True)
class Heard:
    text: str  # "" when the recogniser found nothing in the grammar
    confidence: float


@dataclass(frozen=True, slots=True)
class Silence: ...  # no-input timeout


@dataclass(frozen=True, slots=True)
class Key:
    digit: str


@dataclass(frozen=True, slots=True)
class Recorded:
    reference: str
    transcript: str


Event = Ringing | Answered | CallEnded | PromptDone | SpeechStarted | Heard | Silence | Key | Recorded


# --- actions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Play:
    text: str
    barge_in: bool = True  # caller speech or a key stops it


@dataclass(frozen=True, slots=True)
class StopPlaying: ...


@dataclass(frozen=True, slots=True)
class Listen:
    grammar: tuple[str, ...]  # () for keypad only
    keys: bool = True


@dataclass(frozen=True, slots=True)
class Record:
    item_id: str


@dataclass(frozen=True, slots=True)
class SaveAnswer:
    item_id: str
    value: AnswerValue
    via: AnswerVia
    transcript: str = ""
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: CallState


@dataclass(frozen=True, slots=True)
class Hangup:
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class StaffCallback:
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    event: Event
    why: str  # out of order for the state: logged, the call goes on


Action = Play | StopPlaying | Listen | Record | SaveAnswer | StateChanged | Hangup | StaffCallback | Ignored


@dataclass(frozen=True, slots=True)
class Script:
    """The sentences around the questionnaire, in the call's language, from a catalogue."""

    greeting: str
    ask_birth_date: str
    identity_failed: str
    confirm: str  # "I heard {answer}. Is that right?"
    keypad_only: str  # said before asking again by keypad
    voicemail: str
    goodbye: str
    callback: str  # said when neither speech nor keypad worked


class Phase(StrEnum):
    IDENTITY = "identity"
    ITEM = "item"
    CONFIRM = "confirm"
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


@dataclass
class CallSession:
    questionnaire: Questionnaire
    lang: str
    phrases: VoicePhrases
    messages: Messages
    script: Script
    birth_date: date
    today: date
    # Below this a recognition is read back for a yes or no; 0 when the recogniser's scores are not
    # calibrated probabilities (pocketsphinx's posterior tops out near 0.5 for correct words here).
    confirm_below: float = CONFIRM_BELOW
    state: CallState = CallState.QUEUED
    phase: Phase | None = None
    answers: dict[str, AnswerValue] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    _asking: _Asking | None = None
    _chosen: list[str] = field(default_factory=list)  # multiple choice: yes so far
    _remaining: list[str] = field(default_factory=list)  # multiple choice: options still to ask
    _heard_options: list[str] = field(default_factory=list)  # multiple choice: what was heard for each
    _outcome: Outcome = Outcome.COMPLETED

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
                return [*self._to(CallState.ANSWERED), Play(self.script.greeting, barge_in=False),
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
            case Heard(text=text, confidence=confidence) if self._asking is not None:
                return self._heard(self._asking, text, confidence)
            case Silence() if self._asking is not None:
                return self._failed(self._asking, None)
            case Key(digit=digit) if self._asking is not None:
                return self._key(self._asking, digit)
            case Recorded(reference=ref, transcript=transcript) if self._asking is not None:
                return self._recorded(self._asking, ref, transcript)
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

    # --- asking ---------------------------------------------------------------------------------
    def _ask(self, asking: _Asking, prefix: str = "") -> list[Action]:
        self._asking = asking
        asking.keys = KeyCollector(asking.form)
        if asking.form.recorded:
            return [Play(_join(prefix, asking.form.prompt)), Record(asking.item.id)]
        grammar = () if asking.keypad_only else asking.form.grammar
        return [Play(_join(prefix, asking.form.prompt)), Listen(grammar)]

    def _next(self) -> list[Action]:
        self.phase = Phase.ITEM
        item = next_item(self.questionnaire, self.answers, frozenset(self.skipped))
        if item is None:
            self.phase, self._asking = Phase.GOODBYE, None
            return [Play(self.script.goodbye, barge_in=False)]
        form = spoken_form(item, self.lang, self.phrases)
        if item.type is ItemType.MULTIPLE_CHOICE:
            self._chosen, self._remaining, self._heard_options = [], [o.code for o in item.options], []
            return [Play(form.prompt, barge_in=False), *self._next_option(item, form)]
        if item.type is ItemType.MULTI_BLANK:
            form = next(iter(form.per_blank.values()))  # blanks are recorded as one answer, for now
        return self._ask(_Asking(item, form))

    def _next_option(self, item: Item, form: SpokenForm) -> list[Action]:
        if not self._remaining:
            if not self._chosen:
                return self._skip(item)
            # the transcript is each option's yes or no as heard (or keyed), in the order asked
            return self._save(item, self._chosen, AnswerVia.SPEECH, ", ".join(self._heard_options), None)
        code = self._remaining.pop(0)
        return self._ask(_Asking(item, form.per_option[code], option=code))

    def _heard(self, asking: _Asking, text: str, confidence: float) -> list[Action]:
        if asking.pending is not None:  # the answer to "I heard ... is that right?"
            meaning = _yes_no_form(self.phrases).meanings.get(text)
            payload, heard, conf = asking.pending
            asking.pending = None
            if meaning == "yes":
                return self._take(asking, payload, AnswerVia.SPEECH, heard, conf)
            return self._failed(asking, None)
        if not text or asking.keypad_only:
            return self._failed(asking, None)
        payload = asking.form.meanings.get(text, text)
        if confidence < self.confirm_below:
            asking.pending = (payload, text, confidence)
            confirm = _yes_no_form(self.phrases)
            return [Play(self.script.confirm.format(answer=text)), Listen(confirm.grammar)]
        return self._take(asking, payload, AnswerVia.SPEECH, text, confidence)

    def _key(self, asking: _Asking, digit: str) -> list[Action]:
        assert asking.keys is not None
        if asking.form.recorded:  # an open answer: # before speaking passes on an optional one
            if digit == "#" and not asking.item.required:
                return self._skip(asking.item)
            return self._failed(asking, None)
        if asking.pending is not None:
            payload, heard, conf = asking.pending
            asking.pending = None
            if digit == "1":
                return self._take(asking, payload, AnswerVia.SPEECH, heard, conf)
            return self._failed(asking, None)
        pressed = asking.keys.press(digit)
        if pressed is None:
            return []
        if isinstance(pressed, BadKeys):
            return self._failed(asking, None)
        return self._take(asking, pressed.payload, AnswerVia.KEYPAD, pressed.payload, None)

    def _recorded(self, asking: _Asking, reference: str, transcript: str) -> list[Action]:
        return self._take(asking, transcript, AnswerVia.RECORDING, transcript, None, reference=reference)

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
        return self._save(item, result.value, via, heard, conf)

    def _save(
        self, item: Item, value: AnswerValue, via: AnswerVia, heard: str, conf: float | None
    ) -> list[Action]:
        self.answers[item.id] = value
        return [SaveAnswer(item.id, value, via, heard, conf), *self._next()]

    def _skip(self, item: Item) -> list[Action]:
        self.skipped.add(item.id)
        return self._next()

    def _failed(self, asking: _Asking, reprompt: str | None) -> list[Action]:
        asking.failures += 1
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

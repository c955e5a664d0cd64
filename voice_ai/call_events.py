"""The vocabulary of a call: its states and outcomes, the events a call session takes in and the actions
it gives out. The session (voice_ai/session.py) decides; the drivers and gateways speak these words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nlu.safety import SafetyHit
from questionnaires.model import AnswerValue


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
    TO_STAFF = "to_staff"  # the caller asked for a person (or took the offer after a red flag)


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
    # Phrases listened for at any time (a person, red flags), decoded as a grammar of their own: added to
    # the answer's, they cost pocketsphinx right answers (measured: 12 of 33 espeak-ng digits right
    # against 23; "ten" heard as nothing beside "talk to a nurse").
    spot: tuple[str, ...] = ()


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
    confirmed: bool = False  # heard below the threshold, read back, and the caller said yes (or pressed 1)


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: CallState


@dataclass(frozen=True, slots=True)
class Hangup:
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class StaffCallback:
    reason: str
    urgent: bool = False  # the caller asked for a person after a red flag


@dataclass(frozen=True, slots=True)
class RedFlag:
    """An emergency heard during the call: the backend raises an urgent staff task at once."""

    hit: SafetyHit
    heard: str  # what the recogniser or transcriber made of the caller's words
    item_id: str | None


@dataclass(frozen=True, slots=True)
class Ignored:
    event: Event
    why: str  # out of order for the state: logged, the call goes on


Action = (
    Play
    | StopPlaying
    | Listen
    | Record
    | SaveAnswer
    | StateChanged
    | Hangup
    | StaffCallback
    | RedFlag
    | Ignored
)

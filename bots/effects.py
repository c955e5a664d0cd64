"""What a turn asks the backend to do besides replying: typed effects, applied in the turn's transaction.

Effects are for changes whose outcome does not steer the dialogue (consent, hand-off, language,
feedback, a finished survey). A change whose outcome picks the next step (identify a patient, book a
slot) is an `action` step calling a port instead (bots/ports.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bots.domain import ConsentPurpose


class HandoffReason(StrEnum):
    CLARIFICATION_FAILED = "clarification_failed"
    MESSAGE_AFTER_END = "message_after_end"
    ASKED_FOR_HUMAN = "asked_for_human"
    EMERGENCY = "emergency"  # emergency words (chest pain, can't breathe, self-harm...): urgent task
    FLOW_HANDOFF = "flow_handoff"  # an authored step hands over (e.g. identification failed twice)


class FeedbackKind(StrEnum):
    COMPLAINT = "complaint"
    PRAISE = "praise"
    SUGGESTION = "suggestion"


@dataclass(frozen=True, slots=True)
class GrantConsent:
    purpose: ConsentPurpose


@dataclass(frozen=True, slots=True)
class RevokeConsent:
    purpose: ConsentPurpose


@dataclass(frozen=True, slots=True)
class RequestHandoff:
    """Staff must look at this conversation; the bot stops answering until they hand it back."""

    reason: HandoffReason


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """The patient chose a language: remember it for the patient (and this conversation)."""

    lang: str


@dataclass(frozen=True, slots=True)
class SubmitFeedback:
    kind: FeedbackKind
    text: str
    anonymous: bool
    department_id: int | None


@dataclass(frozen=True, slots=True)
class CompleteSurvey:
    """A questionnaire answered over chat: answers as questionnaires.values JSON, skipped item ids."""

    questionnaire_id: str
    version: int | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()


Effect = GrantConsent | RevokeConsent | RequestHandoff | SetLanguage | SubmitFeedback | CompleteSurvey

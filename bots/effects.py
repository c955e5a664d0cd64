"""What a turn asks the backend to do besides replying: typed effects, applied in the turn's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bots.domain import ConsentPurpose


class HandoffReason(StrEnum):
    CLARIFICATION_FAILED = "clarification_failed"
    MESSAGE_AFTER_END = "message_after_end"
    ASKED_FOR_HUMAN = "asked_for_human"
    EMERGENCY = "emergency"  # emergency words (chest pain, can't breathe, self-harm...): urgent task


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


Effect = GrantConsent | RevokeConsent | RequestHandoff

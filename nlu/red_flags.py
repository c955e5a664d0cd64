"""The clinical red-flag taxonomy as data: each emergency category, its urgency and the advice it gets.

The categories, their sources and the reasoning behind each urgency are written out in
nlu/red_flags.md. This module is pure data with no I/O, so the backend can pick the guidance text
for a hit (`advice_for(hit.emergency)`) without knowing anything about how the hit was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Emergency(StrEnum):
    """Red-flag categories. The first eight are the original ones; their values never change."""

    SELF_HARM = "self_harm"  # suicidal ideation (active, passive, indirect), self-injury, deliberate overdose
    CHEST_PAIN = "chest_pain"  # chest pain, pressure or tightness; heart attack signs
    BREATHING = "breathing"  # cannot breathe, breathless at rest, blue lips, choking
    STROKE = "stroke"  # face, arm, speech; sudden one-sided weakness or numbness; sudden loss of vision
    BLEEDING = "bleeding"  # bleeding that will not stop, vomiting or coughing blood, black tarry stools
    UNCONSCIOUS = "unconscious"  # collapsed, cannot be woken, fainted and not coming round
    SEIZURE = "seizure"  # fits, convulsions, jerking and unresponsive
    ANAPHYLAXIS = "anaphylaxis"  # throat, tongue or lip swelling, especially after a medicine
    POISONING = "poisoning"  # a chemical or someone else's medicine swallowed, an accidental overdose
    POST_OP_PAIN = "post_op_pain"  # severe or worsening pain after an operation or procedure
    INFANT_FEVER = "infant_fever"  # fever in a baby under three months
    PREGNANCY = "pregnancy"  # bleeding in pregnancy, reduced or absent movements, waters breaking early
    WOUND_INFECTION = "wound_infection"  # hot, red, pus-filled or smelly wound, spreading redness, chills
    SEVERE_HEADACHE = "severe_headache"  # sudden, worst-ever headache; headache with stiff neck


class Urgency(StrEnum):
    """How fast a person must act: IMMEDIATE is life-threatening now, URGENT is within the hour."""

    IMMEDIATE = "immediate"
    URGENT = "urgent"


class AdviceKind(StrEnum):
    """Which guidance the patient gets; each is a message key `safety.advice.<value>` in the catalogues."""

    CALL_NOW = "call_now"  # call the emergency number now
    EMERGENCY_DEPARTMENT = "emergency_department"  # go to the emergency department (or maternity unit) now
    CRISIS_LINE = "crisis_line"  # crisis line, and the emergency number if already hurt or overdosed


@dataclass(frozen=True, slots=True)
class Advice:
    urgency: Urgency
    kind: AdviceKind

    @property
    def message_key(self) -> str:
        return f"safety.advice.{self.kind.value}"


_NOW = Advice(Urgency.IMMEDIATE, AdviceKind.CALL_NOW)
_ED = Advice(Urgency.URGENT, AdviceKind.EMERGENCY_DEPARTMENT)

ADVICE: dict[Emergency, Advice] = {
    Emergency.SELF_HARM: Advice(Urgency.IMMEDIATE, AdviceKind.CRISIS_LINE),
    Emergency.CHEST_PAIN: _NOW,
    Emergency.BREATHING: _NOW,
    Emergency.STROKE: _NOW,
    Emergency.BLEEDING: _NOW,
    Emergency.UNCONSCIOUS: _NOW,
    Emergency.SEIZURE: _NOW,
    Emergency.ANAPHYLAXIS: _NOW,
    Emergency.POISONING: _NOW,
    Emergency.SEVERE_HEADACHE: _NOW,
    Emergency.POST_OP_PAIN: _ED,
    Emergency.INFANT_FEVER: _ED,
    Emergency.PREGNANCY: _ED,
    Emergency.WOUND_INFECTION: _ED,
}

# When one message hits several categories, the most urgent is reported first: self-harm (a person
# must talk to the patient), then immediate threats to life, then the urgent ones, in this order.
PRIORITY: tuple[Emergency, ...] = (
    Emergency.SELF_HARM,
    Emergency.UNCONSCIOUS,
    Emergency.BREATHING,
    Emergency.CHEST_PAIN,
    Emergency.STROKE,
    Emergency.ANAPHYLAXIS,
    Emergency.SEIZURE,
    Emergency.BLEEDING,
    Emergency.POISONING,
    Emergency.SEVERE_HEADACHE,
    Emergency.PREGNANCY,
    Emergency.INFANT_FEVER,
    Emergency.POST_OP_PAIN,
    Emergency.WOUND_INFECTION,
)


def advice_for(emergency: Emergency) -> Advice:
    """The urgency and the kind of guidance for a red-flag category."""
    return ADVICE[emergency]

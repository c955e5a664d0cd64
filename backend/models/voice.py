"""Voice calls: one row per dialled attempt: state, outcome, recording, per-question transcripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedJSON, UTCDateTime, enum_column, utcnow
from voice_ai.call_events import CallState, Outcome
from voice_ai.gateway import AnsweredBy, GatewayName


class VoiceCall(Base):
    """Transcripts are patient data: shown to staff only through audited views, never logged."""

    __tablename__ = "voice_calls"
    __table_args__ = (
        sa.UniqueConstraint("gateway", "provider_id", name="uq_voice_calls_gateway_provider"),
        sa.Index("ix_voice_calls_state_created", "state", "created_at"),
        sa.Index("ix_voice_calls_outreach_attempt", "outreach_task_id", "attempt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    outreach_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outreach_tasks.id"))
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("follow_up_plans.id"))  # the campaign
    response_id: Mapped[int | None] = mapped_column(sa.ForeignKey("questionnaire_responses.id"))
    attempt: Mapped[int] = mapped_column(default=1)  # of this outreach task by voice
    gateway: Mapped[GatewayName] = mapped_column(enum_column(GatewayName, length=16))
    provider_id: Mapped[str | None] = mapped_column(sa.String(64))  # Twilio's CallSid
    language: Mapped[str] = mapped_column(sa.String(8))
    state: Mapped[CallState] = mapped_column(enum_column(CallState), default=CallState.QUEUED)
    outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome))
    answered_by: Mapped[AnsweredBy | None] = mapped_column(enum_column(AnsweredBy, length=16))
    recording_id: Mapped[str | None] = mapped_column(sa.String(64))  # at the gateway (Twilio RE...)
    recording_url: Mapped[str | None] = mapped_column(sa.String(500))
    # [{"item", "heard", "confidence", "via", "audio"}] in the order asked; "audio" is a media reference
    transcripts: Mapped[list[dict[str, Any]]] = mapped_column(
        EncryptedJSON("voice_transcripts"), default=list
    )
    fallbacks: Mapped[int] = mapped_column(default=0)  # recognitions that heard nothing in the grammar
    callback_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tasks.id"))
    last_status_seq: Mapped[int | None]  # Twilio's SequenceNumber: older callbacks change nothing
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None]
    # The dialer's (migration 0011): not before this (quiet hours, a deferral); when the gateway took the
    # call; why a queued call was never dialled (no_consent, excluded:..., unreachable).
    dial_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    skip_reason: Mapped[str | None] = mapped_column(sa.String(32))

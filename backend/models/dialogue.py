"""Dialogue bookkeeping: the flow steps each conversation entered (drop-off) and preferred channels."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow
from bots.domain import Channel


class ConversationStep(Base):
    """One step entered by one conversation, on the flow version it ran (never a message body)."""

    __tablename__ = "conversation_steps"
    __table_args__ = (
        sa.Index("ix_conversation_steps_flow", "flow_id", "flow_version", "step"),
        sa.Index("ix_conversation_steps_conversation_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"))
    flow_id: Mapped[str] = mapped_column(sa.String(64))
    flow_version: Mapped[int]
    step: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelPreference(Base):
    """The channel a patient prefers to be contacted on, as they chose it in the registration flow."""

    __tablename__ = "channel_preferences"

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    source: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

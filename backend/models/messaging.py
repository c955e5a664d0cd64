"""Conversations on a channel and the messages in them, inbound and outbound."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow
from bots.domain import Channel

if TYPE_CHECKING:
    from backend.models.patients import Patient


class ConversationOwner(StrEnum):
    BOT = "bot"
    STAFF = "staff"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(StrEnum):
    RECEIVED = "received"  # inbound stored, turn not yet run
    PROCESSED = "processed"  # inbound handled by a turn
    QUEUED = "queued"  # outbound waiting for the sender
    SENT = "sent"  # handed to the provider (or shown on the web chat page)
    DELIVERED = "delivered"
    FAILED = "failed"
    NOT_SENT = "not_sent"  # suppressed by the outbox: no consent, excluded or unreachable


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (sa.Index("ix_conversations_patient_channel", "patient_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    address: Mapped[str] = mapped_column(sa.String(64))  # the patient's address on the channel (blind index)
    # A WeChat follower not yet linked to a patient: the openid itself (encrypted), so the bot can answer
    # inside the 48-hour window and registration can bind it. Empty for patients' conversations.
    reply_to: Mapped[str | None] = mapped_column(EncryptedText("conversation_reply_to"))
    # consent answers such a follower gave before being linked, recorded on the patient at binding
    pending_consents: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    owner: Mapped[ConversationOwner] = mapped_column(
        enum_column(ConversationOwner), default=ConversationOwner.BOT
    )
    flow_id: Mapped[str | None] = mapped_column(sa.String(64))
    flow_version: Mapped[int | None]
    state: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # the message-text revision the conversation started on and keeps (None: the files' texts)
    texts_revision: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # when the patient was told this chat is not watched around the clock (once per conversation)
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient | None] = relationship()
    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("channel", "provider_message_id", name="uq_messages_provider_id"),
        sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        sa.Index("ix_messages_created_at", "created_at"),  # the retention job's cutoff
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    choice: Mapped[str | None] = mapped_column(sa.String(64))  # the button payload a patient pressed
    parts: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)  # outbound parts (choices, links)
    # inbound images / voice notes: provider reference, and once fetched the encrypted file's name
    media: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    sent_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    # staff triage of inbound replies (the inbound-replies view)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    invalid_reply: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # the feedback case this message belongs to (its outcome notice, the complaint typed in chat): views
    # keep an anonymous case's messages from the departments (backend/services/anonymity.py)
    # use_alter: feedback_cases -> outbox -> messages -> feedback_cases is a cycle for table sorting
    case_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("feedback_cases.id", use_alter=True), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

"""The outbox: every message to a patient on an external channel, the source of truth for sending."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow
from bots.domain import Channel, ConsentPurpose


class OutboxKind(StrEnum):
    """A reply answers a patient who just wrote; outreach starts contact (quiet hours, caps apply).
    Emergency guidance answers a red flag: only an unreachable address stops it. A staff alert tells an
    on-duty staff member on her own phone about an emergency nobody has taken."""

    REPLY = "reply"
    OUTREACH = "outreach"
    EMERGENCY = "emergency"
    STAFF_ALERT = "staff_alert"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for `not_before` (deferred by quiet hours, caps or a retry)
    SENDING = "sending"  # claimed by a sender until `lease_until`
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # permanent error, or retries exhausted
    SUPPRESSED = "suppressed"  # not allowed (no consent, excluded, unreachable): never sent

    @property
    def final(self) -> bool:
        return self in {OutboxStatus.FAILED, OutboxStatus.SUPPRESSED}


class OutboxItem(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "not_before"),
        sa.Index("ix_outbox_patient_channel_sent", "patient_id", "channel", "sent_at"),
        # one item per batch and patient: a batch send that resumes or runs twice queues nobody twice
        sa.Index("uq_outbox_batch_patient", "batch_id", "patient_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    # None only for a reply to a WeChat follower not yet linked to a patient (see Conversation.reply_to)
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    kind: Mapped[OutboxKind] = mapped_column(enum_column(OutboxKind))
    purpose: Mapped[ConsentPurpose] = mapped_column(enum_column(ConsentPurpose))
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus), default=OutboxStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(sa.String(64))  # why deferred, suppressed or failed
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # queued/claimed until then
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(300))  # provider code and reason, no content
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    template_key: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    template_vars: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)  # fill the template's fields
    batch_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    # a staff alert's recipient (her own phone); patient_id is then None
    to_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last provider status callback


class AttemptOutcome(StrEnum):
    """What one call to the provider came to. `started` is written before the call: an attempt still
    `started` when its lease runs out was cut short (the worker died) and becomes `ambiguous`."""

    STARTED = "started"
    SENT = "sent"  # the provider accepted it
    FOUND = "found"  # a lookup after an ambiguous attempt found the provider had accepted it
    RETRY = "retry"  # a transient refusal (5xx, 429, unreachable): not sent, retried later
    AMBIGUOUS = "ambiguous"  # timed out or cut short: the provider may or may not have accepted it
    FAILED = "failed"  # a permanent refusal


class OutboxAttempt(Base):
    """One attempt to hand an outbox item to its provider: when, how long, how it ended, the provider's
    error code. Never the body or the address (the history is shown to staff and kept with the item)."""

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column()
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome))
    code: Mapped[str | None] = mapped_column(sa.String(64))  # the provider's error code, or ours

"""Outreach batches: one message sent to a segment or an uploaded list, previewed, approved and sent as long
work; and the previews staff rendered, whose counts a send must still match."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow
from bots.domain import Channel, ConsentPurpose


class BatchPurpose(StrEnum):
    """Why the hospital writes. Education is care (opt-out); research and marketing, recurring greetings
    (birthdays, festivals) among them, need the patient's opt-in."""

    CARE = "care"
    EDUCATION = "education"
    RESEARCH = "research"
    MARKETING = "marketing"

    @property
    def consent(self) -> ConsentPurpose:
        return {
            BatchPurpose.CARE: ConsentPurpose.CARE,
            BatchPurpose.EDUCATION: ConsentPurpose.CARE,
            BatchPurpose.RESEARCH: ConsentPurpose.RESEARCH,
            BatchPurpose.MARKETING: ConsentPurpose.MARKETING,
        }[self]


class BatchState(StrEnum):
    DRAFT = "draft"  # being prepared: preview, approve
    SCHEDULED = "scheduled"  # previewed and sent for a later time: the periodic job starts it then
    SENDING = "sending"  # its job is queueing outbox items
    SENT = "sent"  # every recipient has an outbox item (each still passes the gates when it goes)
    CANCELLED = "cancelled"  # stopped by staff; what was queued before stays queued


class OutreachBatch(Base):
    __tablename__ = "outreach_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    purpose: Mapped[BatchPurpose] = mapped_column(enum_column(BatchPurpose))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    # the text per language ("zh-CN", "vi", "en"); a patient gets hers, else the first one written
    messages: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    # the segment (backend.audiences.filters.Audience as JSON), or None for an uploaded list
    audience: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # an uploaded list: the patients its rows matched, and the rows that matched nobody ({row, reason})
    listed_patient_ids: Mapped[list[int] | None] = mapped_column(sa.JSON)
    unmatched_rows: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    state: Mapped[BatchState] = mapped_column(enum_column(BatchState), default=BatchState.DRAFT, index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_preview_id: Mapped[int | None]  # the preview the approver saw
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("work_jobs.id"))
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a scheduled batch starts

    @property
    def outbox_key(self) -> str:
        """The outbox items' batch_id: one item per batch and patient (a unique index holds it)."""
        return f"outreach:{self.id}"


class OutreachPreview(Base):
    """What one person was shown for a batch: counts to send, defer and suppress by reason, and their
    hash. A send names the preview; it is refused if the counts computed then hash differently."""

    __tablename__ = "outreach_previews"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("outreach_batches.id"), index=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    counts_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

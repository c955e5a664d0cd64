"""What happened to a staff task, in order: claims, assignments, notes, replies, escalations, closing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedJSON, UTCDateTime, enum_column, utcnow


class TaskEventKind(StrEnum):
    CLAIMED = "claimed"
    ASSIGNED = "assigned"
    TRANSFERRED = "transferred"
    NOTE = "note"
    REPLIED = "replied"
    HANDED_BACK = "handed_back"
    ESCALATED = "escalated"
    RAISED = "raised"  # a more urgent priority (an emergency in the conversation), due time recomputed
    ALERTED = "alerted"  # a staff member told outside the inbox (on-duty SMS/WeChat)
    CLOSED = "closed"
    REOPENED = "reopened"


class ResolutionCode(StrEnum):
    RESOLVED = "resolved"
    ADVICE_GIVEN = "advice_given"
    REFERRED = "referred"
    APPOINTMENT_MADE = "appointment_made"
    UNREACHABLE = "unreachable"
    NO_ACTION_NEEDED = "no_action_needed"
    DUPLICATE = "duplicate"


class TaskEvent(Base):
    """Rows are only ever added; they feed first-response, resolution and hand-off reports."""

    __tablename__ = "task_events"
    __table_args__ = (sa.Index("ix_task_events_task_id_id", "task_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("tasks.id"))
    kind: Mapped[TaskEventKind] = mapped_column(enum_column(TaskEventKind))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))  # None: the system
    # ids, codes and staff notes (encrypted: a note often says what the patient has); never the text of a
    # message to or from the patient
    detail: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("task_event_detail"), default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TaskMention(Base):
    """A colleague @mentioned in a task's note: lets her open that task (outside her departments too) and
    lists it under "mentioned me" until she opens it (`read_at`)."""

    __tablename__ = "task_mentions"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "staff_id"),
        sa.Index("ix_task_mentions_staff_task", "staff_id", "task_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("tasks.id"))
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("task_events.id"))
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))  # who is mentioned
    by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))  # who wrote the note
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskRead(Base):
    """When a staff member last opened a task: what the inbox counts as unread for her is what came after
    (a patient's messages in its conversation), and a task she has never opened is new to her."""

    __tablename__ = "task_reads"

    staff_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Staff tasks: work raised by bots, findings and failed contacts, with priority and an SLA due time."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class TaskKind(StrEnum):
    HANDOFF = "handoff"
    ABNORMAL_ANSWER = "abnormal_answer"
    COMPLAINT = "complaint"
    CALLBACK = "callback"
    LOSS_TO_FOLLOW_UP = "loss_to_follow_up"


class TaskPriority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def sla(self) -> timedelta:
        return {
            TaskPriority.URGENT: timedelta(hours=1),
            TaskPriority.HIGH: timedelta(hours=4),
            TaskPriority.NORMAL: timedelta(hours=24),
            TaskPriority.LOW: timedelta(hours=72),
        }[self]


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (sa.Index("ix_tasks_status_department_due", "status", "department_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TaskKind] = mapped_column(enum_column(TaskKind))
    priority: Mapped[TaskPriority] = mapped_column(enum_column(TaskPriority))
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.OPEN)
    title: Mapped[str] = mapped_column(sa.String(200))
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    source_type: Mapped[str] = mapped_column(sa.String(32))  # what raised it: "conversation", "response" …
    source_id: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
    INTEGRATION = "integration"  # the hospital's data feed needs a person (e.g. HL7 silent in working hours)


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


# The open-tasks predicate, written out so queries can repeat it literally: PostgreSQL only uses a partial
# index when it can prove the query's condition implies the index's, which a bound parameter defeats.
NOT_CLOSED_SQL = "status <> 'closed'"


def not_closed() -> sa.TextClause:
    """`Task.status != closed` as a literal condition, matching the partial indexes below."""
    return sa.text(f"tasks.{NOT_CLOSED_SQL}")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_status_department_due", "status", "department_id", "due_at"),
        # The inbox lists tasks not yet closed, most urgent first, for everyone or within departments;
        # closed tasks pile up over the years, so these indexes hold only the open ones.
        sa.Index(
            "ix_tasks_open_due",
            "due_at",
            "id",
            postgresql_where=sa.text(NOT_CLOSED_SQL),
            sqlite_where=sa.text(NOT_CLOSED_SQL),
        ),
        sa.Index(  # queue counts, which every open inbox polls twice a second: an index-only scan
            "ix_tasks_open_kind_department",
            "kind",
            "department_id",
            postgresql_where=sa.text(NOT_CLOSED_SQL),
            sqlite_where=sa.text(NOT_CLOSED_SQL),
        ),
        sa.Index(
            "ix_tasks_open_department_due",
            "department_id",
            "due_at",
            "id",
            postgresql_where=sa.text(NOT_CLOSED_SQL),
            sqlite_where=sa.text(NOT_CLOSED_SQL),
        ),
    )

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

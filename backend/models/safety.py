"""Clinical safety: emergencies seen in patients' messages, the SLA table, the on-duty roster, reviews."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow
from backend.models.tasks import TaskKind, TaskPriority


class SafetyAlert(Base):
    """One emergency seen in one inbound message: what was done about it. One row per message, so a
    provider's re-delivery or a retried turn never answers or raises twice."""

    __tablename__ = "safety_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    category: Mapped[str] = mapped_column(sa.String(32))  # nlu.safety.Emergency value
    language: Mapped[str] = mapped_column(sa.String(8))  # the guidance's language
    held_by: Mapped[str] = mapped_column(sa.String(8))  # "bot" or "staff": who held the conversation
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tasks.id"))
    guidance_message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))  # None: unreachable
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MissedEscalation(Base):
    """A staff member says the bot should have escalated this inbound message: the review queue, and the
    source of new cases for the safety evaluation set."""

    __tablename__ = "missed_escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"), unique=True)
    marked_by: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    category: Mapped[str | None] = mapped_column(sa.String(32))  # what it should have been, if she says
    note: Mapped[str | None] = mapped_column(EncryptedText("missed_escalation_note"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    reviewed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SlaPolicy(Base):
    """A department's own response time for one priority; without a row the settings' table applies."""

    __tablename__ = "sla_policies"
    __table_args__ = (sa.UniqueConstraint("department_id", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    priority: Mapped[TaskPriority] = mapped_column(enum_column(TaskPriority))
    minutes: Mapped[int]


class SlaKindPolicy(Base):
    """A response time for one kind of task and one priority, the hospital's (`department_id` None, scope
    "hospital") or one department's (scope "department:<id>"): a complaint's 48 hours, a callback's 4.
    The scope string keeps one row per level, kind and priority (a NULL department would not)."""

    __tablename__ = "sla_kind_policies"
    __table_args__ = (sa.UniqueConstraint("scope", "kind", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(32))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    kind: Mapped[TaskKind] = mapped_column(enum_column(TaskKind))
    priority: Mapped[TaskPriority] = mapped_column(enum_column(TaskPriority))
    minutes: Mapped[int]


class DutyRoster(Base):
    """Who is on duty for a department now, and who is told when she does not take an emergency."""

    __tablename__ = "duty_rosters"

    department_id: Mapped[int] = mapped_column(
        sa.ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    on_duty_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    fallback_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Spot checks: supervisors' samples of completed follow-ups, and what the reviewer found in each."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow


class SpotCheck(Base):
    """One drawn sample: completed follow-ups of a department (or all) in a period, by ratio or count.
    The seed makes the draw reproducible: the same rows and seed always give the same sample."""

    __tablename__ = "spot_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)  # inclusive
    ratio: Mapped[float | None]
    count: Mapped[int | None]
    seed: Mapped[str] = mapped_column(sa.String(64))
    population: Mapped[int]  # completed follow-ups the sample was drawn from
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpotVerdict(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    ISSUE = "issue"


class SpotCheckItem(Base):
    """One sampled follow-up and what the reviewer found."""

    __tablename__ = "spot_check_items"
    __table_args__ = (
        sa.UniqueConstraint("spot_check_id", "outreach_task_id", name="uq_spot_check_items_check_task"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    spot_check_id: Mapped[int] = mapped_column(sa.ForeignKey("spot_checks.id"), index=True)
    outreach_task_id: Mapped[int] = mapped_column(sa.ForeignKey("outreach_tasks.id"))
    response_id: Mapped[int | None] = mapped_column(sa.ForeignKey("questionnaire_responses.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    verdict: Mapped[SpotVerdict] = mapped_column(enum_column(SpotVerdict), default=SpotVerdict.PENDING)
    note: Mapped[str] = mapped_column(EncryptedText("spot_check_note"), default="")
    reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tasks.id"))

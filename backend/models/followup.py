"""Follow-up: published questionnaire versions, plans, outreach tasks, responses and their findings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedJSON, UTCDateTime, enum_column, utcnow
from bots.domain import Channel


class QuestionnaireVersion(Base):
    """A published definition, frozen: responses are always scored against the version they answered."""

    __tablename__ = "questionnaire_versions"
    __table_args__ = (
        sa.UniqueConstraint("questionnaire_id", "version", name="uq_questionnaire_versions_qv"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int]
    checksum: Mapped[str] = mapped_column(sa.String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the authored mapping, as parsed from YAML
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Anchor(StrEnum):
    DISCHARGE = "discharge"  # offsets count from the end of the stay
    VISIT = "visit"  # offsets count from the start of the visit


class FollowUpPlan(Base):
    """Who (department, ward, diagnosis, procedure, visit type), what, when, how, how many."""

    __tablename__ = "follow_up_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    encounter_kinds: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    department_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)  # empty: any
    ward_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    diagnosis_prefixes: Mapped[list[str]] = mapped_column(
        sa.JSON, default=list
    )  # ICD-10 prefixes, e.g. "I10"
    procedure_codes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    anchor: Mapped[Anchor] = mapped_column(enum_column(Anchor), default=Anchor.DISCHARGE)
    offsets_days: Mapped[list[int]] = mapped_column(sa.JSON, default=list)  # e.g. [3, 15, 30]
    send_hour: Mapped[int] = mapped_column(default=10)  # local hour of day in the patient's zone
    channels: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # fallback order
    sample_ratio: Mapped[float] = mapped_column(default=1.0)
    daily_limit: Mapped[int | None]
    resend_after_hours: Mapped[int] = mapped_column(default=48)
    attempts_per_channel: Mapped[int] = mapped_column(default=2)
    excluded_flags: Mapped[list[str]] = mapped_column(
        sa.JSON,
        default=lambda: ["deceased", "dispute", "do_not_disturb", "invalid_contact", "frequent_visitor"],
    )
    age_min: Mapped[int | None]  # the age the patient turns this year (the birth year is what SQL sees)
    age_max: Mapped[int | None]
    min_visits: Mapped[int | None]  # the patient's encounters of the plan's kinds, up to the anchor
    # A plan authored in the studio: its item's key and the published revision this row holds. Seeded and
    # file plans have neither.
    content_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    revision: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutreachStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due time
    SENT = "sent"  # sent on the current channel, waiting for the answer
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # excluded, readmitted, deceased, consent withdrawn everywhere
    LOST = "lost"  # every channel tried: loss to follow-up

    @property
    def open(self) -> bool:
        return self in {OutreachStatus.SCHEDULED, OutreachStatus.SENT}


class OutreachTask(Base):
    """One follow-up of one encounter at one offset: sent, resent, fallen back, answered or lost."""

    __tablename__ = "outreach_tasks"
    __table_args__ = (
        sa.UniqueConstraint(
            "plan_id", "encounter_id", "offset_days", name="uq_outreach_tasks_plan_enc_offset"
        ),
        sa.Index("ix_outreach_tasks_status_next", "status", "next_attempt_at"),
        sa.Index("ix_outreach_tasks_patient_status", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("follow_up_plans.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"))
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounters.id"), index=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    plan_revision: Mapped[int | None]  # the plan's studio revision that created the task, kept as it runs
    offset_days: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[OutreachStatus] = mapped_column(
        enum_column(OutreachStatus), default=OutreachStatus.SCHEDULED
    )
    channel_index: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)  # on the current channel
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    closed_reason: Mapped[str | None] = mapped_column(sa.String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResponseStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class QuestionnaireResponse(Base):
    __tablename__ = "questionnaire_responses"
    __table_args__ = (sa.Index("ix_questionnaire_responses_q_completed", "questionnaire_id", "completed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("questionnaire_versions.id"))
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    outreach_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outreach_tasks.id"), unique=True)
    encounter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("encounters.id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    language: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[ResponseStatus] = mapped_column(
        enum_column(ResponseStatus), default=ResponseStatus.IN_PROGRESS
    )
    # item id -> JSON form of the value, encrypted; scores and bands stay plain for statistics
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("questionnaire_answers"), default=dict)
    skipped: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    scores: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    bands: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Finding(Base):
    """Something abnormal in a response; each one raises a staff task (nothing abnormal is only stored)."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("questionnaire_responses.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    items: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("tasks.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

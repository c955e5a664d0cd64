"""Feedback cases: complaints, praise and suggestions, with their departments, handling records and files."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow
from bots.domain import Channel


class CaseKind(StrEnum):
    COMPLAINT = "complaint"
    PRAISE = "praise"
    SUGGESTION = "suggestion"


class CaseSource(StrEnum):
    CHAT = "chat"  # a chat flow on any channel
    SURVEY = "survey"  # a satisfaction survey's free-text answer
    PHONE = "phone"  # a staff member on the phone (the staff form)
    MOBILE = "mobile"  # the patient on the mobile feedback page


class CaseProgress(StrEnum):
    NEW = "new"  # registered, nobody working on it yet
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class RecordKind(StrEnum):
    FACTS = "facts"  # facts verified
    SOLUTION = "solution"
    COMMUNICATION = "communication"  # communication with the patient
    PENALTY = "penalty"


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    DISSATISFIED = "dissatisfied"


class FeedbackCase(Base):
    __tablename__ = "feedback_cases"
    __table_args__ = (sa.Index("ix_feedback_cases_progress_created", "progress", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CaseKind] = mapped_column(enum_column(CaseKind))
    category: Mapped[str] = mapped_column(sa.String(64))  # a code of content/feedback_categories.yaml
    text: Mapped[str] = mapped_column(
        EncryptedText("case_text")
    )  # what the patient said; never logged or audited
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    anonymous: Mapped[bool] = mapped_column(default=False)  # the patient asked not to be named to staff
    source: Mapped[CaseSource] = mapped_column(enum_column(CaseSource))
    channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    conversation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("conversations.id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"), index=True)  # lead
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tasks.id"))  # its inbox task
    progress: Mapped[CaseProgress] = mapped_column(enum_column(CaseProgress), default=CaseProgress.NEW)
    valid: Mapped[bool | None]  # None: not judged yet
    invalid_reason: Mapped[str | None] = mapped_column(sa.String(500))
    satisfaction: Mapped[Satisfaction | None] = mapped_column(enum_column(Satisfaction))
    summary: Mapped[str | None] = mapped_column(EncryptedText("case_summary"))  # the closing summary
    notice_draft: Mapped[str | None] = mapped_column(
        EncryptedText("case_notice_draft")
    )  # an outcome notice that could not be sent
    notice_outbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox.id"))  # the last one queued
    registered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseDepartment(Base):
    """A department collaborating on a case besides the lead one, optionally with a named person."""

    __tablename__ = "feedback_case_departments"

    case_id: Mapped[int] = mapped_column(
        sa.ForeignKey("feedback_cases.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), primary_key=True, index=True)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    added_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HandlingRecord(Base):
    """One handling step; a case has as many as it needs. Rows are only ever added."""

    __tablename__ = "feedback_handling_records"
    __table_args__ = (sa.Index("ix_feedback_handling_records_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("feedback_cases.id"))
    kind: Mapped[RecordKind] = mapped_column(enum_column(RecordKind))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))  # on whose behalf
    text: Mapped[str] = mapped_column(EncryptedText("case_record_text"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseAttachment(Base):
    """Evidence for a case. The file is sealed under the data key in `media_dir`, named by a random id."""

    __tablename__ = "feedback_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("feedback_cases.id"), index=True)
    record_id: Mapped[int | None] = mapped_column(sa.ForeignKey("feedback_handling_records.id"))
    filename: Mapped[str] = mapped_column(EncryptedText("case_attachment_filename"))
    mime_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    stored: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

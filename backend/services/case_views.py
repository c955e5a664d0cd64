"""What a case's page and report show besides the case itself: its records, files, collaborators and
history, and the patient a phone registration names by MRN (within the registering staff's reach)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    CaseAttachment,
    CaseDepartment,
    FeedbackCase,
    HandlingRecord,
    Patient,
    StaffUser,
)
from backend.services import cases, directory
from backend.services.patients import may_view


def case_details(session: Session, case: FeedbackCase) -> dict[str, Any]:
    """The records, files and collaborators of a case, for its page and its report."""
    return {
        "task": cases.task_of(session, case) if case.task_id else None,
        "involved": cases.involved_departments(session, case),
        "collaborators": list(
            session.scalars(
                sa.select(CaseDepartment)
                .where(CaseDepartment.case_id == case.id)
                .order_by(CaseDepartment.added_at)
            )
        ),
        "records": list(
            session.scalars(
                sa.select(HandlingRecord).where(HandlingRecord.case_id == case.id).order_by(HandlingRecord.id)
            )
        ),
        "attachments": list(
            session.scalars(
                sa.select(CaseAttachment).where(CaseAttachment.case_id == case.id).order_by(CaseAttachment.id)
            )
        ),
        "names": directory.staff_names(session),
    }


def case_history(session: Session, case: FeedbackCase, *, hidden: Sequence[str]) -> list[AuditEvent]:
    """The case's audit rows, oldest first, without the `hidden` actions (views are not history)."""
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_type == "case", AuditEvent.subject_id == case.id)
            .where(AuditEvent.action.not_in(hidden))
            .order_by(AuditEvent.id)
        )
    )


def patient_by_mrn(session: Session, user: StaffUser, mrn: str) -> Patient | None:
    """The patient with this MRN, if `user` may see her record."""
    found = session.scalar(sa.select(Patient).where(Patient.mrn_bidx == Patient.code_index("mrn", mrn)))
    return found if found is not None and may_view(session, user, found.id) else None

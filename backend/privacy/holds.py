"""Legal holds: facts that forbid erasing (or anonymising) a patient now, each with a reason code staff
see translated. Checked when a request is made and again when it is approved, as the world may change."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import CaseKind, CaseProgress, Encounter, FeedbackCase, RightsKind
from backend.services.consents import current_consents
from bots.domain import ConsentPurpose


class Hold(StrEnum):
    OPEN_COMPLAINT = "open_complaint"  # the case's evidence must stay until it is closed
    RESEARCH_CONSENT = "research_consent"  # the patient agreed to research use of her identified data
    MEDICAL_RECORD_RETENTION = "medical_record_retention"  # the statutory retention period still runs


# Anonymisation keeps the clinical facts (visits, answers, findings) without identity, so the retention
# of medical records does not stand in its way; the other holds need the person to stay identifiable.
APPLIES_TO: dict[Hold, frozenset[RightsKind]] = {
    Hold.OPEN_COMPLAINT: frozenset({RightsKind.ANONYMISATION, RightsKind.ERASURE}),
    Hold.RESEARCH_CONSENT: frozenset({RightsKind.ANONYMISATION, RightsKind.ERASURE}),
    Hold.MEDICAL_RECORD_RETENTION: frozenset({RightsKind.ERASURE}),
}


def _years_before(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def holds_on(
    session: Session, patient_id: int, kind: RightsKind, *, now: datetime, retention_years: int
) -> list[Hold]:
    """The holds that stand against `kind` for this patient now (empty: it may go ahead)."""
    found: list[Hold] = []
    open_complaint = session.scalar(
        sa.select(FeedbackCase.id)
        .where(
            FeedbackCase.patient_id == patient_id,
            FeedbackCase.kind == CaseKind.COMPLAINT,
            FeedbackCase.progress != CaseProgress.CLOSED,
        )
        .limit(1)
    )
    if open_complaint is not None:
        found.append(Hold.OPEN_COMPLAINT)
    consents = current_consents(session, patient_id)
    if any(e.purpose is ConsentPurpose.RESEARCH and e.granted for e in consents.values()):
        found.append(Hold.RESEARCH_CONSENT)
    last_visit = session.scalar(
        sa.select(sa.func.max(sa.func.coalesce(Encounter.ended_at, Encounter.started_at))).where(
            Encounter.patient_id == patient_id
        )
    )
    if retention_years > 0 and last_visit is not None:
        if last_visit.tzinfo is None:  # SQLite's max() returns the stored text without the column type
            last_visit = last_visit.replace(tzinfo=UTC)
        if last_visit > _years_before(now, retention_years):
            found.append(Hold.MEDICAL_RECORD_RETENTION)
    return [hold for hold in found if kind in APPLIES_TO[hold]]

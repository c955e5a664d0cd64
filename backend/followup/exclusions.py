"""Exclusion lists and encounter changes, with what they do to open follow-ups."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.planner import reschedule_for_encounter
from backend.models import Encounter, OutreachStatus, OutreachTask, Patient
from backend.models.base import utcnow
from backend.models.patients import EXCLUSION_FLAGS
from backend.services import audit


def do_set_exclusion(
    session: Session,
    patient: Patient,
    flag: str,
    value: bool,
    *,
    staff_id: int | None,
    now: datetime | None = None,
) -> int:
    """Set an exclusion flag; putting a patient on a list closes their open follow-ups. Returns how many."""
    if flag not in EXCLUSION_FLAGS:
        raise ValueError(f"unknown exclusion list {flag!r}")
    now = now or utcnow()
    setattr(patient, flag, value)
    closed = 0
    if value:
        result = session.execute(
            sa.update(OutreachTask)
            .where(
                OutreachTask.patient_id == patient.id,
                OutreachTask.status.in_([OutreachStatus.SCHEDULED, OutreachStatus.SENT]),
            )
            .values(status=OutreachStatus.CANCELLED, closed_reason=flag, closed_at=now)
        )
        closed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        session,
        "patient.exclusion",
        staff_id=staff_id,
        patient_id=patient.id,
        flag=flag,
        value=value,
        follow_ups_closed=closed,
    )
    return closed


def do_change_encounter_times(
    session: Session,
    encounter: Encounter,
    *,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    staff_id: int | None = None,
) -> int:
    """The HIS corrected a visit or discharge time: follow-ups not yet sent move with it."""
    if started_at is not None:
        encounter.started_at = started_at
    if ended_at is not None:
        encounter.ended_at = ended_at
    session.flush()
    moved = reschedule_for_encounter(session, encounter)
    audit.record(
        session,
        "encounter.times_changed",
        staff_id=staff_id,
        patient_id=encounter.patient_id,
        subject=("encounter", encounter.id),
        follow_ups_moved=moved,
    )
    return moved

"""Patient lists by visit type (outpatient, inpatient, discharged, physical exam) and their filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from backend.models import (
    Clinician,
    Department,
    Encounter,
    EncounterKind,
    OutreachStatus,
    OutreachTask,
    Patient,
    StaffUser,
    Ward,
)
from backend.models.patients import EXCLUSION_FLAGS
from backend.services.message_log import InvalidFilter, parse_choice, parse_id, text_value
from backend.services.patients import SEARCH_SORT_BOUND, by_name, department_ids, scoped_to_user, text_matches

PAGE_SIZE = 50
NO_FLAGS = "none"


class FollowUpState(StrEnum):
    NONE = "none"  # no follow-up planned for the visit
    OPEN = "open"  # scheduled or sent, not answered yet
    COMPLETED = "completed"
    LOST = "lost"


@dataclass(frozen=True)
class PatientFilters:
    visit: EncounterKind | None = None
    text: str = ""  # name, phone, MRN or ID number
    department_id: int | None = None
    ward_id: int | None = None
    since: date | None = None  # visit date (discharge date for the discharged)
    until: date | None = None  # inclusive
    doctor_id: int | None = None
    nurse_id: int | None = None
    diagnosis: str = ""  # ICD-10 prefix of the primary diagnosis
    follow_up: FollowUpState | None = None
    flag: str = ""  # an exclusion flag, NO_FLAGS, or "" for any

    @property
    def by_visit(self) -> bool:
        """Whether the rows are visits (any visit filter set) rather than patients."""
        return any(
            (
                self.visit,
                self.department_id,
                self.ward_id,
                self.since,
                self.until,
                self.doctor_id,
                self.nurse_id,
                self.diagnosis,
                self.follow_up,
            )
        )

    def audit_detail(self) -> dict[str, Any]:
        """What was asked, without the searched text (it may be a phone or ID number)."""
        return {
            "visit": self.visit,
            "text": bool(self.text),
            "department": self.department_id,
            "ward": self.ward_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "doctor": self.doctor_id,
            "nurse": self.nurse_id,
            "diagnosis": self.diagnosis or None,
            "follow_up": self.follow_up,
            "flag": self.flag or None,
        }


def _day(values: Mapping[str, str], name: str) -> date | None:
    text = text_value(values, name)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise InvalidFilter(name) from exc


def parse_patient_filters(values: Mapping[str, str]) -> PatientFilters:
    """From the search form; raises InvalidFilter naming the first value that cannot be used."""
    flag = text_value(values, "flag")
    if flag and flag != NO_FLAGS and flag not in EXCLUSION_FLAGS:
        raise InvalidFilter("flag")
    diagnosis = text_value(values, "diagnosis").upper()
    if len(diagnosis) > 16:
        raise InvalidFilter("diagnosis")
    since, until = _day(values, "since"), _day(values, "until")
    if since and until and since > until:
        raise InvalidFilter("until")
    return PatientFilters(
        visit=parse_choice(values, "visit", EncounterKind),
        text=text_value(values, "q"),
        department_id=parse_id(values, "department"),
        ward_id=parse_id(values, "ward"),
        since=since,
        until=until,
        doctor_id=parse_id(values, "doctor"),
        nurse_id=parse_id(values, "nurse"),
        diagnosis=diagnosis,
        follow_up=parse_choice(values, "follow_up", FollowUpState),
        flag=flag,
    )


@dataclass(frozen=True)
class PatientRow:
    patient: Patient
    encounter: Encounter | None
    department: str
    ward: str
    doctor: str
    nurse: str


def _flag_condition(flag: str) -> sa.ColumnElement[bool]:
    if flag == NO_FLAGS:
        return sa.and_(*(getattr(Patient, f).is_(False) for f in EXCLUSION_FLAGS))
    return getattr(Patient, flag).is_(True)  # type: ignore[no-any-return]


def _follow_up_condition(state: FollowUpState) -> sa.ColumnElement[bool]:
    tasks = sa.select(OutreachTask.id).where(OutreachTask.encounter_id == Encounter.id)
    if state is FollowUpState.NONE:
        return sa.not_(sa.exists(tasks))
    statuses = {
        FollowUpState.OPEN: [OutreachStatus.SCHEDULED, OutreachStatus.SENT],
        FollowUpState.COMPLETED: [OutreachStatus.COMPLETED],
        FollowUpState.LOST: [OutreachStatus.LOST],
    }[state]
    return sa.exists(tasks.where(OutreachTask.status.in_(statuses)))


def _bounds(day: date, *, end: bool) -> datetime:
    return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)


def patient_rows(
    session: Session, *, user: StaffUser, filters: PatientFilters, limit: int = PAGE_SIZE
) -> list[PatientRow]:
    """One statement whatever the page size: visits (newest first) when a visit filter is set, else
    patients by name. Visits are scoped by their department; patients as everywhere else."""
    if not filters.by_visit:
        patients = sa.select(Patient)
        if filters.text:
            patients = patients.where(text_matches(filters.text))
        if filters.flag:
            patients = patients.where(_flag_condition(filters.flag))
        if filters.text:
            # a search's matches are few: loaded (bounded) and put in name order here, names being encrypted
            found = by_name(
                session.scalars(scoped_to_user(patients, user).order_by(Patient.id).limit(SEARCH_SORT_BOUND))
            )[:limit]
        else:
            found = list(
                session.scalars(scoped_to_user(patients, user).order_by(Patient.id.desc()).limit(limit))
            )
        return [PatientRow(p, None, "", "", "", "") for p in found]
    doctor, nurse = aliased(Clinician), aliased(Clinician)
    query = (
        sa.select(Encounter, Patient, Department.name, Ward.name, doctor.name, nurse.name)
        .join(Patient, Patient.id == Encounter.patient_id)
        .join(Department, Department.id == Encounter.department_id)
        .outerjoin(Ward, Ward.id == Encounter.ward_id)
        .outerjoin(doctor, doctor.id == Encounter.attending_doctor_id)
        .outerjoin(nurse, nurse.id == Encounter.responsible_nurse_id)
    )
    allowed = department_ids(user)
    if allowed is not None:
        query = query.where(Encounter.department_id.in_(allowed))
    f = filters
    # the discharged are listed by discharge date, everyone else by visit (admission) date
    when = Encounter.ended_at if f.visit is EncounterKind.DISCHARGE else Encounter.started_at
    conditions = [
        Encounter.kind == f.visit if f.visit else None,
        text_matches(f.text) if f.text else None,
        Encounter.department_id == f.department_id if f.department_id else None,
        Encounter.ward_id == f.ward_id if f.ward_id else None,
        when >= _bounds(f.since, end=False) if f.since else None,
        when < _bounds(f.until, end=True) if f.until else None,
        Encounter.attending_doctor_id == f.doctor_id if f.doctor_id else None,
        Encounter.responsible_nurse_id == f.nurse_id if f.nurse_id else None,
        Encounter.primary_diagnosis.startswith(f.diagnosis, autoescape=True) if f.diagnosis else None,
        _follow_up_condition(f.follow_up) if f.follow_up else None,
        _flag_condition(f.flag) if f.flag else None,
    ]
    query = query.where(*(c for c in conditions if c is not None))
    rows = session.execute(query.order_by(when.desc(), Encounter.id.desc()).limit(limit))
    return [
        PatientRow(p, e, dept or "", ward or "", doc or "", nur or "") for e, p, dept, ward, doc, nur in rows
    ]


def options(session: Session, user: StaffUser) -> dict[str, list[Any]]:
    """The departments, wards and clinicians the filters offer, within the user's departments."""
    allowed = department_ids(user)

    def scoped(query: sa.Select[Any], column: Any) -> sa.Select[Any]:
        return query if allowed is None else query.where(column.in_(allowed))

    return {
        "departments": list(
            session.scalars(scoped(sa.select(Department), Department.id).order_by(Department.name))
        ),
        "wards": list(session.scalars(scoped(sa.select(Ward), Ward.department_id).order_by(Ward.name))),
        "clinicians": list(
            session.scalars(scoped(sa.select(Clinician), Clinician.department_id).order_by(Clinician.name))
        ),
    }

"""Factories for test data, written through the real models."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pyotp
from sqlalchemy.orm import Session

from backend.auth import hash_password
from backend.models import Department, Encounter, EncounterKind, Patient, Role, StaffUser
from backend.models.base import utcnow

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def department(session: Session, code: str | None = None) -> Department:
    n = next(_seq)
    dept = Department(code=code or f"D{n}", name=f"Department {n}", names={})
    session.add(dept)
    session.flush()
    return dept


def patient(
    session: Session,
    *,
    language: str = "en",
    phone: str | None = None,
    dept: Department | None = None,
    **kwargs: object,
) -> Patient:
    n = next(_seq)
    person = Patient(
        mrn=kwargs.pop("mrn", f"T{n:06d}"),
        name=kwargs.pop("name", f"Patient {n}"),
        language=language,
        timezone="Asia/Shanghai",
        phone=phone or f"+8613900{n:06d}",
        birth_date=date(1960, 5, 17),
        **kwargs,
    )
    session.add(person)
    session.flush()
    if dept is not None:
        encounter(session, person, dept)
    return person


def encounter(
    session: Session,
    person: Patient,
    dept: Department,
    *,
    kind: EncounterKind = EncounterKind.DISCHARGE,
    started: datetime | None = None,
) -> Encounter:
    started = started or utcnow() - timedelta(days=5)
    enc = Encounter(
        patient_id=person.id,
        kind=kind,
        department_id=dept.id,
        started_at=started,
        ended_at=started + timedelta(days=3),
        diagnoses=[{"system": "ICD-10", "code": "I10", "text": "HTN"}],
    )
    session.add(enc)
    session.flush()
    return enc


def staff(
    session: Session,
    *,
    username: str,
    role: Role = Role.NURSE,
    totp: bool = False,
    departments: list[Department] | None = None,
) -> StaffUser:
    user = StaffUser(
        username=username,
        display_name=username.title(),
        role=role,
        password_hash=hash_password(PASSWORD),
        totp_secret=pyotp.random_base32() if totp else None,
        language="en",
        departments=departments or [],
    )
    session.add(user)
    session.flush()
    return user

"""Test data for booking: a site, a doctor with a schedule and its generated slots."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Clinician, ClinicianKind, Department, DoctorSchedule, Site, Slot
from backend.services.schedules import do_create_schedule, do_generate_slots
from tests import factories

_seq = itertools.count(1)


@dataclass(frozen=True)
class Clinic:
    department_id: int
    clinician_id: int
    site_id: int
    schedule_id: int


def site(session: Session, *, timezone: str = "Asia/Shanghai") -> Site:
    n = next(_seq)
    row = Site(
        code=f"S{n}",
        name=f"Site {n}",
        names={"zh-CN": f"院区{n}", "vi": f"Cơ sở {n}", "en": f"Site {n}"},
        timezone=timezone,
        address=f"{n} Hospital Road",
    )
    session.add(row)
    session.flush()
    return row


def clinic(
    session: Session,
    *,
    now: datetime,
    department: Department | None = None,
    at: Site | None = None,
    sessions: Sequence[tuple[str, str]] = (("14:00", "16:00"),),
    weekdays: Sequence[int] = tuple(range(7)),
    slot_minutes: int = 30,
    capacity: int = 1,
    days: int = 4,
) -> Clinic:
    dept = department or factories.department(session)
    place = at or site(session)
    doctor = Clinician(kind=ClinicianKind.DOCTOR, department_id=dept.id, name=f"Dr Test {next(_seq)}")
    session.add(doctor)
    session.flush()
    schedule = do_create_schedule(
        session,
        clinician_id=doctor.id,
        site_id=place.id,
        weekdays=weekdays,
        sessions=[{"start": s, "end": e} for s, e in sessions],
        slot_minutes=slot_minutes,
        capacity=capacity,
        valid_from=date(2020, 1, 1),
    )
    do_generate_slots(session, schedule, now=now, days=days)
    return Clinic(dept.id, doctor.id, place.id, schedule.id)


def slots_of(session: Session, clinic: Clinic) -> list[Slot]:
    return list(
        session.scalars(
            sa.select(Slot).where(Slot.schedule_id == clinic.schedule_id).order_by(Slot.starts_at)
        )
    )


def slot_at(session: Session, clinic: Clinic, start: datetime) -> Slot:
    return session.scalars(
        sa.select(Slot).where(Slot.schedule_id == clinic.schedule_id, Slot.starts_at == start)
    ).one()


def schedule(session: Session, clinic: Clinic) -> DoctorSchedule:
    row = session.get(DoctorSchedule, clinic.schedule_id)
    assert row is not None
    return row


def day_after(now: datetime, days: int) -> date:
    return (now + timedelta(days=days)).date()

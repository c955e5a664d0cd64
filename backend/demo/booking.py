"""Demo booking data: two sites and a weekly clinic for every demo doctor, with slots for four weeks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Clinician, ClinicianKind, Site
from backend.services.schedules import do_create_schedule, do_generate_slots

SITES = [
    ("MAIN", "Main campus", {"zh-CN": "总院", "vi": "Cơ sở chính", "en": "Main campus"}, "1 Hospital Road"),
    (
        "EAST",
        "East campus",
        {"zh-CN": "东院", "vi": "Cơ sở phía Đông", "en": "East campus"},
        "88 East Street",
    ),
]
# (site index, weekdays, sessions) for a department's first, second and third doctor
CLINICS = [
    (0, [0, 1, 2, 3, 4], [{"start": "08:00", "end": "12:00"}, {"start": "14:00", "end": "17:00"}]),
    (1, [1, 3, 5], [{"start": "08:30", "end": "11:30"}]),
    (0, [0, 2, 4], [{"start": "14:00", "end": "17:00"}, {"start": "18:00", "end": "20:00"}]),
]


def seed_schedules(session: Session, *, timezone: str, now: datetime) -> int:
    """Add the demo sites and schedules; returns how many slots were generated."""
    sites = [Site(code=c, name=n, names=names, timezone=timezone, address=a) for c, n, names, a in SITES]
    session.add_all(sites)
    session.flush()
    doctors = session.scalars(
        sa.select(Clinician).where(Clinician.kind == ClinicianKind.DOCTOR).order_by(Clinician.id)
    ).all()
    by_department: dict[int, list[Clinician]] = {}
    for doctor in doctors:
        by_department.setdefault(doctor.department_id, []).append(doctor)
    slots = 0
    for department_doctors in by_department.values():
        for doctor, (site, weekdays, sessions) in zip(department_doctors, CLINICS, strict=False):
            schedule = do_create_schedule(
                session,
                clinician_id=doctor.id,
                site_id=sites[site].id,
                weekdays=weekdays,
                sessions=sessions,
                slot_minutes=30,
                capacity=2,
                valid_from=now.date(),
            )
            slots += do_generate_slots(session, schedule, now=now)
    return slots

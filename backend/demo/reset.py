"""`careloop demo --reset`: empty a demo database and seed it again, refusing when it holds anything else.

A database is a demo database when every patient has a demo record number (MRN100000 upwards, as
backend/demo/seed.py numbers them), every staff account is a demo login and every department a demo
department. Anything else (a patient from HL7, a real nurse's account) makes the reset refuse and
delete nothing: an evaluator who pointed `make run` at a real database loses nothing.
What the demo patients did (chats, answers, tasks, cases, audit rows) is demo data and goes with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.demo.seed import DEMO_STAFF, DEPARTMENTS, DemoLogins, seed
from backend.models import Department, Patient, StaffUser
from backend.models.base import Base

DEMO_MRN = re.compile(r"^MRN1\d{5}$")
KEEP = {"alembic_version", "staff_roles", "staff_role_permissions"}  # roles are configuration


class NotADemoDatabase(Exception):
    """The database holds data the demo did not make; `found` says what, for the operator."""

    def __init__(self, found: list[str]) -> None:
        super().__init__("not a demo database: " + "; ".join(found))
        self.found = found


@dataclass(frozen=True)
class Foreign:
    patients: int
    staff: int
    departments: int

    def describe(self) -> list[str]:
        parts = [
            (self.patients, "patients without a demo record number"),
            (self.staff, "staff accounts that are not demo logins"),
            (self.departments, "departments that are not demo departments"),
        ]
        return [f"{n} {what}" for n, what in parts if n]


def foreign_data(session: Session) -> Foreign:
    """How much of the database the demo did not make. Patients' MRNs are plain columns; read in chunks
    so a large real database is not loaded at once."""
    patients = 0
    for (mrn,) in session.execute(sa.select(Patient.mrn).execution_options(yield_per=1000)):
        if not DEMO_MRN.match(mrn or ""):
            patients += 1
    staff = session.scalar(
        sa.select(sa.func.count()).select_from(StaffUser).where(StaffUser.username.not_in(DEMO_STAFF))
    )
    codes = [code for code, *_ in DEPARTMENTS]
    departments = session.scalar(
        sa.select(sa.func.count()).select_from(Department).where(Department.code.not_in(codes))
    )
    return Foreign(patients, staff or 0, departments or 0)


def do_reset_demo(session: Session, *, patients: int = 200) -> DemoLogins:
    """Delete every row of every table (children first) and seed the demo again, in one transaction.
    Raises NotADemoDatabase, having deleted nothing, when the database holds anything else."""
    found = foreign_data(session).describe()
    if found:
        raise NotADemoDatabase(found)
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP]
    # A foreign key declared use_alter closes a cycle that table sorting cannot order: clear it first.
    for table in tables:
        for fk in table.foreign_keys:
            if fk.use_alter and fk.parent.nullable:
                session.execute(table.update().values({fk.parent.name: None}))
    for table in tables:
        session.execute(table.delete())
    session.expunge_all()  # objects loaded before are rows no longer there (and their ids come again)
    return seed(session, patients=patients)

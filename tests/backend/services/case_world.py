"""The departments, staff and patient the feedback-case tests work in, and helpers to read cases back."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    Department,
    FeedbackCase,
    Patient,
    Role,
    StaffUser,
)
from backend.services import cases
from tests import factories
from tests.backend.security.test_staff_auth import _csrf

ALICE_PHONE = "+8613800138000"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class World:
    cardio: Department
    ortho: Department
    derm: Department
    agent: StaffUser  # service centre: every department
    nurse: StaffUser  # cardiology
    ortho_nurse: StaffUser
    derm_nurse: StaffUser  # a third department, never involved
    alice: Patient  # cardiology


def make_world(db: Session) -> World:
    cardio, ortho, derm = (factories.department(db) for _ in range(3))
    w = World(
        cardio,
        ortho,
        derm,
        factories.staff(db, username="agent1", role=Role.SERVICE_AGENT),
        factories.staff(db, username="nurse1", departments=[cardio]),
        factories.staff(db, username="nurse2", departments=[ortho]),
        factories.staff(db, username="nurse3", departments=[derm]),
        factories.patient(db, name="Alice Wang", phone=ALICE_PHONE, dept=cardio),
    )
    db.commit()
    return w


def register_case(db: Session, w: World, **kw: object) -> FeedbackCase:
    args: dict[str, object] = {
        "kind": "complaint",
        "text": "The night nurse was rude to my mother.",
        "patient_id": w.alice.id,
        "anonymous": False,
        "department_id": w.cardio.id,
        "channel": "sms",
        "conversation_id": None,
        "actor": "bot",
    }
    args.update(kw)
    case = cases.do_register_case(db, **args)  # type: ignore[arg-type]
    db.commit()
    return case


def case_row(db: Session, case_id: int) -> FeedbackCase:
    db.expire_all()
    return db.get_one(FeedbackCase, case_id)


def actions_of(db: Session, case_id: int) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.subject_type == "case", AuditEvent.subject_id == case_id)
            .where(AuditEvent.action.not_in(["case.view", "case.report"]))
            .order_by(AuditEvent.id)
        )
    )


def csrf_of(client: TestClient, case_id: int) -> str:
    return _csrf(client.get(f"/staff/cases/{case_id}").text)

"""`careloop demo --reset`: a demo database is emptied and seeded again; anything else is refused with
nothing deleted. And the demo data a clinician looks at first is plausible."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.demo.reset import NotADemoDatabase, do_reset_demo, foreign_data
from backend.demo.seed import seed
from backend.models import (
    Clinician,
    Conversation,
    Department,
    Encounter,
    Message,
    Patient,
    Sex,
    StaffUser,
)
from tests import factories

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _count(db: Session, model: type) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_reset_empties_a_demo_database_and_seeds_it_again(db: Session) -> None:
    seed(db, patients=6, now=NOW)
    first = db.scalars(sa.select(Patient).order_by(Patient.id)).first()
    assert first is not None
    chat = factories.conversation(db, first)  # what an evaluator did with the demo goes with it
    factories.reply(db, chat, "hello from the evaluator")
    db.commit()
    do_reset_demo(db, patients=6)
    db.commit()
    assert _count(db, Patient) == 6 and _count(db, Conversation) == 0 and _count(db, Message) == 0
    assert {s.username for s in db.scalars(sa.select(StaffUser))} == {"admin", "agent", "nurse"}
    assert _count(db, Department) == 6


@pytest.mark.parametrize("what", ["patient", "staff", "department"])
def test_reset_refuses_a_database_with_anything_else_and_deletes_nothing(db: Session, what: str) -> None:
    seed(db, patients=4, now=NOW)
    if what == "patient":
        factories.patient(db, mrn="H0001234")  # from the hospital's systems
    elif what == "staff":
        factories.staff(db, username="real.nurse")
    else:
        factories.department(db, code="ICU")
    db.commit()
    before = (_count(db, Patient), _count(db, StaffUser), _count(db, Department), _count(db, Encounter))
    with pytest.raises(NotADemoDatabase) as refused:
        do_reset_demo(db, patients=4)
    db.rollback()
    assert len(refused.value.found) == 1
    after = (_count(db, Patient), _count(db, StaffUser), _count(db, Department), _count(db, Encounter))
    assert after == before


def test_an_empty_database_is_a_demo_database(db: Session) -> None:
    assert foreign_data(db).describe() == []


def test_the_demo_is_plausible_to_a_clinician(db: Session) -> None:
    seed(db, patients=120, now=NOW)
    obstetrics = db.scalars(sa.select(Department).where(Department.code == "OBST")).one()
    mothers = db.scalars(
        sa.select(Patient).join(Encounter).where(Encounter.department_id == obstetrics.id).distinct()
    ).all()
    assert mothers
    for person in mothers:
        assert person.birth_date is not None
        age = (NOW.date() - person.birth_date).days // 365
        assert person.sex is Sex.FEMALE and 18 <= age <= 45, (person.sex, age)
    for clinician in db.scalars(sa.select(Clinician)):
        assert set(clinician.names) == {"zh-CN", "vi", "en"}
        assert clinician.names["zh-CN"].startswith(clinician.name)  # the record's name is the Chinese one
        assert not any(ch.isdigit() for ch in clinician.name_in("en"))
    languages = {p.language for p in db.scalars(sa.select(Patient))}
    assert languages == {"zh-CN", "vi", "en"}

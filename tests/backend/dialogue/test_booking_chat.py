"""Booking, moving and cancelling end to end through the web chat: the real app, engine, ports, database."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    Appointment,
    AppointmentReminder,
    AppointmentStatus,
    Department,
    ReminderStatus,
    Slot,
)
from backend.models.base import utcnow
from backend.services.booking import do_book, do_reschedule
from bots.domain import Channel
from tests import factories
from tests.backend.dialogue.webchat_driver import Chat
from tests.backend.services import booking_data


def _patient_chat(client: TestClient, db: Session, language: str = "en") -> tuple[int, Chat]:
    person = factories.patient(db, language=language)
    db.commit()
    chat = Chat(client, make_token(get_settings(), LinkKind.CHAT, person.id))
    chat.open()
    chat.say(choice="yes")  # the welcome flow's consent question
    return person.id, chat


def _clinic(db: Session, **kwargs: Any) -> booking_data.Clinic:
    clinic = booking_data.clinic(db, now=utcnow(), **kwargs)
    db.commit()
    return clinic


def _ics_start(client: TestClient, text: str) -> Any:
    url = re.search(r"https?://\S+/a/\S+", text)
    assert url is not None, text
    response = client.get(url.group(0).split("8000", 1)[1])
    assert response.status_code == 200
    [event] = Calendar.from_ical(response.content).walk("VEVENT")
    return event.decoded("dtstart")


def test_a_patient_books_through_the_web_chat(client: TestClient, db: Session) -> None:
    clinic = _clinic(db, sessions=[("09:00", "10:00"), ("14:00", "16:00")])
    patient, chat = _patient_chat(client, db)
    chat.say("menu")
    assert chat.payload("Book an appointment") == "book"
    chat.say(choice="book")
    assert "Which department" in chat.text()
    department = db.get(Department, clinic.department_id)
    assert department is not None
    chat.say(choice=chat.payload(department.name))
    assert "Which doctor" in chat.text()
    chat.say(choice=str(clinic.clinician_id))
    chat.say(choice="any")  # the earliest day
    assert "time of day" in chat.text()
    chat.say("2")  # afternoon, by its number
    assert "Where" in chat.text()
    chat.say(choice="any")
    offered = chat.choices()
    slot_ids = [int(c["payload"]) for c in offered if c["payload"].isdigit()]
    assert slot_ids and len(slot_ids) <= 8
    slots = [db.get(Slot, s) for s in slot_ids]
    assert all(s is not None and s.time_of_day == "afternoon" for s in slots)  # the filter held
    chat.say(choice=str(slot_ids[0]))
    assert "Shall I book" in chat.text()
    chat.say("yes")
    assert "Your appointment is booked" in chat.text()
    db.expire_all()
    appointment = db.scalars(sa.select(Appointment).where(Appointment.patient_id == patient)).one()
    assert (appointment.slot_id, appointment.status, appointment.channel) == (
        slot_ids[0],
        AppointmentStatus.BOOKED,
        Channel.WEBCHAT,
    )
    assert appointment.source == "webchat:booking"
    slot = db.get(Slot, slot_ids[0])
    assert slot is not None and slot.booked == 1
    reminders = db.scalars(
        sa.select(AppointmentReminder).where(AppointmentReminder.appointment_id == appointment.id)
    ).all()
    assert {r.offset_minutes for r in reminders} == {1440, 120}
    assert {r.channel for r in reminders if r.status is ReminderStatus.SCHEDULED} <= {Channel.SMS}
    assert _ics_start(client, chat.text()) == slot.starts_at
    assert "What can I do for you" in chat.text()  # back at the main menu


def test_a_place_taken_while_confirming_is_refused_and_other_times_offered(
    client: TestClient, db: Session
) -> None:
    clinic = _clinic(db)
    rival = factories.patient(db).id
    db.commit()
    patient, chat = _patient_chat(client, db)
    chat.say("menu")
    chat.say(choice="book")
    chat.say(choice=str(clinic.department_id))
    chat.say(choice="any")
    chat.say(choice="any")
    chat.say(choice="any")
    chat.say(choice="any")
    first = next(c["payload"] for c in chat.choices() if c["payload"].isdigit())
    chat.say(choice=first)
    with session_scope() as session:  # someone else takes it first
        do_book(session, patient_id=rival, slot_id=int(first), channel=Channel.SMS, source="test")
    chat.say(choice="yes")
    assert "just been taken" in chat.text()
    assert first not in [c["payload"] for c in chat.choices()]  # the list no longer has it
    assert db.scalar(sa.select(sa.func.count()).where(Appointment.patient_id == patient)) == 0


def test_a_patient_moves_and_then_cancels_through_the_web_chat_in_chinese(
    client: TestClient, db: Session
) -> None:
    clinic = _clinic(db, sessions=[("14:00", "17:00")])
    patient, chat = _patient_chat(client, db, language="zh-CN")
    first_slot = booking_data.slots_of(db, clinic)[0]
    with session_scope() as session:
        appointment = do_book(
            session, patient_id=patient, slot_id=first_slot.id, channel=Channel.WEBCHAT, source="test"
        ).id
    chat.say("菜单")
    chat.say(choice="appointments")
    assert "您即将到来的预约" in chat.text()
    chat.say("1")  # change one
    chat.say(choice=str(appointment))
    assert "同一位医生" in chat.text()
    chat.say(choice="same")
    chat.say(choice="any")
    chat.say(choice="any")
    offered = [int(c["payload"]) for c in chat.choices() if c["payload"].isdigit()]
    assert first_slot.id not in offered  # the appointment's own time is not offered
    chat.say(choice=str(offered[0]))
    chat.say(choice="yes")
    assert "改约成功" in chat.text()
    db.expire_all()
    moved = db.get(Appointment, appointment)
    assert moved is not None and moved.slot_id == offered[0] and moved.sequence == 1
    old = db.get(Slot, first_slot.id)
    assert old is not None and old.booked == 0
    new = db.get(Slot, offered[0])
    assert new is not None and _ics_start(client, chat.text()) == new.starts_at

    chat.say("菜单")
    chat.say(choice="appointments")
    chat.say(choice="cancel")
    chat.say(choice=str(appointment))
    assert "确认取消预约" in chat.text()
    chat.say("是")
    assert "预约已取消" in chat.text()
    db.expire_all()
    cancelled = db.get(Appointment, appointment)
    assert cancelled is not None and cancelled.status is AppointmentStatus.CANCELLED
    freed = db.get(Slot, offered[0])
    assert freed is not None and freed.booked == 0
    reminders = db.scalars(
        sa.select(AppointmentReminder).where(AppointmentReminder.appointment_id == appointment)
    )
    assert {r.status for r in reminders} <= {ReminderStatus.CANCELLED, ReminderStatus.SKIPPED}
    chat.say("菜单")
    chat.say(choice="appointments")
    assert "没有即将到来的预约" in chat.text()


def test_a_chat_without_free_slots_says_so(client: TestClient, db: Session) -> None:
    _, chat = _patient_chat(client, db, language="vi")
    chat.say("menu")
    chat.say(choice="book")
    assert "hiện không còn lịch trống" in chat.text()


def test_the_fourth_move_of_a_day_is_refused_in_the_chat_with_the_reason(
    client: TestClient, db: Session
) -> None:
    clinic = _clinic(db, capacity=3)
    patient, chat = _patient_chat(client, db)
    slots = booking_data.slots_of(db, clinic)
    with session_scope() as session:
        appointment = do_book(
            session, patient_id=patient, slot_id=slots[0].id, channel=Channel.WEBCHAT, source="test"
        ).id
    for target in slots[1:4]:
        with session_scope() as session:
            do_reschedule(
                session,
                patient_id=patient,
                appointment_id=appointment,
                slot_id=target.id,
                channel=Channel.SMS,
            )
    chat.say("menu")
    chat.say(choice="appointments")
    chat.say(choice="move")
    chat.say(choice=str(appointment))
    chat.say(choice="other")  # any doctor of the department
    chat.say(choice="any")
    chat.say(choice="any")
    chat.say(choice=next(c["payload"] for c in chat.choices() if c["payload"].isdigit()))
    chat.say("yes")
    assert "already changed appointments 3 times today" in chat.text()
    db.expire_all()
    row = db.get(Appointment, appointment)
    assert row is not None and row.slot_id == slots[3].id and row.sequence == 3


def test_nonsense_in_the_booking_dialogue_is_clarified_then_handed_to_staff(
    client: TestClient, db: Session
) -> None:
    _clinic(db)
    _, chat = _patient_chat(client, db)
    chat.say("menu")
    chat.say(choice="book")
    chat.say("🙃🙃🙃")
    assert "number of a department" in chat.text()
    chat.say("x" * 4000)
    assert "care team" in chat.text()  # two failed clarifications: a person takes over


def test_an_appointment_booked_with_the_hospital_is_listed_but_changed_there_not_in_the_chat(
    client: TestClient, db: Session
) -> None:
    from datetime import timedelta

    from backend.integration.facts import AppointmentFacts, CodedValue, Identifier
    from backend.integration.his_appointments import do_apply_his_appointment
    from backend.integration.records import Notes
    from backend.models import Patient

    clinic = _clinic(db)
    code = db.get_one(Department, clinic.department_id).code
    patient, chat = _patient_chat(client, db)
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    with session_scope() as session:
        appointment = do_apply_his_appointment(
            session,
            session.get_one(Patient, patient),
            AppointmentFacts(
                filler=Identifier("A-77", "HOSP"),
                starts_at=start,
                ends_at=start + timedelta(minutes=20),
                department=CodedValue(code),
            ),
            event="S12",
            moved=False,
            source="hl7:S12",
            mapping_source="HOSP",
            zone="Asia/Shanghai",
            notes=Notes(),
            now=utcnow(),
        ).id
    chat.say("menu")
    chat.say(choice="appointments")
    chat.say(choice="move")
    chat.say(choice=str(appointment))
    assert "call the hospital" in chat.text()  # said before any new time is offered
    chat.say("menu")
    chat.say(choice="appointments")
    chat.say(choice="cancel")
    chat.say(choice=str(appointment))
    chat.say(choice="yes")
    assert "call the hospital" in chat.text()
    db.expire_all()
    kept = db.get_one(Appointment, appointment)
    assert (kept.status, kept.starts_at, kept.sequence) == (AppointmentStatus.BOOKED, start, 0)

"""Booking on SQLite and PostgreSQL: slot generation and search, races, overlap, moves, cancellation."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.i18n import translations
from backend.models import (
    Appointment,
    AppointmentEvent,
    AppointmentEventKind,
    AppointmentStatus,
    AuditEvent,
    Slot,
)
from backend.models.base import utcnow
from backend.services.appointment_views import appointment_rows
from backend.services.booking import (
    BookingRefused,
    do_book,
    do_cancel,
    do_reschedule,
    patient_appointments,
    upcoming_appointments,
)
from backend.services.booking_rules import Refusal, TimeOfDay
from backend.services.schedules import do_generate_slots, find_slots, generate_all_slots
from backend.web.deps import templates
from bots.domain import Channel
from tests import factories
from tests.backend.services import booking_data

SH = ZoneInfo("Asia/Shanghai")


def _patients(n: int) -> list[int]:
    with session_scope() as session:
        return [factories.patient(session).id for _ in range(n)]


def _book(patient_id: int, slot_id: int, **kwargs: object) -> Appointment:
    with session_scope() as session:
        return do_book(
            session, patient_id=patient_id, slot_id=slot_id, channel=Channel.WEBCHAT, source="test", **kwargs
        )


def _refusal(call: object, *args: object, **kwargs: object) -> BookingRefused:
    with pytest.raises(BookingRefused) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def _slot(db: Session, slot_id: int) -> Slot:
    db.expire_all()
    slot = db.get(Slot, slot_id)
    assert slot is not None
    return slot


def test_generation_is_idempotent_and_records_local_day_and_part_of_day(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(
            session, now=now, sessions=[("08:00", "09:00"), ("14:00", "15:00"), ("18:00", "19:00")], days=5
        )
        first = len(booking_data.slots_of(session, clinic))
        assert do_generate_slots(session, booking_data.schedule(session, clinic), now=now, days=5) == 0
    slots = booking_data.slots_of(db, clinic)
    assert len(slots) == first and first >= 4 * 6  # today's passed slots are not generated
    assert len({s.starts_at for s in slots}) == len(slots)
    assert all(s.starts_at > now and s.booked == 0 and s.capacity == 1 for s in slots)
    for s in slots:
        local = s.starts_at.astimezone(SH)
        assert s.local_date == local.date()
        assert s.time_of_day == {8: "morning", 14: "afternoon", 18: "evening"}[local.hour]
    with session_scope() as session:  # more days later: only the new days are added
        added = do_generate_slots(session, booking_data.schedule(session, clinic), now=now, days=6)
    assert added == 6
    assert generate_all_slots(now=now) == 22 * 6  # the periodic job fills 28 days ahead
    assert generate_all_slots(now=now) == 0  # and running it again adds nothing


def test_find_slots_filters_and_leaves_out_past_and_full_slots(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        dept_a, dept_b = factories.department(session), factories.department(session)
        site_a, site_b = booking_data.site(session), booking_data.site(session)
        a = booking_data.clinic(
            session,
            now=now - timedelta(days=1),
            department=dept_a,
            at=site_a,
            sessions=[("09:00", "10:00"), ("15:00", "16:00")],
            days=4,
        )
        b = booking_data.clinic(session, now=now, department=dept_b, at=site_b, sessions=[("15:00", "16:00")])
        (patient,) = [factories.patient(session).id]
    all_a = booking_data.slots_of(db, a)
    assert any(s.starts_at <= now for s in all_a)  # generated yesterday: some have passed

    with session_scope() as session:
        found = find_slots(session, now=now, limit=500)
        assert found and all(s.starts_at > now and s.booked < s.capacity for s in found)
        assert [s.starts_at for s in found] == sorted(s.starts_at for s in found)
        by_dept = find_slots(session, now=now, department_id=dept_a.id, limit=500)
        assert {s.clinician_id for s in by_dept} == {a.clinician_id}
        assert {s.id for s in by_dept} == {s.id for s in all_a if s.starts_at > now}
        assert {s.clinician_id for s in find_slots(session, now=now, clinician_id=b.clinician_id)} == {
            b.clinician_id
        }
        assert {s.site_id for s in find_slots(session, now=now, site_id=site_b.id)} == {site_b.id}
        mornings = find_slots(session, now=now, part_of_day=TimeOfDay.MORNING, limit=500)
        assert mornings and all(
            s.starts_at.astimezone(SH).hour == 9 and s.clinician_id == a.clinician_id for s in mornings
        )
        day = found[-1].local_date
        on_day = find_slots(session, now=now, on=day, limit=500)
        assert on_day and all(s.starts_at.astimezone(SH).date() == day for s in on_day)
        assert find_slots(session, now=now, department_id=dept_a.id, site_id=site_b.id) == []
        assert len(find_slots(session, now=now, limit=3)) == 3
        target = find_slots(session, now=now, clinician_id=b.clinician_id)[0]
        names = (target.clinician.name, target.department.name, target.site.name)  # loaded with the slot
        assert all(names)
    _book(patient, target.id)  # capacity 1: a booked slot leaves the list
    with session_scope() as session:
        assert target.id not in {s.id for s in find_slots(session, now=now, limit=500)}
        assert find_slots(session, now=now, exclude_slot_ids=[found[0].id], limit=500)[0].id != found[0].id


def test_twenty_patients_racing_for_the_last_place_exactly_one_wins(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now, capacity=2)
        slot_id = booking_data.slots_of(session, clinic)[0].id
    first, *racers = _patients(21)
    _book(first, slot_id)  # one place left
    barrier = threading.Barrier(len(racers))
    wins: list[int] = []
    refusals: list[Refusal] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt(patient_id: int) -> None:
        barrier.wait()
        try:
            appointment = _book(patient_id, slot_id)  # its own session and connection
            with lock:
                wins.append(appointment.patient_id)
        except BookingRefused as refused:
            with lock:
                refusals.append(refused.reason)
        except BaseException as exc:  # any other outcome fails the test below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(p,)) for p in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(wins) == 1 and refusals == [Refusal.SLOT_FULL] * 19
    slot = _slot(db, slot_id)
    assert slot.booked == slot.capacity == 2
    booked = db.scalars(sa.select(Appointment.patient_id).where(Appointment.slot_id == slot_id)).all()
    assert sorted(booked) == sorted([first, wins[0]])
    with session_scope() as session:
        assert slot_id not in {s.id for s in find_slots(session, limit=500)}
    loser = next(p for p in racers if p not in wins)
    assert _refusal(_book, loser, slot_id).reason is Refusal.SLOT_FULL


def test_one_patient_cannot_hold_two_overlapping_appointments(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        dept = factories.department(session)
        one = booking_data.clinic(session, now=now, department=dept)
        two = booking_data.clinic(session, now=now, department=dept, slot_minutes=60)
        a = booking_data.slots_of(session, one)
        b = booking_data.slots_of(session, two)
        (patient,) = [factories.patient(session).id]
    _book(patient, a[0].id)  # 14:00-14:30
    clash = next(s for s in b if s.starts_at == a[0].starts_at)  # 14:00-15:00 with the other doctor
    refused = _refusal(_book, patient, clash.id)
    assert refused.reason is Refusal.OVERLAP and refused.detail["appointment_id"]
    assert _slot(db, clash.id).booked == 0
    _book(patient, a[1].id)  # 14:30 touches 14:00-14:30 without overlapping
    assert _refusal(_book, patient, a[0].id).reason is Refusal.OVERLAP  # the same slot twice
    assert len(db.scalars(sa.select(Appointment).where(Appointment.patient_id == patient)).all()) == 2


def test_one_patients_concurrent_overlapping_bookings_give_one_appointment(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        one = booking_data.clinic(session, now=now, capacity=5)
        two = booking_data.clinic(session, now=now, capacity=5)
        slots = [booking_data.slots_of(session, one)[0].id, booking_data.slots_of(session, two)[0].id]
        (patient,) = [factories.patient(session).id]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(slot_id: int) -> None:
        barrier.wait()
        try:
            _book(patient, slot_id)
            outcomes.append("booked")
        except BookingRefused as refused:
            outcomes.append(refused.reason.value)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["booked", "overlap"]
    assert sum(_slot(db, s).booked for s in slots) == 1


def test_past_and_unknown_slots_are_refused(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now - timedelta(days=2), days=2)
        past = booking_data.slots_of(session, clinic)[0].id
        (patient,) = [factories.patient(session).id]
    assert _refusal(_book, patient, past).reason is Refusal.SLOT_PAST
    assert _refusal(_book, patient, 10**9).reason is Refusal.SLOT_UNKNOWN
    assert _slot(db, past).booked == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0


def test_booking_is_recorded_with_history_and_audit(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now)
        slot = booking_data.slots_of(session, clinic)[0]
        (patient,) = [factories.patient(session).id]
    appointment = _book(patient, slot.id)
    row = db.get(Appointment, appointment.id)
    assert row is not None and row.status is AppointmentStatus.BOOKED
    assert (row.starts_at, row.ends_at, row.channel, row.source) == (
        slot.starts_at,
        slot.ends_at,
        Channel.WEBCHAT,
        "test",
    )
    assert _slot(db, slot.id).booked == 1
    events = db.scalars(sa.select(AppointmentEvent).where(AppointmentEvent.appointment_id == row.id)).all()
    assert [(e.kind, e.to_slot_id) for e in events] == [(AppointmentEventKind.BOOKED, slot.id)]
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "appointment.booked")).one()
    assert (audit.patient_id, audit.subject_type, audit.subject_id) == (patient, "appointment", row.id)
    with session_scope() as session:
        assert [a.id for a in upcoming_appointments(session, patient)] == [row.id]
        assert [a.id for a in patient_appointments(session, patient)] == [row.id]


def test_rescheduling_moves_the_place_and_the_fourth_move_of_a_day_is_refused(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now, sessions=[("08:00", "12:00")])
        # from the day after tomorrow, so "tomorrow" below is still before them
        slots = [
            s.id for s in booking_data.slots_of(session, clinic) if s.starts_at > now + timedelta(days=2)
        ]
        (patient,) = [factories.patient(session).id]
    appointment = _book(patient, slots[0]).id
    for step, target in enumerate(slots[1:4], start=1):
        with session_scope() as session:
            moved = do_reschedule(
                session, patient_id=patient, appointment_id=appointment, slot_id=target, channel=Channel.SMS
            )
            assert (moved.slot_id, moved.sequence) == (target, step)
        assert _slot(db, slots[step - 1]).booked == 0 and _slot(db, target).booked == 1
    with session_scope() as session:
        refused = _refusal(
            do_reschedule,
            session,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=slots[5],
            channel=Channel.SMS,
        )
    assert refused.reason is Refusal.RESCHEDULE_LIMIT and refused.detail == {"limit": 3}
    db.expire_all()
    row = db.get(Appointment, appointment)
    assert row is not None and row.slot_id == slots[3] and row.status is AppointmentStatus.BOOKED
    assert _slot(db, slots[5]).booked == 0 and _slot(db, slots[3]).booked == 1
    # the next local day the patient may move it again
    tomorrow = now.astimezone(SH).replace(hour=0, minute=5) + timedelta(days=1)
    with session_scope() as session:
        do_reschedule(
            session,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=slots[-1],
            channel=Channel.SMS,
            now=tomorrow,
        )
    assert _slot(db, slots[-1]).booked == 1 and _slot(db, slots[3]).booked == 0


def test_rescheduling_refusals_change_nothing(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now, sessions=[("08:00", "10:00")])
        s = [x.id for x in booking_data.slots_of(session, clinic)]
        mine, other = factories.patient(session).id, factories.patient(session).id
    appointment = _book(mine, s[0]).id
    _book(other, s[1])  # s[1] is full (capacity 1)
    _book(mine, s[2])  # mine too: moving onto its time overlaps
    for slot_id, patient, reason in [
        (s[1], mine, Refusal.SLOT_FULL),
        (s[0], mine, Refusal.SAME_SLOT),
        (10**9, mine, Refusal.SLOT_UNKNOWN),
        (s[3], other, Refusal.NOT_FOUND),  # not their appointment
    ]:
        with session_scope() as session:
            refused = _refusal(
                do_reschedule,
                session,
                patient_id=patient,
                appointment_id=appointment,
                slot_id=slot_id,
                channel=Channel.WEBCHAT,
            )
        assert refused.reason is reason
    with session_scope() as session:  # a slot of another doctor at s[2]'s time
        twin = booking_data.clinic(session, now=now, sessions=[("08:00", "10:00")])
        twin_slot = booking_data.slot_at(session, twin, _slot(db, s[2]).starts_at).id
        refused = _refusal(
            do_reschedule,
            session,
            patient_id=mine,
            appointment_id=appointment,
            slot_id=twin_slot,
            channel=Channel.WEBCHAT,
        )
    assert refused.reason is Refusal.OVERLAP
    assert [_slot(db, x).booked for x in s[:4]] == [1, 1, 1, 0] and _slot(db, twin_slot).booked == 0
    assert (
        db.scalar(sa.select(sa.func.count()).where(AppointmentEvent.kind == AppointmentEventKind.RESCHEDULED))
        == 0
    )
    # the other lock order (new slot id below the old one): a full target changes nothing either
    later = _book(mine, s[4]).id
    with session_scope() as session:
        refused = _refusal(
            do_reschedule,
            session,
            patient_id=mine,
            appointment_id=later,
            slot_id=s[1],
            channel=Channel.WEBCHAT,
        )
    assert refused.reason is Refusal.SLOT_FULL and _slot(db, s[4]).booked == 1


def test_cancelling_frees_the_slot_and_cannot_be_repeated(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now)
        slot_id = booking_data.slots_of(session, clinic)[0].id
        patient, stranger = factories.patient(session).id, factories.patient(session).id
    appointment = _book(patient, slot_id).id
    with session_scope() as session:
        assert slot_id not in {s.id for s in find_slots(session, clinician_id=clinic.clinician_id)}
        refused = _refusal(
            do_cancel, session, patient_id=stranger, appointment_id=appointment, channel=Channel.WEBCHAT
        )
        assert refused.reason is Refusal.NOT_FOUND
    with session_scope() as session:
        do_cancel(session, patient_id=patient, appointment_id=appointment, channel=Channel.WEBCHAT)
    with session_scope() as session:
        assert slot_id in {s.id for s in find_slots(session, clinician_id=clinic.clinician_id)}
        assert upcoming_appointments(session, patient) == []
        again = _refusal(
            do_cancel, session, patient_id=patient, appointment_id=appointment, channel=Channel.WEBCHAT
        )
        assert again.reason is Refusal.NOT_ACTIVE
        moved = _refusal(
            do_reschedule,
            session,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=slot_id,
            channel=Channel.WEBCHAT,
        )
        assert moved.reason is Refusal.NOT_ACTIVE
    row = db.get(Appointment, appointment)
    assert row is not None and row.status is AppointmentStatus.CANCELLED and row.cancelled_at is not None
    assert _slot(db, slot_id).booked == 0
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "appointment.cancelled")) == 1
    _book(stranger, slot_id)  # the freed place can be booked again
    assert _slot(db, slot_id).booked == 1


def test_a_started_appointment_can_no_longer_be_moved_or_cancelled(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now)
        slots = booking_data.slots_of(session, clinic)
        (patient,) = [factories.patient(session).id]
    appointment = _book(patient, slots[0].id).id
    during = slots[0].starts_at + timedelta(minutes=5)
    with session_scope() as session:
        assert (
            _refusal(
                do_cancel,
                session,
                patient_id=patient,
                appointment_id=appointment,
                channel=Channel.WEBCHAT,
                now=during,
            ).reason
            is Refusal.STARTED
        )
        assert (
            _refusal(
                do_reschedule,
                session,
                patient_id=patient,
                appointment_id=appointment,
                slot_id=slots[3].id,
                channel=Channel.WEBCHAT,
                now=during,
            ).reason
            is Refusal.STARTED
        )
    assert _slot(db, slots[0].id).booked == 1


def test_staff_rows_and_template_show_a_patients_appointments(db: Session) -> None:
    now = utcnow()
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=now)
        slots = booking_data.slots_of(session, clinic)
        (patient,) = [factories.patient(session).id]
    kept, dropped = _book(patient, slots[0].id).id, _book(patient, slots[2].id).id
    with session_scope() as session:
        do_cancel(session, patient_id=patient, appointment_id=dropped, channel=Channel.WEBCHAT)
        rows = appointment_rows(session, patient)
    assert [(r.id, r.status, r.changes) for r in rows] == [(dropped, "cancelled", 1), (kept, "booked", 0)]
    local = slots[0].starts_at.astimezone(SH)
    assert rows[1].when == f"{local:%Y-%m-%d %H:%M} (Asia/Shanghai)" and rows[1].doctor.startswith("Dr Test")
    template = templates.get_template("staff/patient/_appointments.html")
    html = template.render(data={"appointments": rows}, _=translations("zh-CN").gettext)
    assert "预约" in html and "已取消" in html and "已预约" in html and html.count("data-appointment=") == 2
    empty = template.render(data={"appointments": []}, _=translations("vi").gettext)
    assert "Chưa có lịch hẹn." in empty
    source = Path(template.filename or "").read_text(encoding="utf-8")
    for code in ("zh-CN", "vi"):  # every staff string of the section is translated
        gettext = translations(code).gettext
        assert all(gettext(key) != key for key in re.findall(r'_\("([^"]+)"\)', source))

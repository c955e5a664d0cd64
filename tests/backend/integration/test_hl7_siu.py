"""SIU appointment messages (S12–S15) sent over a real MLLP socket to the listener: appointments booked
in the hospital's system kept in step, with their reminders, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.i18n import translations
from backend.integration.codes import do_resolve_mapping
from backend.models import (
    Appointment,
    AppointmentEvent,
    AppointmentEventKind,
    AppointmentIdentifier,
    AppointmentReminder,
    AppointmentStatus,
    AuditEvent,
    Clinician,
    ClinicianKind,
    CodeKind,
    CodeMapping,
    DoctorSchedule,
    Hl7Message,
    Hl7Status,
    OutboxItem,
    OutboxStatus,
    Patient,
    ReminderStatus,
    Site,
    Slot,
)
from backend.services.appointment_views import appointment_rows
from backend.services.schedules import find_slots
from backend.web.deps import templates
from tests import factories
from tests.backend.integration.hl7_peer import MllpPeer, siu

Address = tuple[str, int]


def _at(days: float, hour: int = 9) -> tuple[str, datetime]:
    """An HL7 timestamp (with its UTC offset) some days ahead at a set hour, and the same instant."""
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=30, second=0, microsecond=0)
    return moment.strftime("%Y%m%d%H%M%S+0000"), moment


@pytest.fixture
def clinic(db: Session) -> dict[str, int]:
    """Cardiology (CARD) at the main site (MAIN) with two doctors whose HIS staff numbers are D042, D043."""
    cardiology = factories.department(db, code="CARD")
    site = Site(
        code="MAIN",
        name="Main campus",
        names={"zh-CN": "总院", "vi": "Cơ sở chính"},
        timezone="Asia/Shanghai",
    )
    db.add(site)
    doctors = [
        Clinician(kind=ClinicianKind.DOCTOR, department_id=cardiology.id, name=name, code=code)
        for name, code in (("Li Ming", "D042"), ("Tran Van An", "D043"))
    ]
    db.add_all(doctors)
    db.commit()
    return {"department": cardiology.id, "site": site.id, "D042": doctors[0].id, "D043": doctors[1].id}


def _appointment(db: Session) -> Appointment:
    db.expire_all()
    return db.scalars(sa.select(Appointment)).one()


def _pending_reminders(db: Session, appointment: Appointment) -> list[OutboxItem]:
    ids = db.scalars(
        sa.select(AppointmentReminder.outbox_item_id).where(
            AppointmentReminder.appointment_id == appointment.id
        )
    ).all()
    return list(
        db.scalars(
            sa.select(OutboxItem).where(OutboxItem.id.in_(ids), OutboxItem.status == OutboxStatus.PENDING)
        )
    )


def test_booked_in_the_his_becomes_an_appointment_with_reminders_never_offered_to_patients(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, moment = _at(3)
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(siu("S12", "B1", start=start))
    assert ack.code == "AA", ack.text
    appointment = _appointment(db)
    # the HIS's ids are kept, the filler id with its namespace as the key
    link = db.scalars(sa.select(AppointmentIdentifier)).one()
    assert (link.appointment_id, link.filler_id, link.authority, link.placer_id) == (
        appointment.id,
        "20075",
        "HOSP",
        "10345",
    )
    assert (link.department_code, link.doctor_code, link.service_code, link.reason_code) == (
        "CARD",
        "D042",
        "CONSULT",
        "047",
    )
    assert appointment.status is AppointmentStatus.BOOKED and appointment.source == "hl7:S12"
    assert (appointment.starts_at, appointment.ends_at) == (moment, moment + timedelta(minutes=30))
    patient = db.get_one(Patient, appointment.patient_id)
    assert patient.name == "张伟"  # unknown patient created from PID as ADT does
    slot = db.get_one(Slot, appointment.slot_id)
    assert (slot.clinician_id, slot.department_id, slot.site_id) == (
        clinic["D042"],
        clinic["department"],
        clinic["site"],
    )
    assert (slot.capacity, slot.booked) == (1, 1)
    schedule = db.get_one(DoctorSchedule, slot.schedule_id)
    assert (schedule.active, schedule.external_source) == (False, "HOSP")
    # reminders planned as for a CareLoop booking (24 h and 2 h before), and the place is never offered
    reminders = db.scalars(sa.select(AppointmentReminder)).all()
    assert {r.status for r in reminders} == {ReminderStatus.SCHEDULED} and len(reminders) == 2
    assert len(_pending_reminders(db, appointment)) == 2
    assert slot.id not in {s.id for s in find_slots(db, limit=500)}
    [row] = appointment_rows(db, patient.id)  # the staff record says where it was booked
    assert (row.channel, row.doctor, row.site) == ("hospital", "Li Ming", "Main campus")
    html = templates.get_template("staff/patient/_appointments.html").render(
        data={"appointments": [row]}, _=translations("vi").gettext
    )
    assert "Hệ thống bệnh viện" in html
    kinds = db.scalars(sa.select(AppointmentEvent.kind)).all()
    assert kinds == [AppointmentEventKind.BOOKED]
    assert db.scalars(sa.select(Hl7Message)).one().status is Hl7Status.APPLIED


def test_rescheduled_moves_the_same_appointment_and_re_aims_its_reminders(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    first, _ = _at(3)
    later, moved_to = _at(5, hour=2)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "R1", start=first)).code == "AA"
        before = _appointment(db)
        old_items = {item.id for item in _pending_reminders(db, before)}
        old_slot = before.slot_id
        assert peer.send(siu("S13", "R2", start=later, duration="45")).code == "AA"
    appointment = _appointment(db)
    assert (
        appointment.id == before.id and appointment.sequence == 1
    )  # the calendar entry updates, not doubles
    assert (appointment.starts_at, appointment.ends_at) == (moved_to, moved_to + timedelta(minutes=45))
    old, new = db.get_one(Slot, old_slot), db.get_one(Slot, appointment.slot_id)
    assert (old.capacity, old.booked) == (0, 0) and (new.capacity, new.booked) == (1, 1)
    assert {i.status for i in db.scalars(sa.select(OutboxItem).where(OutboxItem.id.in_(old_items)))} == {
        OutboxStatus.SUPPRESSED
    }
    assert len(_pending_reminders(db, appointment)) == 2
    assert db.scalars(sa.select(AppointmentEvent.kind).order_by(AppointmentEvent.id)).all() == [
        AppointmentEventKind.BOOKED,
        AppointmentEventKind.RESCHEDULED,
    ]


def test_modified_changes_the_doctor_and_an_unchanged_resend_of_facts_changes_nothing(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, moment = _at(4)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "M1", start=start)).code == "AA"
        assert peer.send(siu("S14", "M2", start=start)).code == "AA"  # same facts under a new control id
        assert _appointment(db).sequence == 0
        assert peer.send(siu("S14", "M3", start=start, doctor="D043^Trần^Văn An")).code == "AA"
    appointment = _appointment(db)
    slot = db.get_one(Slot, appointment.slot_id)
    assert slot.clinician_id == clinic["D043"] and appointment.starts_at == moment
    assert appointment.sequence == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1
    assert db.scalars(sa.select(AppointmentIdentifier.doctor_code)).one() == "D043"


def test_cancelled_cancels_the_appointment_and_stops_its_reminders(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "C1", start=start)).code == "AA"
        items = {item.id for item in _pending_reminders(db, _appointment(db))}
        assert peer.send(siu("S15", "C2", start=start)).code == "AA"
        assert peer.send(siu("S15", "C3", start=start)).code == "AA"  # a second cancellation changes nothing
    appointment = _appointment(db)
    assert (appointment.status, appointment.cancel_reason, appointment.sequence) == (
        AppointmentStatus.CANCELLED, "hospital", 1,
    )  # fmt: skip
    assert {r.status for r in db.scalars(sa.select(AppointmentReminder))} == {ReminderStatus.CANCELLED}
    assert {i.status for i in db.scalars(sa.select(OutboxItem).where(OutboxItem.id.in_(items)))} == {
        OutboxStatus.SUPPRESSED
    }
    slot = db.get_one(Slot, appointment.slot_id)
    assert (slot.capacity, slot.booked) == (0, 0)
    assert db.scalars(sa.select(AppointmentEvent.kind).order_by(AppointmentEvent.id)).all() == [
        AppointmentEventKind.BOOKED,
        AppointmentEventKind.CANCELLED,
    ]


def test_deleted_appointment_is_cancelled_as_booked_in_error(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "E1", start=start)).code == "AA"
        assert peer.send(siu("S17", "E2", start=start)).code == "AA"
    appointment = _appointment(db)
    assert (appointment.status, appointment.cancel_reason) == (AppointmentStatus.CANCELLED, "deleted")
    assert {r.status for r in db.scalars(sa.select(AppointmentReminder))} == {ReminderStatus.CANCELLED}
    assert (db.get_one(Slot, appointment.slot_id).capacity, db.get_one(Slot, appointment.slot_id).booked) == (
        0,
        0,
    )


def test_no_show_is_recorded_and_a_no_show_for_an_unknown_appointment_is_held(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        unknown = peer.send(siu("S26", "N0", filler="99999", start=start))
        assert (unknown.code, unknown.error_location, unknown.error_code) == ("AE", "SCH^1^2", "204")
        assert peer.send(siu("S12", "N1", start=start)).code == "AA"
        assert peer.send(siu("S26", "N2", start=start)).code == "AA"
        assert peer.send(siu("S15", "N3", start=start)).code == "AA"  # a later cancellation is applied
    appointment = _appointment(db)
    assert appointment.status is AppointmentStatus.CANCELLED
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "appointment.no_show")) == 1  # fmt: skip
    outcome = db.scalars(sa.select(Hl7Message.outcome).where(Hl7Message.control_id == "N2")).one()
    assert "no-show" in outcome


def test_no_show_keeps_the_place_taken_and_stops_reminders(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "M1", start=start)).code == "AA"
        assert peer.send(siu("S26", "M2", start=start)).code == "AA"
        assert peer.send(siu("S26", "M3", start=start)).code == "AA"  # a second one changes nothing
    appointment = _appointment(db)
    assert appointment.status is AppointmentStatus.NO_SHOW
    assert {r.status for r in db.scalars(sa.select(AppointmentReminder))} == {ReminderStatus.CANCELLED}
    slot = db.get_one(Slot, appointment.slot_id)
    assert (slot.capacity, slot.booked) == (1, 1)
    assert (
        "no-show not recorded"
        in db.scalars(sa.select(Hl7Message.outcome).where(Hl7Message.control_id == "M3")).one()
    )


def test_resent_booking_is_applied_once(hl7_address: Address, db: Session, clinic: dict[str, int]) -> None:
    start, _ = _at(3)
    message = siu("S12", "D1", start=start, name="Nguyễn^Thị Lan", language="vi")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(message).code == "AA"
        assert peer.send(message).code == "AA"  # the engine's resend after a lost ACK
        assert peer.send(siu("S12", "D2", start=start, name="Nguyễn^Thị Lan", language="vi")).code == "AA"
    assert db.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(AppointmentEvent)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(AppointmentReminder)) == 2
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 2  # D1 once, D2
    slot = db.get_one(Slot, _appointment(db).slot_id)
    assert (slot.capacity, slot.booked) == (1, 1)
    assert db.scalars(sa.select(Patient)).one().name == "Nguyễn Thị Lan"  # family name first


def test_gb18030_booking_is_read_in_its_charset(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    payload = siu("S12", "G1", start=start, name="欧阳^娜娜", charset="GB 18030-2000").encode("gb18030")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(payload).code == "AA"
    assert db.get_one(Patient, _appointment(db).patient_id).name == "欧阳娜娜"


def test_cancellation_of_an_unknown_appointment_is_held_and_applies_once_the_booking_came(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    from backend.app.db import session_factory
    from backend.app.settings import get_settings
    from backend.integration.receiver import Receiver, ReceiverConfig

    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(siu("S15", "U1", start=start))
        assert (ack.code, ack.error_location, ack.error_code) == ("AE", "SCH^1^2", "204")
        # nothing was written but the kept message: not even the patient
        assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
        held = db.scalars(sa.select(Hl7Message)).one()
        assert held.status is Hl7Status.HELD
        assert peer.send(siu("S12", "U2", start=start)).code == "AA"
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    assert receiver.reprocess(held.id, staff_id=None).status is Hl7Status.APPLIED
    assert _appointment(db).status is AppointmentStatus.CANCELLED


def test_missing_start_time_is_answered_ae_naming_sch_11(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(siu("S12", "T1", start=None))
        assert (ack.code, ack.error_location, ack.error_code) == ("AE", "SCH^1^11", "101")
        bad = peer.send(siu("S12", "T2", start="2026-12-15 09:30"))
        assert (bad.code, bad.error_location, bad.error_code) == ("AE", "TQ1^1^7", "102")
        empty = peer.send(siu("S12", "T3", filler=""))
        assert (empty.code, empty.error_location) == ("AE", "SCH^1^2")
    assert db.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
    assert {m.status for m in db.scalars(sa.select(Hl7Message))} == {Hl7Status.INVALID}


def test_unmapped_doctor_waits_in_the_holding_schedule_without_reminders(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(siu("S12", "H1", start=start, doctor="X999^Unknown^Doctor"))
    assert ack.code == "AA"
    appointment = _appointment(db)
    slot = db.get_one(Slot, appointment.slot_id)
    assert db.get_one(Clinician, slot.clinician_id).code == "UNMAPPED"
    assert db.scalar(sa.select(sa.func.count()).select_from(AppointmentReminder)) == 0
    pending = db.scalars(sa.select(CodeMapping).where(CodeMapping.kind == CodeKind.DOCTOR)).one()
    assert (pending.code, pending.target_id) == ("X999", None)
    assert "no reminders" in db.scalars(sa.select(Hl7Message)).one().outcome
    # an admin maps the code: the appointment moves to the doctor and gets its reminders
    do_resolve_mapping(db, pending, clinic["D043"], staff_id=None)
    db.commit()
    appointment = _appointment(db)
    assert db.get_one(Slot, appointment.slot_id).clinician_id == clinic["D043"]
    assert (appointment.sequence, appointment.status) == (1, AppointmentStatus.BOOKED)
    assert len(_pending_reminders(db, appointment)) == 2
    holding = db.get_one(Slot, slot.id)
    assert (holding.capacity, holding.booked) == (0, 0)


def test_appointment_id_of_another_patient_is_held(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, _ = _at(3)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "P1", start=start)).code == "AA"
        ack = peer.send(siu("S14", "P2", start=start, mrn="MRN0002"))
    assert (ack.code, ack.error_location) == ("AE", "SCH^1^2")
    assert db.get_one(Patient, _appointment(db).patient_id).name == "张伟"
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1


def test_without_tq1_the_time_comes_from_sch_11_and_the_length_from_sch_9(
    hl7_address: Address, db: Session, clinic: dict[str, int]
) -> None:
    start, moment = _at(6)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(siu("S12", "Q1", filler="F1", start=start, tq1=False, duration="45")).code == "AA"
        end, until = _at(7, hour=10)
        assert peer.send(siu("S12", "Q2", filler="F2", start=start, end=end, tq1=False)).code == "AA"
    first, second = db.scalars(sa.select(Appointment).order_by(Appointment.id)).all()
    assert (first.starts_at, first.ends_at) == (moment, moment + timedelta(minutes=45))
    assert (second.starts_at, second.ends_at) == (moment, until)
    # two HIS appointments with one doctor at one time share one external slot of capacity two
    assert first.slot_id == second.slot_id
    slot = db.get_one(Slot, first.slot_id)
    assert (slot.capacity, slot.booked) == (2, 2)

"""Booking, moving and cancelling appointments: `do_*` verbs that write the history and audit rows.

Concurrency: a slot's place is taken by one conditional UPDATE (`booked < capacity AND starts_at >
now`), so of many patients racing for the last place exactly one gets rowcount 1, on PostgreSQL (the
row lock makes later updates re-check the committed value) and on SQLite (writers are serialised by
BEGIN IMMEDIATE) alike. The patient's row is locked first, so one patient's concurrent requests cannot
both pass the overlap check or the daily reschedule limit.

A refusal raises `BookingRefused` before anything is written (a move that cannot take its new place
gives its old one back), so the caller may still commit its own work, such as the reply saying why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from backend.models import (
    Appointment,
    AppointmentEvent,
    AppointmentEventKind,
    AppointmentStatus,
    Patient,
    Slot,
)
from backend.models.base import utcnow
from backend.services import audit
from backend.services.booking_rules import (
    RESCHEDULES_PER_DAY,
    Refusal,
    first_overlap,
    local_day_bounds,
    may_reschedule,
    slot_refusal,
)
from backend.services.refusal import ActionRefused
from backend.services.reminders import cancel_reminders, schedule_reminders
from bots.domain import Channel

_SLOT_DETAILS = (
    joinedload(Appointment.slot).joinedload(Slot.clinician),
    joinedload(Appointment.slot).joinedload(Slot.department),
    joinedload(Appointment.slot).joinedload(Slot.site),
)


class BookingRefused(ActionRefused):
    """The request breaks a booking rule; `reason` names it (booking_rules.Refusal, whose patient messages
    are `booking.refused.*`), `detail` fills that message."""

    reason: Refusal

    def __init__(self, reason: Refusal, **detail: Any) -> None:
        Exception.__init__(self, reason.value)
        self.reason, self.detail = reason, detail


def _lock_patient(session: Session, patient_id: int) -> Patient:
    patient = session.scalars(sa.select(Patient).where(Patient.id == patient_id).with_for_update()).first()
    if patient is None:
        raise LookupError(f"no patient {patient_id}")
    return patient


def _take_place(session: Session, slot_id: int, now: datetime) -> bool:
    result = session.execute(
        sa.update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.booked < Slot.capacity,
            Slot.starts_at > now,
            Slot.withdrawn_at.is_(None),  # taken away by a schedule change since the patient saw it
        )
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _give_back(session: Session, slot_id: int) -> None:
    session.execute(
        sa.update(Slot)
        .where(Slot.id == slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )


def _expire_slots(session: Session, *slot_ids: int) -> None:
    for slot_id in slot_ids:
        slot = session.get(Slot, slot_id)
        if slot is not None:
            session.expire(slot, ["booked"])


def _check_slot(
    session: Session, patient_id: int, slot_id: int, now: datetime, *, ignore: int | None = None
) -> Slot:
    """The slot, if it exists, has not started, does not clash with the patient's other appointments and
    (as last read) has a free place; the conditional UPDATE then decides for real."""
    slot = session.get(Slot, slot_id, options=[joinedload(Slot.clinician), joinedload(Slot.department)])
    if slot is None:
        raise BookingRefused(Refusal.SLOT_UNKNOWN)
    if slot.starts_at <= now:
        raise BookingRefused(Refusal.SLOT_PAST)
    if slot.withdrawn_at is not None:
        raise BookingRefused(Refusal.SLOT_FULL)  # the patient is offered the list again, as for a full slot
    _check_overlap(session, patient_id, slot, ignore=ignore)
    refusal = slot_refusal(starts_at=slot.starts_at, booked=slot.booked, capacity=slot.capacity, now=now)
    if refusal is not None:
        raise BookingRefused(refusal)
    return slot


def _check_overlap(session: Session, patient_id: int, slot: Slot, *, ignore: int | None = None) -> None:
    others = session.execute(
        sa.select(Appointment.id, Appointment.starts_at, Appointment.ends_at).where(
            Appointment.patient_id == patient_id,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at < slot.ends_at,
            Appointment.ends_at > slot.starts_at,
            Appointment.id != (ignore or 0),
        )
    ).all()
    clash = first_overlap(slot.starts_at, slot.ends_at, [(i, s, e) for i, s, e in others])
    if clash is not None:
        raise BookingRefused(Refusal.OVERLAP, appointment_id=clash)


def record_event(
    session: Session,
    appointment: Appointment,
    kind: AppointmentEventKind,
    *,
    channel: Channel,
    staff_id: int | None,
    now: datetime,
    from_slot: int | None = None,
    to_slot: int | None = None,
) -> None:
    session.add(
        AppointmentEvent(
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            kind=kind,
            from_slot_id=from_slot,
            to_slot_id=to_slot,
            channel=channel,
            staff_id=staff_id,
            at=now,
        )
    )
    audit.record(
        session,
        f"appointment.{kind.value}",
        staff_id=staff_id,
        patient_id=appointment.patient_id,
        subject=("appointment", appointment.id),
        channel=channel.value,
        from_slot=from_slot,
        to_slot=to_slot,
    )


def do_book(
    session: Session,
    *,
    patient_id: int,
    slot_id: int,
    channel: Channel,
    source: str,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book the patient into the slot, with reminders. Raises BookingRefused (nothing written)."""
    now = now or utcnow()
    patient = _lock_patient(session, patient_id)
    slot = _check_slot(session, patient.id, slot_id, now)
    if not _take_place(session, slot.id, now):
        _expire_slots(session, slot.id)
        raise BookingRefused(Refusal.SLOT_FULL)  # another patient took the last place just now
    _expire_slots(session, slot.id)
    appointment = Appointment(
        patient_id=patient.id,
        slot_id=slot.id,
        status=AppointmentStatus.BOOKED,
        channel=channel,
        source=source,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        booked_at=now,
        updated_at=now,
        booked_by_staff_id=staff_id,
    )
    session.add(appointment)
    session.flush()
    record_event(
        session,
        appointment,
        AppointmentEventKind.BOOKED,
        channel=channel,
        staff_id=staff_id,
        now=now,
        to_slot=slot.id,
    )
    schedule_reminders(session, appointment, patient, now)
    return appointment


HOSPITAL_SOURCE = "hl7:"  # Appointment.source of appointments that the hospital's own system booked


def booked_in_hospital(appointment: Appointment) -> bool:
    """Booked in the hospital's system (its feed keeps it in step): moving or cancelling it here would
    leave the hospital's book unchanged, as CareLoop sends no scheduling requests back."""
    return appointment.source.startswith(HOSPITAL_SOURCE)


def _own_active(session: Session, patient_id: int, appointment_id: int, now: datetime) -> Appointment:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient_id:
        raise BookingRefused(Refusal.NOT_FOUND)
    if appointment.status is not AppointmentStatus.BOOKED:
        raise BookingRefused(Refusal.NOT_ACTIVE)
    if appointment.starts_at <= now:
        raise BookingRefused(Refusal.STARTED)
    if booked_in_hospital(appointment):
        raise BookingRefused(Refusal.HOSPITAL_BOOKED)
    return appointment


def reschedules_today(session: Session, patient: Patient, now: datetime) -> int:
    """How often the patient moved an appointment on their local calendar day."""
    start, end = local_day_bounds(now, patient.timezone)
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(AppointmentEvent)
            .where(
                AppointmentEvent.patient_id == patient.id,
                AppointmentEvent.kind == AppointmentEventKind.RESCHEDULED,
                AppointmentEvent.at >= start,
                AppointmentEvent.at < end,
            )
        )
        or 0
    )


def do_reschedule(
    session: Session,
    *,
    patient_id: int,
    appointment_id: int,
    slot_id: int,
    channel: Channel,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move the appointment to another slot (at most RESCHEDULES_PER_DAY moves a day), free the old place
    and re-aim the reminders. Raises BookingRefused (nothing written)."""
    now = now or utcnow()
    patient = _lock_patient(session, patient_id)
    appointment = _own_active(session, patient.id, appointment_id, now)
    if appointment.slot_id == slot_id:
        raise BookingRefused(Refusal.SAME_SLOT)
    if not may_reschedule(reschedules_today(session, patient, now)):
        raise BookingRefused(Refusal.RESCHEDULE_LIMIT, limit=RESCHEDULES_PER_DAY)
    slot = _check_slot(session, patient.id, slot_id, now, ignore=appointment.id)
    old = appointment.slot_id
    # Lock the two slot rows in id order, so two patients swapping slots cannot deadlock.
    if old < slot.id:
        _give_back(session, old)
        if not _take_place(session, slot.id, now):
            _take_place(session, old, now)  # we hold its lock since the give-back: this cannot fail
            _expire_slots(session, old, slot.id)
            raise BookingRefused(Refusal.SLOT_FULL)
    else:
        if not _take_place(session, slot.id, now):
            _expire_slots(session, slot.id)
            raise BookingRefused(Refusal.SLOT_FULL)
        _give_back(session, old)
    _expire_slots(session, old, slot.id)
    appointment.slot_id, appointment.starts_at, appointment.ends_at = slot.id, slot.starts_at, slot.ends_at
    appointment.sequence += 1
    appointment.updated_at = now
    session.flush()
    record_event(
        session,
        appointment,
        AppointmentEventKind.RESCHEDULED,
        channel=channel,
        staff_id=staff_id,
        now=now,
        from_slot=old,
        to_slot=slot.id,
    )
    schedule_reminders(session, appointment, patient, now)
    return appointment


def do_cancel(
    session: Session,
    *,
    patient_id: int,
    appointment_id: int,
    channel: Channel,
    reason: str = "patient",
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Cancel: the place goes back to the list and pending reminders are stopped. The row stays, marked
    cancelled, for the history. Raises BookingRefused (nothing written)."""
    now = now or utcnow()
    patient = _lock_patient(session, patient_id)
    appointment = _own_active(session, patient.id, appointment_id, now)
    _give_back(session, appointment.slot_id)
    _expire_slots(session, appointment.slot_id)
    appointment.status, appointment.cancelled_at, appointment.cancel_reason = (
        AppointmentStatus.CANCELLED,
        now,
        reason[:64],
    )
    appointment.sequence += 1
    appointment.updated_at = now
    record_event(
        session,
        appointment,
        AppointmentEventKind.CANCELLED,
        channel=channel,
        staff_id=staff_id,
        now=now,
        from_slot=appointment.slot_id,
    )
    cancel_reminders(session, appointment, now)
    return appointment


def upcoming_appointments(
    session: Session, patient_id: int, now: datetime | None = None
) -> list[Appointment]:
    """The patient's booked appointments that have not started, soonest first, with their slots loaded."""
    now = now or utcnow()
    return list(
        session.scalars(
            sa.select(Appointment)
            .where(
                Appointment.patient_id == patient_id,
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.starts_at > now,
            )
            .options(*_SLOT_DETAILS)
            .order_by(Appointment.starts_at, Appointment.id)
        )
    )


def patient_appointments(session: Session, patient_id: int, limit: int = 50) -> list[Appointment]:
    """Every appointment of the patient, latest first (staff view; the caller audits the view)."""
    return list(
        session.scalars(
            sa.select(Appointment)
            .where(Appointment.patient_id == patient_id)
            .options(*_SLOT_DETAILS)
            .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
            .limit(limit)
        )
    )

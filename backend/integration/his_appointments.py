"""Appointments booked in the hospital's own system (HIS), kept in step from its feed: booked, moved,
changed and cancelled by the verbs here, in the caller's transaction, with the history, audit rows and
reminders that appointments booked in CareLoop get.

An HIS appointment is not one of CareLoop's bookable places, but reminders, calendars, the patient's
record and rescheduling all read an appointment through its slot (doctor, department, site, time). So
each one sits in a slot of a paused schedule kept per sending facility, clinician, department and site
(`DoctorSchedule.external_source`): such a slot's capacity is the number of live HIS appointments in it
(capacity and `booked` move together), so it is never free, and its schedule is paused and marked
external, so no slots are generated for it and none of its slots are offered to patients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.integration.codes import holding_department, resolve_all
from backend.integration.facts import AppointmentFacts, CodedValue, Identifier
from backend.integration.records import IdentityConflict, Notes
from backend.models import (
    Appointment,
    AppointmentEventKind,
    AppointmentIdentifier,
    AppointmentStatus,
    Clinician,
    ClinicianKind,
    CodeKind,
    CodeMapping,
    DoctorSchedule,
    Patient,
    Site,
    Slot,
)
from backend.services import audit
from backend.services.booking import record_event
from backend.services.booking_rules import time_of_day
from backend.services.reminders import cancel_reminders, schedule_reminders
from bots.domain import Channel

log = logging.getLogger(__name__)
HOLDING_CODE = "UNMAPPED"
# Appointment.channel says where an appointment was booked and has no value for the hospital's desk;
# voice (its phone line) is the nearest, and as no messaging channel it leaves the reminders' channel
# to the patient's preference. `Appointment.source` ("hl7:S12") is what marks an HIS appointment.
HIS_CHANNEL = Channel.VOICE
CANCEL_REASON = "hospital"


class UnknownAppointment(Exception):
    """A change to an appointment CareLoop does not have (a cancellation before its booking): held."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Place:
    """Where an appointment is: ids, and whether each came from a mapped code (not a holding record)."""

    clinician_id: int
    department_id: int
    site_id: int
    mapped: bool


def _holding_clinician(session: Session) -> int:
    """Whose schedule holds appointments whose doctor code is pending (created on first need)."""
    found = session.scalar(sa.select(Clinician.id).where(Clinician.code == HOLDING_CODE))
    if found is not None:
        return found
    clinician = Clinician(
        kind=ClinicianKind.DOCTOR,
        department_id=holding_department(session),
        code=HOLDING_CODE,
        name="Unmapped doctor",
        names={"zh-CN": "未映射医生", "vi": "Bác sĩ chưa ánh xạ", "en": "Unmapped doctor"},
        active=False,
    )
    session.add(clinician)
    session.flush()
    return clinician.id


def _holding_site(session: Session, zone: str) -> int:
    found = session.scalar(sa.select(Site.id).where(Site.code == HOLDING_CODE))
    if found is not None:
        return found
    site = Site(
        code=HOLDING_CODE,
        name="Unmapped site",
        names={"zh-CN": "未映射院区", "vi": "Cơ sở chưa ánh xạ", "en": "Unmapped site"},
        timezone=zone,
    )
    session.add(site)
    session.flush()
    return site.id


def _site(session: Session, facility: str, clinician_id: int | None) -> int | None:
    """The site whose code is AIL-3.4, else the one the clinician's own clinic runs at."""
    if facility:
        found = session.scalar(sa.select(Site.id).where(Site.code == facility[:32]))
        if found is not None:
            return found
    if clinician_id is None:
        return None
    return session.scalar(
        sa.select(DoctorSchedule.site_id)
        .where(DoctorSchedule.clinician_id == clinician_id, DoctorSchedule.external_source.is_(None))
        .order_by(DoctorSchedule.active.desc(), DoctorSchedule.id.desc())
        .limit(1)
    )


def _place(session: Session, facts: AppointmentFacts, mapping_source: str, zone: str) -> Place:
    codes = {
        kind: coded
        for kind, coded in ((CodeKind.DEPARTMENT, facts.department), (CodeKind.DOCTOR, facts.doctor))
        if coded
    }
    resolved = resolve_all(session, mapping_source, codes)
    doctor = resolved.get(CodeKind.DOCTOR)
    department = resolved.get(CodeKind.DEPARTMENT)
    if department is None and doctor is not None and CodeKind.DEPARTMENT not in codes:
        department = session.get_one(Clinician, doctor).department_id  # no AIL: the doctor's department
    site = _site(session, facts.facility, doctor)
    return Place(
        clinician_id=doctor if doctor is not None else _holding_clinician(session),
        department_id=department if department is not None else holding_department(session),
        site_id=site if site is not None else _holding_site(session, zone),
        mapped=None not in (doctor, department, site),
    )


def _schedule(session: Session, place: Place, source: str, starts_at: datetime) -> DoctorSchedule:
    found = session.scalars(
        sa.select(DoctorSchedule)
        .where(
            DoctorSchedule.external_source == source,
            DoctorSchedule.clinician_id == place.clinician_id,
            DoctorSchedule.department_id == place.department_id,
            DoctorSchedule.site_id == place.site_id,
        )
        .limit(1)
    ).first()
    if found is not None:
        return found
    schedule = DoctorSchedule(
        clinician_id=place.clinician_id,
        department_id=place.department_id,
        site_id=place.site_id,
        weekdays=[],
        sessions=[],
        slot_minutes=0,
        capacity=0,
        valid_from=starts_at.date(),
        active=False,
        external_source=source,
    )
    session.add(schedule)
    session.flush()
    return schedule


def _take_place(session: Session, place: Place, source: str, starts_at: datetime, ends_at: datetime) -> Slot:
    """A place in the external slot at this time (made on first need): capacity and booked grow together."""
    schedule = _schedule(session, place, source, starts_at)
    slot = session.scalars(
        sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.starts_at == starts_at)
    ).first()
    if slot is None:
        site = session.get_one(Site, place.site_id)
        local = starts_at.astimezone(ZoneInfo(site.timezone))
        slot = Slot(
            schedule_id=schedule.id,
            clinician_id=place.clinician_id,
            department_id=place.department_id,
            site_id=place.site_id,
            starts_at=starts_at,
            ends_at=ends_at,
            local_date=local.date(),
            time_of_day=time_of_day(local.time()).value,
            capacity=0,
            booked=0,
        )
        session.add(slot)
        session.flush()
    session.execute(
        sa.update(Slot)
        .where(Slot.id == slot.id)
        .values(capacity=Slot.capacity + 1, booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(slot, ["capacity", "booked"])
    return slot


def _give_back(session: Session, slot_id: int) -> None:
    session.execute(
        sa.update(Slot)
        .where(Slot.id == slot_id, Slot.booked > 0)
        .values(capacity=Slot.capacity - 1, booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )
    loaded = session.identity_map.get(session.identity_key(Slot, slot_id))
    if loaded is not None:
        session.expire(loaded, ["capacity", "booked"])


_BY_FILLER = (
    sa.select(AppointmentIdentifier, Appointment)
    .join(Appointment, Appointment.id == AppointmentIdentifier.appointment_id)
    .where(
        AppointmentIdentifier.authority == sa.bindparam("authority"),
        AppointmentIdentifier.filler_id == sa.bindparam("filler_id"),
    )
)


def find_his_appointment(
    session: Session, filler: Identifier
) -> tuple[AppointmentIdentifier, Appointment] | None:
    row = session.execute(_BY_FILLER, {"authority": filler.authority, "filler_id": filler.value}).first()
    return (row[0], row[1]) if row is not None else None


def _own(found: tuple[AppointmentIdentifier, Appointment] | None, patient: Patient) -> None:
    if found is not None and found[1].patient_id != patient.id:
        raise IdentityConflict(
            "the appointment id names an appointment of another patient", about="appointment"
        )


def _codes(link: AppointmentIdentifier, facts: AppointmentFacts, mapping_source: str, event: str) -> None:
    link.placer_id = facts.placer_id[:64] or link.placer_id
    link.mapping_source = mapping_source
    link.department_code = facts.department.code if facts.department else None
    link.doctor_code = facts.doctor.code if facts.doctor else None
    link.site_code = facts.facility[:64] or None
    link.service_code = facts.service.code if facts.service else None
    link.reason_code = facts.reason.code if facts.reason else link.reason_code
    link.last_event = event[:8]


def _remind(
    session: Session, appointment: Appointment, patient: Patient, place: Place, notes: Notes, now: datetime
) -> None:
    """Reminders as for appointments booked in CareLoop, once the place is known: a reminder naming an
    "unmapped" doctor or site would tell the patient nothing, so they wait for the code mappings."""
    if place.mapped:
        reminders = schedule_reminders(session, appointment, patient, now)
        notes.add(f"{sum(1 for r in reminders if r.outbox_item_id is not None)} reminders planned")
    else:
        cancel_reminders(session, appointment, now)
        notes.add("no reminders: doctor, department or site code not mapped yet")


def do_apply_his_appointment(
    session: Session,
    patient: Patient,
    facts: AppointmentFacts,
    *,
    event: str,
    moved: bool,
    source: str,
    mapping_source: str,
    zone: str,
    notes: Notes,
    now: datetime,
) -> Appointment:
    """Book the HIS appointment, or bring the one CareLoop has under its filler id in line with the facts:
    `moved` (a reschedule) always raises its calendar sequence, another change only when something a
    patient sees changed. IdentityConflict when the id belongs to another patient's appointment."""
    found = find_his_appointment(session, facts.filler)
    _own(found, patient)
    place = _place(session, facts, mapping_source, zone)
    if found is None:
        slot = _take_place(session, place, mapping_source, facts.starts_at, facts.ends_at)
        appointment = Appointment(
            patient_id=patient.id,
            slot_id=slot.id,
            status=AppointmentStatus.BOOKED,
            channel=HIS_CHANNEL,
            source=source[:64],
            starts_at=facts.starts_at,
            ends_at=facts.ends_at,
            booked_at=now,
            updated_at=now,
        )
        session.add(appointment)
        session.flush()
        link = AppointmentIdentifier(
            appointment_id=appointment.id, authority=facts.filler.authority, filler_id=facts.filler.value
        )
        _codes(link, facts, mapping_source, event)
        session.add(link)
        record_event(
            session, appointment, AppointmentEventKind.BOOKED, channel=HIS_CHANNEL, staff_id=None, now=now,
            to_slot=slot.id,
        )  # fmt: skip
        notes.add("appointment booked")
        _remind(session, appointment, patient, place, notes, now)
        return appointment
    link, appointment = found
    _codes(link, facts, mapping_source, event)
    old = session.get_one(Slot, appointment.slot_id)
    same_place = (old.clinician_id, old.department_id, old.site_id, old.starts_at) == (
        place.clinician_id, place.department_id, place.site_id, facts.starts_at,
    )  # fmt: skip
    reinstated = appointment.status is AppointmentStatus.CANCELLED
    if same_place and not reinstated and appointment.ends_at == facts.ends_at and not moved:
        notes.add("appointment unchanged")
        return appointment
    if reinstated:
        slot = _take_place(session, place, mapping_source, facts.starts_at, facts.ends_at)
        appointment.status, appointment.cancelled_at, appointment.cancel_reason = (
            AppointmentStatus.BOOKED,
            None,
            None,
        )
    elif not same_place:
        _give_back(session, old.id)
        slot = _take_place(session, place, mapping_source, facts.starts_at, facts.ends_at)
    else:
        slot = old
    appointment.slot_id, appointment.starts_at, appointment.ends_at = slot.id, facts.starts_at, facts.ends_at
    appointment.sequence += 1
    appointment.updated_at = now
    session.flush()
    kind = AppointmentEventKind.BOOKED if reinstated else AppointmentEventKind.RESCHEDULED
    record_event(
        session, appointment, kind, channel=HIS_CHANNEL, staff_id=None, now=now,
        from_slot=None if reinstated else old.id, to_slot=slot.id,
    )  # fmt: skip
    notes.add(
        "appointment booked again" if reinstated else "appointment moved" if moved else "appointment changed"
    )
    _remind(session, appointment, patient, place, notes, now)
    return appointment


def do_cancel_his_appointment(
    session: Session,
    patient: Patient,
    filler: Identifier,
    *,
    event: str,
    notes: Notes,
    now: datetime,
    reason: str = CANCEL_REASON,
) -> Appointment:
    """Cancel the HIS appointment and stop its reminders; the row stays, marked cancelled (`reason`
    "hospital" for an S15 cancellation, "deleted" for an S17 deletion, booked in error). Raises
    UnknownAppointment when CareLoop has no appointment under the filler id, IdentityConflict when it is
    another patient's."""
    found = find_his_appointment(session, filler)
    if found is None:
        raise UnknownAppointment("no appointment with this filler appointment id (SCH-2)")
    _own(found, patient)
    link, appointment = found
    link.last_event = event[:8]
    if appointment.status is AppointmentStatus.CANCELLED:
        notes.add("appointment already cancelled")
        return appointment
    _give_back(session, appointment.slot_id)
    appointment.status, appointment.cancelled_at, appointment.cancel_reason = (
        AppointmentStatus.CANCELLED, now, reason,
    )  # fmt: skip
    appointment.sequence += 1
    appointment.updated_at = now
    record_event(
        session, appointment, AppointmentEventKind.CANCELLED, channel=HIS_CHANNEL, staff_id=None, now=now,
        from_slot=appointment.slot_id,
    )  # fmt: skip
    stopped = cancel_reminders(session, appointment, now)
    notes.add(f"appointment cancelled; {stopped} reminders stopped")
    return appointment


def do_mark_his_no_show(
    session: Session, patient: Patient, filler: Identifier, *, event: str, notes: Notes, now: datetime
) -> Appointment:
    """The patient did not come (S26): marked no-show and its pending reminders stopped. The slot's place
    stays taken: the time was spent. A cancelled appointment is left as it is. Raises as a cancellation."""
    found = find_his_appointment(session, filler)
    if found is None:
        raise UnknownAppointment("no appointment with this filler appointment id (SCH-2)")
    _own(found, patient)
    link, appointment = found
    link.last_event = event[:8]
    if appointment.status is not AppointmentStatus.BOOKED:
        notes.add(f"appointment {appointment.status.value}: no-show not recorded")
        return appointment
    appointment.status, appointment.updated_at = AppointmentStatus.NO_SHOW, now
    stopped = cancel_reminders(session, appointment, now)
    audit.record(
        session, "appointment.no_show", patient_id=patient.id, subject=("appointment", appointment.id),
        source=f"hl7:{event[:8]}",
    )  # fmt: skip
    notes.add(f"appointment marked no-show; {stopped} reminders stopped")
    return appointment


def do_place_waiting(session: Session, mapping: CodeMapping, *, zone: str, now: datetime) -> int:
    """An admin mapped a department or doctor code: the coming HIS appointments that came with it move
    from the holding record to the real one (calendar sequence +1) and get their reminders, as the next
    message about them would have done. Returns how many were placed."""
    column = {
        CodeKind.DEPARTMENT: AppointmentIdentifier.department_code,
        CodeKind.DOCTOR: AppointmentIdentifier.doctor_code,
    }.get(mapping.kind)
    if column is None:
        return 0
    waiting = session.execute(
        sa.select(AppointmentIdentifier, Appointment)
        .join(Appointment, Appointment.id == AppointmentIdentifier.appointment_id)
        .where(
            AppointmentIdentifier.mapping_source == mapping.source,
            column == mapping.code,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at > now,
        )
    ).all()
    for link, appointment in waiting:
        facts = AppointmentFacts(
            filler=Identifier(link.filler_id, link.authority),
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
            placer_id=link.placer_id or "",
            department=CodedValue(link.department_code) if link.department_code else None,
            facility=link.site_code or "",
            doctor=CodedValue(link.doctor_code) if link.doctor_code else None,
            service=CodedValue(link.service_code) if link.service_code else None,
            reason=CodedValue(link.reason_code) if link.reason_code else None,
        )
        patient = session.get_one(Patient, appointment.patient_id)
        do_apply_his_appointment(
            session, patient, facts, event=link.last_event or "", moved=False, source=appointment.source,
            mapping_source=mapping.source, zone=zone, notes=Notes(), now=now,
        )  # fmt: skip
    return len(waiting)

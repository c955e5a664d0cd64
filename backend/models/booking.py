"""Appointment booking: sites, doctor schedules, the slots they produce, appointments and their reminders."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, enum_column, utcnow
from backend.models.org import Clinician, Department, name_in
from bots.domain import Channel


class Site(Base):
    """A place patients go to: a campus, a clinic building. Slot times are local to its zone."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    names: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)  # per-language display names
    timezone: Mapped[str] = mapped_column(sa.String(64))
    address: Mapped[str | None] = mapped_column(sa.String(300))
    active: Mapped[bool] = mapped_column(default=True)
    # Voice and SMS per campus. None: the setting (`CARELOOP_VOICE_SITES`, the hospital-wide values) decides;
    # a value here wins over it (docs/admin.md, "Campuses").
    voice_departments: Mapped[list[str] | None] = mapped_column(sa.JSON)  # department codes it calls for
    voice_windows: Mapped[list[str] | None] = mapped_column(sa.JSON)  # ["09:00-12:00", …]
    voice_caller_id: Mapped[str | None] = mapped_column(sa.String(20))  # E.164
    sms_sender_id: Mapped[str | None] = mapped_column(sa.String(40))  # a number, a brandname or 签名
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def name_in(self, lang: str) -> str:
        return name_in(self.names, self.name, lang)


class CalendarDayKind(StrEnum):
    HOLIDAY = "holiday"  # a public holiday (or the hospital's own closed day): no clinics
    WORKDAY = "workday"  # a make-up workday (调休, Tết swaps): a weekend day worked as `as_weekday`


class SiteCalendarDay(Base):
    """One exception to a site's ordinary week, maintained by an admin; the days not listed follow the week
    (Monday to Friday working). Pure rules in backend/services/working_calendar.py."""

    __tablename__ = "site_calendar_days"
    __table_args__ = (sa.UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    day: Mapped[date]
    kind: Mapped[CalendarDayKind] = mapped_column(enum_column(CalendarDayKind))
    as_weekday: Mapped[int | None]  # a make-up workday runs the clinics of this weekday (0 = Monday)
    name: Mapped[str] = mapped_column(sa.String(100), default="")  # e.g. 春节, Tết Nguyên Đán


class ScheduleExceptionKind(StrEnum):
    LEAVE = "leave"  # the doctor is away
    CLOSED = "closed"  # the clinic is closed (building work, a training day)


class ScheduleException(Base):
    """Days (inclusive) on which one doctor schedule gives no slots."""

    __tablename__ = "schedule_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("doctor_schedules.id"), index=True)
    first_day: Mapped[date]
    last_day: Mapped[date]
    kind: Mapped[ScheduleExceptionKind] = mapped_column(enum_column(ScheduleExceptionKind))
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DoctorSchedule(Base):
    """A clinician's recurring clinic: on these weekdays, these sessions, at this site, in slots of N
    minutes with `capacity` patients each. Slots are generated from it (idempotently) a few weeks ahead."""

    __tablename__ = "doctor_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinician_id: Mapped[int] = mapped_column(sa.ForeignKey("clinicians.id"), index=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"))
    weekdays: Mapped[list[int]] = mapped_column(sa.JSON)  # 0 = Monday … 6 = Sunday
    sessions: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON)  # [{"start": "08:00", "end": "12:00"}]
    slot_minutes: Mapped[int]
    capacity: Mapped[int] = mapped_column(default=1)  # patients per slot
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    # Set for the paused schedule that holds one sending facility's appointments booked in the hospital's
    # own system (SIU): its slots are never generated nor offered; None for CareLoop's own clinics.
    external_source: Mapped[str | None] = mapped_column(sa.String(180))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    clinician: Mapped[Clinician] = relationship()
    department: Mapped[Department] = relationship()
    site: Mapped[Site] = relationship()


class Slot(Base):
    """One bookable time. `booked` counts live appointments; it only changes by a conditional UPDATE
    (`booked < capacity`), which is what makes exactly one of many racing patients win the last place."""

    __tablename__ = "slots"
    __table_args__ = (
        sa.UniqueConstraint("schedule_id", "starts_at"),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        sa.Index("ix_slots_department_starts", "department_id", "starts_at"),
        sa.Index("ix_slots_clinician_starts", "clinician_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("doctor_schedules.id"))
    clinician_id: Mapped[int] = mapped_column(sa.ForeignKey("clinicians.id"))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the site's local date and time of day, fixed at generation, so patients' filters are plain SQL
    local_date: Mapped[date]
    time_of_day: Mapped[str] = mapped_column(sa.String(16))  # booking_rules.TimeOfDay
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    # Set when a schedule change (leave, a holiday, a new template) took the slot away: never offered again;
    # a slot is withdrawn rather than deleted because appointments and their history point at it.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    clinician: Mapped[Clinician] = relationship()
    department: Mapped[Department] = relationship()
    site: Mapped[Site] = relationship()


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class Appointment(Base):
    """A patient's place in a slot. Rescheduling moves the same appointment to another slot (its calendar
    entry keeps its UID and gets a higher sequence), so calendars update instead of doubling."""

    __tablename__ = "appointments"
    __table_args__ = (sa.Index("ix_appointments_patient_status_starts", "patient_id", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"))
    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("slots.id"), index=True)
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_column(AppointmentStatus), default=AppointmentStatus.BOOKED
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))  # where it was booked
    source: Mapped[str] = mapped_column(sa.String(64))  # e.g. "webchat:booking", "staff"
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the slot's, kept here for overlap checks
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sequence: Mapped[int] = mapped_column(default=0)  # iCalendar SEQUENCE: +1 per change
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(64))
    booked_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    # when staff last told the patient that a schedule change took the slot away (backend/admin/schedules.py)
    change_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    slot: Mapped[Slot] = relationship()


class AppointmentEventKind(StrEnum):
    BOOKED = "booked"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"


class AppointmentEvent(Base):
    """Append-only history of an appointment; reschedules per patient per day are counted from it."""

    __tablename__ = "appointment_events"
    __table_args__ = (sa.Index("ix_appointment_events_patient_kind_at", "patient_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"))
    kind: Mapped[AppointmentEventKind] = mapped_column(enum_column(AppointmentEventKind))
    from_slot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("slots.id"))
    to_slot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("slots.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReminderStatus(StrEnum):
    SCHEDULED = "scheduled"  # its outbox item carries it: waiting for its time, or gone (see its status)
    CANCELLED = "cancelled"  # the appointment was cancelled or moved before it went
    UNREACHABLE = "unreachable"  # the patient has no external channel to remind them on
    SKIPPED = "skipped"  # its time had already passed when the appointment was booked or moved


class AppointmentReminder(Base):
    """One reminder (e.g. 24 h before) of an appointment and the outbox item that carries it."""

    __tablename__ = "appointment_reminders"
    __table_args__ = (sa.UniqueConstraint("appointment_id", "offset_minutes"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"))
    offset_minutes: Mapped[int]  # before the start
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ReminderStatus] = mapped_column(enum_column(ReminderStatus))
    channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    outbox_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Doctor schedules from the admin console, on SQLite and PostgreSQL: templates make slots that follow the
site's calendar and the doctor's leave; a change withdraws the slots it takes away and lists the booked
patients left on them, who can be told through the outbox; a double booking is refused with nothing
written; the hospital's own (SIU) schedules cannot be changed here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import schedules as admin_schedules
from backend.admin import sites as admin_sites
from backend.admin.schedules import ScheduleRefused, parse_template_form
from backend.models import (
    AuditEvent,
    Clinician,
    ClinicianKind,
    DoctorSchedule,
    OutboxItem,
    ScheduleExceptionKind,
    Slot,
)
from backend.models.booking import CalendarDayKind
from backend.services.booking import do_book
from backend.services.refusal import Reason
from backend.services.schedules import find_slots
from backend.services.working_calendar import CalendarDay
from bots.domain import Channel
from tests import factories
from tests.backend.services import booking_data

NOW = datetime(2027, 2, 1, 1, 0, tzinfo=UTC)  # Monday 1 February 2027, 09:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _doctor(db: Session) -> Clinician:
    department = factories.department(db)
    doctor = Clinician(kind=ClinicianKind.DOCTOR, department_id=department.id, name="Dr Lin", code="D1")
    db.add(doctor)
    db.flush()
    return doctor


def _form(doctor: Clinician, site_id: int, **changes: str) -> admin_schedules.TemplateForm:
    values = {
        "clinician": str(doctor.id),
        "site": str(site_id),
        "weekday_0": "on",
        "weekday_4": "on",
        "sessions": "08:00-09:00",
        "slot_minutes": "30",
        "capacity": "2",
        "valid_from": "2027-01-01",
        **changes,
    }
    return parse_template_form(values)


def _local_days(db: Session, schedule_id: int, *, withdrawn: bool = False) -> list[int]:
    rows = db.scalars(
        sa.select(Slot.starts_at).where(
            Slot.schedule_id == schedule_id,
            Slot.withdrawn_at.is_not(None) if withdrawn else Slot.withdrawn_at.is_(None),
        )
    )
    return sorted({s.astimezone(SHANGHAI).day for s in rows})


def test_a_template_makes_slots_that_follow_the_calendar_and_leave(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db)
    admin_sites.do_set_calendar_day(
        db, site, CalendarDay(date(2027, 2, 8), CalendarDayKind.HOLIDAY), by=root.id, now=NOW
    )
    admin_sites.do_set_calendar_day(
        db, site, CalendarDay(date(2027, 2, 6), CalendarDayKind.WORKDAY, 4, "调休"), by=root.id, now=NOW
    )
    doctor = _doctor(db)
    schedule = admin_schedules.do_create(db, _form(doctor, site.id), by=root.id, now=NOW)
    # 28 days from Mon 1 Feb: Mondays and Fridays (Mon 1's morning has passed at 09:00), Sat 6 as a
    # Friday, not the holiday on Mon 8; two slots a morning
    assert _local_days(db, schedule.id) == [5, 6, 12, 15, 19, 22, 26]
    assert (
        db.scalar(sa.select(sa.func.count()).select_from(Slot).where(Slot.schedule_id == schedule.id)) == 14
    )

    result = admin_schedules.do_add_exception(
        db,
        schedule,
        date(2027, 2, 15),
        date(2027, 2, 19),
        ScheduleExceptionKind.LEAVE,
        "conference",
        by=root.id,
        now=NOW,
    )
    assert result.withdrawn == 4 and result.stranded == []
    assert _local_days(db, schedule.id) == [5, 6, 12, 22, 26]
    assert _local_days(db, schedule.id, withdrawn=True) == [15, 19]
    offered = {
        s.starts_at.astimezone(SHANGHAI).day
        for s in find_slots(db, now=NOW, clinician_id=doctor.id, limit=100)
    }
    assert offered == {5, 6, 12, 22, 26}
    [leave] = admin_schedules.exceptions_of(db, schedule.id)
    back = admin_schedules.do_remove_exception(db, schedule, leave.id, by=root.id, now=NOW)
    assert back.restored == 4 and _local_days(db, schedule.id) == [5, 6, 12, 15, 19, 22, 26]
    actions = set(db.scalars(sa.select(AuditEvent.action)))
    assert {
        "schedule.created",
        "schedule.exception_add",
        "schedule.exception_remove",
        "schedule.refit",
    } <= actions
    assert {"site.calendar_set"} <= actions


def test_a_holiday_over_booked_patients_strands_them_and_they_can_be_told(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db)
    doctor = _doctor(db)
    schedule = admin_schedules.do_create(db, _form(doctor, site.id), by=root.id, now=NOW)
    friday = datetime(2027, 2, 12, 8, 0, tzinfo=SHANGHAI)
    slot = db.scalars(sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.starts_at == friday)).one()
    reachable = factories.patient(db, phone="+8613900000001")
    unreachable = factories.patient(db, phone=None)
    unreachable.phone = None
    booked = do_book(
        db, patient_id=reachable.id, slot_id=slot.id, channel=Channel.SMS, source="test", now=NOW
    )
    other = do_book(
        db, patient_id=unreachable.id, slot_id=slot.id, channel=Channel.WEBCHAT, source="test", now=NOW
    )

    stranded = admin_sites.do_set_calendar_day(
        db, site, CalendarDay(date(2027, 2, 12), CalendarDayKind.HOLIDAY, None, "元宵"), by=root.id, now=NOW
    )
    assert {a.id for a in stranded} == {booked.id, other.id}
    assert slot.withdrawn_at is not None and slot.booked == 2  # the places stay taken until moved
    assert admin_schedules.stranded(db, schedule.id, NOW) == stranded

    before = db.scalar(sa.select(sa.func.count()).select_from(OutboxItem))
    queued, missing, told = admin_schedules.do_notify_stranded(
        db, schedule, [booked.id, other.id, 999999], by=root.id, now=NOW
    )
    assert (queued, missing, told) == (1, 1, 0)
    # a second click sends nothing again to the patient already told
    again = admin_schedules.do_notify_stranded(db, schedule, [booked.id], by=root.id, now=NOW)
    assert again == (0, 0, 1)
    items = list(db.scalars(sa.select(OutboxItem).where(OutboxItem.patient_id == reachable.id)))
    notice = [i for i in items if i.template_vars and "clinic changed" in i.template_vars["text"]]
    assert len(notice) == 1 and notice[0].channel is Channel.SMS and notice[0].created_by_staff_id == root.id
    assert db.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == before + 1
    assert (
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "schedule.patient_notified"))
        .one()
        .patient_id
        == reachable.id
    )

    # the holiday removed: the slot comes back with its patients, nobody is stranded any more
    admin_sites.do_remove_calendar_day(db, site, date(2027, 2, 12), by=root.id, now=NOW)
    assert slot.withdrawn_at is None and admin_schedules.stranded(db, schedule.id, NOW) == []


def test_a_double_booking_is_refused_with_the_clashes_and_nothing_written(db: Session) -> None:
    root = factories.staff(db, username="root")
    east, west = booking_data.site(db), booking_data.site(db)
    doctor = _doctor(db)
    admin_schedules.do_create(db, _form(doctor, east.id), by=root.id, now=NOW)
    count = db.scalar(sa.select(sa.func.count()).select_from(DoctorSchedule))
    with pytest.raises(ScheduleRefused) as refused:
        admin_schedules.do_create(
            db,
            _form(doctor, west.id, weekday_0="", weekday_4="on", sessions="08:30-10:00"),
            by=root.id,
            now=NOW,
        )
    assert refused.value.reason is Reason.SCHEDULE_CLASH
    clash_days = {s.astimezone(SHANGHAI).date() for s, _, _ in refused.value.clashes}
    assert date(2027, 2, 5) in clash_days and all(d.weekday() == 4 for d in clash_days)
    assert db.scalar(sa.select(sa.func.count()).select_from(DoctorSchedule)) == count
    # the afternoon at the other campus is fine
    afternoon = admin_schedules.do_create(
        db, _form(doctor, west.id, sessions="14:00-15:00"), by=root.id, now=NOW
    )
    # and moving that one onto the morning is refused, leaving it as it was
    with pytest.raises(ScheduleRefused):
        admin_schedules.do_update(
            db, afternoon, _form(doctor, west.id, sessions="08:00-09:00"), by=root.id, now=NOW
        )
    assert afternoon.sessions == [{"start": "14:00", "end": "15:00"}]


def test_a_new_template_keeps_booked_starts_and_strands_the_rest(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db)
    doctor = _doctor(db)
    schedule = admin_schedules.do_create(db, _form(doctor, site.id), by=root.id, now=NOW)
    patient = factories.patient(db)
    half_past = datetime(2027, 2, 5, 8, 30, tzinfo=SHANGHAI)
    slot = db.scalars(
        sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.starts_at == half_past)
    ).one()
    booking = do_book(db, patient_id=patient.id, slot_id=slot.id, channel=Channel.SMS, source="test", now=NOW)
    # hour-long slots from 08:00: 08:30 is no longer a start; Fridays only
    result = admin_schedules.do_update(
        db,
        schedule,
        _form(doctor, site.id, weekday_0="", slot_minutes="60", capacity="1"),
        by=root.id,
        now=NOW,
    )
    assert [a.id for a in result.stranded] == [booking.id]
    fridays = db.scalars(
        sa.select(Slot)
        .where(Slot.schedule_id == schedule.id, Slot.withdrawn_at.is_(None))
        .order_by(Slot.starts_at)
    ).all()
    assert [(s.starts_at.astimezone(SHANGHAI).day, s.ends_at - s.starts_at, s.capacity) for s in fridays] == [
        (d, timedelta(hours=1), 1) for d in (5, 12, 19, 26)
    ]
    changed = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "schedule.update")).one()
    assert set(changed.detail["changed"]) == {"weekdays", "slot_minutes", "capacity"}


def test_pause_and_resume_and_external_schedules(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db)
    doctor = _doctor(db)
    schedule = admin_schedules.do_create(db, _form(doctor, site.id), by=root.id, now=NOW)
    admin_schedules.do_set_active(db, schedule, active=False, by=root.id, now=NOW)
    assert _local_days(db, schedule.id) == [] and find_slots(db, now=NOW, clinician_id=doctor.id) == []
    admin_schedules.do_set_active(db, schedule, active=True, by=root.id, now=NOW)
    assert _local_days(db, schedule.id) == [5, 8, 12, 15, 19, 22, 26]
    schedule.external_source = "HIS^EAST"
    for attempt in (
        lambda: admin_schedules.do_set_active(db, schedule, active=False, by=root.id, now=NOW),
        lambda: admin_schedules.do_update(db, schedule, _form(doctor, site.id), by=root.id, now=NOW),
        lambda: admin_schedules.do_add_exception(
            db,
            schedule,
            date(2027, 2, 5),
            date(2027, 2, 5),
            ScheduleExceptionKind.CLOSED,
            "",
            by=root.id,
            now=NOW,
        ),
    ):
        with pytest.raises(ScheduleRefused) as refused:
            attempt()
        assert refused.value.reason is Reason.SCHEDULE_EXTERNAL


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weekday_0": "", "weekday_4": ""}, "weekdays"),
        ({"sessions": "08:00"}, "sessions"),
        ({"sessions": ""}, "sessions"),
        ({"slot_minutes": "2"}, "slot_minutes"),
        ({"capacity": "0"}, "capacity"),
        ({"capacity": "x"}, "capacity"),
        ({"valid_from": "2027-13-01"}, "valid_from"),
        ({"valid_until": "2026-01-01"}, "valid_until"),
    ],
)
def test_bad_templates_name_their_field(changes: dict[str, str], field: str) -> None:
    values = {
        "clinician": "1",
        "site": "1",
        "weekday_0": "on",
        "weekday_4": "on",
        "sessions": "08:00-09:00",
        "slot_minutes": "30",
        "capacity": "2",
        "valid_from": "2027-01-01",
        **changes,
    }
    with pytest.raises(ScheduleRefused) as refused:
        parse_template_form(values)
    assert (refused.value.reason, refused.value.detail) == (Reason.SCHEDULE_INVALID, field)


def test_a_new_time_zone_moves_free_slots_and_strands_booked_ones(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db)
    doctor = _doctor(db)
    schedule = admin_schedules.do_create(db, _form(doctor, site.id), by=root.id, now=NOW)
    friday = datetime(2027, 2, 5, 8, 0, tzinfo=SHANGHAI)
    slot = db.scalars(sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.starts_at == friday)).one()
    booking = do_book(
        db, patient_id=factories.patient(db).id, slot_id=slot.id, channel=Channel.SMS, source="test", now=NOW
    )
    values = {
        "code": site.code,
        "name_en": site.name,
        "timezone": "Asia/Ho_Chi_Minh",  # an hour behind Shanghai
    }
    changed = admin_sites.do_update_site(db, site, admin_sites.parse_site_form(values), by=root.id, now=NOW)
    assert "timezone" in changed
    assert [a.id for a in admin_schedules.stranded(db, schedule.id, NOW)] == [booking.id]
    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    live = db.scalars(sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.withdrawn_at.is_(None)))
    assert {s.starts_at.astimezone(hanoi).strftime("%H:%M") for s in live} == {"08:00", "08:30"}

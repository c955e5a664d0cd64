"""Doctor schedules and their slots: creating schedules, generating slots (idempotent), finding free ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from backend.models import Clinician, DoctorSchedule, ScheduleException, Site, SiteCalendarDay, Slot
from backend.models.base import utcnow
from backend.services import audit
from backend.services.booking_rules import ScheduleError, ScheduleRule, TimeOfDay, slot_times, time_of_day
from backend.services.working_calendar import Calendar, CalendarDay, day_overrides

GENERATE_DAYS = 28  # how far ahead slots exist


def rule_of(schedule: DoctorSchedule, site: Site) -> ScheduleRule:
    return ScheduleRule.of(
        weekdays=schedule.weekdays,
        sessions=schedule.sessions,
        slot_minutes=schedule.slot_minutes,
        timezone=site.timezone,
        valid_from=schedule.valid_from,
        valid_until=schedule.valid_until,
    )


def do_create_schedule(
    session: Session,
    *,
    clinician_id: int,
    site_id: int,
    weekdays: Sequence[int],
    sessions: Sequence[dict[str, str]],
    slot_minutes: int,
    capacity: int = 1,
    valid_from: date,
    valid_until: date | None = None,
    staff_id: int | None = None,
) -> DoctorSchedule:
    """Check and store a schedule (its department is the clinician's). Raises ScheduleError."""
    clinician = session.get(Clinician, clinician_id)
    site = session.get(Site, site_id)
    if clinician is None:
        raise ScheduleError(f"no clinician {clinician_id}")
    if site is None:
        raise ScheduleError(f"no site {site_id}")
    if capacity < 1:
        raise ScheduleError("capacity must be at least 1")
    ScheduleRule.of(
        weekdays=weekdays,
        sessions=sessions,
        slot_minutes=slot_minutes,
        timezone=site.timezone,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    schedule = DoctorSchedule(
        clinician_id=clinician.id,
        department_id=clinician.department_id,
        site_id=site.id,
        weekdays=sorted(set(weekdays)),
        sessions=[dict(s) for s in sessions],
        slot_minutes=slot_minutes,
        capacity=capacity,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    session.add(schedule)
    session.flush()
    audit.record(session, "schedule.created", staff_id=staff_id, subject=("doctor_schedule", schedule.id))
    return schedule


def site_calendar(session: Session, site_id: int) -> dict[date, CalendarDay]:
    rows = session.scalars(sa.select(SiteCalendarDay).where(SiteCalendarDay.site_id == site_id))
    return {r.day: CalendarDay(r.day, r.kind, r.as_weekday, r.name) for r in rows}


def schedule_overrides(
    session: Session, schedule: DoctorSchedule, first: date, last: date, calendar: Calendar | None = None
) -> dict[date, int | None]:
    """The days in first..last on which the schedule's clinics differ from the plain week: the site's
    holidays and make-up workdays, and the schedule's own exceptions (leave, closed days)."""
    if calendar is None:
        calendar = site_calendar(session, schedule.site_id)
    closed = session.execute(
        sa.select(ScheduleException.first_day, ScheduleException.last_day).where(
            ScheduleException.schedule_id == schedule.id,
            ScheduleException.last_day >= first,
            ScheduleException.first_day <= last,
        )
    )
    return day_overrides(calendar, [(a, b) for a, b in closed], first, last)


def wanted_slots(
    session: Session, schedule: DoctorSchedule, site: Site, first: date, last: date
) -> list[tuple[datetime, datetime]]:
    """The slots the schedule gives on local days first..last, with the calendar and exceptions applied."""
    overrides = schedule_overrides(session, schedule, first, last)
    return slot_times(rule_of(schedule, site), first, last, overrides)


def do_generate_slots(
    session: Session, schedule: DoctorSchedule, *, now: datetime | None = None, days: int = GENERATE_DAYS
) -> int:
    """Create the schedule's missing slots from today (site time) for `days` days; returns how many were
    new. Running it again creates nothing: starts already there are skipped, and the unique
    (schedule, start) constraint backs that up against a concurrent run. Existing slots are never
    changed, so a schedule edit does not disturb booked patients."""
    now = now or utcnow()
    site = session.get(Site, schedule.site_id)
    assert site is not None
    zone = ZoneInfo(site.timezone)
    today = now.astimezone(zone).date()
    last = today + timedelta(days=days - 1)
    wanted = [(s, e) for s, e in wanted_slots(session, schedule, site, today, last) if s > now]
    if not wanted:
        return 0
    # a withdrawn start counts as existing: it comes back only through reconcile (backend/admin/schedules.py)
    existing = set(
        session.scalars(
            sa.select(Slot.starts_at).where(
                Slot.schedule_id == schedule.id,
                Slot.starts_at >= wanted[0][0],
                Slot.starts_at <= wanted[-1][0],
            )
        )
    )
    new = [
        Slot(
            schedule_id=schedule.id,
            clinician_id=schedule.clinician_id,
            department_id=schedule.department_id,
            site_id=schedule.site_id,
            starts_at=start,
            ends_at=end,
            local_date=start.astimezone(zone).date(),
            time_of_day=time_of_day(start.astimezone(zone).time()).value,
            capacity=schedule.capacity,
            booked=0,
        )
        for start, end in wanted
        if start not in existing
    ]
    session.add_all(new)
    session.flush()
    if new:
        audit.record(
            session, "schedule.slots_generated", subject=("doctor_schedule", schedule.id), new=len(new)
        )
    return len(new)


def generate_all_slots(now: datetime | None = None) -> int:
    """Periodic job: every active schedule's slots for the coming weeks, one transaction per schedule."""
    from backend.app.db import session_scope

    with session_scope() as session:
        ids = list(session.scalars(sa.select(DoctorSchedule.id).where(DoctorSchedule.active.is_(True))))
    total = 0
    for schedule_id in ids:
        with session_scope() as session:
            schedule = session.get(DoctorSchedule, schedule_id)
            if schedule is not None and schedule.active:
                total += do_generate_slots(session, schedule, now=now)
    return total


def free_slot_query(
    *,
    now: datetime,
    department_id: int | None = None,
    clinician_id: int | None = None,
    site_id: int | None = None,
    on: date | None = None,
    part_of_day: TimeOfDay | None = None,
    exclude_slot_ids: Sequence[int] = (),
) -> sa.Select[Slot]:
    """Free future slots matching the filters (None: any): past and full slots and slots of paused
    schedules never match. `on` is a date at the slot's site."""
    query = (
        sa.select(Slot)
        .join(DoctorSchedule, DoctorSchedule.id == Slot.schedule_id)
        .where(
            Slot.starts_at > now,
            Slot.booked < Slot.capacity,
            Slot.withdrawn_at.is_(None),
            DoctorSchedule.active.is_(True),
            DoctorSchedule.external_source.is_(None),  # the hospital's own appointments, never offered
        )
    )
    if department_id is not None:
        query = query.where(Slot.department_id == department_id)
    if clinician_id is not None:
        query = query.where(Slot.clinician_id == clinician_id)
    if site_id is not None:
        query = query.where(Slot.site_id == site_id)
    if on is not None:
        query = query.where(Slot.local_date == on)
    if part_of_day is not None:
        query = query.where(Slot.time_of_day == part_of_day.value)
    if exclude_slot_ids:
        query = query.where(Slot.id.not_in(list(exclude_slot_ids)))
    return query


def find_slots(
    session: Session,
    *,
    now: datetime | None = None,
    department_id: int | None = None,
    clinician_id: int | None = None,
    site_id: int | None = None,
    on: date | None = None,
    part_of_day: TimeOfDay | None = None,
    exclude_slot_ids: Sequence[int] = (),
    limit: int = 20,
) -> list[Slot]:
    """Free future slots, soonest first, with clinician, department and site loaded."""
    query = free_slot_query(
        now=now or utcnow(),
        department_id=department_id,
        clinician_id=clinician_id,
        site_id=site_id,
        on=on,
        part_of_day=part_of_day,
        exclude_slot_ids=exclude_slot_ids,
    )
    query = (
        query.options(joinedload(Slot.clinician), joinedload(Slot.department), joinedload(Slot.site))
        .order_by(Slot.starts_at, Slot.id)
        .limit(limit)
    )
    return list(session.scalars(query).unique())


def slot_local_start(slot: Slot, site: Site) -> datetime:
    return slot.starts_at.astimezone(ZoneInfo(site.timezone))

"""Doctor schedules as an admin maintains them, over backend/services/schedules.py: weekly templates,
exceptions (leave, closed days), pausing; each change re-fits the schedule's future slots at once.

Re-fitting (`do_reconcile`) compares the schedule's future slots with what the template, the site's
calendar and the exceptions now give: a slot no longer wanted is withdrawn (never deleted: appointments
point at it), one wanted again is restored, missing ones are generated. The booked appointments left on
withdrawn slots are listed on the schedule's page, where staff may notify the patients through the
outbox (its consent gates and quiet hours apply). A change that would put the doctor in two clinics at
once is refused before anything is written, with the clashing slots listed. Schedules that hold the
hospital's own appointments (`external_source`, from SIU) are read-only here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from backend.content.catalogue import current_catalog
from backend.models import (
    Appointment,
    AppointmentStatus,
    ChannelPreference,
    Clinician,
    DoctorSchedule,
    OutboxKind,
    Patient,
    ScheduleException,
    ScheduleExceptionKind,
    Site,
    Slot,
)
from backend.outbox.enqueue import do_enqueue
from backend.services import audit
from backend.services.booking_rules import ScheduleError, ScheduleRule, slot_clashes
from backend.services.conversations import get_or_create_conversation
from backend.services.message_log import InvalidFilter, parse_id, text_value
from backend.services.refusal import ActionRefused, Reason
from backend.services.reminders import describe, reminder_channel
from backend.services.schedules import do_create_schedule, do_generate_slots, wanted_slots
from bots.domain import pick_language
from bots.messages import Outbound, Text

CLASH_DAYS = 366  # how far ahead a new template is checked against the doctor's other clinics
MAX_CAPACITY = 100


class ScheduleRefused(ActionRefused):
    """`detail` says which field is wrong (SCHEDULE_INVALID); `clashes` lists (start, end, schedule id)."""

    def __init__(
        self, reason: Reason, detail: str = "", clashes: Sequence[tuple[datetime, datetime, int]] = ()
    ) -> None:
        super().__init__(reason)
        self.detail = detail
        self.clashes = list(clashes)


@dataclass(frozen=True)
class TemplateForm:
    clinician_id: int
    site_id: int
    weekdays: list[int]
    sessions: list[dict[str, str]]
    slot_minutes: int
    capacity: int
    valid_from: date
    valid_until: date | None


def parse_sessions_text(text: str) -> list[dict[str, str]]:
    """ "08:00-12:00, 14:00-17:00" -> [{"start": "08:00", "end": "12:00"}, …] (checked by ScheduleRule)."""
    out = []
    for part in text.replace("，", ",").split(","):
        part = part.strip().replace("–", "-")
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise ScheduleRefused(Reason.SCHEDULE_INVALID, "sessions")
        out.append({"start": start.strip(), "end": end.strip()})
    if not out:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "sessions")
    return out


def _int(values: Mapping[str, str], name: str, low: int, high: int) -> int:
    text = values.get(name, "").strip()
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, name)
    return int(text)


def _date(values: Mapping[str, str], name: str, required: bool) -> date | None:
    text = values.get(name, "").strip()
    if not text and not required:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, name) from exc


def parse_template_form(values: Mapping[str, str]) -> TemplateForm:
    """The weekly template form: weekday_0 … weekday_6 ticked, sessions as text. Raises ScheduleRefused."""
    weekdays = [d for d in range(7) if values.get(f"weekday_{d}")]
    if not weekdays:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "weekdays")
    valid_from = _date(values, "valid_from", True)
    assert valid_from is not None
    valid_until = _date(values, "valid_until", False)
    if valid_until is not None and valid_until < valid_from:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "valid_until")
    return TemplateForm(
        clinician_id=_int(values, "clinician", 1, 10**9),
        site_id=_int(values, "site", 1, 10**9),
        weekdays=weekdays,
        sessions=parse_sessions_text(values.get("sessions", "")),
        slot_minutes=_int(values, "slot_minutes", 5, 480),
        capacity=_int(values, "capacity", 1, MAX_CAPACITY),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _rule(form: TemplateForm, site: Site) -> ScheduleRule:
    try:
        return ScheduleRule.of(
            weekdays=form.weekdays,
            sessions=form.sessions,
            slot_minutes=form.slot_minutes,
            timezone=site.timezone,
            valid_from=form.valid_from,
            valid_until=form.valid_until,
        )
    except ScheduleError as exc:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "sessions" if "session" in str(exc) else "") from exc


def _window(site: Site, now: datetime) -> tuple[date, date]:
    today = now.astimezone(ZoneInfo(site.timezone)).date()
    return today, today + timedelta(days=CLASH_DAYS - 1)


def find_clashes(
    session: Session, schedule: DoctorSchedule, site: Site, now: datetime
) -> list[tuple[datetime, datetime, int]]:
    """The doctor's slots in other clinics (own schedules' wanted slots, and the hospital's booked ones)
    that overlap this schedule's slots in the coming year. `schedule` may be unsaved or edited in memory."""
    first, last = _window(site, now)
    mine = [(s, e) for s, e in wanted_slots(session, schedule, site, first, last) if s > now]
    if not mine:
        return []
    theirs: list[tuple[datetime, datetime, int]] = []
    others = session.scalars(
        sa.select(DoctorSchedule)
        .where(
            DoctorSchedule.clinician_id == schedule.clinician_id,
            DoctorSchedule.active.is_(True),
            DoctorSchedule.id != (schedule.id or 0),
        )
        .options(joinedload(DoctorSchedule.site))
    )
    for other in others:
        if other.external_source is None:
            theirs += [(s, e, other.id) for s, e in wanted_slots(session, other, other.site, first, last)]
        else:  # the hospital's own appointments: their slots exist only where something is booked
            theirs += [
                (s, e, other.id)
                for s, e in session.execute(
                    sa.select(Slot.starts_at, Slot.ends_at).where(
                        Slot.schedule_id == other.id, Slot.starts_at > now, Slot.booked > 0
                    )
                )
            ]
    return slot_clashes(mine, theirs)


def _check_template(session: Session, form: TemplateForm) -> tuple[Clinician, Site]:
    clinician = session.get(Clinician, form.clinician_id)
    site = session.get(Site, form.site_id)
    if clinician is None:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "clinician")
    if site is None:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "site")
    _rule(form, site)
    return clinician, site


def do_create(
    session: Session, form: TemplateForm, *, by: int, ip: str | None = None, now: datetime
) -> DoctorSchedule:
    """Check, refuse a double booking, store, generate its slots."""
    _, site = _check_template(session, form)
    draft = DoctorSchedule(
        clinician_id=form.clinician_id,
        site_id=form.site_id,
        weekdays=form.weekdays,
        sessions=form.sessions,
        slot_minutes=form.slot_minutes,
        capacity=form.capacity,
        valid_from=form.valid_from,
        valid_until=form.valid_until,
        active=True,
    )
    clashes = find_clashes(session, draft, site, now)
    if clashes:
        raise ScheduleRefused(Reason.SCHEDULE_CLASH, clashes=clashes)
    schedule = do_create_schedule(
        session,
        clinician_id=form.clinician_id,
        site_id=form.site_id,
        weekdays=form.weekdays,
        sessions=form.sessions,
        slot_minutes=form.slot_minutes,
        capacity=form.capacity,
        valid_from=form.valid_from,
        valid_until=form.valid_until,
        staff_id=by,
    )
    do_generate_slots(session, schedule, now=now)
    return schedule


def _own(schedule: DoctorSchedule) -> None:
    if schedule.external_source is not None:
        raise ScheduleRefused(Reason.SCHEDULE_EXTERNAL)


def do_update(
    session: Session,
    schedule: DoctorSchedule,
    form: TemplateForm,
    *,
    by: int,
    ip: str | None = None,
    now: datetime,
) -> Reconciled:
    """A new weekly template. The doctor and the site stay (another doctor or campus is another
    schedule). Refused, with nothing changed, when it would double-book the doctor."""
    _own(schedule)
    if form.clinician_id != schedule.clinician_id:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "clinician")
    if form.site_id != schedule.site_id:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "site")
    _, site = _check_template(session, form)
    fields = ("weekdays", "sessions", "slot_minutes", "capacity", "valid_from", "valid_until")
    # checked as a detached draft carrying the schedule's id (its exceptions, and itself left out of the
    # doctor's other clinics), so a refusal leaves the stored row untouched
    draft = DoctorSchedule(
        id=schedule.id,
        clinician_id=schedule.clinician_id,
        site_id=schedule.site_id,
        active=schedule.active,
        **{name: getattr(form, name) for name in fields},
    )
    clashes = find_clashes(session, draft, site, now) if schedule.active else []
    if clashes:
        raise ScheduleRefused(Reason.SCHEDULE_CLASH, clashes=clashes)
    changed = [name for name in fields if getattr(schedule, name) != getattr(form, name)]
    for name in changed:
        setattr(schedule, name, getattr(form, name))
    audit.record(
        session,
        "schedule.update",
        staff_id=by,
        subject=("doctor_schedule", schedule.id),
        ip=ip,
        changed=changed,
    )
    return do_reconcile(session, schedule, now=now)


def do_set_active(
    session: Session, schedule: DoctorSchedule, *, active: bool, by: int, ip: str | None = None, now: datetime
) -> Reconciled:
    """Pausing withdraws every future slot; resuming brings back what the template gives (refused when
    the doctor has since been given another clinic at those times)."""
    _own(schedule)
    if active and not schedule.active:
        site = session.get(Site, schedule.site_id)
        assert site is not None
        clashes = find_clashes(session, schedule, site, now)
        if clashes:
            raise ScheduleRefused(Reason.SCHEDULE_CLASH, clashes=clashes)
    schedule.active = active
    action = "schedule.resume" if active else "schedule.pause"
    audit.record(session, action, staff_id=by, subject=("doctor_schedule", schedule.id), ip=ip)
    return do_reconcile(session, schedule, now=now)


def parse_exception(values: Mapping[str, str]) -> tuple[date, date, ScheduleExceptionKind, str]:
    first = _date(values, "first_day", True)
    last = _date(values, "last_day", False) or first
    assert first is not None and last is not None
    if last < first or (last - first).days > 366:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "last_day")
    try:
        kind = ScheduleExceptionKind(values.get("kind", ""))
    except ValueError as exc:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "kind") from exc
    return first, last, kind, values.get("note", "").strip()[:200]


def do_add_exception(
    session: Session,
    schedule: DoctorSchedule,
    first: date,
    last: date,
    kind: ScheduleExceptionKind,
    note: str,
    *,
    by: int,
    ip: str | None = None,
    now: datetime,
) -> Reconciled:
    _own(schedule)
    row = ScheduleException(schedule_id=schedule.id, first_day=first, last_day=last, kind=kind, note=note)
    session.add(row)
    session.flush()
    audit.record(
        session,
        "schedule.exception_add",
        staff_id=by,
        subject=("doctor_schedule", schedule.id),
        ip=ip,
        first=first.isoformat(),
        last=last.isoformat(),
        kind=kind.value,
    )
    return do_reconcile(session, schedule, now=now)


def do_remove_exception(
    session: Session,
    schedule: DoctorSchedule,
    exception_id: int,
    *,
    by: int,
    ip: str | None = None,
    now: datetime,
) -> Reconciled:
    _own(schedule)
    row = session.get(ScheduleException, exception_id)
    if row is None or row.schedule_id != schedule.id:
        raise ScheduleRefused(Reason.SCHEDULE_INVALID, "exception")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        "schedule.exception_remove",
        staff_id=by,
        subject=("doctor_schedule", schedule.id),
        ip=ip,
        exception=exception_id,
    )
    return do_reconcile(session, schedule, now=now)


def exceptions_of(session: Session, schedule_id: int) -> list[ScheduleException]:
    return list(
        session.scalars(
            sa.select(ScheduleException)
            .where(ScheduleException.schedule_id == schedule_id)
            .order_by(ScheduleException.first_day)
        )
    )


# --- re-fitting slots ----------------------------------------------------------------------------


@dataclass
class Reconciled:
    withdrawn: int = 0
    restored: int = 0
    generated: int = 0
    stranded: list[Appointment] = field(default_factory=list)  # booked, on a withdrawn slot


def do_reconcile(session: Session, schedule: DoctorSchedule, *, now: datetime) -> Reconciled:
    """Bring the schedule's future slots in line with its template, calendar and exceptions (see the
    module's docstring). Capacity follows the template but never drops below a slot's booked count."""
    _own(schedule)
    site = session.get(Site, schedule.site_id)
    assert site is not None
    result = Reconciled()
    slots = list(
        session.scalars(sa.select(Slot).where(Slot.schedule_id == schedule.id, Slot.starts_at > now))
    )
    wanted: dict[datetime, datetime] = {}
    if schedule.active and slots:
        zone = ZoneInfo(site.timezone)
        first = now.astimezone(zone).date()
        last = max(s.starts_at for s in slots).astimezone(zone).date()
        wanted = dict(wanted_slots(session, schedule, site, first, last))
    for slot in slots:
        # a start is unique per schedule, so a slot whose start is still wanted is kept (a free one takes
        # the new length; a booked one keeps the time its patients were given)
        keep = slot.starts_at in wanted
        if keep and slot.booked == 0:
            slot.ends_at = wanted[slot.starts_at]
        if keep and slot.withdrawn_at is not None:
            slot.withdrawn_at = None
            result.restored += 1
        elif not keep and slot.withdrawn_at is None:
            slot.withdrawn_at = now
            result.withdrawn += 1
        if keep:
            slot.capacity = max(schedule.capacity, slot.booked)
    session.flush()
    if schedule.active:
        result.generated = do_generate_slots(session, schedule, now=now)
    result.stranded = stranded(session, schedule.id, now)
    audit.record(
        session,
        "schedule.refit",
        subject=("doctor_schedule", schedule.id),
        withdrawn=result.withdrawn,
        restored=result.restored,
        generated=result.generated,
        stranded=len(result.stranded),
    )
    return result


def stranded(session: Session, schedule_id: int, now: datetime) -> list[Appointment]:
    """Booked future appointments on the schedule's withdrawn slots, soonest first."""
    return list(
        session.scalars(
            sa.select(Appointment)
            .join(Slot, Slot.id == Appointment.slot_id)
            .where(
                Slot.schedule_id == schedule_id,
                Slot.withdrawn_at.is_not(None),
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.starts_at > now,
            )
            .options(joinedload(Appointment.slot))
            .order_by(Appointment.starts_at, Appointment.id)
        )
    )


def already_notified(appointments: Sequence[Appointment]) -> set[int]:
    """The appointments whose patient was told since their slot was (last) withdrawn: a second click, or
    a second admin, must not send the same news twice."""
    return {
        a.id
        for a in appointments
        if a.change_notice_at is not None
        and a.slot.withdrawn_at is not None
        and a.change_notice_at >= a.slot.withdrawn_at
    }


def do_notify_stranded(
    session: Session,
    schedule: DoctorSchedule,
    appointment_ids: Sequence[int],
    *,
    by: int,
    ip: str | None = None,
    now: datetime,
) -> tuple[int, int, int]:
    """Tell the chosen patients (of those stranded) that their clinic changed, through the outbox (consent,
    exclusions, quiet hours and caps decide there). Returns (queued, unreachable, told before). The
    appointment itself is left as it is: the patient moves it, or staff cancel it."""
    chosen = set(appointment_ids)
    queued = unreachable = 0
    catalog = current_catalog(session)
    candidates = [a for a in stranded(session, schedule.id, now) if a.id in chosen]
    told = already_notified(candidates)
    for appointment in candidates:
        if appointment.id in told:
            continue
        patient = session.get(Patient, appointment.patient_id)
        assert patient is not None
        preference = session.get(ChannelPreference, patient.id)
        target = reminder_channel(patient, appointment.channel, preference.channel if preference else None)
        if target is None:
            unreachable += 1
            continue
        channel, address = target
        lang = pick_language(patient.language)
        text = catalog.text(
            lang, "booking.clinic_changed", **describe(session, appointment.slot, lang, patient.timezone)
        )
        conversation = get_or_create_conversation(
            session, patient_id=patient.id, channel=channel, address=address
        )
        do_enqueue(
            session,
            conversation=conversation,
            outbound=Outbound((Text(text),)),
            kind=OutboxKind.OUTREACH,
            template_key="notice",
            template_vars={"text": text},
            staff_id=by,
            now=now,
        )
        appointment.change_notice_at = now
        audit.record(
            session,
            "schedule.patient_notified",
            staff_id=by,
            patient_id=patient.id,
            subject=("appointment", appointment.id),
            ip=ip,
            channel=channel.value,
        )
        queued += 1
    return queued, unreachable, len(told)


# --- the list and the week -----------------------------------------------------------------------

LIST_FIELDS = ("site", "department", "source", "active", "q")


@dataclass(frozen=True)
class ScheduleFilters:
    site_id: int | None = None
    department_id: int | None = None
    external: bool | None = None  # True: the hospital's (SIU); False: CareLoop's own
    active: bool | None = None
    text: str = ""  # part of the doctor's name or code

    def audit_detail(self) -> dict[str, Any]:
        return {
            "site": self.site_id,
            "department": self.department_id,
            "external": self.external,
            "active": self.active,
            "text": bool(self.text),
        }


def parse_schedule_filters(values: Mapping[str, str]) -> ScheduleFilters:
    source = text_value(values, "source")
    active = text_value(values, "active")
    if source not in ("", "own", "external"):
        raise InvalidFilter("source")
    if active not in ("", "yes", "no"):
        raise InvalidFilter("active")
    return ScheduleFilters(
        site_id=parse_id(values, "site"),
        department_id=parse_id(values, "department"),
        external=None if not source else source == "external",
        active=None if not active else active == "yes",
        text=text_value(values, "q"),
    )


def schedule_list(session: Session, filters: ScheduleFilters, limit: int = 5000) -> list[DoctorSchedule]:
    query = sa.select(DoctorSchedule).options(
        joinedload(DoctorSchedule.clinician),
        joinedload(DoctorSchedule.site),
        joinedload(DoctorSchedule.department),
    )
    if filters.site_id is not None:
        query = query.where(DoctorSchedule.site_id == filters.site_id)
    if filters.department_id is not None:
        query = query.where(DoctorSchedule.department_id == filters.department_id)
    if filters.external is not None:
        column = DoctorSchedule.external_source
        query = query.where(column.is_not(None) if filters.external else column.is_(None))
    if filters.active is not None:
        query = query.where(DoctorSchedule.active.is_(filters.active))
    rows = list(session.scalars(query.order_by(DoctorSchedule.id).limit(limit)).unique())
    if filters.text:
        wanted = filters.text.casefold()
        rows = [
            r
            for r in rows
            if any(
                wanted in (t or "").casefold()
                for t in (r.clinician.code, r.clinician.name, *r.clinician.names.values())
            )
        ]
    return rows


@dataclass(frozen=True)
class WeekCell:
    slot_id: int
    booked: int
    capacity: int
    withdrawn: bool


@dataclass(frozen=True)
class WeekTable:
    days: list[date]  # Monday … Sunday
    times: list[time]  # the rows: every local start time that week
    cells: dict[tuple[date, time], WeekCell]


def week_table(monday: date, slots: Sequence[tuple[datetime, int, int, int, bool]]) -> WeekTable:
    """Pure: slots as (local start, id, booked, capacity, withdrawn) -> rows by start time, columns by day."""
    days = [monday + timedelta(days=i) for i in range(7)]
    cells = {
        (start.date(), start.time()): WeekCell(slot_id, booked, capacity, withdrawn)
        for start, slot_id, booked, capacity, withdrawn in slots
        if monday <= start.date() < monday + timedelta(days=7)
    }
    return WeekTable(days, sorted({t for _, t in cells}), cells)


def week_of(session: Session, schedule: DoctorSchedule, monday: date) -> WeekTable:
    site = session.get(Site, schedule.site_id)
    assert site is not None
    zone = ZoneInfo(site.timezone)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = start + timedelta(days=8)  # a day of slack: the local week, whatever the zone
    rows = session.execute(
        sa.select(Slot.starts_at, Slot.id, Slot.booked, Slot.capacity, Slot.withdrawn_at).where(
            Slot.schedule_id == schedule.id, Slot.starts_at >= start, Slot.starts_at < end
        )
    )
    return week_table(monday, [(s.astimezone(zone), i, b, c, w is not None) for s, i, b, c, w in rows])


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())

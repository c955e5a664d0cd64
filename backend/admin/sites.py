"""Campuses (sites) and their working calendars, as an admin maintains them: code, names in zh-CN/vi/en,
time zone, address, voice (departments called for, call windows, caller id) and the SMS sender id; the
holidays and make-up workdays of each site, added one by one or imported a year at a time. Each change
is an audited verb; a calendar change re-fits the slots of the site's schedules at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin.org import MAX_NAME
from backend.models import Appointment, DoctorSchedule, Site, SiteCalendarDay
from backend.models.booking import CalendarDayKind
from backend.models.org import ORG_CODE
from backend.services import audit
from backend.services.message_log import InvalidFilter, text_value
from backend.services.refusal import ActionRefused, Reason
from backend.services.working_calendar import CalendarDay, CalendarError, check_day
from backend.voice.call_windows import E164, check_windows
from bots.domain import LANGUAGES

MAX_ADDRESS = 300
MAX_SENDER = 40


class SiteRefused(ActionRefused):
    """A site form that does not fit; `field` names the input, `detail` the code in use or the bad value."""

    def __init__(self, reason: Reason, field: str, detail: str = "") -> None:
        super().__init__(reason)
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class SiteForm:
    code: str
    names: dict[str, str]
    timezone: str
    address: str | None
    voice_departments: list[str] | None
    voice_windows: list[str] | None
    voice_caller_id: str | None
    sms_sender_id: str | None

    @property
    def name(self) -> str:
        return self.names.get("en") or next(iter(self.names.values()))


def _list(text: str) -> list[str] | None:
    """ "09:00-12:00, 14:00-17:00" -> the parts; empty -> None (the setting decides)."""
    parts = [p.strip() for p in text.replace("，", ",").replace(";", ",").split(",")]
    parts = [p for p in parts if p]
    return parts or None


def parse_site_form(values: Mapping[str, str]) -> SiteForm:
    """Raises SiteRefused naming the first field that does not fit."""
    code = values.get("code", "").strip()
    if not ORG_CODE.fullmatch(code):
        raise SiteRefused(Reason.CODE_INVALID, "code")
    names = {}
    for lang in LANGUAGES:
        text = values.get(f"name_{lang}", "").strip()
        if len(text) > MAX_NAME:
            raise SiteRefused(Reason.NAME_REQUIRED, f"name_{lang}")
        if text:
            names[lang] = text
    if not names:
        raise SiteRefused(Reason.NAME_REQUIRED, "name_en")
    zone = values.get("timezone", "").strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SiteRefused(Reason.TIMEZONE_INVALID, "timezone", zone[:64]) from exc
    if not zone:
        raise SiteRefused(Reason.TIMEZONE_INVALID, "timezone")
    address = values.get("address", "").strip()
    if len(address) > MAX_ADDRESS:
        raise SiteRefused(Reason.ADDRESS_TOO_LONG, "address")
    departments = _list(values.get("voice_departments", ""))
    for department in departments or ():
        if not ORG_CODE.fullmatch(department):
            raise SiteRefused(Reason.CODE_INVALID, "voice_departments", department[:40])
    windows = _list(values.get("voice_windows", ""))
    if windows is not None:
        try:
            check_windows(windows)
        except ValueError as exc:
            raise SiteRefused(Reason.WINDOWS_INVALID, "voice_windows", str(exc)[:200]) from exc
    caller_id = values.get("voice_caller_id", "").strip().replace(" ", "") or None
    if caller_id is not None and not E164.fullmatch(caller_id):
        raise SiteRefused(Reason.PHONE_INVALID, "voice_caller_id")
    sender = values.get("sms_sender_id", "").strip() or None
    if sender is not None and (len(sender) > MAX_SENDER or not sender.isprintable()):
        raise SiteRefused(Reason.SENDER_INVALID, "sms_sender_id")
    return SiteForm(code, names, zone, address or None, departments, windows, caller_id, sender)


def _apply(session: Session, site: Site, form: SiteForm) -> list[str]:
    holder = session.scalars(sa.select(Site).where(Site.code == form.code, Site.id != (site.id or 0))).first()
    if holder is not None:
        raise SiteRefused(Reason.CODE_IN_USE, "code", f"{holder.code} {holder.name}")
    changed = []
    for field in (
        "code",
        "names",
        "timezone",
        "address",
        "voice_departments",
        "voice_windows",
        "voice_caller_id",
        "sms_sender_id",
    ):
        new = getattr(form, field)
        if getattr(site, field, None) != new:
            changed.append(field)
            setattr(site, field, new)
    site.name = form.name
    return changed


def do_create_site(session: Session, form: SiteForm, *, by: int | None, ip: str | None = None) -> Site:
    site = Site(code="", name="", names={}, timezone=form.timezone, active=True)
    _apply(session, site, form)
    session.add(site)
    session.flush()
    audit.record(session, "site.create", staff_id=by, subject=("site", site.id), ip=ip)
    return site


def do_update_site(
    session: Session, site: Site, form: SiteForm, *, by: int | None, ip: str | None = None, now: datetime
) -> list[str]:
    """Returns the fields changed. A new time zone re-fits the site's slots at once, as any change to
    when clinics run does: free slots move to the new local times, booked ones are withdrawn and listed
    on their schedules (their patients were given the old instants)."""
    changed = _apply(session, site, form)
    site.updated_at = now
    audit.record(session, "site.update", staff_id=by, subject=("site", site.id), ip=ip, changed=changed)
    if "timezone" in changed:
        session.flush()
        _refit(session, site.id, now)
    return changed


def do_set_site_active(session: Session, site: Site, *, active: bool, by: int, ip: str | None = None) -> None:
    site.active = active
    action = "site.reactivate" if active else "site.deactivate"
    audit.record(session, action, staff_id=by, subject=("site", site.id), ip=ip)


# --- the list ------------------------------------------------------------------------------------

LIST_FIELDS = ("active", "q")


@dataclass(frozen=True)
class SiteFilters:
    active: bool | None = None
    text: str = ""

    def audit_detail(self) -> dict[str, Any]:
        return {"active": self.active, "text": bool(self.text)}


def parse_site_filters(values: Mapping[str, str]) -> SiteFilters:
    active_text = text_value(values, "active")
    if active_text not in ("", "yes", "no"):
        raise InvalidFilter("active")
    return SiteFilters(None if not active_text else active_text == "yes", text_value(values, "q"))


def site_list(session: Session, filters: SiteFilters) -> list[Site]:
    query = sa.select(Site)
    if filters.active is not None:
        query = query.where(Site.active.is_(filters.active))
    rows = list(session.scalars(query.order_by(Site.code)))
    if filters.text:
        wanted = filters.text.casefold()  # names are JSON; a hospital has a handful of sites
        rows = [r for r in rows if any(wanted in t.casefold() for t in (r.code, r.name, *r.names.values()))]
    return rows


def sites(session: Session) -> list[Site]:
    return list(session.scalars(sa.select(Site).order_by(Site.code)))


# --- working calendars ---------------------------------------------------------------------------


def calendar_days(session: Session, site_id: int, year: int | None = None) -> list[SiteCalendarDay]:
    query = sa.select(SiteCalendarDay).where(SiteCalendarDay.site_id == site_id)
    if year is not None:
        query = query.where(
            SiteCalendarDay.day >= date(year, 1, 1), SiteCalendarDay.day <= date(year, 12, 31)
        )
    return list(session.scalars(query.order_by(SiteCalendarDay.day)))


def _refit(session: Session, site_id: int, now: datetime) -> list[Appointment]:
    """Re-fit the slots of the site's own schedules to the calendar; the booked appointments now on a
    withdrawn slot are returned (the schedule pages list them and offer to notify the patients)."""
    from backend.admin.schedules import do_reconcile

    stranded: list[Appointment] = []
    schedules = session.scalars(
        sa.select(DoctorSchedule).where(
            DoctorSchedule.site_id == site_id,
            DoctorSchedule.active.is_(True),
            DoctorSchedule.external_source.is_(None),
        )
    )
    for schedule in schedules:
        stranded += do_reconcile(session, schedule, now=now).stranded
    return stranded


def calendar_entry(values: Mapping[str, str]) -> CalendarDay:
    """The add-a-day form. Raises CalendarError."""
    try:
        day = date.fromisoformat(values.get("day", "").strip())
    except ValueError as exc:
        raise CalendarError("bad_date") from exc
    try:
        kind = CalendarDayKind(values.get("kind", ""))
    except ValueError as exc:
        raise CalendarError("bad_kind") from exc
    weekday_text = values.get("as_weekday", "").strip()
    as_weekday = None
    if kind is CalendarDayKind.WORKDAY:
        if not weekday_text.isdigit() or not 0 <= int(weekday_text) <= 4:
            raise CalendarError("weekday_required")
        as_weekday = int(weekday_text)
    return check_day(CalendarDay(day, kind, as_weekday, values.get("name", "").strip()))


def do_set_calendar_day(
    session: Session, site: Site, entry: CalendarDay, *, by: int, ip: str | None = None, now: datetime
) -> list[Appointment]:
    """Add the day, or replace what the site had on it. Returns the appointments it strands."""
    row = session.scalars(
        sa.select(SiteCalendarDay).where(SiteCalendarDay.site_id == site.id, SiteCalendarDay.day == entry.day)
    ).first()
    if row is None:
        row = SiteCalendarDay(site_id=site.id, day=entry.day)
        session.add(row)
    row.kind, row.as_weekday, row.name = entry.kind, entry.as_weekday, entry.name
    session.flush()
    audit.record(
        session,
        "site.calendar_set",
        staff_id=by,
        subject=("site", site.id),
        ip=ip,
        day=entry.day.isoformat(),
        kind=entry.kind.value,
    )
    return _refit(session, site.id, now)


def do_remove_calendar_day(
    session: Session, site: Site, day: date, *, by: int, ip: str | None = None, now: datetime
) -> list[Appointment]:
    session.execute(
        sa.delete(SiteCalendarDay).where(SiteCalendarDay.site_id == site.id, SiteCalendarDay.day == day)
    )
    audit.record(
        session, "site.calendar_remove", staff_id=by, subject=("site", site.id), ip=ip, day=day.isoformat()
    )
    return _refit(session, site.id, now)


def do_import_calendar(
    session: Session,
    site: Site,
    days: Sequence[CalendarDay],
    *,
    by: int,
    ip: str | None = None,
    now: datetime,
) -> list[Appointment]:
    """The sheet replaces the site's entries of every year it covers (a year is maintained as a whole:
    a day dropped from the sheet is dropped here), and leaves other years alone."""
    years = sorted({d.day.year for d in days})
    for year in years:
        session.execute(
            sa.delete(SiteCalendarDay).where(
                SiteCalendarDay.site_id == site.id,
                SiteCalendarDay.day >= date(year, 1, 1),
                SiteCalendarDay.day <= date(year, 12, 31),
            )
        )
    session.add_all(
        SiteCalendarDay(site_id=site.id, day=d.day, kind=d.kind, as_weekday=d.as_weekday, name=d.name)
        for d in days
    )
    session.flush()
    audit.record(
        session,
        "site.calendar_import",
        staff_id=by,
        subject=("site", site.id),
        ip=ip,
        years=years,
        days=len(days),
    )
    return _refit(session, site.id, now)

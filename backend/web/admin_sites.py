"""Admin console routes for campuses and their working calendars (/staff/admin/sites/...): a filtered
list with an add form and an export, an edit page with the site's calendar for a year (add or remove a
day, import a year from Excel or CSV, export it), deactivate and reactivate."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import sites
from backend.admin.exports import calendar_xlsx, workbook
from backend.admin.sites import SiteRefused
from backend.models import Site, StaffSession
from backend.models.base import utcnow
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.services.schedules import site_calendar
from backend.services.working_calendar import SHEET_COLUMNS, CalendarError, parse_rows, read_sheet, to_rows
from backend.web.admin_common import PREFIX, OrgAdminDep
from backend.web.deps import SessionDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from bots.domain import LANGUAGES

router = APIRouter(prefix=f"{PREFIX}/sites")
MAX_UPLOAD = 2 * 1024 * 1024  # a year's calendar is a few kB


def _values_of(site: Site) -> dict[str, str]:
    values = {f"name_{lang}": site.names.get(lang, "") for lang in LANGUAGES}
    values.update(
        code=site.code,
        timezone=site.timezone,
        address=site.address or "",
        voice_departments=", ".join(site.voice_departments or []),
        voice_windows=", ".join(site.voice_windows or []),
        voice_caller_id=site.voice_caller_id or "",
        sms_sender_id=site.sms_sender_id or "",
    )
    return values


def _base(staff: StaffSession, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "languages": LANGUAGES,
        "refused": None,
        "field": None,
        "detail": "",
        "form": {},
        **extra,
    }


def _list_page(
    request: Request, db: Session, staff: StaffSession, status: int = 200, **extra: Any
) -> Response:
    shown = {name: request.query_params.get(name, "") for name in sites.LIST_FIELDS}
    context = _base(staff, v=shown, rows=[], error=None, query=request.url.query, **extra)
    try:
        filters = sites.parse_site_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/admin/sites.html", staff.staff.language, context, 400)
    context["rows"] = sites.site_list(db, filters)
    audit.record(
        db, "admin.site_list", staff_id=staff.staff_id, ip=client_ip(request), filters=filters.audit_detail()
    )
    return render(request, "staff/admin/sites.html", staff.staff.language, context, status)


@router.get("", response_class=HTMLResponse)
def site_list(request: Request, db: SessionDep, staff: OrgAdminDep, done: str = "") -> Response:
    return _list_page(request, db, staff, done=done)


@router.get("/export.xlsx")
def site_export(request: Request, db: SessionDep, staff: OrgAdminDep) -> Response:
    try:
        filters = sites.parse_site_filters({n: request.query_params.get(n, "") for n in sites.LIST_FIELDS})
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = sites.site_list(db, filters)
    audit.record(
        db,
        "admin.site_export",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        rows=len(rows),
    )
    header = [
        "code",
        *(f"name ({lang})" for lang in LANGUAGES),
        "timezone",
        "address",
        "voice departments",
        "call windows",
        "caller id",
        "SMS sender id",
        "active",
    ]
    cells = (
        [
            s.code,
            *(s.names.get(lang, "") for lang in LANGUAGES),
            s.timezone,
            s.address or "",
            ", ".join(s.voice_departments or []),
            ", ".join(s.voice_windows or []),
            s.voice_caller_id or "",
            s.sms_sender_id or "",
            "yes" if s.active else "no",
        ]
        for s in rows
    )
    return spreadsheet(workbook("Sites", filters.audit_detail(), header, cells), "sites.xlsx")


@router.post("", response_class=HTMLResponse)
def site_create(request: Request, db: SessionDep, staff: OrgAdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        sites.do_create_site(db, sites.parse_site_form(values), by=staff.staff_id, ip=client_ip(request))
    except SiteRefused as exc:
        db.rollback()
        return _list_page(
            request,
            db,
            staff,
            400,
            refused=exc.reason,
            field=exc.field,
            detail=exc.detail,
            form=values,
            done="",
        )
    return RedirectResponse(f"{PREFIX}/sites?done=created", status_code=303)


def _year(text: str | None) -> int:
    if text and text.isdigit() and 2000 <= int(text) <= 2100:
        return int(text)
    return utcnow().year


def _edit_page(
    request: Request, db: Session, staff: StaffSession, site: Site, status: int = 200, **extra: Any
) -> Response:
    year = _year(request.query_params.get("year"))
    context = _base(staff, site=site, year=year, days=sites.calendar_days(db, site.id, year), **extra)
    context.setdefault("form", {})
    if not context["form"]:
        context["form"] = _values_of(site)
    context.setdefault("problem", None)
    context.setdefault("row", None)
    return render(request, "staff/admin/site.html", staff.staff.language, context, status)


def _missing(request: Request, staff: StaffSession) -> Response:
    return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)


@router.get("/{site_id}", response_class=HTMLResponse)
def site_edit(
    request: Request, site_id: int, db: SessionDep, staff: OrgAdminDep, done: str = "", stranded: int = 0
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    return _edit_page(request, db, staff, site, done=done, stranded=stranded)


@router.post("/{site_id}", response_class=HTMLResponse)
def site_save(
    request: Request, site_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        form = sites.parse_site_form(values)
        sites.do_update_site(db, site, form, by=staff.staff_id, ip=client_ip(request), now=utcnow())
        db.flush()
    except SiteRefused as exc:
        db.rollback()
        site = db.get(Site, site_id)
        assert site is not None
        return _edit_page(
            request,
            db,
            staff,
            site,
            400,
            refused=exc.reason,
            field=exc.field,
            detail=exc.detail,
            form=values,
            done="",
        )
    return RedirectResponse(f"{PREFIX}/sites/{site_id}?done=saved", status_code=303)


@router.post("/{site_id}/active")
def site_active(
    request: Request,
    site_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    csrf_token: str = Form(max_length=128),
    active: str = Form(max_length=3),
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    sites.do_set_site_active(db, site, active=active == "yes", by=staff.staff_id, ip=client_ip(request))
    return RedirectResponse(f"{PREFIX}/sites/{site_id}?done=state", status_code=303)


def _calendar_done(site_id: int, year: int, stranded: int) -> Response:
    return RedirectResponse(
        f"{PREFIX}/sites/{site_id}?year={year}&done=calendar&stranded={stranded}#calendar", status_code=303
    )


@router.post("/{site_id}/calendar", response_class=HTMLResponse)
def calendar_add(
    request: Request, site_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        entry = sites.calendar_entry(values)
    except CalendarError as exc:
        return _edit_page(request, db, staff, site, 400, problem=exc.problem, day_form=values, done="")
    stranded = sites.do_set_calendar_day(
        db, site, entry, by=staff.staff_id, ip=client_ip(request), now=utcnow()
    )
    return _calendar_done(site_id, entry.day.year, len(stranded))


@router.post("/{site_id}/calendar/remove")
def calendar_remove(
    request: Request,
    site_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    csrf_token: str = Form(max_length=128),
    day: str = Form(max_length=10),
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    try:
        when = date.fromisoformat(day)
    except ValueError:
        return Response("invalid day", status_code=400, media_type="text/plain")
    stranded = sites.do_remove_calendar_day(
        db, site, when, by=staff.staff_id, ip=client_ip(request), now=utcnow()
    )
    return _calendar_done(site_id, when.year, len(stranded))


@router.post("/{site_id}/calendar/import", response_class=HTMLResponse)
async def calendar_import(
    request: Request,
    site_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form(max_length=128)],
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    data = await file.read(MAX_UPLOAD + 1)
    try:
        if len(data) > MAX_UPLOAD:
            raise CalendarError("bad_file")
        days = parse_rows(read_sheet(data, file.filename or ""))
    except CalendarError as exc:
        audit.record(
            db,
            "site.calendar_import_refused",
            staff_id=staff.staff_id,
            subject=("site", site.id),
            problem=exc.problem,
            row=exc.row,
        )
        return _edit_page(request, db, staff, site, 400, problem=exc.problem, row=exc.row, done="")
    stranded = sites.do_import_calendar(
        db, site, days, by=staff.staff_id, ip=client_ip(request), now=utcnow()
    )
    return _calendar_done(site_id, days[0].day.year, len(stranded))


@router.get("/{site_id}/calendar.xlsx")
def calendar_export(
    request: Request, site_id: int, db: SessionDep, staff: OrgAdminDep, year: str = ""
) -> Response:
    site = db.get(Site, site_id)
    if site is None:
        return _missing(request, staff)
    chosen = _year(year)
    days = [d for d in site_calendar(db, site.id).values() if d.day.year == chosen]
    audit.record(
        db,
        "admin.site_calendar_export",
        staff_id=staff.staff_id,
        subject=("site", site.id),
        ip=client_ip(request),
        year=chosen,
    )
    return spreadsheet(
        calendar_xlsx(SHEET_COLUMNS, to_rows(sorted(days, key=lambda d: d.day))),
        f"calendar-{site.code}-{chosen}.xlsx",
    )

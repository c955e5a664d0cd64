"""Admin console routes for doctor schedules (/staff/admin/schedules/...): a filtered list with an add
form and an export; a schedule's page with its weekly template, its exceptions, its slots as a week
table, and the booked appointments a change left on withdrawn slots, whose patients can be notified."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import org, sites
from backend.admin import schedules as admin_schedules
from backend.admin.exports import workbook
from backend.admin.schedules import ScheduleRefused
from backend.models import Clinician, ClinicianKind, DoctorSchedule, Patient, StaffSession
from backend.models.base import utcnow
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.web.admin_common import PREFIX, OrgAdminDep
from backend.web.deps import SessionDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render

router = APIRouter(prefix=f"{PREFIX}/schedules")


def _doctors(db: Session) -> list[Clinician]:
    filters = org.OrgFilters(active=True)
    return [
        c
        for c in org.org_list(db, org.OrgKind.CLINICIAN, filters)
        if isinstance(c, Clinician) and c.kind is ClinicianKind.DOCTOR
    ]


def _base(db: Session, staff: StaffSession, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "sites": sites.sites(db),
        "departments": org.departments(db),
        "refused": None,
        "field": None,
        "clashes": [],
        "form": {},
        **extra,
    }


def _values_of(schedule: DoctorSchedule) -> dict[str, str]:
    values = {f"weekday_{d}": "on" for d in schedule.weekdays}
    values.update(
        clinician=str(schedule.clinician_id),
        site=str(schedule.site_id),
        sessions=", ".join(f"{s['start']}-{s['end']}" for s in schedule.sessions),
        slot_minutes=str(schedule.slot_minutes),
        capacity=str(schedule.capacity),
        valid_from=schedule.valid_from.isoformat(),
        valid_until=schedule.valid_until.isoformat() if schedule.valid_until else "",
    )
    return values


def _clash_rows(db: Session, refused: ScheduleRefused) -> list[dict[str, str]]:
    """Clashes as the page shows them: local time at the clashing clinic's campus, and that clinic."""
    out = []
    for start, end, schedule_id in refused.clashes:
        other = db.get(DoctorSchedule, schedule_id)
        zone = ZoneInfo(other.site.timezone) if other is not None else ZoneInfo("UTC")
        out.append(
            {
                "when": f"{start.astimezone(zone):%Y-%m-%d %H:%M}–{end.astimezone(zone):%H:%M}",
                "schedule": str(schedule_id),
                "site": other.site.code if other is not None else "",
            }
        )
    return out


def _list_page(
    request: Request, db: Session, staff: StaffSession, status: int = 200, **extra: Any
) -> Response:
    shown = {name: request.query_params.get(name, "") for name in admin_schedules.LIST_FIELDS}
    context = _base(
        db, staff, v=shown, rows=[], error=None, query=request.url.query, doctors=_doctors(db), **extra
    )
    try:
        filters = admin_schedules.parse_schedule_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/admin/schedules.html", staff.staff.language, context, 400)
    context["rows"] = admin_schedules.schedule_list(db, filters)
    audit.record(
        db,
        "admin.schedule_list",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
    )
    return render(request, "staff/admin/schedules.html", staff.staff.language, context, status)


@router.get("", response_class=HTMLResponse)
def schedule_list(request: Request, db: SessionDep, staff: OrgAdminDep, done: str = "") -> Response:
    return _list_page(request, db, staff, done=done)


@router.get("/export.xlsx")
def schedule_export(request: Request, db: SessionDep, staff: OrgAdminDep) -> Response:
    try:
        filters = admin_schedules.parse_schedule_filters(
            {n: request.query_params.get(n, "") for n in admin_schedules.LIST_FIELDS}
        )
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = admin_schedules.schedule_list(db, filters)
    audit.record(
        db,
        "admin.schedule_export",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        rows=len(rows),
    )
    header = [
        "id",
        "doctor code",
        "doctor",
        "department",
        "site",
        "weekdays (1 = Monday)",
        "sessions",
        "slot minutes",
        "capacity",
        "valid from",
        "valid until",
        "source",
        "active",
    ]
    cells = (
        [
            s.id,
            s.clinician.code or "",
            s.clinician.name,
            s.department.code,
            s.site.code,
            " ".join(str(d + 1) for d in s.weekdays),
            ", ".join(f"{x['start']}-{x['end']}" for x in s.sessions),
            s.slot_minutes,
            s.capacity,
            s.valid_from.isoformat(),
            s.valid_until.isoformat() if s.valid_until else "",
            s.external_source or "careloop",
            "yes" if s.active else "no",
        ]
        for s in rows
    )
    return spreadsheet(workbook("Schedules", filters.audit_detail(), header, cells), "schedules.xlsx")


@router.post("", response_class=HTMLResponse)
def schedule_create(request: Request, db: SessionDep, staff: OrgAdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        form = admin_schedules.parse_template_form(values)
        schedule = admin_schedules.do_create(db, form, by=staff.staff_id, ip=client_ip(request), now=utcnow())
    except ScheduleRefused as exc:
        db.rollback()
        return _list_page(
            request,
            db,
            staff,
            400,
            refused=exc.reason,
            field=exc.detail,
            clashes=_clash_rows(db, exc),
            form=values,
            done="",
        )
    return RedirectResponse(f"{PREFIX}/schedules/{schedule.id}?done=created", status_code=303)


def _week(text: str | None, today: date) -> date:
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        day = today
    return admin_schedules.monday_of(day)


def _edit_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    schedule: DoctorSchedule,
    status: int = 200,
    **extra: Any,
) -> Response:
    now = utcnow()
    zone = ZoneInfo(schedule.site.timezone)
    monday = _week(request.query_params.get("week"), now.astimezone(zone).date())
    stranded = admin_schedules.stranded(db, schedule.id, now)
    patients = {p.id: p for p in (db.get(Patient, a.patient_id) for a in stranded) if p is not None}
    if stranded:  # the page names patients: the view is audited with who they are
        audit.record(
            db,
            "admin.schedule_stranded_view",
            staff_id=staff.staff_id,
            subject=("doctor_schedule", schedule.id),
            ip=client_ip(request),
            patients=sorted(patients),
        )
    context = _base(
        db,
        staff,
        schedule=schedule,
        week=admin_schedules.week_of(db, schedule, monday),
        previous=(monday - timedelta(days=7)).isoformat(),
        following=(monday + timedelta(days=7)).isoformat(),
        monday=monday,
        exceptions=admin_schedules.exceptions_of(db, schedule.id),
        stranded=stranded,
        notified=admin_schedules.already_notified(stranded),
        patients=patients,
        zone=zone,
        **extra,
    )
    if not context["form"]:
        context["form"] = _values_of(schedule)
    return render(request, "staff/admin/schedule.html", staff.staff.language, context, status)


def _missing(request: Request, staff: StaffSession) -> Response:
    return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)


@router.get("/{schedule_id}", response_class=HTMLResponse)
def schedule_edit(
    request: Request,
    schedule_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    done: str = "",
    n: int = 0,
    unreachable: int = 0,
    told: int = 0,
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    return _edit_page(request, db, staff, schedule, done=done, n=n, unreachable=unreachable, told=told)


def _refused_page(
    request: Request, db: Session, staff: StaffSession, schedule_id: int, exc: ScheduleRefused, **extra: Any
) -> Response:
    db.rollback()
    schedule = db.get(DoctorSchedule, schedule_id)
    assert schedule is not None
    return _edit_page(
        request,
        db,
        staff,
        schedule,
        400,
        refused=exc.reason,
        field=exc.detail,
        clashes=_clash_rows(db, exc),
        done="",
        **extra,
    )


def _done(schedule_id: int, done: str, n: int = 0) -> Response:
    return RedirectResponse(f"{PREFIX}/schedules/{schedule_id}?done={done}&n={n}", status_code=303)


@router.post("/{schedule_id}", response_class=HTMLResponse)
def schedule_save(
    request: Request, schedule_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        form = admin_schedules.parse_template_form(values)
        result = admin_schedules.do_update(
            db, schedule, form, by=staff.staff_id, ip=client_ip(request), now=utcnow()
        )
    except ScheduleRefused as exc:
        return _refused_page(request, db, staff, schedule_id, exc, form=values)
    return _done(schedule_id, "saved", len(result.stranded))


@router.post("/{schedule_id}/active", response_class=HTMLResponse)
def schedule_active(
    request: Request,
    schedule_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    csrf_token: str = Form(max_length=128),
    active: str = Form(max_length=3),
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    try:
        result = admin_schedules.do_set_active(
            db, schedule, active=active == "yes", by=staff.staff_id, ip=client_ip(request), now=utcnow()
        )
    except ScheduleRefused as exc:
        return _refused_page(request, db, staff, schedule_id, exc)
    return _done(schedule_id, "state", len(result.stranded))


@router.post("/{schedule_id}/exceptions", response_class=HTMLResponse)
def exception_add(
    request: Request, schedule_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        first, last, kind, note = admin_schedules.parse_exception(values)
        result = admin_schedules.do_add_exception(
            db, schedule, first, last, kind, note, by=staff.staff_id, ip=client_ip(request), now=utcnow()
        )
    except ScheduleRefused as exc:
        return _refused_page(request, db, staff, schedule_id, exc, exception_form=values)
    return _done(schedule_id, "exception", len(result.stranded))


@router.post("/{schedule_id}/exceptions/{exception_id}/remove", response_class=HTMLResponse)
def exception_remove(
    request: Request,
    schedule_id: int,
    exception_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    try:
        result = admin_schedules.do_remove_exception(
            db, schedule, exception_id, by=staff.staff_id, ip=client_ip(request), now=utcnow()
        )
    except ScheduleRefused as exc:
        return _refused_page(request, db, staff, schedule_id, exc)
    return _done(schedule_id, "exception", len(result.stranded))


@router.post("/{schedule_id}/notify", response_class=HTMLResponse)
def notify(
    request: Request, schedule_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    schedule = db.get(DoctorSchedule, schedule_id)
    if schedule is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    chosen = [int(k[5:]) for k in values if k.startswith("appt_") and k[5:].isdigit() and len(k) < 16]
    queued, unreachable, told = admin_schedules.do_notify_stranded(
        db, schedule, chosen, by=staff.staff_id, ip=client_ip(request), now=utcnow()
    )
    return RedirectResponse(
        f"{PREFIX}/schedules/{schedule_id}?done=notified&n={queued}&unreachable={unreachable}&told={told}",
        status_code=303,
    )

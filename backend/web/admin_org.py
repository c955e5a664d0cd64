"""Admin console routes for the organisation: departments, wards and clinicians (/staff/admin/org/...):
a filtered list with an add form and an export, an edit page, deactivate and reactivate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import org
from backend.admin.exports import org_xlsx
from backend.admin.org import CodeInUse, Entry, OrgKind
from backend.models import Clinician, ClinicianKind, StaffSession, Ward
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.services.refusal import ActionRefused
from backend.web.admin_common import PREFIX, OrgAdminDep
from backend.web.deps import SessionDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from bots.domain import LANGUAGES

router = APIRouter(prefix=f"{PREFIX}/org")


def _kind(text: str) -> OrgKind | None:
    return OrgKind(text) if text in set(OrgKind) else None


def _values_of(entry: Entry | None) -> dict[str, str]:
    if entry is None:
        return {}
    values = {f"name_{lang}": entry.names.get(lang, "") for lang in LANGUAGES}
    values["code"] = entry.code or ""
    if isinstance(entry, Ward | Clinician):
        values["department"] = str(entry.department_id)
    if isinstance(entry, Clinician):
        values["clinician_kind"] = entry.kind.value
        values["title"] = entry.title or ""
    return values


def _context(db: Session, staff: StaffSession, kind: OrgKind, **extra: Any) -> dict[str, Any]:
    everything = org.departments(db)
    current = str(extra.get("form", {}).get("department", ""))
    return {
        "staff": staff,
        "all_departments": everything,
        "kind": kind.value,
        "kinds": [k.value for k in OrgKind],
        "languages": LANGUAGES,
        "departments": [d for d in everything if d.active or str(d.id) == current],
        "department_names": {d.id: d.names.get(staff.staff.language, d.name) for d in everything},
        "clinician_kinds": [k.value for k in ClinicianKind],
        "refused": None,
        "holder": None,
        "form": {},
        **extra,
    }


def _list_page(
    request: Request, db: Session, staff: StaffSession, kind: OrgKind, status: int = 200, **extra: Any
) -> Response:
    shown = {name: request.query_params.get(name, "") for name in org.LIST_FIELDS}
    context = _context(db, staff, kind, v=shown, rows=[], error=None, **extra)
    try:
        filters = org.parse_org_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/admin/org_list.html", staff.staff.language, context, 400)
    context["rows"] = org.org_list(db, kind, filters)
    context["query"] = request.url.query
    audit.record(
        db,
        f"admin.{kind.value}_list",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
    )
    return render(request, "staff/admin/org_list.html", staff.staff.language, context, status)


def _missing(request: Request, staff: StaffSession) -> Response:
    return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)


@router.get("/{kind_name}", response_class=HTMLResponse)
def org_list(
    request: Request, kind_name: str, db: SessionDep, staff: OrgAdminDep, done: str = ""
) -> Response:
    kind = _kind(kind_name)
    if kind is None:
        return _missing(request, staff)
    return _list_page(request, db, staff, kind, done=done)


@router.get("/{kind_name}/export.xlsx")
def org_export(request: Request, kind_name: str, db: SessionDep, staff: OrgAdminDep) -> Response:
    kind = _kind(kind_name)
    if kind is None:
        return _missing(request, staff)
    try:
        filters = org.parse_org_filters(
            {name: request.query_params.get(name, "") for name in org.LIST_FIELDS}
        )
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = org.org_list(db, kind, filters)
    detail = filters.audit_detail()
    audit.record(
        db,
        f"admin.{kind.value}_export",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=detail,
        rows=len(rows),
    )
    names = {d.id: d.code for d in org.departments(db)}
    return spreadsheet(org_xlsx(kind, rows, detail, names), f"{kind.value}s.xlsx")


@router.post("/{kind_name}", response_class=HTMLResponse)
def org_create(
    request: Request, kind_name: str, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    kind = _kind(kind_name)
    if kind is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        form = org.parse_org_form(kind, values)
        org.do_create(db, kind, form, by=staff.staff_id, ip=client_ip(request))
    except ActionRefused as exc:
        db.rollback()
        holder = exc.holder if isinstance(exc, CodeInUse) else None
        return _list_page(
            request, db, staff, kind, 400, refused=exc.reason, holder=holder, form=values, done=""
        )
    return RedirectResponse(f"{PREFIX}/org/{kind.value}?done=created", status_code=303)


@router.get("/{kind_name}/{entry_id}", response_class=HTMLResponse)
def org_edit(
    request: Request, kind_name: str, entry_id: int, db: SessionDep, staff: OrgAdminDep, done: str = ""
) -> Response:
    kind = _kind(kind_name)
    entry = org.find(db, kind, entry_id) if kind else None
    if kind is None or entry is None:
        return _missing(request, staff)
    context = _context(db, staff, kind, entry=entry, form=_values_of(entry), done=done)
    return render(request, "staff/admin/org_edit.html", staff.staff.language, context)


@router.post("/{kind_name}/{entry_id}", response_class=HTMLResponse)
def org_save(
    request: Request, kind_name: str, entry_id: int, db: SessionDep, staff: OrgAdminDep, values: FormDep
) -> Response:
    kind = _kind(kind_name)
    entry = org.find(db, kind, entry_id) if kind else None
    if kind is None or entry is None:
        return _missing(request, staff)
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        form = org.parse_org_form(kind, values)
        org.do_update(db, kind, entry, form, by=staff.staff_id, ip=client_ip(request))
        db.flush()
    except ActionRefused as exc:
        db.rollback()
        entry = org.find(db, kind, entry_id)
        holder = exc.holder if isinstance(exc, CodeInUse) else None
        context = _context(
            db, staff, kind, entry=entry, form=values, refused=exc.reason, holder=holder, done=""
        )
        return render(request, "staff/admin/org_edit.html", staff.staff.language, context, 400)
    return RedirectResponse(f"{PREFIX}/org/{kind.value}/{entry_id}?done=saved", status_code=303)


@router.post("/{kind_name}/{entry_id}/active")
def org_active(
    request: Request,
    kind_name: str,
    entry_id: int,
    db: SessionDep,
    staff: OrgAdminDep,
    csrf_token: str = Form(max_length=128),
    active: str = Form(max_length=3),
) -> Response:
    kind = _kind(kind_name)
    entry = org.find(db, kind, entry_id) if kind else None
    if kind is None or entry is None:
        return _missing(request, staff)
    check_csrf(staff, csrf_token)
    org.do_set_active(db, kind, entry, active=active == "yes", by=staff.staff_id, ip=client_ip(request))
    return RedirectResponse(f"{PREFIX}/org/{kind.value}/{entry_id}?done=state", status_code=303)

"""Admin console routes for roles (/staff/admin/roles): the list (filtered, exported), adding a role and
ticking its permissions, deleting one, and giving a staff member a role with a reason. Routes parse,
call a backend/admin/roles verb or query, and render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import roles
from backend.models import StaffRole, StaffSession
from backend.security.permissions import Permission, permissions_of
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.services.refusal import ActionRefused, Reason
from backend.web.admin_common import PREFIX, StaffAdminDep
from backend.web.deps import SessionDep, client_ip
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render

router = APIRouter(prefix=f"{PREFIX}/roles")
LIST = "staff/admin/roles.html"
FORM = "staff/admin/role_form.html"


def _shown(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in roles.LIST_FIELDS}


def _list(
    request: Request,
    db: Session,
    staff: StaffSession,
    *,
    done: str = "",
    refused: str | None = None,
    assign: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    shown = _shown(request)
    context: dict[str, Any] = {
        "staff": staff,
        "v": shown,
        "permissions": list(Permission),
        "rows": [],
        "error": None,
        "done": done,
        "refused": refused,
        "assign": assign or {"username": "", "role": "", "reason": ""},
        "role_keys": roles.role_keys(db),
        "custom_roles": roles.configured_names(db),
        "query": request.url.query,
    }
    try:
        filters = roles.parse_role_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, LIST, staff.staff.language, context, 400)
    context["rows"] = roles.role_rows(db, filters)
    audit.record(
        db, "admin.role_list", staff_id=staff.staff_id, ip=client_ip(request), filters=filters.audit_detail()
    )
    return render(request, LIST, staff.staff.language, context, status)


@router.get("", response_class=HTMLResponse)
def role_list(request: Request, db: SessionDep, staff: StaffAdminDep, done: str = "") -> Response:
    return _list(request, db, staff, done=done)


@router.get(".csv")
def role_export(request: Request, db: SessionDep, staff: StaffAdminDep) -> Response:
    try:
        filters = roles.parse_role_filters(_shown(request))
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = roles.role_rows(db, filters)
    audit.record(
        db,
        "admin.role_export",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        rows=len(rows),
    )
    return Response(
        roles.roles_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="roles.csv"'},
    )


@router.post("/assign", response_class=HTMLResponse)
def assign(request: Request, db: SessionDep, staff: StaffAdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    typed = {name: values.get(name, "").strip() for name in ("username", "role", "reason")}
    user = roles.staff_by_username(db, typed["username"])
    try:
        if user is None:
            raise ActionRefused(Reason.NO_SUCH_STAFF)
        roles.do_assign_role(
            db,
            staff_id=user.id,
            role=typed["role"],
            reason=typed["reason"],
            by=staff.staff_id,
            ip=client_ip(request),
        )
    except ActionRefused as exc:
        db.rollback()
        return _list(request, db, staff, refused=exc.reason, assign=typed, status=400)
    return RedirectResponse(f"{router.prefix}?done=assigned", status_code=303)


# --- one role ------------------------------------------------------------------------------------


def _form(
    request: Request,
    db: Session,
    staff: StaffSession,
    v: dict[str, Any],
    *,
    role: StaffRole | None,
    refused: str | None = None,
    done: str = "",
    status: int = 200,
) -> Response:
    members = roles.holders_count(db, role.key) if role is not None else 0
    context = {
        "staff": staff,
        "v": v,
        "role": role,
        "members": members,
        "permissions": list(Permission),
        "refused": refused,
        "done": done,
        "custom_roles": roles.configured_names(db),
    }
    return render(request, FORM, staff.staff.language, context, status)


def _ticked(raw: Any) -> list[str]:
    return [v for v in raw.getlist("permissions") if isinstance(v, str)]


@router.get("/new", response_class=HTMLResponse)
def new_role(request: Request, db: SessionDep, staff: StaffAdminDep) -> Response:
    return _form(request, db, staff, {"key": "", "name": "", "permissions": []}, role=None)


@router.post("/new", response_class=HTMLResponse)
async def create_role(request: Request, db: SessionDep, staff: StaffAdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    ticked = _ticked(await request.form())
    try:
        form = roles.parse_role_form(values, ticked)
        created = roles.do_create_role(db, form=form, by=staff.staff_id, ip=client_ip(request))
    except ActionRefused as exc:
        db.rollback()
        v = {**values, "permissions": ticked}
        return _form(request, db, staff, v, role=None, refused=exc.reason, status=400)
    return RedirectResponse(f"{router.prefix}/{created.key}?done=saved", status_code=303)


def _values_of(db: Session, role: StaffRole) -> dict[str, Any]:
    return {
        "key": role.key,
        "name": role.name,
        "permissions": [p.value for p in permissions_of(db, role.key)],
        "version": str(role.version),
    }


@router.get("/{key}", response_class=HTMLResponse)
def edit_role(request: Request, key: str, db: SessionDep, staff: StaffAdminDep, done: str = "") -> Response:
    role = db.get(StaffRole, key)
    if role is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    return _form(request, db, staff, _values_of(db, role), role=role, done=done)


@router.post("/{key}", response_class=HTMLResponse)
async def save_role(
    request: Request, key: str, db: SessionDep, staff: StaffAdminDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    role = db.get(StaffRole, key)
    if role is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    ticked = _ticked(await request.form())
    typed = {**values, "key": key, "name": values.get("name", "") if not role.builtin else role.name}
    try:
        version = int(values.get("version", "0")) if values.get("version", "").isdigit() else -1
        form = roles.parse_role_form(typed, ticked)
        roles.do_update_role(
            db, key=key, version=version, form=form, by=staff.staff_id, ip=client_ip(request)
        )
    except ActionRefused as exc:
        db.rollback()
        db.refresh(role)
        v = {**typed, "permissions": ticked, "version": str(role.version)}
        status = 409 if exc.reason is Reason.EDITED_MEANWHILE else 400
        return _form(request, db, staff, v, role=role, refused=exc.reason, status=status)
    return RedirectResponse(f"{router.prefix}/{key}?done=saved", status_code=303)


@router.post("/{key}/delete", response_class=HTMLResponse)
def delete_role(
    request: Request, key: str, db: SessionDep, staff: StaffAdminDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    role = db.get(StaffRole, key)
    if role is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    try:
        roles.do_delete_role(db, key=key, by=staff.staff_id, ip=client_ip(request))
    except ActionRefused as exc:
        db.rollback()
        db.refresh(role)
        return _form(request, db, staff, _values_of(db, role), role=role, refused=exc.reason, status=400)
    return RedirectResponse(f"{router.prefix}?done=deleted", status_code=303)

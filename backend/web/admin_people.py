"""Admin console routes for staff accounts (/staff/admin/staff) and the one-time password page
(/staff/password/<token>). Routes parse, call a backend/admin verb or query, and render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import org, people, roles
from backend.admin.exports import staff_xlsx
from backend.admin.passwords import MAX_PASSWORD, do_issue_reset, do_set_password, reset_for_token
from backend.i18n import negotiate
from backend.models import StaffSession, StaffUser
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.services.refusal import ActionRefused, Reason
from backend.web.admin_common import PREFIX, ConsoleDep, StaffAdminDep
from backend.web.deps import SessionDep, SettingsDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from bots.domain import LANGUAGES

router = APIRouter()


@router.get(PREFIX, response_class=HTMLResponse)
def admin_home(request: Request, staff: ConsoleDep) -> Response:
    return render(request, "staff/admin/index.html", staff.staff.language, {"staff": staff})


# --- the list ------------------------------------------------------------------------------------


def _shown(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in people.LIST_FIELDS}


@router.get(f"{PREFIX}/staff", response_class=HTMLResponse)
def staff_list(request: Request, db: SessionDep, staff: StaffAdminDep, done: str = "") -> Response:
    shown = _shown(request)
    context: dict[str, Any] = {
        "staff": staff,
        "v": shown,
        "roles": roles.role_keys(db),
        "custom_roles": roles.configured_names(db),
        "departments": org.departments(db),
        "rows": [],
        "error": None,
        "done": done,
        "query": request.url.query,
    }
    try:
        filters = people.parse_staff_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/admin/staff_list.html", staff.staff.language, context, 400)
    context["rows"] = people.staff_list(db, filters)
    audit.record(
        db, "admin.staff_list", staff_id=staff.staff_id, ip=client_ip(request), filters=filters.audit_detail()
    )
    return render(request, "staff/admin/staff_list.html", staff.staff.language, context)


@router.get(f"{PREFIX}/staff.xlsx")
def staff_export(request: Request, db: SessionDep, staff: StaffAdminDep) -> Response:
    try:
        filters = people.parse_staff_filters(_shown(request))
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = people.staff_list(db, filters)
    detail = filters.audit_detail()
    audit.record(
        db,
        "admin.staff_export",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=detail,
        rows=len(rows),
    )
    return spreadsheet(staff_xlsx(rows, detail), "staff.xlsx")


# --- create and edit -----------------------------------------------------------------------------


def _form_context(db: Session, staff: StaffSession, v: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "v": v,
        "roles": roles.role_keys(db),
        "custom_roles": roles.configured_names(db),
        "languages": LANGUAGES,
        "departments": org.department_choices(
            db, {int(i) for i in v.get("departments", []) if str(i).isdigit()}
        ),
        "refused": None,
        **extra,
    }


def _values_of(user: StaffUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "roles": [str(r) for r in user.role_list()],
        "departments": [str(d.id) for d in user.departments],
        "language": user.language,
        "phone": user.phone or "",
        "email": user.email or "",
        "version": str(user.version),
    }


async def _ticked(request: Request, name: str) -> list[str]:
    """The values of a field the form may send several times (departments, roles)."""
    form = await request.form()
    return [v for v in form.getlist(name) if isinstance(v, str)]


@router.get(f"{PREFIX}/staff/new", response_class=HTMLResponse)
def new_staff(request: Request, db: SessionDep, staff: StaffAdminDep) -> Response:
    v = {
        "username": "",
        "display_name": "",
        "roles": ["nurse"],
        "departments": [],
        "language": "zh-CN",
        "phone": "",
        "email": "",
    }
    return render(
        request, "staff/admin/staff_form.html", staff.staff.language, _form_context(db, staff, v, user=None)
    )


@router.post(f"{PREFIX}/staff/new", response_class=HTMLResponse)
async def create_staff(
    request: Request, db: SessionDep, staff: StaffAdminDep, settings: SettingsDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    ids, ticked = await _ticked(request, "departments"), await _ticked(request, "roles")
    ip = client_ip(request)
    try:
        form = people.parse_staff_form(values, ids, roles=ticked, default_region=settings.default_region)
        created = people.do_create_staff(db, form=form, password=None, by=staff.staff_id, ip=ip)
        link = do_issue_reset(db, settings, staff=created.user, by=staff.staff_id, ip=ip)
    except ActionRefused as exc:
        db.rollback()
        v = {**values, "departments": ids, "roles": ticked}
        context = _form_context(db, staff, v, user=None, refused=exc.reason)
        return render(request, "staff/admin/staff_form.html", staff.staff.language, context, 400)
    db.commit()
    context = {
        "staff": staff,
        "user": created.user,
        "link": link,
        "totp_uri": people.provisioning_uri(created.user, created.totp_secret)
        if created.totp_secret
        else None,
        "totp_secret": created.totp_secret,
        "created": True,
    }
    return render(request, "staff/admin/credentials.html", staff.staff.language, context)


def _found(db: Session, staff_id: int) -> StaffUser | None:
    return db.get(StaffUser, staff_id)


@router.get(f"{PREFIX}/staff/{{staff_id}}", response_class=HTMLResponse)
def edit_staff(
    request: Request, staff_id: int, db: SessionDep, staff: StaffAdminDep, done: str = ""
) -> Response:
    user = _found(db, staff_id)
    if user is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    context = _form_context(db, staff, _values_of(user), user=user, done=done)
    return render(request, "staff/admin/staff_form.html", staff.staff.language, context)


@router.post(f"{PREFIX}/staff/{{staff_id}}", response_class=HTMLResponse)
async def save_staff(
    request: Request,
    staff_id: int,
    db: SessionDep,
    staff: StaffAdminDep,
    settings: SettingsDep,
    values: FormDep,
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    user = _found(db, staff_id)
    if user is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    ids, ticked = await _ticked(request, "departments"), await _ticked(request, "roles")
    # the username is fixed: what was typed cannot change it, and the form's value is the stored one
    typed = {**values, "username": user.username}
    try:
        version = int(values.get("version", "0"))
        form = people.parse_staff_form(typed, ids, roles=ticked, default_region=settings.default_region)
        secret = people.do_update_staff(
            db, staff_id=staff_id, version=version, form=form, by=staff.staff_id, ip=client_ip(request)
        )
    except (ActionRefused, ValueError) as exc:
        db.rollback()
        reason = exc.reason if isinstance(exc, ActionRefused) else Reason.EDITED_MEANWHILE
        current = _found(db, staff_id)
        assert current is not None
        db.refresh(current)
        v = {**typed, "departments": ids, "roles": ticked}
        context = _form_context(db, staff, v, user=current, refused=reason)
        if reason is Reason.EDITED_MEANWHILE:
            # what was typed stays in the form; the stored values are shown beside it, and saving again
            # (now against the version just shown) is a choice made knowing both
            context["theirs"] = _values_of(current)
            v["version"] = str(current.version)
        status = 409 if reason is Reason.EDITED_MEANWHILE else 400
        return render(request, "staff/admin/staff_form.html", staff.staff.language, context, status)
    if secret is not None:  # now an admin: the authenticator key is shown once, to enrol
        db.commit()
        context = {
            "staff": staff,
            "user": user,
            "link": None,
            "totp_uri": people.provisioning_uri(user, secret),
            "totp_secret": secret,
            "created": False,
        }
        return render(request, "staff/admin/credentials.html", staff.staff.language, context)
    return RedirectResponse(f"{PREFIX}/staff/{staff_id}?done=saved", status_code=303)


def _state_change(request: Request, db: Session, staff: StaffSession, staff_id: int, verb: Any) -> Response:
    """Deactivate, reactivate: the verb or its refusal shown on the account's page."""
    user = _found(db, staff_id)
    if user is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    try:
        verb(user)
    except ActionRefused as exc:
        db.rollback()
        db.refresh(user)
        context = _form_context(db, staff, _values_of(user), user=user, refused=exc.reason)
        status = 409 if exc.reason is Reason.EDITED_MEANWHILE else 400
        return render(request, "staff/admin/staff_form.html", staff.staff.language, context, status)
    return RedirectResponse(f"{PREFIX}/staff/{staff_id}?done=state", status_code=303)


def _version(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else -1


def _set_active(
    request: Request, staff_id: int, db: Session, staff: StaffSession, version: str, active: bool
) -> Response:
    return _state_change(
        request,
        db,
        staff,
        staff_id,
        lambda user: people.do_set_active(
            db,
            staff_id=user.id,
            version=_version(version),
            active=active,
            by=staff.staff_id,
            ip=client_ip(request),
        ),
    )


@router.post(f"{PREFIX}/staff/{{staff_id}}/deactivate")
def deactivate(
    request: Request,
    staff_id: int,
    db: SessionDep,
    staff: StaffAdminDep,
    csrf_token: str = Form(max_length=128),
    version: str = Form(max_length=12),
) -> Response:
    check_csrf(staff, csrf_token)
    return _set_active(request, staff_id, db, staff, version, active=False)


@router.post(f"{PREFIX}/staff/{{staff_id}}/reactivate")
def reactivate(
    request: Request,
    staff_id: int,
    db: SessionDep,
    staff: StaffAdminDep,
    csrf_token: str = Form(max_length=128),
    version: str = Form(max_length=12),
) -> Response:
    check_csrf(staff, csrf_token)
    return _set_active(request, staff_id, db, staff, version, active=True)


@router.post(f"{PREFIX}/staff/{{staff_id}}/password-link", response_class=HTMLResponse)
def password_link(
    request: Request,
    staff_id: int,
    db: SessionDep,
    staff: StaffAdminDep,
    settings: SettingsDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    user = _found(db, staff_id)
    if user is None or not user.active:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    link = do_issue_reset(db, settings, staff=user, by=staff.staff_id, ip=client_ip(request))
    context = {
        "staff": staff,
        "user": user,
        "link": link,
        "totp_uri": None,
        "totp_secret": None,
        "created": False,
    }
    return render(request, "staff/admin/credentials.html", staff.staff.language, context)


@router.post(f"{PREFIX}/staff/{{staff_id}}/totp", response_class=HTMLResponse)
def reset_totp(
    request: Request,
    staff_id: int,
    db: SessionDep,
    staff: StaffAdminDep,
    csrf_token: str = Form(max_length=128),
    version: str = Form(max_length=12),
) -> Response:
    check_csrf(staff, csrf_token)
    user = _found(db, staff_id)
    if user is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    try:
        secret = people.do_reset_totp(
            db, staff_id=staff_id, version=_version(version), by=staff.staff_id, ip=client_ip(request)
        )
    except ActionRefused as exc:
        db.rollback()
        db.refresh(user)
        context = _form_context(db, staff, _values_of(user), user=user, refused=exc.reason)
        return render(request, "staff/admin/staff_form.html", staff.staff.language, context, 409)
    context = {
        "staff": staff,
        "user": user,
        "link": None,
        "totp_uri": people.provisioning_uri(user, secret),
        "totp_secret": secret,
        "created": False,
    }
    return render(request, "staff/admin/credentials.html", staff.staff.language, context)


# --- the one-time password page (not signed in) --------------------------------------------------


@router.get("/staff/password/{token}", response_class=HTMLResponse)
def password_page(request: Request, token: str, db: SessionDep, settings: SettingsDep) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    reset = reset_for_token(db, token)
    user = db.get(StaffUser, reset.staff_id) if reset is not None else None
    context = {
        "staff": None,
        "refused": None if reset else Reason.RESET_LINK_INVALID,
        "user": user,
        "min_length": settings.password_min_length,
        "done": False,
    }
    return render(
        request, "staff/admin/password.html", user.language if user else lang, context, 200 if reset else 404
    )


@router.post("/staff/password/{token}", response_class=HTMLResponse)
def set_password(
    request: Request,
    token: str,
    db: SessionDep,
    settings: SettingsDep,
    password: str = Form(max_length=MAX_PASSWORD),
    repeated: str = Form(max_length=MAX_PASSWORD),
) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    try:
        user = do_set_password(
            db, settings, token=token, password=password, repeated=repeated, ip=client_ip(request)
        )
    except ActionRefused as exc:
        db.rollback()
        reset = reset_for_token(db, token)
        owner = db.get(StaffUser, reset.staff_id) if reset is not None else None
        context = {
            "staff": None,
            "refused": exc.reason,
            "user": owner,
            "min_length": settings.password_min_length,
            "done": False,
        }
        return render(request, "staff/admin/password.html", owner.language if owner else lang, context, 400)
    context = {
        "staff": None,
        "refused": None,
        "user": user,
        "min_length": settings.password_min_length,
        "done": True,
    }
    return render(request, "staff/admin/password.html", user.language, context)

"""The staff web UI's common parts: rendering, CSRF, sign-in with TOTP (the password checked locally or by
the LDAP directory) and sign-out, patient chat links."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.exc import SQLAlchemyError

from backend.admin.people import do_set_own_language
from backend.app.settings import PasswordSignIn, Settings
from backend.i18n import negotiate, translations
from backend.messaging.links import LinkKind, make_url
from backend.models import StaffSession
from backend.security.auth import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_DAYS,
    SignInRefused,
    device_cookie,
    do_sign_in,
    do_sign_out,
    is_known_device,
)
from backend.security.ldap_sign_in import DirectoryUnavailable, do_ldap_sign_in, uses_directory
from backend.security.permissions import ADMINISTRATIVE, Permission, granted
from backend.services import audit, patients
from backend.services.refusal import ActionRefused
from backend.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, StaffDep, client_ip, templates

router = APIRouter(prefix="/staff")
LOGIN_CSRF_COOKIE = "cl_login_csrf"


class CsrfFailed(Exception):
    """A form post without the right token."""


def _permissions(context: dict[str, Any]) -> frozenset[Permission]:
    """What the signed-in staff member may do, for the navigation; nothing when the page has no staff
    member or her row is no longer attached (a refusal page rendered after the request's session)."""
    staff = context.get("staff")
    if not isinstance(staff, StaffSession):
        return frozenset()
    try:
        return granted(staff.staff)
    except (RuntimeError, SQLAlchemyError):
        return frozenset()


def render(request: Request, name: str, lang: str, context: dict[str, Any], status: int = 200) -> Response:
    perms = _permissions(context)
    context = {
        "lang": lang,
        "_": translations(lang).gettext,
        "perms": perms,
        "administers": bool(perms & ADMINISTRATIVE),  # the console's link
        **context,
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def check_csrf(staff_session: StaffSession, token: str) -> None:
    if not secrets.compare_digest(staff_session.csrf_token.encode(), token.encode()):
        raise CsrfFailed


def _login(token: str, error: bool, settings: Settings, directory_down: bool = False) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "error": error,
        "directory_down": directory_down,
        "ldap": settings.ldap_enabled,
        "sso": settings.sso_enabled,
        "break_glass_only": settings.password_sign_in is PasswordSignIn.BREAK_GLASS_ONLY,
    }


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "staff/login.html",
        negotiate(request.headers.get("accept-language")),
        _login(token, False, settings),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/staff/login",
    )
    return response


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: str = Form(max_length=64),
    password: str = Form(max_length=256),
    totp_code: str = Form(default="", max_length=16),
    csrf_token: str = Form(max_length=128),
) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return render(request, "staff/login.html", lang, _login(cookie or "", True, settings), 400)
    verb = do_ldap_sign_in if uses_directory(settings, username) else do_sign_in
    try:
        new = verb(
            db,
            settings,
            username=username,
            password=password,
            totp_code=totp_code,
            ip=client_ip(request),
            known_device=is_known_device(settings, request.cookies.get(DEVICE_COOKIE), username),
        )
    except SignInRefused as refused:
        db.commit()  # keep the failed attempt: it feeds the throttle and the audit trail
        down = isinstance(refused, DirectoryUnavailable)
        context = _login(cookie, not down, settings, directory_down=down)
        return render(request, "staff/login.html", lang, context, 503 if down else 401)
    response = RedirectResponse("/staff", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff/login")
    response.set_cookie(
        DEVICE_COOKIE,
        device_cookie(settings, request.cookies.get(DEVICE_COOKIE), username),
        max_age=DEVICE_COOKIE_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/staff/login",
    )
    return response


@router.post("/logout")
def logout(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    do_sign_out(db, staff, client_ip(request))
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
def set_language(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    language: str = Form(max_length=8),
    back: str = Form(default="/staff", max_length=2000),
    csrf_token: str = Form(max_length=128),
) -> Response:
    """The language switch in the top bar: stored on her account (every device), then back to her page."""
    check_csrf(staff, csrf_token)
    try:
        do_set_own_language(db, user=staff.staff, language=language, ip=client_ip(request))
    except ActionRefused:
        refused = translations(staff.staff.language).gettext("There is no such language.")
        return PlainTextResponse(refused, status_code=400)
    target = back if back.startswith("/staff") and "//" not in back and "\\" not in back else "/staff"
    return RedirectResponse(target, status_code=303)


@router.post("/patients/{patient_id}/chat-link")
def create_chat_link(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    settings: SettingsDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    if not patients.may_view(db, staff.staff, patient_id):
        audit.record(
            db, "patient.view_denied", staff_id=staff.staff_id, patient_id=patient_id, ip=client_ip(request)
        )
        db.commit()
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    audit.record(
        db, "patient.chat_link", staff_id=staff.staff_id, patient_id=patient_id, ip=client_ip(request)
    )
    url = make_url(settings, LinkKind.CHAT, patient_id)
    return render(
        request,
        "staff/link.html",
        staff.staff.language,
        {"staff": staff, "url": url, "patient_id": patient_id},
    )

"""The staff web UI: sign-in with TOTP, patient search, the patient record with its conversations."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from backend.auth import SignInRefused, do_sign_in, do_sign_out
from backend.i18n import negotiate, translations
from backend.identifiers import mask_phone
from backend.links import LinkKind, make_url
from backend.models import Conversation, Finding, QuestionnaireResponse, StaffSession, Task, TaskStatus
from backend.services import audit, patients
from backend.services.consents import current_consents
from backend.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, StaffDep, client_ip, templates

router = APIRouter(prefix="/staff")
LOGIN_CSRF_COOKIE = "cl_login_csrf"


class CsrfFailed(Exception):
    """A form post without the right token."""


def render(request: Request, name: str, lang: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {"lang": lang, "_": translations(lang).gettext, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def check_csrf(staff_session: StaffSession, token: str) -> None:
    if not secrets.compare_digest(staff_session.csrf_token.encode(), token.encode()):
        raise CsrfFailed


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "staff/login.html",
        negotiate(request.headers.get("accept-language")),
        {"csrf_token": token, "error": False},
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
        return render(request, "staff/login.html", lang, {"csrf_token": cookie or "", "error": True}, 400)
    try:
        new = do_sign_in(
            db, settings, username=username, password=password, totp_code=totp_code, ip=client_ip(request)
        )
    except SignInRefused:
        db.commit()  # keep the failed attempt: it feeds the throttle and the audit trail
        return render(request, "staff/login.html", lang, {"csrf_token": cookie, "error": True}, 401)
    response = RedirectResponse("/staff/patients", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff/login")
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


@router.get("", include_in_schema=False)
def staff_home() -> Response:
    return RedirectResponse("/staff/patients", status_code=303)


def _patient_rows(request: Request, db: SessionDep, staff: StaffSession, q: str) -> Response:
    user = staff.staff
    found = patients.search(db, user, q)
    if q:
        audit.record(db, "patient.search", staff_id=user.id, ip=client_ip(request), results=len(found))
    rows = [{"p": p, "phone": mask_phone(p.phone) if p.phone else ""} for p in found]
    return render(request, "staff/patients.html", user.language, {"staff": staff, "q": q, "rows": rows})


@router.get("/patients", response_class=HTMLResponse)
def patient_list(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _patient_rows(request, db, staff, "")


@router.post("/patients", response_class=HTMLResponse)
def patient_search(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    q: str = Form(default="", max_length=100),
    csrf_token: str = Form(max_length=128),
) -> Response:
    # A POST, so phone numbers and names never sit in URLs, proxy logs or browser history.
    check_csrf(staff, csrf_token)
    return _patient_rows(request, db, staff, q.strip())


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_record(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    settings: SettingsDep,
    link: str | None = None,
) -> Response:
    user = staff.staff
    try:
        patient = patients.open_record(db, user, patient_id, client_ip(request))
    except patients.AccessDenied:
        db.commit()
        return render(request, "staff/denied.html", user.language, {"staff": staff}, 403)
    if patient is None:
        return render(request, "staff/denied.html", user.language, {"staff": staff, "missing": True}, 404)
    conversations = list(
        db.scalars(
            sa.select(Conversation)
            .where(Conversation.patient_id == patient.id)
            .order_by(Conversation.last_message_at.desc())
        )
    )
    tasks = list(
        db.scalars(sa.select(Task).where(Task.patient_id == patient.id, Task.status != TaskStatus.CLOSED))
    )
    consents = sorted(current_consents(db, patient.id).values(), key=lambda e: (e.purpose, e.channel))
    responses = list(
        db.scalars(
            sa.select(QuestionnaireResponse)
            .where(QuestionnaireResponse.patient_id == patient.id)
            .order_by(QuestionnaireResponse.started_at.desc())
        )
    )
    findings: dict[int, list[Finding]] = {}
    for finding in db.scalars(sa.select(Finding).where(Finding.response_id.in_([r.id for r in responses]))):
        findings.setdefault(finding.response_id, []).append(finding)
    return render(
        request,
        "staff/patient.html",
        user.language,
        {
            "staff": staff,
            "patient": patient,
            "phone": mask_phone(patient.phone) if patient.phone else "",
            "conversations": conversations,
            "tasks": tasks,
            "consents": consents,
            "link": link,
            "responses": responses,
            "findings": findings,
        },
    )


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

"""Single sign-on routes: /staff/sso/start sends the browser to the identity provider, /staff/sso/callback
takes its answer. What the callback must match (state, nonce, PKCE verifier) waits in a signed,
short-lived cookie scoped to these paths, so a callback another browser started is refused."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer

from backend.app.settings import Settings
from backend.i18n import negotiate
from backend.security import oidc
from backend.security.auth import NewSession, SignInRefused, do_second_factor
from backend.security.oidc import Pending, SsoReason, SsoRefused
from backend.security.sso import CodeNeeded, do_sso_sign_in, provider_config, record_refusal, username_of
from backend.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, client_ip
from backend.web.staff import render

router = APIRouter(prefix="/staff/sso")
PENDING_COOKIE = "cl_sso"
PENDING_SECONDS = 600  # time to finish signing in at the provider
CODE_COOKIE = "cl_sso_code"
CODE_SECONDS = 300  # time to type the authenticator code once the provider has signed her in


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="careloop-oidc-pending")


def _refused_page(request: Request, reason: SsoReason, status: int) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    response = render(request, "staff/sso_refused.html", lang, {"reason": reason.value}, status)
    if reason is not SsoReason.STATE_MISMATCH:
        # this browser's pending sign-in is spent; an answer that was not for it leaves it waiting
        response.delete_cookie(PENDING_COOKIE, path="/staff/sso")
    return response


@router.get("/start")
def start(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    try:
        url, pending = oidc.begin(provider_config(settings))
    except SsoRefused as refused:
        if refused.reason is SsoReason.NOT_CONFIGURED:
            return _refused_page(request, refused.reason, 404)  # nothing to record: there is no such sign-in
        record_refusal(db, refused, ip=client_ip(request))
        return _refused_page(request, refused.reason, 503)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        _serializer(settings).dumps([pending.state, pending.nonce, pending.verifier]),
        max_age=PENDING_SECONDS,
        httponly=True,
        # lax, not strict: the provider's redirect back is a cross-site top-level navigation
        samesite="lax",
        secure=settings.cookie_secure,
        path="/staff/sso",
    )
    return response


def _pending(settings: Settings, cookie: str | None, state: str) -> Pending:
    if not cookie:
        raise SsoRefused(SsoReason.STATE_MISMATCH, "no pending sign-in in this browser")
    try:
        state_kept, nonce, verifier = _serializer(settings).loads(cookie, max_age=PENDING_SECONDS)
    except (BadSignature, ValueError, TypeError) as exc:
        raise SsoRefused(SsoReason.STATE_MISMATCH, "pending sign-in unreadable or expired") from exc
    if not state or not secrets.compare_digest(str(state_kept), state):
        raise SsoRefused(SsoReason.STATE_MISMATCH, "state differs")
    return Pending(state=str(state_kept), nonce=str(nonce), verifier=str(verifier))


def _code_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="careloop-oidc-code")


def _signed_in(settings: Settings, new: NewSession) -> Response:
    response = RedirectResponse("/staff", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )
    response.delete_cookie(PENDING_COOKIE, path="/staff/sso")
    response.delete_cookie(CODE_COOKIE, path="/staff/sso")
    return response


def _username_or_none(settings: Settings, claims: dict[str, Any]) -> str | None:
    try:
        return username_of(settings, claims)
    except SsoRefused:
        return None


@router.get("/callback")
def callback(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    ip = client_ip(request)
    username: str | None = None
    try:
        config = provider_config(settings)
        pending = _pending(settings, request.cookies.get(PENDING_COOKIE), state[:200])
        if error:
            raise SsoRefused(SsoReason.PROVIDER_ERROR, json.dumps(error[:64]))
        if not code:
            raise SsoRefused(SsoReason.PROVIDER_ERROR, "no code")
        claims = oidc.finish(config, code=code[:2048], pending=pending)
        username = _username_or_none(settings, claims)
        new = do_sso_sign_in(db, settings, claims, ip=ip)
    except CodeNeeded as needed:
        db.commit()  # what the provider changed (her role) stands; the session waits for the code
        response = RedirectResponse("/staff/sso/code", status_code=303)
        response.delete_cookie(PENDING_COOKIE, path="/staff/sso")
        response.set_cookie(
            CODE_COOKIE,
            _code_serializer(settings).dumps([needed.staff_id, secrets.token_urlsafe(24)]),
            max_age=CODE_SECONDS,
            httponly=True,
            samesite="lax",  # the page is reached by the redirect from the provider's answer
            secure=settings.cookie_secure,
            path="/staff/sso",
        )
        return response
    except SsoRefused as refused:
        if refused.reason is not SsoReason.ACCOUNT_CREATED_DISABLED:
            db.rollback()  # nothing of a refused sign-in stays but its audit row
        record_refusal(db, refused, ip=ip, username=username)
        db.commit()
        return _refused_page(request, refused.reason, 403)
    return _signed_in(settings, new)


def _waiting(settings: Settings, cookie: str | None) -> tuple[int, str] | None:
    """Whose code this browser is asked for, and the form's token, while the wait lasts."""
    if not cookie:
        return None
    try:
        staff_id, token = _code_serializer(settings).loads(cookie, max_age=CODE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(staff_id), str(token)


def _code_page(request: Request, token: str, failed: bool, status: int = 200) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    return render(request, "staff/sso_code.html", lang, {"form_token": token, "failed": failed}, status)


@router.get("/code")
def code_page(request: Request, settings: SettingsDep) -> Response:
    waiting = _waiting(settings, request.cookies.get(CODE_COOKIE))
    if waiting is None:
        return _refused_page(request, SsoReason.STATE_MISMATCH, 403)
    return _code_page(request, waiting[1], failed=False)


@router.post("/code")
def code_given(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    totp_code: str = Form(default="", max_length=16),
    form_token: str = Form(default="", max_length=64),
) -> Response:
    waiting = _waiting(settings, request.cookies.get(CODE_COOKIE))
    if waiting is None or not secrets.compare_digest(waiting[1], form_token):
        return _refused_page(request, SsoReason.STATE_MISMATCH, 403)
    try:
        new = do_second_factor(db, settings, staff_id=waiting[0], code=totp_code, ip=client_ip(request))
    except SignInRefused:
        db.commit()  # the failed try feeds the throttle and the audit trail
        return _code_page(request, waiting[1], failed=True, status=401)
    db.commit()
    return _signed_in(settings, new)

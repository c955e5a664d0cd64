"""Single sign-on routes: /staff/sso/start sends the browser to the identity provider, /staff/sso/callback
takes its answer. What the callback must match (state, nonce, PKCE verifier) waits in a signed,
short-lived cookie scoped to these paths, so a callback another browser started is refused."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer

from backend.app.settings import Settings
from backend.i18n import negotiate
from backend.security import oidc
from backend.security.oidc import Pending, SsoReason, SsoRefused
from backend.security.sso import do_sso_sign_in, provider_config, record_refusal, username_of
from backend.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, client_ip
from backend.web.staff import render

router = APIRouter(prefix="/staff/sso")
PENDING_COOKIE = "cl_sso"
PENDING_SECONDS = 600  # time to finish signing in at the provider


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
    except SsoRefused as refused:
        if refused.reason is not SsoReason.ACCOUNT_CREATED_DISABLED:
            db.rollback()  # nothing of a refused sign-in stays but its audit row
        record_refusal(db, refused, ip=ip, username=username)
        db.commit()
        return _refused_page(request, refused.reason, 403)
    response = RedirectResponse("/staff", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )
    response.delete_cookie(PENDING_COOKIE, path="/staff/sso")
    return response

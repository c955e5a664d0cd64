"""WeChat web pages: silent OAuth (snsapi_base) for the follower's openid, and the bind-your-record page.

The openid is kept in a signed cookie holding only its ciphertext. `current_follower(request)` reads it,
for any patient page opened inside WeChat.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from backend.app.settings import Settings, get_settings
from backend.dialogue.content import load_catalog
from backend.i18n import negotiate
from backend.messaging.links import LinkKind, make_url
from backend.models import Patient, QuestionnaireResponse, ResponseStatus
from backend.outbox.sender import kick
from backend.security.crypto import DecryptionError, current_cipher
from backend.security.identifiers import InvalidPhoneNumber
from backend.services import binding
from backend.services.patients import find_patient
from backend.web.deps import ProviderSettingsDep, SessionDep, SettingsDep, templates
from bots.domain import Channel, pick_language

router = APIRouter(prefix="/wx")
FOLLOWER_COOKIE = "cl_wx"
STATE_COOKIE = "cl_wx_state"
FOLLOWER_DAYS = 30
STATE_SECONDS = 600  # the WeChat round trip takes seconds
DEFAULT_NEXT = "/wx/bind"
_CIPHER_KIND = "wechat_follower"


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=f"careloop-wx-{purpose}")


def safe_next(value: str | None) -> str | None:
    """A path on this site, or None: no scheme, no host, no `//` or backslash tricks, no control chars."""
    if not value or len(value) > 512 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def current_follower(request: Request) -> str | None:
    """The WeChat openid this browser proved through OAuth, or None."""
    token = request.cookies.get(FOLLOWER_COOKIE)
    if not token:
        return None
    settings = get_settings()
    try:
        sealed = _serializer(settings, "follower").loads(token, max_age=FOLLOWER_DAYS * 86400)
        return current_cipher().decrypt(_CIPHER_KIND, str(sealed))
    except (BadSignature, DecryptionError, ValueError):
        return None


def _lang(request: Request, settings: Settings) -> str:
    accept = request.headers.get("accept-language")
    return negotiate(accept) if accept else pick_language(settings.default_language)


def _page(request: Request, settings: Settings, context: dict[str, Any], status: int = 200) -> Response:
    lang = _lang(request, settings)
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    quiet = {"start": f"{settings.quiet_hours_start:02d}:00", "end": f"{settings.quiet_hours_end:02d}:00"}
    response = templates.TemplateResponse(
        request,
        "wechat/bind.html",
        {"lang": lang, "t": lambda key, **kw: catalog.text(lang, key, **kw), "quiet": quiet, **context},
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _message(request: Request, settings: Settings, key: str, status: int = 200) -> Response:
    return _page(request, settings, {"step": "message", "message_key": key}, status)


def _wechat_configured(settings: Settings) -> bool:
    return bool(settings.wechat_app_id and settings.wechat_app_secret)


@router.get("/auth")
def auth_start(request: Request, settings: ProviderSettingsDep, next: str = DEFAULT_NEXT) -> Response:
    """Send the WeChat browser to the silent authorize page; `next` must be a path on this site."""
    from channels.wechat_client import oauth_authorize_url

    if not _wechat_configured(settings):
        return _message(request, settings, "wx.unavailable", 404)
    target = safe_next(next)
    if target is None:
        return _message(request, settings, "wx.auth_failed", 400)
    # WeChat allows only [A-Za-z0-9] in `state`, so it carries a nonce; `next` travels in a signed
    # cookie tied to that nonce, which also stops a forged callback from signing in someone else.
    nonce = secrets.token_hex(16)
    assert settings.wechat_app_id is not None
    url = oauth_authorize_url(settings.wechat_app_id, f"{settings.public_url}/wx/auth/callback", nonce)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        _serializer(settings, "state").dumps({"n": nonce, "next": target}),
        max_age=STATE_SECONDS,
        path="/wx/auth",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _state_next(request: Request, settings: Settings, state: str) -> str | None:
    token = request.cookies.get(STATE_COOKIE)
    if not token:
        return None
    try:
        value = _serializer(settings, "state").loads(token, max_age=STATE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(value, dict) or not secrets.compare_digest(str(value.get("n", "")), state):
        return None
    return safe_next(str(value.get("next", "")))


@router.get("/auth/callback")
def auth_callback(
    request: Request, settings: ProviderSettingsDep, code: str = "", state: str = ""
) -> Response:
    """WeChat's redirect: check `state`, exchange `code` for the openid (a blocking call: this is a plain
    def, run in a thread), set the follower cookie and go on to `next`."""
    from channels.wechat_client import WeChatApiError, oauth_openid

    if not _wechat_configured(settings):
        return _message(request, settings, "wx.unavailable", 404)
    target = _state_next(request, settings, state)
    if target is None or not code:
        return _message(request, settings, "wx.auth_failed", 400)
    assert settings.wechat_app_id is not None and settings.wechat_app_secret is not None
    try:
        openid = oauth_openid(
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            code,
            api_root=settings.wechat_api_root,
            timeout=settings.send_timeout_seconds,
        )
    except WeChatApiError:
        return _message(request, settings, "wx.auth_failed", 502)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        FOLLOWER_COOKIE,
        _serializer(settings, "follower").dumps(current_cipher().encrypt(_CIPHER_KIND, openid)),
        max_age=FOLLOWER_DAYS * 86400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(STATE_COOKIE, path="/wx/auth")
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_auth() -> Response:
    return RedirectResponse(f"/wx/auth?next={quote(DEFAULT_NEXT, safe='')}", status_code=303)


@router.get("/bind", response_class=HTMLResponse)
def bind_page(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    openid = current_follower(request)
    if openid is None:
        return _to_auth()
    if find_patient(db, Channel.WECHAT, openid) is not None:
        return _message(request, settings, "wx.already_bound")
    return _page(request, settings, {"step": "details"})


@router.post("/bind")
def bind_post(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    action: str = Form(default="birth_date", max_length=16),
    phone: str = Form(default="", max_length=32),
    birth_date: str = Form(default="", max_length=16),
    code: str = Form(default="", max_length=16),
) -> Response:
    # The follower cookie is SameSite=Lax, so a cross-site POST arrives without it and ends up here.
    openid = current_follower(request)
    if openid is None:
        return _to_auth()
    if find_patient(db, Channel.WECHAT, openid) is not None:
        return _message(request, settings, "wx.already_bound")
    try:
        if action == "verify":
            bound = binding.do_verify_code(db, openid=openid, code=code)
            if bound is None:
                return _page(request, settings, {"step": "code", "error_key": "wx.code_invalid"}, 422)
            return _message(request, settings, "wx.bound")
        born = date.fromisoformat(birth_date) if birth_date else None
        if action == "code":
            item_id = binding.do_request_code(db, openid=openid, phone=phone, birth_date=born)
            db.commit()
            if item_id is not None:
                kick(item_id)
            return _page(request, settings, {"step": "code", "note_key": "wx.code_sent"})
        if born is None:
            return _page(request, settings, {"step": "details", "error_key": "wx.bad_date"}, 422)
        bound = binding.do_bind_by_birth_date(db, openid=openid, phone=phone, birth_date=born)
    except binding.Throttled:
        return _message(request, settings, "wx.throttled", 429)
    except binding.BindRefused as refused:
        return _message(request, settings, refused.key, 409)
    except InvalidPhoneNumber:
        return _page(request, settings, {"step": "details", "error_key": "wx.bad_phone"}, 422)
    except ValueError:
        return _page(request, settings, {"step": "details", "error_key": "wx.bad_date"}, 422)
    if bound is None:
        return _page(request, settings, {"step": "details", "error_key": "wx.not_matched"}, 422)
    return _message(request, settings, "wx.bound")


def _follower_patient(request: Request, db: Session, next_path: str) -> Patient | Response:
    """The bound patient of this browser's follower, or where to send the browser first."""
    openid = current_follower(request)
    if openid is None:
        return RedirectResponse(f"/wx/auth?next={quote(next_path, safe='')}", status_code=303)
    patient = find_patient(db, Channel.WECHAT, openid)
    if patient is None:
        return RedirectResponse("/wx/bind", status_code=303)
    return patient


@router.get("/chat")
def follower_chat(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """The account menu's "chat" entry: the follower's own chat page, found through OAuth and binding."""
    found = _follower_patient(request, db, "/wx/chat")
    if isinstance(found, Response):
        return found
    return RedirectResponse(make_url(settings, LinkKind.CHAT, found.id), status_code=303)


@router.get("/forms")
def follower_forms(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """The account menu's "questionnaire" entry: the follower's oldest unfinished questionnaire."""
    found = _follower_patient(request, db, "/wx/forms")
    if isinstance(found, Response):
        return found
    response_id = db.scalar(
        sa.select(QuestionnaireResponse.id)
        .where(
            QuestionnaireResponse.patient_id == found.id,
            QuestionnaireResponse.status == ResponseStatus.IN_PROGRESS,
        )
        .order_by(QuestionnaireResponse.id)
        .limit(1)
    )
    if response_id is None:
        return _message(request, settings, "wx.no_open_forms")
    return RedirectResponse(make_url(settings, LinkKind.FORM, response_id), status_code=303)

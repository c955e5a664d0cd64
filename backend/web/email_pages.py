"""Email's two ways back in: the patient's unsubscribe page `/m/u/<token>` and the MTA's hook `/hooks/email`.

`GET /m/u/<token>` asks, in the patient's language, whether to stop that purpose's emails (a GET never
changes anything: mail scanners open every link); `POST` to the same address stops them, whether the
patient pressed the button or her mail provider sent RFC 8058's one-click `List-Unsubscribe=One-Click`.
The token is the credential (signed, see `backend.messaging.email_tokens`), so there is no CSRF token:
a forged post could only stop emails the token already names.

`POST /hooks/email?to=<envelope recipient>` takes a raw mail our MTA received at a `bounces+` or
`unsubscribe+` address (e.g. Postfix piping to curl with `${recipient}`), with
`Authorization: Bearer <CARELOOP_EMAIL_HOOK_TOKEN>`.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from backend.app.settings import Settings
from backend.dialogue.content import load_catalog
from backend.i18n import negotiate
from backend.messaging.links import LinkInvalid
from backend.outbox.mail_returns import (
    UNSUBSCRIBE_LINK,
    do_take_mail,
    do_unsubscribe,
    unsubscribe_subject,
    unsubscribed,
)
from backend.web.deps import SessionDep, SettingsDep, templates
from backend.web.webhook_auth import BodyDep
from bots.domain import pick_language
from channels.base import MalformedPayload

router = APIRouter()


def _page(
    request: Request, settings: Settings, lang: str, context: dict[str, Any], status: int = 200
) -> Response:
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    return templates.TemplateResponse(
        request,
        "email/unsubscribe.html",
        {
            "lang": lang,
            "t": lambda key, **kw: catalog.text(lang, key, **kw),
            "purpose": None,
            "done": False,
            "invalid": False,
            **context,
        },
        status_code=status,
    )


def _invalid(request: Request, settings: Settings) -> Response:
    header = request.headers.get("accept-language")
    lang = negotiate(header) if header else pick_language(settings.default_language)
    return _page(request, settings, lang, {"invalid": True}, 404)


@router.get("/m/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    found = unsubscribe_subject(db, settings, token)
    if found is None:
        return _invalid(request, settings)
    patient, purpose = found
    context = {"token": token, "purpose": purpose.value, "done": unsubscribed(db, patient.id, purpose)}
    return _page(request, settings, pick_language(patient.language), context)


@router.post("/m/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """The button, or RFC 8058 one-click from the mail provider (the same effect: the body's
    `List-Unsubscribe=One-Click` needs no reading)."""
    try:
        patient, purpose = do_unsubscribe(db, settings, token, source=UNSUBSCRIBE_LINK)
    except LinkInvalid:
        return _invalid(request, settings)
    db.commit()
    context = {"token": token, "purpose": purpose.value, "done": True}
    return _page(request, settings, pick_language(patient.language), context)


def _hook_allowed(request: Request, settings: Settings) -> bool:
    assert settings.email_hook_token is not None
    expected = f"Bearer {settings.email_hook_token.get_secret_value()}"
    return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected.encode())


@router.post("/hooks/email")
def mail_hook(request: Request, body: BodyDep, db: SessionDep, settings: SettingsDep) -> Response:
    if settings.email_hook_token is None:
        return PlainTextResponse("email hook is not configured", status_code=404)
    if not _hook_allowed(request, settings):
        return PlainTextResponse("forged request", status_code=403)
    try:
        done = do_take_mail(db, settings, body, request.query_params.get("to"))
    except MalformedPayload as exc:
        db.rollback()
        return PlainTextResponse(str(exc), status_code=400)
    except LinkInvalid:
        db.rollback()
        return PlainTextResponse("unknown token", status_code=404)
    db.commit()
    return PlainTextResponse(done)

"""Patient questionnaire form: `/q/<token>` opens a response, saves progress, validates, completes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from backend.app.settings import Settings
from backend.dialogue.content import load_answer_messages, load_catalog
from backend.dialogue.safety_net import category_of, guidance_text
from backend.followup.catalog import definition_of
from backend.followup.responses import (
    AlreadyCompleted,
    IncompleteResponse,
    answers_of,
    do_complete_response,
    do_save_answers,
    safety_finding,
)
from backend.i18n import negotiate
from backend.messaging.links import LinkExpired, LinkInvalid, LinkKind, read_token
from backend.models import Patient, QuestionnaireResponse, QuestionnaireVersion, ResponseStatus
from backend.models.base import utcnow
from backend.web.deps import SessionDep, SettingsDep, templates
from bots.domain import pick_language
from channels import webform
from questionnaires.answers import Accepted, accept
from questionnaires.logic import enabled_items
from questionnaires.model import AnswerValue, Questionnaire

router = APIRouter()


class _Refused(Exception):
    def __init__(self, status: int, key: str) -> None:
        self.status, self.key = status, key


def _open(
    db: Session, settings: Settings, token: str
) -> tuple[QuestionnaireResponse, Questionnaire, Patient]:
    try:
        response_id = read_token(settings, LinkKind.FORM, token, settings.form_link_days * 86400)
    except LinkExpired as exc:
        raise _Refused(410, "form.link_expired") from exc
    except LinkInvalid as exc:
        raise _Refused(404, "form.link_invalid") from exc
    response = db.get(QuestionnaireResponse, response_id)
    patient = db.get(Patient, response.patient_id) if response else None
    version = db.get(QuestionnaireVersion, response.version_id) if response else None
    if response is None or patient is None or version is None:
        raise _Refused(404, "form.link_invalid")
    return response, definition_of(version), patient


def patient_page(
    request: Request, settings: Settings, lang: str, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    """A patient page in `lang`, its words from the patient catalogue (the studio's preview uses it too)."""
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    return templates.TemplateResponse(
        request,
        name,
        {"lang": lang, "t": lambda key, **kw: catalog.text(lang, key, **kw), **context},
        status_code=status,
    )


def _refused(request: Request, settings: Settings, refused: _Refused) -> Response:
    accept_language = request.headers.get("accept-language")
    lang = negotiate(accept_language) if accept_language else pick_language(settings.default_language)
    return patient_page(
        request,
        settings,
        lang,
        "forms/message.html",
        {"message_key": refused.key, "title": ""},
        refused.status,
    )


def _form(
    request: Request,
    settings: Settings,
    token: str,
    response: QuestionnaireResponse,
    q: Questionnaire,
    answers: dict[str, AnswerValue],
    errors: dict[str, str],
    status: int = 200,
    note: str | None = None,
) -> Response:
    lang = response.language
    enabled = enabled_items(q, answers)
    return patient_page(
        request,
        settings,
        lang,
        "forms/form.html",
        {
            "token": token,
            "title": q.title[lang],
            "intro": q.intro[lang] if q.intro else None,
            "fields": webform.fields(q, lang, answers, errors),
            "errors": errors,
            "note": note,
            "answered": sum(1 for item in enabled if item.id in answers),
            "total": len(enabled),
        },
        status,
    )


@router.get("/q/{token}", response_class=HTMLResponse)
def form_page(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    try:
        response, q, _ = _open(db, settings, token)
    except _Refused as refused:
        return _refused(request, settings, refused)
    if response.status is ResponseStatus.COMPLETED:
        return patient_page(
            request,
            settings,
            response.language,
            "forms/message.html",
            {"message_key": "form.already_done", "title": q.title[response.language]},
        )
    return _form(request, settings, token, response, q, answers_of(q, response), {})


def _accept_all(
    q: Questionnaire, raw: dict[str, webform.RawAnswer], lang: str, settings: Settings
) -> tuple[dict[str, AnswerValue], dict[str, str]]:
    messages = load_answer_messages(settings.content_dir)
    today = utcnow().date()
    accepted: dict[str, AnswerValue] = {}
    errors: dict[str, str] = {}
    for item_id, answer in raw.items():
        result = accept(
            q.item(item_id), answer.text, lang, today=today, messages=messages, payload=answer.payload
        )
        if isinstance(result, Accepted):
            accepted[item_id] = result.value
        else:
            errors[item_id] = result.reprompt
    return accepted, errors


@router.post("/q/{token}")
async def form_post(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    # The body's size is limited as it arrives (backend/web/body_limit.py), chunked or not.
    form = await request.form(max_files=0, max_fields=500)
    return _handle_post(token, request, db, settings, form)


def _handle_post(token: str, request: Request, db: Session, settings: Settings, form: FormData) -> Response:
    try:
        response, q, _ = _open(db, settings, token)
    except _Refused as refused:
        return _refused(request, settings, refused)
    lang = response.language
    if response.status is ResponseStatus.COMPLETED:
        return patient_page(
            request,
            settings,
            lang,
            "forms/message.html",
            {"message_key": "form.already_done", "title": q.title[lang]},
            409,
        )
    fields = {key: [str(v) for v in form.getlist(key)] for key in form}
    accepted, errors = _accept_all(q, webform.read_post(q, fields), lang, settings)
    previous = answers_of(q, response)
    # Progress is saved even when some answers need correcting; cleared fields are removed.
    cleared = {item.id for item in q.answerable() if item.id not in accepted and item.id not in errors}
    merged = {k: v for k, v in previous.items() if k not in cleared}
    merged.update(accepted)
    do_save_answers(db, response, q, merged, replace=True)
    action = str(form.get("action") or "submit")
    if action == "save" or errors:
        db.commit()
        note = "form.fix_errors" if errors else "form.saved"
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"saved": True, "errors": errors}, status_code=422 if errors else 200)
        return _form(
            request,
            settings,
            token,
            response,
            q,
            answers_of(q, response),
            errors,
            422 if errors else 200,
            note,
        )
    try:
        do_complete_response(db, response)
    except IncompleteResponse as missing:
        db.commit()
        catalog = load_catalog(settings.content_dir, settings.hospital_name)
        required = {item_id: catalog.text(lang, "form.required") for item_id in missing.missing}
        return _form(
            request, settings, token, response, q, answers_of(q, response), required, 422, "form.fix_errors"
        )
    except AlreadyCompleted:
        return patient_page(
            request,
            settings,
            lang,
            "forms/message.html",
            {"message_key": "form.already_done", "title": q.title[lang]},
            409,
        )
    db.commit()
    return RedirectResponse(f"/q/{token}/done", status_code=303)


@router.get("/q/{token}/done", response_class=HTMLResponse)
def form_done(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    try:
        response, q, _ = _open(db, settings, token)
    except _Refused as refused:
        return _refused(request, settings, refused)
    key = "form.thanks" if response.status is ResponseStatus.COMPLETED else "form.link_invalid"
    context: dict[str, Any] = {"message_key": key, "title": q.title[response.language]}
    category = safety_finding(db, response.id) if response.status is ResponseStatus.COMPLETED else None
    if category is not None:  # an emergency in her own words: the guidance; the task is already with staff
        catalog = load_catalog(settings.content_dir, settings.hospital_name)
        context["message"] = guidance_text(catalog, response.language, category_of(category))
    return patient_page(request, settings, response.language, "forms/message.html", context)

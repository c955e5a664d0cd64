"""The studio's questionnaire pages: start or open a questionnaire, the draft editor, and the draft's
previews (the patient's form page in each language, and the call's spoken prompts with their grammars).
The lifecycle buttons, history and diff are the studio's own routes (backend/web/studio.py); nothing here
stores a response or publishes."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from backend.content import questionnaire_form as qform
from backend.content import revisions as rv
from backend.content.kinds import kind_of
from backend.content.questionnaire import KIND, skeleton
from backend.content.questionnaire_preview import spoken_prompts
from backend.followup.catalog import latest_version
from backend.i18n import translations
from backend.models import ContentItem, ContentRevision, StaffSession
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from backend.web.filtered import FormDep
from backend.web.forms import patient_page
from backend.web.staff import check_csrf, render
from backend.web.studio import denied, item_url, revision_of, save_typed_draft
from channels import webform
from questionnaires.loader import DefinitionError, parse_questionnaire
from questionnaires.logic import enabled_items
from questionnaires.model import LANGS

router = APIRouter(prefix="/staff/studio")
QUESTIONNAIRE_ID = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


@router.post("/questionnaires/new")
def new_questionnaire(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    qid: str = Form(default="", max_length=80),
) -> Response:
    """A draft of questionnaire `qid`: of its published version when it has one (a questionnaire that
    came from the files), else an empty one. An id already in the studio opens it."""
    check_csrf(staff, csrf_token)
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    qid = qid.strip()
    if not QUESTIONNAIRE_ID.fullmatch(qid):
        return RedirectResponse("/staff/studio?error=questionnaire_id", status_code=303)
    try:
        item = rv.get_item(db, KIND, qid)
        return RedirectResponse(item_url(item), status_code=303)
    except ActionRefused:
        item = rv.get_item(db, KIND, qid, create=True)
    latest = latest_version(db, qid)
    body = dict(latest.definition) if latest is not None else skeleton(qid)
    draft = rv.do_start_draft(db, item, staff.staff, body=body, changelog="")
    return RedirectResponse(item_url(item, draft.number), status_code=303)


def _editor(
    request: Request,
    db: SessionDep,
    staff: StaffSession,
    item: ContentItem,
    revision: ContentRevision,
    *,
    body: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    shown = revision.body if body is None else body
    problems = kind_of(item.kind).validate(shown)
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "body": shown,
        "sheet": qform.sheet(shown, problems),
        "problems": problems,
        "langs": LANGS,
        "item_types": qform.ITEM_TYPES,
        "kinds": qform.KINDS,
        "severities": qform.SEVERITIES,
        "error": error[:64],
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
        "needs_approver": rv.needs_approver(db, item, revision),
    }
    return render(request, "staff/studio/questionnaire.html", staff.staff.language, context, status)


@router.get("/items/questionnaires/{key}/r/{number}", response_class=HTMLResponse)
def editor_page(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    return _editor(request, db, staff, *found, error=request.query_params.get("error", ""))


@router.post("/items/questionnaires/{key}/r/{number}/save", response_class=HTMLResponse)
def save(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = qform.body_from_form(revision.body, values)
    changelog = values.get("changelog", "")[: rv.MAX_NOTE]
    refused = save_typed_draft(db, item, number, staff, values.get("version", ""), body, changelog)
    if (
        refused is not None
    ):  # the page comes back with what was typed, to check against what was saved meanwhile
        reason, revision = refused
        return _editor(request, db, staff, item, revision, body=body, error=reason, status=409)
    return RedirectResponse(f"{item_url(item, number)}?saved=1", status_code=303)


def _draft_questionnaire(
    request: Request, db: SessionDep, staff: StaffSession, key: str, number: int
) -> tuple[ContentItem, ContentRevision, Any] | Response:
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    try:
        return item, revision, parse_questionnaire(revision.body)
    except DefinitionError:  # nothing to show until the definition parses: the editor says why
        return RedirectResponse(f"{item_url(item, number)}?error=preview_invalid", status_code=303)


def _language(value: str | None) -> str:
    return value if value in LANGS else LANGS[0]


@router.get("/items/questionnaires/{key}/r/{number}/preview/form", response_class=HTMLResponse)
def preview_form(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, settings: SettingsDep
) -> Response:
    """The revision as a patient's phone shows it (the form page's own template and fields), in one
    language. Its form posts nowhere: a preview stores no answer."""
    found = _draft_questionnaire(request, db, staff, key, number)
    if isinstance(found, Response):
        return found
    item, revision, q = found
    lang = _language(request.query_params.get("lang"))
    context = {
        "_": translations(staff.staff.language).gettext,  # the preview bar speaks the editor's language
        "staff_lang": staff.staff.language,
        "token": None,
        "preview": {
            "langs": LANGS,
            "lang": lang,
            "back": item_url(item, number),
            "voice": f"{item_url(item, number)}/preview/voice?lang={lang}",
            "number": revision.number,
        },
        "title": q.title[lang],
        "intro": q.intro[lang] if q.intro else None,
        "fields": webform.fields(q, lang, {}, {}),
        "errors": {},
        "note": None,
        "answered": 0,
        "total": len(enabled_items(q, {})),
    }
    return patient_page(request, settings, lang, "forms/form.html", context)


@router.get("/items/questionnaires/{key}/r/{number}/preview/voice", response_class=HTMLResponse)
def preview_voice(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    """What a call would say for each question of the revision, and what it would listen for."""
    found = _draft_questionnaire(request, db, staff, key, number)
    if isinstance(found, Response):
        return found
    item, revision, q = found
    lang = _language(request.query_params.get("lang"))
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "langs": LANGS,
        "voice_lang": lang,
        "prompts": spoken_prompts(q, lang),
    }
    return render(request, "staff/studio/questionnaire_voice.html", staff.staff.language, context)

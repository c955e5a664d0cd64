"""The studio's page for the hospital's red-flag phrases: open the lexicon, edit a draft, and try a message
against the draft. The lifecycle buttons, history and diff are the studio's own routes
(backend/web/studio.py); publishing needs a colleague with the approver grant (every change is clinical)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from backend.content import revisions as rv
from backend.content import safety_lexicon as lexicon
from backend.content.kinds import kind_of
from backend.models import ContentItem, ContentRevision, StaffSession
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, StaffDep
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from backend.web.studio import denied, item_url, revision_of
from nlu import safety_site as site
from nlu.red_flags import PRIORITY

router = APIRouter(prefix="/staff/studio")
MAX_TRY = 2000  # characters of a message to try


@router.post("/safety-lexicon/open")
def open_lexicon(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    """The lexicon's page; the first time, the item (clinical) and an empty first draft."""
    check_csrf(staff, csrf_token)
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    try:
        return RedirectResponse(item_url(rv.get_item(db, lexicon.KIND, lexicon.KEY)), status_code=303)
    except ActionRefused:
        item = rv.get_item(db, lexicon.KIND, lexicon.KEY, create=True, clinical=True)
    draft = rv.do_start_draft(db, item, staff.staff, body=site.skeleton(), changelog="")
    return RedirectResponse(item_url(item, draft.number), status_code=303)


def _tried(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """What the rules with this revision's phrases make of `text`: the category and the terms."""
    if not text.strip():
        return None
    from nlu.safety_match import find

    found = find(text[:MAX_TRY], site.from_body(body))
    return {"text": text[:MAX_TRY], "hits": [(f.emergency.value, f.term) for f in found]}


def _editor(
    request: Request,
    db: SessionDep,
    staff: StaffSession,
    item: ContentItem,
    revision: ContentRevision,
    *,
    body: dict[str, Any] | None = None,
    error: str = "",
    tried: str = "",
    status: int = 200,
) -> Response:
    shown = revision.body if body is None else body
    problems = kind_of(item.kind).validate(shown)
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "body": shown,
        "categories": [e.value for e in PRIORITY],
        "langs": site.LANGS,
        "problems": problems,
        "blocking": [p for p in problems if p.blocking],
        "error": error[:64],
        "tried": _tried(shown, tried),
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
    }
    return render(request, "staff/studio/safety_lexicon.html", staff.staff.language, context, status)


@router.get("/items/safety_lexicon/{key}/r/{number}", response_class=HTMLResponse)
def editor_page(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    found = revision_of(request, db, staff, lexicon.KIND, key, number)
    if isinstance(found, Response):
        return found
    query = request.query_params
    return _editor(request, db, staff, *found, error=query.get("error", ""), tried=query.get("try", ""))


@router.post("/items/safety_lexicon/{key}/r/{number}/save", response_class=HTMLResponse)
def save(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    found = revision_of(request, db, staff, lexicon.KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = lexicon.body_from_form(values)
    version = values.get("version", "")
    try:
        rv.do_save_draft(
            db,
            item,
            number,
            staff.staff,
            version=int(version) if version.isdigit() else -1,
            body=body,
            changelog=values.get("changelog", "")[: rv.MAX_NOTE],
        )
    except ActionRefused as exc:
        # nothing lost: the page comes back with what was typed
        db.rollback()
        db.expire_all()
        revision = rv.get_revision(db, item, number)
        return _editor(request, db, staff, item, revision, body=body, error=exc.reason, status=409)
    return RedirectResponse(f"{item_url(item, number)}?saved=1", status_code=303)

"""One editor route family for every kind whose draft is one form: the revision's page and its save, so a
kind brings only its form parser, its template and what else its page shows.

History, diff, review, the lifecycle buttons (submit, approve, send back, restore) and retirement are the
studio's own routes (backend/web/studio.py) for every kind; this adds the two each kind's editor used to
write again: show a revision with its problems, and save a draft from its `version`, where a refusal
(someone saved meanwhile, not a draft any more) brings the page back with what was typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.kinds import problems as kind_problems
from backend.models import ContentItem, ContentRevision, RevisionState, StaffSession
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, StaffDep
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from backend.web.studio import denied, item_url, revision_of, save_typed_draft
from bots.domain import LANGUAGES

# (request, session, item, revision, the body shown) -> what else the kind's page shows
Extra = Callable[[Request, Session, ContentItem, ContentRevision, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class KindEditor:
    kind: str
    template: str
    body_from_form: Callable[[Mapping[str, str], str], dict[str, Any]]  # (form, item key) -> body
    context: Extra | None = None


def show(
    request: Request,
    db: Session,
    staff: StaffSession,
    editor: KindEditor,
    item: ContentItem,
    revision: ContentRevision,
    *,
    body: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    shown = dict(revision.body if body is None else body)
    problems = kind_problems(db, item.kind, shown)
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "body": shown,
        "problems": problems,
        "blocking": [p for p in problems if p.blocking],
        "error": error[:64],
        "languages": LANGUAGES,
        "base": item_url(item, revision.number),
        "editable": revision.state is RevisionState.DRAFT,
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
        "needs_approver": rv.needs_approver(db, item, revision),
    }
    if editor.context is not None:
        context.update(editor.context(request, db, item, revision, shown))
    return render(request, editor.template, staff.staff.language, context, status)


def editor_router(editor: KindEditor) -> APIRouter:
    """GET /staff/studio/items/<kind>/<key>/r/<n> and POST .../save for `editor`'s kind. Include it before
    the studio's router: its literal kind wins over the studio's texts editor at the same path."""
    router = APIRouter(prefix=f"/staff/studio/items/{editor.kind}")

    @router.get("/{key}/r/{number}", response_class=HTMLResponse)
    def editor_page(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
        found = revision_of(request, db, staff, editor.kind, key, number)
        if isinstance(found, Response):
            return found
        return show(request, db, staff, editor, *found, error=request.query_params.get("error", ""))

    @router.post("/{key}/r/{number}/save", response_class=HTMLResponse)
    def save(
        request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
    ) -> Response:
        check_csrf(staff, values.get("csrf_token", ""))
        found = revision_of(request, db, staff, editor.kind, key, number)
        if isinstance(found, Response):
            return found
        item, _revision = found
        body = editor.body_from_form(values, item.key)
        changelog = values.get("changelog", "")[: rv.MAX_NOTE]
        refused = save_typed_draft(db, item, number, staff, values.get("version", ""), body, changelog)
        if refused is not None:  # the page comes back with what was typed, and says why it was not saved
            reason, revision = refused
            return show(request, db, staff, editor, item, revision, body=body, error=reason, status=409)
        return RedirectResponse(f"{item_url(item, number)}?saved=1", status_code=303)

    return router


def open_item(
    request: Request,
    db: Session,
    staff: StaffSession,
    csrf_token: str,
    *,
    kind: str,
    key: str,
    clinical: bool,
    skeleton: dict[str, Any],
) -> Response:
    """An item's history page; the first time, the item and an empty first draft (the "new" and "edit"
    buttons of every kind)."""
    check_csrf(staff, csrf_token)
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    try:
        return RedirectResponse(item_url(rv.get_item(db, kind, key)), status_code=303)
    except ActionRefused:
        item = rv.get_item(db, kind, key, create=True, clinical=clinical)
    draft = rv.do_start_draft(db, item, staff.staff, body=skeleton, changelog="")
    return RedirectResponse(item_url(item, draft.number), status_code=303)

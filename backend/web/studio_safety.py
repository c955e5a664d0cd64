"""The studio's page for the hospital's red-flag phrases: open the lexicon, edit a draft, and try a message
against the draft. The page and its save are the shared editor routes (backend/web/studio_editor.py); the
lifecycle buttons, history and diff are the studio's own routes (backend/web/studio.py); publishing needs a
colleague with the approver grant (every change is clinical)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from backend.content import safety_lexicon as lexicon
from backend.models import ContentItem, ContentRevision
from backend.web.deps import SessionDep, StaffDep
from backend.web.studio_editor import KindEditor, editor_router, open_item
from nlu import safety_site as site
from nlu.red_flags import PRIORITY

router = APIRouter(prefix="/staff/studio")
MAX_TRY = 2000  # characters of a message to try


@router.post("/safety-lexicon/open")
def open_lexicon(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    """The lexicon's page; the first time, the item (clinical) and an empty first draft."""
    return open_item(
        request,
        db,
        staff,
        csrf_token,
        kind=lexicon.KIND,
        key=lexicon.KEY,
        clinical=True,
        skeleton=site.skeleton(),
    )


def _tried(body: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    """What the rules with this revision's phrases make of `text`: the category and the terms."""
    if not text.strip():
        return None
    from nlu.safety_match import find

    found = find(text[:MAX_TRY], site.from_body(body))
    return {"text": text[:MAX_TRY], "hits": [(f.emergency.value, f.term) for f in found]}


def _extra(
    request: Request, db: Session, item: ContentItem, revision: ContentRevision, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "categories": [e.value for e in PRIORITY],
        "langs": site.LANGS,
        "tried": _tried(body, request.query_params.get("try", "")),
    }


EDITOR = KindEditor(
    lexicon.KIND,
    "staff/studio/safety_lexicon.html",
    lambda values, _key: lexicon.body_from_form(values),
    _extra,
)
editor = editor_router(EDITOR)

"""The studio's translation exchange: a revision's texts out as PO per language for an agency, and an
agency's file back into a draft. Routes parse, call backend/content/po.py and a revision verb, redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content import studio
from backend.content.po import PoError, export_po, import_po
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, StaffDep
from backend.web.staff import check_csrf
from backend.web.studio import denied, item_url, revision_of

# Included before backend.web.studio's router: its /r/{number}/{action} would take /r/{number}/translation.
router = APIRouter(prefix="/staff/studio")


@router.get("/items/{kind}/{key}/r/{number}/translation/{lang}.po")
def translation_export(
    request: Request, kind: str, key: str, number: int, lang: str, db: SessionDep, staff: StaffDep
) -> Response:
    """The texts to translate into `lang`, as PO for a translation agency (stale ones marked fuzzy)."""
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    source = get_settings().studio_source_language
    try:
        stale = studio.stale_pairs(db, item, revision)
        data = export_po(revision.body, lang, source, stale)
    except PoError:
        return denied(request, staff, missing=True)
    audit.record(db, "content.translation_export", staff_id=staff.staff_id, key=key, number=number, lang=lang)
    return Response(
        data,
        media_type="text/x-gettext-translation; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}-r{number}-{lang}.po"'},
    )


@router.post("/items/{kind}/{key}/r/{number}/translation")
async def translation_import(
    request: Request,
    kind: str,
    key: str,
    number: int,
    db: SessionDep,
    staff: StaffDep,
    file: Annotated[UploadFile, File()],
    lang: str = Form(max_length=8),
    version: int = Form(),
    csrf_token: str = Form(max_length=128),
) -> Response:
    """An agency's PO file into a draft: translations of unchanged source texts are taken; the page says
    how many, and which were skipped because their source text changed since the export."""
    check_csrf(staff, csrf_token)
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    data = await file.read()
    try:
        taken = import_po(revision.body, data, lang, get_settings().studio_source_language)
        rv.do_save_draft(db, item, number, staff.staff, version=version, body=taken.body)
    except PoError:
        db.rollback()
        return RedirectResponse(f"{item_url(item, number)}?error={Reason.TRANSLATION_FILE}", status_code=303)
    except ActionRefused as exc:
        db.rollback()
        return RedirectResponse(f"{item_url(item, number)}?error={exc.reason}", status_code=303)
    audit.record(
        db,
        "content.translation_import",
        staff_id=staff.staff_id,
        key=key,
        number=number,
        lang=lang,
        updated=len(taken.updated),
        source_changed=len(taken.source_changed),
    )
    query = f"taken={len(taken.updated)}&skipped={len(taken.source_changed)}"
    return RedirectResponse(f"{item_url(item, number)}?{query}", status_code=303)

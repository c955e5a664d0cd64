"""Staff page for content editors: upload a published FHIR Questionnaire, read the import report and
the per-channel preview, and send it to the studio's review when asked (a colleague approves and
publishes it there)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from backend.dialogue.content import load_voice_phrases
from backend.followup.fhir_intake import do_draft_import, import_file
from backend.security.permissions import Permission, may
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from backend.web.staff import check_csrf, render
from questionnaires import channels
from questionnaires.fhir import Imported, ImportRefused
from questionnaires.fhir_report import NOTE_TEXTS, NoteKind
from questionnaires.loader import DefinitionError
from questionnaires.model import LANGS

router = APIRouter(prefix="/staff/studio/questionnaires")
PAGE = "staff/questionnaire_import.html"


def _preview(imported: Imported) -> dict[str, Any]:
    """Per language and channel, how each item is asked (the pre-flight publishing runs)."""
    q = imported.questionnaire
    return {lang: channels.plan(q, lang, load_voice_phrases(lang)) for lang in LANGS}


def _context(staff: StaffDep, settings: SettingsDep, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "langs": LANGS,
        "default_language": settings.default_language,
        "note_texts": NOTE_TEXTS,
        "kinds": list(NoteKind),
        **extra,
    }


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, staff: StaffDep, settings: SettingsDep) -> Response:
    if not may(staff.staff, Permission.QUESTIONNAIRE_IMPORT):
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    return render(request, PAGE, staff.staff.language, _context(staff, settings))


@router.post("/import", response_class=HTMLResponse)
def import_upload(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    csrf_token: str = Form(max_length=128),
    language: str = Form(default="", max_length=8),
    accept_rules: bool = Form(default=False),
    draft: bool = Form(default=False),
) -> Response:
    if not may(staff.staff, Permission.QUESTIONNAIRE_IMPORT):
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    check_csrf(staff, csrf_token)
    raw = file.file.read(settings.fhir_import_max_bytes + 1)  # one byte over is enough to refuse
    try:
        imported = import_file(
            raw, language=language if language in LANGS else None, accept_rules=accept_rules
        )
    except (ImportRefused, DefinitionError) as exc:
        context = _context(staff, settings, error=str(exc), filename=file.filename)
        return render(request, PAGE, staff.staff.language, context, 400)
    drafted = None
    if draft:
        try:
            drafted = do_draft_import(db, imported, staff.staff, submit=True)
        except ActionRefused as exc:  # a manager may read the report; only editors write drafts
            db.rollback()
            context = _context(staff, settings, refused=exc.reason, filename=file.filename)
            return render(request, PAGE, staff.staff.language, context, 403)
    context = _context(
        staff,
        settings,
        report=imported.report,
        questionnaire=imported.questionnaire,
        preview=_preview(imported),
        drafted=drafted,
        filename=file.filename,
    )
    return render(request, PAGE, staff.staff.language, context)

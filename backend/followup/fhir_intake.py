"""Importing a published FHIR Questionnaire: the hospital's defaults and CareLoop's reference
instruments around the pure import, and the result as a studio draft that goes through review like any
authored questionnaire."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.questionnaire import KIND as QUESTIONNAIRES
from backend.followup.catalog import authored_definitions
from backend.models import ContentItem, ContentRevision, RevisionState, StaffUser
from backend.services import audit
from questionnaires.fhir import Imported, import_published
from questionnaires.fhir_instruments import INSTRUMENTS
from questionnaires.loader import parse_questionnaire
from questionnaires.model import Questionnaire


def references(content_dir: Path | None = None) -> dict[str, Questionnaire]:
    """CareLoop's authored versions of the known instruments, whose clinical rules are offered."""
    wanted = {i.reference for i in INSTRUMENTS.values()}
    base = content_dir or get_settings().content_dir
    found = authored_definitions(base)
    for path in sorted((base / "questionnaires" / "instruments").glob("*.yaml")):
        data = yaml_files.load(path.read_text(encoding="utf-8"))
        found.setdefault(str(data.get("id")), data)
    return {qid: parse_questionnaire(data) for qid, data in found.items() if qid in wanted}


def import_file(raw: bytes, *, language: str | None = None, accept_rules: bool = False) -> Imported:
    """The import of one uploaded file (ImportRefused / DefinitionError say what is wrong)."""
    settings = get_settings()
    return import_published(
        raw,
        default_language=language or settings.default_language,
        max_bytes=settings.fhir_import_max_bytes,
        references=references(),
        accept_rules=accept_rules,
    )


@dataclass(frozen=True)
class Drafted:
    item: ContentItem
    revision: ContentRevision
    new: bool  # False: the same definition was already published or waiting; nothing was added


def do_draft_import(
    session: Session, imported: Imported, user: StaffUser | None, *, submit: bool = False
) -> Drafted:
    """An import lands in the studio as a draft of its questionnaire (by `user`, or the system for the
    command line); with `submit`, sent to review at once. Nothing reaches patients until a second
    person approves it: a file from outside is content like any other. The studio's publish numbers
    the version (the source's own numbering does not fit CareLoop's)."""
    definition = dict(imported.definition)
    qid = str(definition["id"])
    item = rv.get_item(session, QUESTIONNAIRES, qid, create=True)
    alive = (RevisionState.DRAFT, RevisionState.IN_REVIEW, RevisionState.APPROVED, RevisionState.PUBLISHED)
    for earlier in rv.revisions(session, item):
        if earlier.state in alive and earlier.body == definition:
            return Drafted(item, earlier, new=False)
    revision = rv.do_start_draft(
        session, item, user, body=definition, source="import", changelog=_changelog(imported)
    )
    if submit and user is not None:
        rv.do_submit(session, item, revision.number, user)
    report = imported.report
    audit.record(
        session,
        "questionnaire.import",
        staff_id=user.id if user else None,
        subject=("content_revision", revision.id),
        questionnaire=qid,
        number=revision.number,
        source=report.source_url or report.source_id or "",
        loinc=report.loinc or "",
        rules_accepted=report.rules_accepted,
        missing_languages=",".join(report.missing_languages),
    )
    return Drafted(item, revision, new=True)


def _changelog(imported: Imported) -> str:
    report = imported.report
    source = report.source_url or report.source_id or "FHIR"
    return f"imported from {source}"[: rv.MAX_NOTE]

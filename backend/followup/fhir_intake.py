"""Importing a published FHIR Questionnaire: the hospital's defaults and CareLoop's reference
instruments around the pure import, and publishing the result through the ordinary publish path."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import authored_definitions, definition_checksum, do_publish, latest_version
from backend.models import QuestionnaireVersion
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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def do_publish_import(
    session: Session, imported: Imported, *, staff_id: int | None = None
) -> QuestionnaireVersion:
    """Publishes an import as the next version of its questionnaire (the same content again: the
    version already published). The source's own version numbering does not fit CareLoop's, so the
    number is CareLoop's."""
    definition = dict(imported.definition)
    latest = latest_version(session, str(definition["id"]))
    if latest is not None:
        definition["version"] = latest.version
        if definition_checksum(definition) != latest.checksum:
            definition["version"] = latest.version + 1
    row = do_publish(session, definition, staff_id=staff_id)
    report = imported.report
    audit.record(
        session,
        "questionnaire.import",
        staff_id=staff_id,
        subject=("questionnaire_version", row.id),
        questionnaire=row.questionnaire_id,
        version=row.version,
        source=report.source_url or report.source_id or "",
        loinc=report.loinc or "",
        rules_accepted=report.rules_accepted,
        missing_languages=",".join(report.missing_languages),
    )
    return row

"""Published questionnaire definitions: publishing from content/, and loading a version to run it."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.content.questionnaire import KIND as STUDIO_KIND
from backend.dialogue.content import load_voice_phrases
from backend.models import ContentItem, QuestionnaireVersion
from backend.services import audit
from questionnaires import channels
from questionnaires.loader import parse_questionnaire
from questionnaires.model import Questionnaire


class UnknownQuestionnaire(LookupError):
    """No published version of that questionnaire."""


def authored_definitions(content_dir: Path) -> dict[str, dict[str, Any]]:
    """Every questionnaire file under content/questionnaires, parsed and checked (raises on errors)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((content_dir / "questionnaires").glob("*.yaml")):
        data = yaml_files.load(path.read_text(encoding="utf-8"))
        q = parse_questionnaire(data)
        found[q.id] = data
    return found


def definition_checksum(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()


def do_publish(
    session: Session, definition: dict[str, Any], *, staff_id: int | None = None
) -> QuestionnaireVersion:
    """Store a definition as a new version unless identical to the latest; same version, new text: refused."""
    q = parse_questionnaire(definition)
    _preflight(q)
    checksum = definition_checksum(definition)
    latest = latest_version(session, q.id)
    if latest is not None and latest.checksum == checksum:
        return latest
    if latest is not None and latest.version >= q.version:
        raise ValueError(f"{q.id}: changed without a new version number (published {latest.version})")
    row = QuestionnaireVersion(
        questionnaire_id=q.id,
        version=q.version,
        checksum=checksum,
        definition=json.loads(json.dumps(definition, default=str)),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "questionnaire.publish",
        staff_id=staff_id,
        subject=("questionnaire_version", row.id),
        questionnaire=q.id,
        version=q.version,
    )
    return row


def do_publish_next(
    session: Session, definition: dict[str, Any], *, staff_id: int | None = None
) -> QuestionnaireVersion:
    """Publishes `definition` as the next version of its questionnaire, numbered by CareLoop (the same
    content again: the version already published). Imports and the studio author no version numbers;
    the number only says which frozen version a response was answered on."""
    definition = dict(definition)
    definition.setdefault("version", 1)
    latest = latest_version(session, str(definition.get("id") or ""))
    if latest is not None:
        definition["version"] = latest.version
        if definition_checksum(definition) != latest.checksum:
            definition["version"] = latest.version + 1
    return do_publish(session, definition, staff_id=staff_id)


def _preflight(q: Questionnaire) -> None:
    """Refuse to publish what some channel cannot carry (see questionnaires.channels)."""
    for lang in q.title:
        channels.preflight(q, lang, load_voice_phrases(lang))


def publish_all(session: Session, content_dir: Path) -> list[QuestionnaireVersion]:
    """The files' questionnaires, each published unless unchanged. A questionnaire edited in the content
    studio is the studio's from then on: its file seeded it, and is left alone (publishing the file again
    would undo reviewed changes, or be refused for an older version number)."""
    studio = set(session.scalars(sa.select(ContentItem.key).where(ContentItem.kind == STUDIO_KIND)))
    rows = []
    for qid, data in authored_definitions(content_dir).items():
        latest = latest_version(session, qid) if qid in studio else None
        rows.append(latest if latest is not None else do_publish(session, data))
    return rows


def latest_version(session: Session, questionnaire_id: str) -> QuestionnaireVersion | None:
    return session.scalars(
        sa.select(QuestionnaireVersion)
        .where(QuestionnaireVersion.questionnaire_id == questionnaire_id)
        .order_by(QuestionnaireVersion.version.desc())
        .limit(1)
    ).first()


@lru_cache(maxsize=256)
def _parsed(version_id: int, checksum: str, definition_json: str) -> Questionnaire:
    return parse_questionnaire(json.loads(definition_json))


def definition_of(row: QuestionnaireVersion) -> Questionnaire:
    return _parsed(row.id, row.checksum, json.dumps(row.definition, sort_keys=True))

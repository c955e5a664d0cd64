"""Loads what a task raised from a response shows first: the questionnaire, its findings in words with the
answers behind them, and every answer (backend.followup.finding_views renders them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of
from backend.followup.finding_views import ResponseView, StoredFinding, describe, in_language
from backend.followup.responses import answers_of
from backend.models import Finding, QuestionnaireResponse, QuestionnaireVersion, Task


def response_view(session: Session, task: Task, lang: str) -> ResponseView | None:
    """The response behind `task`, or None for a task from anything else."""
    if task.source_type != "response" or task.source_id is None:
        return None
    response = session.get(QuestionnaireResponse, task.source_id)
    if response is None:
        return None
    version = session.get(QuestionnaireVersion, response.version_id)
    if version is None:
        return None
    q = definition_of(version)
    rows = session.scalars(sa.select(Finding).where(Finding.response_id == response.id).order_by(Finding.id))
    stored = [StoredFinding(row.code, row.severity, tuple(row.items or ())) for row in rows]
    findings, answers = describe(q, answers_of(q, response), stored, lang)
    return ResponseView(in_language(q.title, lang) or q.id, findings, answers)

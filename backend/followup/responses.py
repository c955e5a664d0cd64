"""Questionnaire responses: saving answers, completing, and turning every finding into a staff task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.safety_lexicon import sync as sync_site_lexicon
from backend.dialogue.safety_net import emergency_in
from backend.followup.catalog import definition_of
from backend.followup.finding_views import SAFETY_CODE
from backend.integration.results import do_queue_results
from backend.models import (
    Finding,
    OutreachStatus,
    OutreachTask,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.services import audit
from backend.services.tasks import do_raise_task
from bots.domain import Channel
from questionnaires.logic import missing_required, prune
from questionnaires.model import AnswerValue, ItemType, Questionnaire, Severity
from questionnaires.scoring import evaluate
from questionnaires.values import from_json, to_json

PRIORITY = {  # the same scale, one name each: the SLA table (services/sla.py) times them all
    Severity.EMERGENCY: TaskPriority.EMERGENCY,
    Severity.URGENT: TaskPriority.URGENT,
    Severity.HIGH: TaskPriority.HIGH,
    Severity.NORMAL: TaskPriority.NORMAL,
    Severity.LOW: TaskPriority.LOW,
}


class AlreadyCompleted(Exception):
    """The response was completed before; it is not changed."""


class IncompleteResponse(ValueError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"required items unanswered: {', '.join(missing)}")
        self.missing = missing


def do_start_response(
    session: Session,
    *,
    version: QuestionnaireVersion,
    patient_id: int,
    channel: Channel,
    language: str,
    task: OutreachTask | None = None,
    now: datetime | None = None,
) -> QuestionnaireResponse:
    now = now or utcnow()
    response = QuestionnaireResponse(
        patient_id=patient_id,
        version_id=version.id,
        questionnaire_id=version.questionnaire_id,
        outreach_task_id=task.id if task else None,
        encounter_id=task.encounter_id if task else None,
        department_id=task.department_id if task else None,
        channel=channel,
        language=language,
        started_at=now,
        updated_at=now,
    )
    session.add(response)
    session.flush()
    return response


def answers_of(q: Questionnaire, response: QuestionnaireResponse) -> dict[str, AnswerValue]:
    return {key: from_json(q.item(key), raw) for key, raw in response.answers.items()}


def do_save_answers(
    session: Session,
    response: QuestionnaireResponse,
    q: Questionnaire,
    answers: dict[str, AnswerValue],
    *,
    skipped: list[str] | None = None,
    replace: bool = False,
    now: datetime | None = None,
) -> None:
    """Merge answers into the response, or replace them all (a whole form posted); answers that a
    changed earlier answer has disabled are dropped."""
    if response.status is ResponseStatus.COMPLETED:
        raise AlreadyCompleted
    merged = dict(answers) if replace else {**answers_of(q, response), **answers}
    kept = prune(q, merged)
    response.answers = {key: to_json(q.item(key), value) for key, value in kept.items()}
    if skipped is not None:
        response.skipped = sorted(set(skipped))
    response.updated_at = now or utcnow()


def do_complete_response(
    session: Session,
    response: QuestionnaireResponse,
    *,
    now: datetime | None = None,
) -> list[Finding]:
    """Score, raise one task for the response's findings (at the most severe one's priority), close the
    outreach task. Refuses if required answers are missing."""
    if response.status is ResponseStatus.COMPLETED:
        raise AlreadyCompleted
    now = now or utcnow()
    version = session.get(QuestionnaireVersion, response.version_id)
    assert version is not None
    q = definition_of(version)
    answers = answers_of(q, response)
    missing = missing_required(q, answers)
    if missing:
        raise IncompleteResponse(missing)
    result = evaluate(q, answers)
    response.scores = dict(result.scores)
    response.bands = {key: band.code for key, band in result.bands.items()}
    response.status = ResponseStatus.COMPLETED
    response.completed_at = response.updated_at = now
    findings = [
        Finding(
            response_id=response.id,
            code=finding.code,
            severity=finding.severity.value,
            items=list(finding.items),
            created_at=now,
        )
        for finding in result.findings
    ]
    sync_site_lexicon(session)  # the hospital's published red-flag phrases count in a form's words too
    findings.extend(_safety_findings(response, q, answers, now))
    if findings:
        # One task for the response, not one per finding: a nurse triages the form as a whole (the task
        # page lists every finding with its answers), at the priority of its most severe finding.
        worst = min(findings, key=lambda row: PRIORITY[Severity(row.severity)].rank)
        task = do_raise_task(
            session,
            kind=TaskKind.ABNORMAL_ANSWER,
            priority=PRIORITY[Severity(worst.severity)],
            title=f"{q.id}:{worst.code}",
            source=("response", response.id),
            patient_id=response.patient_id,
            department_id=response.department_id,
            now=now,
        )
        for row in findings:
            row.task_id = task.id
            session.add(row)
        for row in findings:
            if row.code.startswith(SAFETY_CODE):
                audit.record(
                    session,
                    "safety.emergency",
                    patient_id=response.patient_id,
                    subject=("response", response.id),
                    item=row.items[0],
                    category=row.code.removeprefix(SAFETY_CODE),
                    task_id=task.id,
                )
    if response.outreach_task_id is not None:
        task_row = session.get(OutreachTask, response.outreach_task_id)
        if task_row is not None and task_row.status.open:
            task_row.status, task_row.closed_reason, task_row.closed_at = (
                OutreachStatus.COMPLETED,
                "answered",
                now,
            )
    do_queue_results(session, response, now=now)  # written back to the hospital when configured
    session.flush()
    audit.record(
        session,
        "response.complete",
        patient_id=response.patient_id,
        subject=("response", response.id),
        questionnaire=q.id,
        findings=len(findings),
    )
    return findings


FREE_TEXT = (ItemType.SHORT_TEXT, ItemType.LONG_TEXT)


def _safety_findings(
    response: QuestionnaireResponse,
    q: Questionnaire,
    answers: dict[str, AnswerValue],
    now: datetime,
) -> list[Finding]:
    """A patient's own words in a free-text answer that describe an emergency: an emergency finding
    whatever the questionnaire's rules say (one is enough: staff read the whole response)."""
    for item in q.answerable():
        value = answers.get(item.id)
        hit = emergency_in(value, None) if item.type in FREE_TEXT and isinstance(value, str) else None
        if hit is None:
            continue
        code = f"{SAFETY_CODE}{hit.emergency.value if hit.emergency else 'emergency'}"
        return [
            Finding(
                response_id=response.id,
                code=code,
                severity=Severity.EMERGENCY.value,
                items=[item.id],
                created_at=now,
            )
        ]
    return []


def safety_finding(session: Session, response_id: int) -> str | None:
    """The category of the emergency the patient wrote in the response, if she wrote one (the done
    page then shows the guidance)."""
    code = session.scalar(
        sa.select(Finding.code).where(
            Finding.response_id == response_id, Finding.code.startswith(SAFETY_CODE)
        )
    )
    return None if code is None else code.removeprefix(SAFETY_CODE)


def summary(response: QuestionnaireResponse) -> dict[str, Any]:
    return {
        "id": response.id,
        "questionnaire": response.questionnaire_id,
        "status": response.status.value,
        "scores": response.scores,
        "bands": response.bands,
    }

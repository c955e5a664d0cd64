"""What the spot-check pages show: recent samples with their progress, a sample's rows, and one sampled
follow-up's answers (in the reviewer's language), findings and calls."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of
from backend.models import (
    Finding,
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    QuestionnaireVersion,
    SpotCheck,
    SpotCheckItem,
    VoiceCall,
)


@dataclass(frozen=True)
class RecentChecks:
    checks: list[SpotCheck]  # newest first
    progress: dict[int, int]  # check id -> items reviewed
    sizes: dict[int, int]  # check id -> items sampled


def recent_checks(session: Session, limit: int = 50) -> RecentChecks:
    checks = list(session.scalars(sa.select(SpotCheck).order_by(SpotCheck.id.desc()).limit(limit)))
    ids = [c.id for c in checks]

    def counts(counted: sa.ColumnElement[int]) -> dict[int, int]:
        return {
            check_id: n
            for check_id, n in session.execute(
                sa.select(SpotCheckItem.spot_check_id, counted)
                .where(SpotCheckItem.spot_check_id.in_(ids))
                .group_by(SpotCheckItem.spot_check_id)
            )
        }

    return RecentChecks(checks, counts(sa.func.count(SpotCheckItem.reviewed_at)), counts(sa.func.count()))


def check_rows(session: Session, check_id: int) -> list[sa.Row[SpotCheckItem, str, str, int]]:
    """(item, patient name, questionnaire, offset in days) of each sampled follow-up, in sample order."""
    return list(
        session.execute(
            sa.select(SpotCheckItem, Patient.name, OutreachTask.questionnaire_id, OutreachTask.offset_days)
            .join(Patient, Patient.id == SpotCheckItem.patient_id)
            .join(OutreachTask, OutreachTask.id == SpotCheckItem.outreach_task_id)
            .where(SpotCheckItem.spot_check_id == check_id)
            .order_by(SpotCheckItem.id)
        ).all()
    )


def answers_shown(
    session: Session, response: QuestionnaireResponse | None, lang: str
) -> list[tuple[str, str]]:
    """(question, answer) in the reviewer's language, option codes shown as their text."""
    if response is None:
        return []
    version = session.get(QuestionnaireVersion, response.version_id)
    assert version is not None
    q = definition_of(version)
    shown = []
    for item in q.answerable():
        if item.id not in response.answers:
            continue
        raw = response.answers[item.id]
        codes = raw if isinstance(raw, list) else [raw]
        texts = [
            (opt.text.get(lang) or next(iter(opt.text.values()))) if (opt := item.option(str(c))) else str(c)
            for c in codes
        ]
        shown.append((item.text.get(lang) or next(iter(item.text.values())), ", ".join(texts)))
    return shown


def findings_of(session: Session, response: QuestionnaireResponse | None) -> list[Finding]:
    if response is None:
        return []
    return list(session.scalars(sa.select(Finding).where(Finding.response_id == response.id)))


def calls_of(session: Session, item: SpotCheckItem) -> list[VoiceCall]:
    """The voice calls of the sampled follow-up, in the order they were placed."""
    return list(
        session.scalars(
            sa.select(VoiceCall)
            .where(VoiceCall.outreach_task_id == item.outreach_task_id)
            .order_by(VoiceCall.created_at, VoiceCall.id)
        )
    )

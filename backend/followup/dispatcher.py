"""The dispatcher: send due follow-ups, re-checking eligibility, resending, falling back, recording loss."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.followup.catalog import definition_of, latest_version
from backend.followup.eligibility import channel_address, quiet_until, readmitted_since
from backend.followup.invite import do_send_form_invite
from backend.followup.plan_control import pinned_plan
from backend.followup.responses import do_start_response
from backend.models import (
    Encounter,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.outbox.sender import kick
from backend.services.consents import has_consent
from backend.services.tasks import do_raise_task
from backend.voice.campaign import do_queue_call
from backend.voice.redial import pending_call
from bots.domain import Channel, ConsentPurpose, pick_language

log = logging.getLogger(__name__)
WAIT_FOR_OTHER_SURVEY = timedelta(hours=1)


def _close(task: OutreachTask, status: OutreachStatus, reason: str, now: datetime) -> str:
    task.status, task.closed_reason, task.closed_at = status, reason, now
    return f"{status.value}:{reason}"


def _send(
    session: Session,
    task: OutreachTask,
    patient: Patient,
    channel: Channel,
    address: str,
    now: datetime,
    queued: list[int],
) -> None:
    response = session.scalars(
        sa.select(QuestionnaireResponse).where(QuestionnaireResponse.outreach_task_id == task.id)
    ).first()
    if channel is Channel.VOICE:  # a call, placed by the campaign dialer when its gates allow
        do_queue_call(session, task=task, patient=patient, now=now)
        return
    lang = pick_language(patient.language)
    if response is None:
        version = latest_version(session, task.questionnaire_id)
        if version is None:
            raise LookupError(f"questionnaire {task.questionnaire_id} is not published")
        # An imported form written in one language is sent in that language, page and questions alike,
        # rather than its stand-in texts under another language's page.
        lang = definition_of(version).language_for(lang)
        response = do_start_response(
            session,
            version=version,
            patient_id=patient.id,
            channel=channel,
            language=lang,
            task=task,
            now=now,
        )
    item_id = do_send_form_invite(
        session, response=response, channel=channel, address=address, lang=lang, now=now
    )
    if item_id is not None:
        queued.append(item_id)


def dispatch_one(session: Session, task_id: int, now: datetime, queued: list[int] | None = None) -> str:
    """Handle one due task; returns what happened (for logs and tests). Outbox ids to send after the
    commit are appended to `queued`."""
    task = session.scalars(
        sa.select(OutreachTask).where(OutreachTask.id == task_id).with_for_update(skip_locked=True)
    ).first()
    if task is None or not task.status.open or task.next_attempt_at > now:
        return "skipped"
    current = session.get(FollowUpPlan, task.plan_id)
    patient = session.get(Patient, task.patient_id)
    encounter = session.get(Encounter, task.encounter_id)
    if current is None or patient is None or encounter is None:
        return _close(task, OutreachStatus.CANCELLED, "missing", now)
    if not current.active:  # paused: nothing goes out; the task goes on where it was when resumed
        task.next_attempt_at = now + WAIT_FOR_OTHER_SURVEY
        return "waiting:paused"
    plan = pinned_plan(session, current, task.plan_revision)
    for flag in plan.excluded_flags:
        if getattr(patient, flag, False):
            return _close(task, OutreachStatus.CANCELLED, flag, now)
    anchor = encounter.ended_at or encounter.started_at
    if readmitted_since(session, patient.id, anchor):
        return _close(task, OutreachStatus.CANCELLED, "readmitted", now)
    other_waiting = session.scalar(
        sa.select(sa.func.count())
        .select_from(OutreachTask)
        .where(
            OutreachTask.patient_id == patient.id,
            OutreachTask.status == OutreachStatus.SENT,
            OutreachTask.id != task.id,
        )
    )
    if other_waiting:  # one survey at a time: never interleave two questionnaires
        task.next_attempt_at = now + WAIT_FOR_OTHER_SURVEY
        return "waiting"
    if task.last_channel is Channel.VOICE and pending_call(session, task.id, now) is not None:
        task.next_attempt_at = now + WAIT_FOR_OTHER_SURVEY  # the dialer has it, or it is under way
        return "waiting:call"
    index, attempts = task.channel_index, task.attempts
    if task.status is OutreachStatus.SENT and attempts >= plan.attempts_per_channel:
        index, attempts = index + 1, 0
    while index < len(plan.channels):
        channel = Channel(plan.channels[index])
        address = channel_address(patient, channel)
        if address is not None and has_consent(session, patient.id, ConsentPurpose.CARE, channel):
            break
        index, attempts = index + 1, 0
    else:
        outcome = _close(task, OutreachStatus.LOST, "no_answer" if task.last_sent_at else "unreachable", now)
        do_raise_task(
            session,
            kind=TaskKind.LOSS_TO_FOLLOW_UP,
            priority=TaskPriority.NORMAL,
            title=f"{task.questionnaire_id}:lost",
            source=("outreach_task", task.id),
            patient_id=patient.id,
            department_id=task.department_id,
            now=now,
        )
        return outcome
    task.channel_index, task.attempts = index, attempts
    quiet = quiet_until(patient, now)
    if quiet is not None:
        task.next_attempt_at = quiet
        return "quiet_hours"
    _send(session, task, patient, channel, address, now, queued if queued is not None else [])
    task.status, task.attempts, task.last_sent_at, task.last_channel = (
        OutreachStatus.SENT,
        attempts + 1,
        now,
        channel,
    )
    task.next_attempt_at = now + timedelta(hours=plan.resend_after_hours)
    return f"sent:{channel.value}"


def dispatch_due(now: datetime | None = None, limit: int = 500) -> Counter[str]:
    """Job entry point: each due task in its own transaction, so one failure loses nothing else."""
    now = now or utcnow()
    with session_scope() as session:
        ids = list(
            session.scalars(
                sa.select(OutreachTask.id)
                .where(
                    OutreachTask.status.in_([OutreachStatus.SCHEDULED, OutreachStatus.SENT]),
                    OutreachTask.next_attempt_at <= now,
                )
                .order_by(OutreachTask.next_attempt_at, OutreachTask.id)
                .limit(limit)
            )
        )
    outcomes: Counter[str] = Counter()
    for task_id in ids:
        queued: list[int] = []
        try:
            with session_scope() as session:
                outcomes[dispatch_one(session, task_id, now, queued)] += 1
            for item_id in queued:
                kick(item_id)
        except Exception:
            log.exception("dispatch of outreach task %s failed; it stays due", task_id)
            outcomes["error"] += 1
    log.info("dispatcher %s", dict(outcomes))
    return outcomes

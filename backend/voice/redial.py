"""The redial policy's timing: a call that reached nobody brings its outreach task forward.

The policy itself is the dispatcher's: up to the plan's `attempts_per_channel` calls, then the plan's
next channel, then loss to follow-up with a review task. A call that ended without reaching the patient
(no answer, busy, an answering machine, hung up mid-survey, refused by the gateway) makes its task due
again `voice_redial_after_hours` after the call instead of after the plan's resend delay; a call the
dialer would not place (consent, exclusions) makes it due at once, so the dispatcher moves on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import OutreachStatus, OutreachTask, VoiceCall
from backend.services import audit
from voice_ai.call_events import FINAL, Outcome

STALE_AFTER = timedelta(hours=6)  # a call with no final status after this is not waited for any more
REDIAL_OUTCOMES = frozenset({None, Outcome.INCOMPLETE, Outcome.MACHINE})


def pending_call(session: Session, task_id: int, now: datetime) -> VoiceCall | None:
    """The task's call that is queued or under way (not final), if any."""
    found: VoiceCall | None = session.scalars(
        sa.select(VoiceCall)
        .where(
            VoiceCall.outreach_task_id == task_id,
            VoiceCall.state.not_in(list(FINAL)),
            # queued (perhaps deferred to the morning) is waited for; placed and silent for hours is not
            sa.or_(VoiceCall.placed_at.is_(None), VoiceCall.placed_at > now - STALE_AFTER),
        )
        .order_by(VoiceCall.id.desc())
        .limit(1)
    ).first()
    return found


def do_schedule_redial(session: Session, call: VoiceCall, now: datetime) -> bool:
    """Called whenever a call reaches its end. Returns whether the task was brought forward."""
    if call.outreach_task_id is None or call.state not in FINAL or call.outcome not in REDIAL_OUTCOMES:
        return False
    task = session.get(OutreachTask, call.outreach_task_id)
    if task is None or task.status is not OutreachStatus.SENT:
        return False
    due = now if call.skip_reason else now + timedelta(hours=get_settings().voice_redial_after_hours)
    if task.next_attempt_at <= due:
        return False
    task.next_attempt_at = due
    audit.record(
        session,
        "voice.redial_scheduled",
        patient_id=call.patient_id,
        subject=("voice_call", call.id),
        state=call.state.value,
        outcome=call.outcome.value if call.outcome else None,
        attempt=call.attempt,
    )
    return True

"""Campaigns of calls: a follow-up plan's voice step becomes a queued call for the dialer.

A campaign is a follow-up plan (`VoiceCall.plan_id`); the dispatcher decides when a task is due and on
which channel (backend/followup/dispatcher.py), the dialer when a queued call is placed
(backend/voice/dial_due.py), and backend/voice/redial.py when a call that reached nobody is tried again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import OutreachTask, Patient, VoiceCall
from backend.voice.calls import do_create_call


def do_queue_call(session: Session, *, task: OutreachTask, patient: Patient, now: datetime) -> VoiceCall:
    """The dispatcher's send on the voice channel: a queued call the dialer places when it may."""
    return do_create_call(
        session,
        patient=patient,
        questionnaire_id=task.questionnaire_id,
        gateway=get_settings().voice_gateway,
        task=task,
        now=now,
        dial_after=now,
    )

"""Is the hospital's HL7 feed alive? A feed silent for too long in working hours raises one staff task
and turns the health probe red, because a stopped interface means discharges silently stop becoming
follow-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.models import Hl7Message, Task, TaskKind, TaskPriority
from backend.models.base import utcnow
from backend.models.tasks import not_closed
from backend.services.tasks import do_raise_task

SILENCE_TITLE = "hl7:feed_silent"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    last_received_at: datetime | None  # None: no feed has ever sent anything (not configured yet)
    silent_for: timedelta | None
    working_hours: bool
    alert: bool


def feed_status(session: Session, settings: Settings, now: datetime | None = None) -> FeedStatus:
    now = now or utcnow()
    last = session.scalar(sa.select(sa.func.max(Hl7Message.received_at)))
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=ZoneInfo("UTC"))  # SQLite's max() bypasses the column type
    start, end = settings.hl7_working_hours
    working = start <= now.astimezone(ZoneInfo(settings.default_timezone)).hour < end
    silent_for = None if last is None else now - last
    threshold = timedelta(minutes=settings.hl7_silence_alert_minutes)
    alert = bool(
        settings.hl7_silence_alert_minutes and working and silent_for is not None and silent_for > threshold
    )
    return FeedStatus(last_received_at=last, silent_for=silent_for, working_hours=working, alert=alert)


def check_feed(session: Session, settings: Settings, now: datetime | None = None) -> Task | None:
    """Raise the silence task when the feed is silent, unless one is still open; returns it if new."""
    status = feed_status(session, settings, now)
    if not status.alert:
        return None
    open_task = session.scalar(
        sa.select(Task.id).where(Task.kind == TaskKind.INTEGRATION, Task.title == SILENCE_TITLE, not_closed())
    )
    if open_task is not None:
        return None
    last_id = session.scalar(sa.select(sa.func.max(Hl7Message.id))) or 0
    return do_raise_task(
        session,
        kind=TaskKind.INTEGRATION,
        priority=TaskPriority.HIGH,
        title=SILENCE_TITLE,
        source=("hl7_message", last_id),
        patient_id=None,
        department_id=None,
        now=now,
    )

"""Figures for the voice monitoring page: calls up now, today's coverage and rates, per-campaign progress.

Today is the hospital's day (`default_timezone`). Definitions, over today's calls (created, placed or
due today) in the viewer's departments (a call's department is its response's):
- due: dialled, refused by the gates, or queued with its dial time passed; attempted: placed at the gateway
- connect rate: answered ÷ attempted; machine rate: answered by a machine ÷ attempted
- completion: surveys finished ÷ calls a person answered
- valid record: finished calls whose every spoken answer was recognised with confidence at or above
  `voice_valid_confidence` (keypad answers are certain) ÷ finished calls
- alert rate: finished calls whose response raised a finding ÷ finished calls
- hand-off rate: calls that raised a staff callback ÷ calls a person answered
- recognition fallback rate: recognitions that heard nothing in the grammar ÷ (those + spoken answers)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Finding, FollowUpPlan, QuestionnaireResponse, VoiceCall
from backend.voice.dial_due import UP_AT_MOST
from voice_ai.call_events import FINAL, AnswerVia, CallState, Outcome
from voice_ai.gateway import AnsweredBy


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Tally:
    """Counts over a set of calls; the rates are properties so the page and the tests share them."""

    due: int = 0
    attempted: int = 0
    skipped: int = 0
    connected: int = 0  # answered by anyone
    human: int = 0
    machine: int = 0
    completed: int = 0
    valid: int = 0
    alerts: int = 0
    handoffs: int = 0
    queued: int = 0
    seconds: int = 0
    timed: int = 0
    spoken: int = 0
    fallbacks: int = 0

    @property
    def coverage(self) -> float | None:
        return _rate(self.attempted, self.due)

    @property
    def connect_rate(self) -> float | None:
        return _rate(self.connected, self.attempted)

    @property
    def machine_rate(self) -> float | None:
        return _rate(self.machine, self.attempted)

    @property
    def completion_rate(self) -> float | None:
        return _rate(self.completed, self.human)

    @property
    def valid_rate(self) -> float | None:
        return _rate(self.valid, self.completed)

    @property
    def alert_rate(self) -> float | None:
        return _rate(self.alerts, self.completed)

    @property
    def handoff_rate(self) -> float | None:
        return _rate(self.handoffs, self.human)

    @property
    def fallback_rate(self) -> float | None:
        return _rate(self.fallbacks, self.spoken + self.fallbacks)

    @property
    def average_seconds(self) -> float | None:
        return self.seconds / self.timed if self.timed else None


@dataclass
class VoiceReport:
    running: int
    today: Tally
    campaigns: list[tuple[str, Tally]] = field(default_factory=list)
    since: datetime | None = None


def day_start(now: datetime) -> datetime:
    zone = ZoneInfo(get_settings().default_timezone)
    return datetime.combine(now.astimezone(zone).date(), time(), tzinfo=zone).astimezone(now.tzinfo)


def _count(tally: Tally, call: Any, alerted: bool, threshold: float, now: datetime) -> None:
    if call.placed_at is not None:
        tally.attempted += 1
    elif call.skip_reason is not None:
        tally.skipped += 1
    elif call.state is CallState.QUEUED and (call.dial_after or call.created_at) > now:
        return  # due later (quiet hours, a redial in the afternoon): not due yet
    elif call.state is CallState.QUEUED:
        tally.queued += 1
    tally.due += 1
    if call.answered_at is None and call.answered_by is None:
        return
    tally.connected += 1
    if call.answered_by is AnsweredBy.MACHINE or call.outcome is Outcome.MACHINE:
        tally.machine += 1
        return
    tally.human += 1
    if call.duration_seconds is not None:
        tally.seconds, tally.timed = tally.seconds + call.duration_seconds, tally.timed + 1
    spoken = [t for t in call.transcripts or [] if t.get("via") == AnswerVia.SPEECH]
    tally.spoken, tally.fallbacks = tally.spoken + len(spoken), tally.fallbacks + (call.fallbacks or 0)
    if call.callback_task_id is not None:
        tally.handoffs += 1
    if call.outcome is Outcome.COMPLETED:
        tally.completed += 1
        tally.alerts += alerted
        tally.valid += all((t.get("confidence") or 0) >= threshold for t in spoken)


def voice_report(session: Session, now: datetime, departments: Collection[int] | None) -> VoiceReport:
    """`departments` None: every department (calls with no department are seen only then)."""
    start = day_start(now)
    scope: list[Any] = []
    if departments is not None:
        scope.append(QuestionnaireResponse.department_id.in_(list(departments) or [-1]))
    base = sa.select(VoiceCall, FollowUpPlan.name).outerjoin(
        QuestionnaireResponse, QuestionnaireResponse.id == VoiceCall.response_id
    )
    calls = session.execute(
        base.outerjoin(FollowUpPlan, FollowUpPlan.id == VoiceCall.plan_id)
        .where(
            sa.or_(
                VoiceCall.created_at >= start,
                VoiceCall.placed_at >= start,
                sa.and_(VoiceCall.state == CallState.QUEUED, VoiceCall.placed_at.is_(None)),
            ),
            *scope,
        )
        .order_by(VoiceCall.id)
    ).all()
    response_ids = [c.response_id for c, _ in calls if c.response_id is not None]
    alerted = set(
        session.scalars(
            sa.select(Finding.response_id).where(Finding.response_id.in_(response_ids)).distinct()
        )
        if response_ids
        else []
    )
    running = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(VoiceCall)
            .outerjoin(QuestionnaireResponse, QuestionnaireResponse.id == VoiceCall.response_id)
            .where(
                VoiceCall.placed_at > now - UP_AT_MOST,
                VoiceCall.state.not_in(list(FINAL)),
                *scope,
            )
        )
        or 0
    )
    threshold = get_settings().voice_valid_confidence
    today, campaigns = Tally(), dict[str, Tally]()
    for call, plan_name in calls:
        hit = call.response_id in alerted
        _count(today, call, hit, threshold, now)
        _count(campaigns.setdefault(plan_name or "", Tally()), call, hit, threshold, now)
    return VoiceReport(running, today, sorted(campaigns.items()), start)

"""The campaign dialer's periodic job: place due queued calls, within the concurrency limit and the
calls-per-second rate, after the outbox's own gates (consent, exclusion lists, reachability, quiet
hours in the patient's zone, the daily contact cap) say yes at the moment of dialling."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.app.single_runner import single_runner
from backend.models import Patient, VoiceCall
from backend.models.base import utcnow
from backend.outbox.gates import Action
from backend.outbox.overrides import effective_settings
from backend.services.patient_record import preflight
from backend.voice.calls import do_defer_call, do_skip_call
from backend.voice.dialer import defer_outside_window, dial, gateway_from_settings, site_rules
from backend.voice.redial import do_schedule_redial
from bots.domain import Channel
from voice_ai.call_events import FINAL, CallState
from voice_ai.gateway import Gateway, GatewayName

log = logging.getLogger(__name__)
DIAL_INTERVAL_SECONDS = 15  # how often the job runs (app/periodic.py); one run dials at most this long
UP_AT_MOST = timedelta(hours=2)  # a placed call with no final status after this no longer holds a line
CANDIDATES = 200


class Pacer:
    """At most `per_second` placements per second: waits before a placement that would come too soon."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gap, self.clock, self.sleep = 1.0 / per_second, clock, sleep
        self._last: float | None = None

    def wait(self) -> None:
        if self._last is not None:
            ahead = self._last + self.gap - self.clock()
            if ahead > 0:
                self.sleep(ahead)
        self._last = self.clock()


def calls_up(session: Session, now: datetime) -> int:
    """Calls placed at the gateway and not yet over: what the concurrency limit counts."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(VoiceCall)
            .where(
                VoiceCall.placed_at.is_not(None),
                VoiceCall.placed_at > now - UP_AT_MOST,
                VoiceCall.state.not_in(list(FINAL)),
            )
        )
        or 0
    )


def due_calls(session: Session, now: datetime, limit: int = CANDIDATES) -> list[int]:
    return list(
        session.scalars(
            sa.select(VoiceCall.id)
            .where(
                VoiceCall.state == CallState.QUEUED,
                VoiceCall.provider_id.is_(None),
                VoiceCall.placed_at.is_(None),
                sa.or_(VoiceCall.dial_after.is_(None), VoiceCall.dial_after <= now),
            )
            .order_by(sa.func.coalesce(VoiceCall.dial_after, VoiceCall.created_at), VoiceCall.id)
            .limit(limit)
        )
    )


def dial_one(
    session: Session,
    call_id: int,
    gateway: Gateway,
    now: datetime,
    pacer: Pacer,
    settings: Settings | None = None,
) -> str:
    """Re-check one due call and place it. Returns what happened, for logs and tests."""
    settings = settings or get_settings()
    call = session.scalars(
        sa.select(VoiceCall).where(VoiceCall.id == call_id).with_for_update(skip_locked=True)
    ).first()
    if call is None or call.state is not CallState.QUEUED or call.placed_at is not None:
        return "skipped"
    patient = session.get(Patient, call.patient_id)
    if patient is None:
        do_skip_call(session, call, "unknown_patient", now)
        return "suppressed:unknown_patient"
    verdict = preflight(session, patient, Channel.VOICE, now)
    if verdict.action is Action.SUPPRESS:
        do_skip_call(session, call, verdict.reason or "not_allowed", now)
        return f"suppressed:{verdict.reason}"
    if verdict.action is Action.DEFER:
        do_defer_call(session, call, verdict.until, verdict.reason or "not_now")
        return f"deferred:{verdict.reason}"
    # The window is checked before pacing too: a call that waits for its window takes no dialling slot.
    if defer_outside_window(session, call, site_rules(session, call, settings), now):
        return "deferred:call_window"
    pacer.wait()
    outcome = dial(session, call, gateway, settings, now=now)
    if outcome.startswith("deferred:"):
        return outcome
    if outcome != "placed":
        do_schedule_redial(session, call, now)
    return outcome.split(":")[0]


def dial_due_calls(
    now: datetime | None = None, *, gateway: Gateway | None = None, pacer: Pacer | None = None
) -> Counter[str]:
    """Periodic job: each due call in its own transaction, so one failure loses nothing else. Stops when
    the lines are full or this run's share of the rate (`DIAL_INTERVAL_SECONDS` of it) is used. One run
    at a time across processes (a run that overlaps another does nothing): two would each count the
    same free lines."""
    with single_runner("voice-dialer") as mine:
        if not mine:
            return Counter({"another_run_dialling": 1})
        return _dial_due_calls(now or utcnow(), gateway, pacer)


def run_dialer(stop: threading.Event, interval: float = DIAL_INTERVAL_SECONDS) -> None:
    """The dialer in a process of its own, until `stop` is set: for gateways whose calls live in the
    process that placed them (SIP), which an RQ job's short-lived child is not. On the way out, calls
    still up are hung up (BYE), not dropped."""
    from backend.voice.dialer import close_sip_gateway

    try:
        while not stop.is_set():
            try:
                dial_due_calls()
            except Exception:  # a database outage: the next round tries again
                log.exception("voice dialer round failed")
            stop.wait(interval)
    finally:
        close_sip_gateway()


def in_own_process(settings: Settings) -> bool:
    """Whether this gateway's dialer runs in `careloop voice-dialer` rather than as a periodic job: a
    SIP gateway's calls die with the process that placed them, and with Redis the periodic jobs run in
    RQ's forked, short-lived children. Without Redis they run on the server's own ticker thread."""
    return settings.voice_gateway is GatewayName.SIP and bool(settings.redis_url)


def _dial_due_calls(now: datetime, gateway: Gateway | None, pacer: Pacer | None) -> Counter[str]:
    settings = get_settings()
    with session_scope() as session:
        free = settings.voice_max_concurrent_calls - calls_up(session, now)
        ids = due_calls(session, now) if free > 0 else []
    outcomes: Counter[str] = Counter()
    if not ids:
        outcomes["lines_full" if free <= 0 else "none_due"] += 1
        return outcomes
    budget = min(free, max(1, int(settings.voice_calls_per_second * DIAL_INTERVAL_SECONDS)))
    if gateway is None:
        try:
            gateway = gateway_from_settings(effective_settings())  # the console's credentials over the env's
        except RuntimeError as exc:  # the simulated gateway is built by tests and benches, not settings
            log.warning("voice dialer idle: %s", exc)
            outcomes["no_gateway"] = len(ids)
            return outcomes
    pacer = pacer or Pacer(settings.voice_calls_per_second)
    for call_id in ids:
        if outcomes["placed"] >= budget:
            outcomes["left_for_next_run"] = len(ids) - sum(outcomes.values())
            break
        try:
            with session_scope() as session:
                outcomes[dial_one(session, call_id, gateway, now, pacer, settings)] += 1
        except Exception:
            log.exception("dialling voice call %s failed; it stays queued", call_id)
            outcomes["error"] += 1
    log.info("voice dialer %s", dict(outcomes))
    return outcomes

"""Periodic jobs and their intervals: run by RQ's cron scheduler, or by a thread in inline mode."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from backend.app.db import session_scope
from backend.app.jobs import enqueue
from backend.app.settings import get_settings
from backend.models import Direction, LoginAttempt, Message, MessageStatus, StaffSession
from backend.models.base import utcnow
from backend.services.inbox import escalate_breached_tasks
from backend.services.schedules import generate_all_slots

log = logging.getLogger(__name__)
STUCK_AFTER = timedelta(seconds=30)


def retry_pending_turns() -> int:
    """Inbound messages stored but not handled (a worker died, Redis blinked): run their turns again."""
    from backend.dialogue.turns import queue_turn

    cutoff = utcnow() - STUCK_AFTER
    with session_scope() as session:
        ids = list(
            session.scalars(
                sa.select(Message.conversation_id)
                .where(
                    Message.direction == Direction.INBOUND,
                    Message.status == MessageStatus.RECEIVED,
                    Message.created_at < cutoff,
                )
                .distinct()
            )
        )
    # a conversation whose turn is still queued (a backlog) gets no second one
    return sum(queue_turn(conversation_id, unless_queued=True) for conversation_id in ids)


def fetch_missing_media() -> int:
    """Patients' images and voice notes whose fetch job was lost: fetched again."""
    from backend.messaging.media import fetch_inbound_media, messages_missing_media

    with session_scope() as session:
        ids = messages_missing_media(session, utcnow())
    for message_id in ids:
        enqueue(fetch_inbound_media, message_id)
    return len(ids)


def end_idle_sessions() -> int:
    settings = get_settings()
    now = utcnow()
    cutoff = now - timedelta(minutes=settings.session_idle_minutes)
    born_before = now - timedelta(hours=settings.session_max_hours)
    with session_scope() as session:
        result = session.execute(
            sa.update(StaffSession)
            .where(
                StaffSession.ended_at.is_(None),
                sa.or_(StaffSession.last_seen_at < cutoff, StaffSession.created_at < born_before),
            )
            .values(ended_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def prune_login_attempts() -> int:
    cutoff = utcnow() - timedelta(days=90)
    with session_scope() as session:
        result = session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def plan_follow_ups() -> int:
    """The planner is idempotent (one task per plan, encounter and offset), so running it hourly only
    picks up encounters the HIS delivered late."""
    from backend.followup.planner import run_planner

    with session_scope() as session:
        return run_planner(session)


def dispatch_follow_ups() -> int:
    from backend.followup.dispatcher import dispatch_due

    return sum(dispatch_due().values())


def send_due_messages() -> int:
    """The outbox's sweep: deferred items whose time has come, retries, leases that expired."""
    from backend.outbox.sender import drain_outbox

    return sum(drain_outbox().values())


def dial_due_calls() -> int:
    """The campaign dialer: queued calls whose time has come, within the line and rate limits (SIP
    calls with Redis: `careloop voice-dialer` dials them, see in_own_process)."""
    from backend.voice.dial_due import dial_due_calls as run
    from backend.voice.dial_due import in_own_process

    if in_own_process(get_settings()):
        return 0
    return run().get("placed", 0)


def enforce_retention() -> int:
    """Retention per kind of data (messages, recordings, HL7 payloads, files, work logs), in batches."""
    from backend.privacy.retention import enforce

    return sum(enforce().values())


def seal_audit_rows() -> int:
    """Committed audit rows added to the hash chain, a short transaction per batch (writers never wait)."""
    from backend.security.audit_chain import run_sealer

    return run_sealer()


def apply_audit_retention() -> int:
    """Audit rows past CARELOOP_AUDIT_RETENTION_DAYS, removed in whole segments behind signed
    checkpoints, a short transaction each; a segment that does not verify is left whole (and logged).
    Rows waiting for the sealer are sealed first, so the cut sees every committed row."""
    from backend.security.audit_chain import run_sealer
    from backend.security.audit_verify import do_apply_audit_retention

    settings = get_settings()
    run_sealer()
    total = 0
    while True:
        with session_scope() as session:
            pruned = do_apply_audit_retention(
                session, settings.audit_keys, retention_days=settings.audit_retention_days
            )
        total += pruned.removed
        if pruned.refused:
            log.error("audit retention refused: %s", pruned.refused)
        if not pruned.removed:
            return total


def resume_lost_work() -> int:
    """Long work (imports, batch sends) whose worker died or was never launched: started again."""
    from backend.work.runs import resume_lost_work as resume

    return resume()


def check_hl7_feed() -> int:
    """A staff task when the HL7 feed has been silent too long in working hours (see integration/feed.py)."""
    from backend.integration.feed import check_feed

    with session_scope() as session:
        return int(check_feed(session, get_settings()) is not None)


def scheduler_heartbeat() -> int:
    """Proves the scheduler runs: the system health page reads how long ago this last ran."""
    from backend.admin.health_facts import do_beat

    with session_scope() as session:
        do_beat(session)
    return 1


def publish_scheduled_content() -> int:
    """Approved content revisions whose scheduled publish time has come."""
    from backend.content.revisions import publish_due

    with session_scope() as session:
        return publish_due(session)


def start_scheduled_batches() -> int:
    """Outreach batches scheduled for a time that has come: their send jobs start."""
    from backend.outreach.batches import start_scheduled_batches as due_batches
    from backend.work.runs import launch

    with session_scope() as session:
        jobs = due_batches(session)
    for job_id in jobs:
        launch(job_id)  # after the commit: the worker must find the job and the batch's state
    return len(jobs)


def pull_his_sources() -> int:
    """HIS sources whose pull is due, and the confirms of those that apply on their own."""
    from backend.imports.his_runs import due_pulls
    from backend.models.base import utcnow
    from backend.work.runs import launch

    with session_scope() as session:
        jobs = due_pulls(session, utcnow())
    for job_id in jobs:
        launch(job_id)  # after the commit, as for batches
    return len(jobs)


def deliver_results() -> int:
    """Follow-up results due to the hospital's MLLP listener or FHIR server: sent, or retried later."""
    from backend.integration.results import deliver_due

    sweep = deliver_due()
    return sweep.delivered + sweep.retrying + sweep.failed


PERIODIC: tuple[tuple[Callable[[], int], int], ...] = (
    (scheduler_heartbeat, 60),  # backend.admin.health.BEAT_WARN: two missed beats
    (retry_pending_turns, 60),
    (fetch_missing_media, 300),
    (send_due_messages, 30),
    (plan_follow_ups, 3600),
    (dispatch_follow_ups, 60),
    (dial_due_calls, 15),  # backend.voice.dial_due.DIAL_INTERVAL_SECONDS
    (escalate_breached_tasks, 60),
    (end_idle_sessions, 300),
    (prune_login_attempts, 86400),
    (enforce_retention, 3600),  # HL7 purge included; every kind in short batches
    (seal_audit_rows, 5),  # CARELOOP_AUDIT_SEAL_SECONDS replaces this when the jobs are registered
    (apply_audit_retention, 86400),
    (check_hl7_feed, 300),
    (deliver_results, 15),
    (resume_lost_work, 60),
    (generate_all_slots, 3600),  # idempotent: keeps doctors' slots GENERATE_DAYS ahead
    (publish_scheduled_content, 60),
    (start_scheduled_batches, 60),
    (pull_his_sources, 60),  # each source's own interval decides; this only looks
)


def intervals() -> list[tuple[Callable[[], int], int]]:
    """PERIODIC with the intervals the settings choose."""
    seal_seconds = get_settings().audit_seal_seconds
    return [(func, seal_seconds if func is seal_audit_rows else interval) for func, interval in PERIODIC]


def register_cron(scheduler: object, queue_name: str) -> None:
    for func, interval in intervals():
        scheduler.register(func, queue_name, interval=interval)  # type: ignore[attr-defined]


class InlineTicker(threading.Thread):
    """Without Redis: the same periodic jobs on a daemon thread of the server process."""

    def __init__(self, tick_seconds: float = 5.0) -> None:
        super().__init__(name="careloop-periodic", daemon=True)
        self._tick = tick_seconds
        self._stop_event = threading.Event()
        self._due = {func.__name__: 0.0 for func, _ in PERIODIC}

    def run(self) -> None:
        jobs = intervals()
        while not self._stop_event.wait(self._tick):
            now = time.monotonic()
            for func, interval in jobs:
                if now >= self._due[func.__name__]:
                    self._due[func.__name__] = now + interval
                    try:
                        func()
                    except Exception:
                        log.exception("periodic job %s failed", func.__name__)

    def stop(self) -> None:
        self._stop_event.set()

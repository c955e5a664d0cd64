"""Queues by urgency through a real Redis and a real `careloop worker`; periodic jobs and swept turns
queued once; the same calls inline without Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from backend.app.cron import OneCopyScheduler
from backend.app.jobs import enqueue
from backend.app.periodic import retry_pending_turns
from backend.app.queues import JobQueue
from backend.dialogue.turns import queue_turn
from backend.models import Direction, Message, MessageStatus
from backend.models.base import utcnow
from tests import factories
from tests.backend.app.queue_probe import PROBE_KEY, note
from tests.conftest import reset_caches

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    name = f"careloop-q-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CARELOOP_JOB_QUEUE", name)
    reset_caches()
    connection = Redis.from_url(REDIS_URL)
    connection.delete(PROBE_KEY)
    yield name
    for kind in JobQueue:
        Queue(_name(name, kind), connection=connection).empty()
    connection.delete(PROBE_KEY, *connection.keys(f"{name}:queued:*"))


def _name(prefix: str, kind: JobQueue) -> str:
    return prefix if kind is JobQueue.DEFAULT else f"{prefix}-{kind.value}"


def _count(prefix: str, kind: JobQueue) -> int:
    return int(Queue(_name(prefix, kind), connection=Redis.from_url(REDIS_URL)).count)


def _run_worker(**env: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "worker", "--burst"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _ran() -> list[str]:
    return [label.decode() for label in Redis.from_url(REDIS_URL).lrange(PROBE_KEY, 0, -1)]


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # Redis is under test, not the database
def test_worker_takes_upkeep_then_sends_then_turns_then_the_rest(prefix: str) -> None:
    # queued least urgent first, two of each: the worker must still take them most urgent first
    for kind in (JobQueue.DEFAULT, JobQueue.TURNS, JobQueue.SENDS, JobQueue.SYSTEM) * 2:
        assert enqueue(note, kind.value, queue=kind)
    _run_worker()
    assert _ran() == ["system", "system", "sends", "sends", "turns", "turns", "default", "default"]
    assert all(_count(prefix, kind) == 0 for kind in JobQueue)


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_worker_serves_the_queues_it_is_given_in_that_order(prefix: str) -> None:
    for kind in JobQueue:
        enqueue(note, kind.value, queue=kind)
    _run_worker(CARELOOP_WORKER_QUEUES="turns,system")
    assert _ran() == ["turns", "system"]
    # the queues this worker does not serve keep their jobs for the workers that do
    assert (_count(prefix, JobQueue.SENDS), _count(prefix, JobQueue.DEFAULT)) == (1, 1)


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_periodic_job_still_queued_is_not_queued_again(prefix: str) -> None:
    scheduler = OneCopyScheduler(connection=Redis.from_url(REDIS_URL))
    cron_job = scheduler.register(
        note, _name(prefix, JobQueue.SYSTEM), args=("sweep",), interval=60, name=f"{prefix}-sweep"
    )
    assert scheduler.enqueue_jobs() == [cron_job]
    for _ in range(3):  # due again and again while the first copy waits behind a backlog
        cron_job.next_enqueue_time = utcnow() - timedelta(seconds=1)
        assert scheduler.enqueue_jobs() == []
    assert _count(prefix, JobQueue.SYSTEM) == 1
    _run_worker()
    assert _ran() == ["sweep"]
    cron_job.next_enqueue_time = utcnow() - timedelta(seconds=1)
    assert scheduler.enqueue_jobs() == [cron_job]  # the copy ran: the next one is queued
    assert _count(prefix, JobQueue.SYSTEM) == 1


def _stale_message(db: Session) -> int:
    from backend.services.conversations import get_or_create_conversation, store_inbound_row
    from channels import webchat

    person = factories.patient(db)
    conversation = get_or_create_conversation(
        db, patient_id=person.id, channel=webchat.Channel.WEBCHAT, address=webchat.address_for(person.id)
    )
    stale = webchat.inbound_from_post(
        patient_id=person.id,
        text="hello",
        choice=None,
        client_id=f"stale-{uuid.uuid4().hex[:8]}",
        received_at=utcnow() - timedelta(minutes=5),
        max_bytes=4096,
    )
    store_inbound_row(db, conversation.id, stale, MessageStatus.RECEIVED)
    db.commit()
    return conversation.id


def _outbound(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(sa.select(sa.func.count()).where(Message.direction == Direction.OUTBOUND)) or 0)


@pytest.mark.redis
def test_the_sweep_does_not_queue_a_turn_already_waiting(prefix: str, db: Session) -> None:
    conversation_id = _stale_message(db)
    assert retry_pending_turns() == 1
    assert retry_pending_turns() == 0  # the turn is still queued: no second copy
    assert _count(prefix, JobQueue.TURNS) == 1
    # a new message always queues its turn: the waiting one may start before the message is stored
    assert queue_turn(conversation_id)
    assert _count(prefix, JobQueue.TURNS) == 2
    _run_worker()
    assert _outbound(db) == 2  # greeting and consent question, once
    statuses = db.scalars(sa.select(Message.status).where(Message.direction == Direction.INBOUND)).all()
    assert set(statuses) == {MessageStatus.PROCESSED}
    # the turns cleared their mark as they started: a message left unhandled again is swept again
    _stale_message(db)
    assert retry_pending_turns() == 1


def test_without_redis_the_sweep_runs_each_turn_inline(database_url: str, db: Session) -> None:
    reset_caches()
    assert "REDIS_URL" not in os.environ
    _stale_message(db)
    assert retry_pending_turns() == 1
    assert _outbound(db) == 2
    assert retry_pending_turns() == 0  # handled: nothing left to sweep

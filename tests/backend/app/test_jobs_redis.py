"""Jobs through a real Redis and a real RQ worker process; the cron scheduler registers the periodic jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from backend.app.periodic import PERIODIC, retry_pending_turns
from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Direction, Message, MessageStatus
from backend.models.base import utcnow
from tests import factories
from tests.conftest import reset_caches

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def queue_name(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    name = f"careloop-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CARELOOP_JOB_QUEUE", name)
    reset_caches()
    yield name
    for queue in (name, f"{name}-system", f"{name}-sends", f"{name}-turns"):
        Queue(queue, connection=Redis.from_url(REDIS_URL)).empty()


def _run_worker() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "worker", "--burst"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _outbound(db: Session) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(Message.text).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
        )
    )


def test_turns_wait_in_redis_until_a_worker_runs_them(queue_name: str, db: Session) -> None:
    from backend.web.app import create_app

    person = factories.patient(db, dept=factories.department(db))
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    with TestClient(create_app()) as client:
        client.get(f"/c/{token}")
        response = client.post(
            f"/c/{token}/messages",
            data={"choice": "yes", "text": "Yes, I agree", "client_id": "redis-0001"},
            headers={"Accept": "application/json"},
        )
    assert response.status_code == 200
    assert _outbound(db) == []  # nothing ran in the web process
    assert Queue(f"{queue_name}-turns", connection=Redis.from_url(REDIS_URL)).count == 2
    result = _run_worker()
    assert result.returncode == 0, result.stderr
    assert "Thank you. We will contact you here about your care." in _outbound(db)[-2:]
    statuses = db.scalars(sa.select(Message.status).where(Message.direction == Direction.INBOUND)).all()
    assert set(statuses) == {MessageStatus.PROCESSED}


def test_sweep_requeues_messages_whose_turn_never_ran(queue_name: str, db: Session) -> None:
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
        client_id="lost-turn-01",
        received_at=utcnow() - timedelta(minutes=5),
        max_bytes=4096,
    )
    store_inbound_row(db, conversation.id, stale, MessageStatus.RECEIVED)
    db.commit()
    assert retry_pending_turns() == 1
    assert _run_worker().returncode == 0
    assert len(_outbound(db)) == 2  # the flow started: greeting and consent question
    assert retry_pending_turns() == 0


def test_scheduler_registers_every_periodic_job_with_rq_cron(queue_name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", "scheduler"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # periodic jobs have their own queue, which workers take from first
    queue = Queue(f"{queue_name}-system", connection=Redis.from_url(REDIS_URL))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and queue.count < len(PERIODIC):
            time.sleep(0.2)
        names = sorted(job.func_name for job in queue.get_jobs())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert names == sorted(f"{func.__module__}.{func.__name__}" for func, _ in PERIODIC)


def test_worker_and_scheduler_refuse_to_start_without_redis(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    for command in ("worker", "scheduler"):
        result = subprocess.run(
            [sys.executable, "-m", "backend.app.cli", command],
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2 and "REDIS_URL" in result.stderr

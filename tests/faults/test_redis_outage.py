"""A Redis outage, with real processes: a private redis-server is killed and started again under a
running `careloop scheduler` and `careloop worker`. Afterwards both are still running, a chat message
stored during the outage was answered 200 and is then processed, and the periodic jobs are registered
again on the new server, with nobody restarting anything."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from backend.app.periodic import PERIODIC
from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Direction, Message, MessageStatus
from backend.models.base import utcnow
from backend.web.app import create_app
from tests import factories
from tests.conftest import reset_caches

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server"),
]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own on its own port, that the test may kill and start again."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _until(lambda: self._pings(), 10, "redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def _pings(self) -> bool:
        try:
            return bool(Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except Exception:
            return False


def _until(check: object, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


@pytest.fixture
def redis_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[PrivateRedis]:
    server = PrivateRedis(_free_port(), tmp_path)
    server.start()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setenv("CARELOOP_JOB_QUEUE", "outage-test")
    reset_caches()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()
    reset_caches()


def _careloop(command: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _queued(server: PrivateRedis) -> int:
    """Periodic jobs the scheduler has queued: they go to the queue workers take from first."""
    try:
        connection = Redis(port=server.port, socket_connect_timeout=0.2)
        return int(Queue("outage-test-system", connection=connection).count)
    except Exception:
        return -1


# PostgreSQL only: what is under test is Redis going away, and each run waits out real timeouts.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_worker_and_scheduler_ride_out_a_redis_outage_and_nothing_stored_is_lost(
    redis_server: PrivateRedis, db: Session, tmp_path: Path
) -> None:
    person = factories.patient(db, dept=factories.department(db))
    db.commit()
    scheduler = _careloop("scheduler", tmp_path / "scheduler.log")
    worker: subprocess.Popen[bytes] | None = None
    try:
        _until(lambda: _queued(redis_server) >= len(PERIODIC), 30, "the scheduler never registered its jobs")
        redis_server.kill()

        # During the outage a patient writes: the message is stored and the answer is a 200, not a 500.
        token = make_token(get_settings(), LinkKind.CHAT, person.id)
        with TestClient(create_app()) as client:
            client.get(f"/c/{token}")
            response = client.post(
                f"/c/{token}/messages",
                data={"choice": "yes", "text": "Yes, I agree", "client_id": "outage-0001"},
                headers={"Accept": "application/json"},
            )
        assert response.status_code == 200
        stored = db.scalars(sa.select(Message.status).where(Message.direction == Direction.INBOUND)).all()
        assert stored and set(stored) == {MessageStatus.RECEIVED}  # kept, waiting for a worker

        time.sleep(6)  # longer than RQ's and redis-py's connection timeouts
        assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()

        redis_server.start()  # empty: an outage loses what Redis held
        # the scheduler found the new server by itself: its next periodic jobs are queued there
        _until(lambda: _queued(redis_server) > 0, 60, "the scheduler did not come back")

        # The stored message is older than the sweep's grace period by now (made so without waiting);
        # the sweep, queued by the scheduler within its minute, hands it to the worker.
        db.execute(sa.update(Message).values(created_at=utcnow() - timedelta(minutes=2)))
        db.commit()
        worker = _careloop("worker", tmp_path / "worker.log")

        def all_processed() -> bool:
            db.expire_all()
            statuses = db.scalars(
                sa.select(Message.status).where(Message.direction == Direction.INBOUND)
            ).all()
            return bool(statuses) and set(statuses) == {MessageStatus.PROCESSED}

        _until(all_processed, 120, "the message stored during the outage was never processed")
        outbound = db.scalars(sa.select(Message.text).where(Message.direction == Direction.OUTBOUND)).all()
        assert "Thank you. We will contact you here about your care." in "\n".join(outbound)

        # An idle worker loses Redis too, and is still there to work when it comes back.
        redis_server.kill()
        time.sleep(6)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()
        redis_server.start()
        with TestClient(create_app()) as client:
            response = client.post(
                f"/c/{token}/messages",
                data={"text": "When is my next visit?", "client_id": "outage-0002"},
                headers={"Accept": "application/json"},
            )
        assert response.status_code == 200
        _until(all_processed, 60, "the worker did not work again after the second outage")
    finally:
        for proc in (scheduler, worker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()

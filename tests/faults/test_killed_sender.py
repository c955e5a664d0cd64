"""A sender killed mid-send, with real processes: a `careloop worker` is handing a batch of SMS to the
local provider, which has accepted them but not answered yet, when the worker and its work horse are
killed with SIGKILL. Once the items' leases run out a new worker picks them up. Afterwards every item
is sent, and each number got its message exactly once: through the generic gateway because it
dedupes on our reference, through Twilio because the resend was preceded by a lookup."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AttemptOutcome, OutboxAttempt, OutboxItem, OutboxStatus
from backend.models.base import utcnow
from backend.outbox.sender import drain_outbox
from tests import factories
from tests.backend.outbox.test_outbox import NOW, SENDER, _queue
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches
from tests.faults.processes import kill_tree
from tests.faults.test_redis_outage import ROOT, PrivateRedis, _until, redis_server

__all__ = ["redis_server"]  # the fixture, shared with the Redis outage test

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server"),
]
ITEMS = 12


@pytest.fixture(params=["twilio", "gateway"])
def provider(
    request: pytest.FixtureRequest, redis_server: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FakeTwilio]]:
    with FakeTwilio() as fake:
        if request.param == "twilio":
            monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
            monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
            monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
            monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        else:
            monkeypatch.setenv("CARELOOP_SMS_PROVIDER", "http")
            monkeypatch.setenv("CARELOOP_SMS_GATEWAY_URL", fake.gateway_url)
            monkeypatch.setenv("CARELOOP_SMS_GATEWAY_TOKEN", fake.gateway_token)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "60")
        # the worker reads the real clock: in the hospital's evening quiet hours would defer every item
        # and this test is about killed senders, not the time of day (START = END disables them)
        monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", "0")
        monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", "0")
        reset_caches()
        yield request.param, fake
        reset_caches()


def _worker(log: Path) -> subprocess.Popen[bytes]:
    """`careloop worker` in its own process group (stopped with SIGTERM to the group at the end)."""
    return subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# PostgreSQL only: several processes write at once, as in production.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_killed_sender_sends_each_item_at_most_once(
    provider: tuple[str, FakeTwilio], db: Session, tmp_path: Path
) -> None:
    name, fake = provider
    ids = [_queue(db, factories.patient(db, phone=f"+86139000001{n:02d}")) for n in range(ITEMS)]
    db.execute(sa.update(OutboxItem).values(not_before=NOW))
    db.commit()
    accepted = fake.gateway_requests if name == "gateway" else fake.messages
    fake.hang_next(times=ITEMS, seconds=120, accept=True)  # accepted, the answer never comes

    first = _worker(tmp_path / "worker1.log")
    try:
        assert drain_outbox()["queued"] == ITEMS
        _until(
            lambda: len(fake.gateway_requests if name == "gateway" else fake.messages) >= 4, 60, "no sends"
        )
    finally:
        # mid-call: the provider has them, the database says `sending`; the work horse dies too
        assert kill_tree(first.pid) >= 1, "the worker had no work horse running"
        first.wait(timeout=15)
    in_flight = len(fake.gateway_requests if name == "gateway" else fake.messages)
    db.expire_all()
    assert set(db.scalars(sa.select(OutboxItem.status))) == {OutboxStatus.SENDING}

    fake.clear_rules()  # the provider answers again
    db.execute(sa.update(OutboxItem).values(lease_until=utcnow()))  # as if the 30 s lease ran out
    db.commit()
    second = _worker(tmp_path / "worker2.log")
    try:
        drain_outbox()

        def all_sent() -> bool:
            db.expire_all()
            return set(db.scalars(sa.select(OutboxItem.status))) == {OutboxStatus.SENT}

        _until(all_sent, 90, (tmp_path / "worker2.log").read_text(errors="replace"))
    finally:
        _stop(second)
    accepted = fake.gateway_requests if name == "gateway" else fake.messages
    recipients = [r.json["to"] if r.json else r.params["To"] for r in accepted]
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == ITEMS, "sent twice or lost"
    cut_short = db.scalars(
        sa.select(OutboxAttempt.outbox_id).where(
            OutboxAttempt.outcome == AttemptOutcome.AMBIGUOUS, OutboxAttempt.code == "lease_expired"
        )
    ).all()
    assert sorted(cut_short) == sorted(ids)  # every claimed item's attempt was recognised as cut short
    if name == "gateway":
        assert fake.gateway_repeats == in_flight  # resent, and the reference kept it to one message
    else:
        found = db.scalar(sa.select(sa.func.count()).where(OutboxAttempt.outcome == AttemptOutcome.FOUND))
        assert found == in_flight  # the ones Twilio had were found, not sent again

"""The per-sender send rate: slots one interval apart per sender, shared by every worker through Redis,
held per process when Redis is down; and the sender waits for its slot before each provider call."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from backend.outbox.rate import KEY_PREFIX, SendRate, reserve_local

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def test_local_slots_are_one_interval_apart_per_sender_and_idle_time_is_not_saved_up() -> None:
    slots: dict[str, float] = {}
    waits = [reserve_local(slots, "a", 0.1, now=10.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert reserve_local(slots, "b", 0.1, now=10.0) == 0.0  # another sender has its own slots
    assert reserve_local(slots, "a", 0.1, now=100.0) == 0.0  # after a pause: no burst of saved slots
    assert reserve_local(slots, "a", 0.1, now=100.0) == pytest.approx(0.1)


def test_a_sender_without_a_rate_never_waits() -> None:
    slept: list[float] = []
    rate = SendRate(None, clock=lambda: 0.0, sleep=slept.append)
    assert [rate.wait("x", None) for _ in range(3)] == [0.0, 0.0, 0.0] and slept == []
    assert [rate.wait("x", 4) for _ in range(3)] == pytest.approx([0.0, 0.25, 0.5])
    assert slept == pytest.approx([0.25, 0.5])


@pytest.fixture
def key() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    Redis.from_url(REDIS_URL).delete(KEY_PREFIX + name)


@pytest.mark.redis
def test_workers_share_one_schedule_through_redis(key: str) -> None:
    """Two limiters (two workers) sending as fast as they may: together they hold the one rate."""
    workers = [SendRate(REDIS_URL), SendRate(REDIS_URL)]
    sent: list[float] = []
    lock = threading.Lock()

    def run(limiter: SendRate) -> None:
        for _ in range(20):
            limiter.wait(key, 100)
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    measured = (len(sent) - 1) / (sent[-1] - sent[0])
    assert len(sent) == 80 and 90 <= measured <= 105  # 100/s; sleeping can only make it slower


@pytest.mark.redis
def test_redis_down_holds_the_rate_in_this_process(key: str, caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rate = SendRate("redis://127.0.0.1:1/0", clock=lambda: now[0], sleep=lambda _s: None)
    assert [rate.reserve(key, 0.5) for _ in range(3)] == pytest.approx([0.0, 0.5, 1.0])
    assert sum("send rates are held per process" in r.message for r in caplog.records) == 1  # once


def test_the_sender_waits_for_its_senders_slots(
    database_url: str, db: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight sending threads, six messages, 10 a second for this sender: the provider gets them at least
    0.1 s apart (within the fake's clock), and a second sender id would not have waited."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from backend.models import OutboxKind
    from backend.outbox.enqueue import do_enqueue
    from backend.outbox.sender import drain_outbox
    from backend.services.conversations import get_or_create_conversation
    from bots.domain import Channel
    from bots.messages import Outbound, Text
    from tests import factories
    from tests.channels.fake_twilio import FakeTwilio
    from tests.conftest import reset_caches

    assert isinstance(db, Session)
    noon = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", "+15005550006")
        monkeypatch.setenv("CARELOOP_SEND_RATES", '{"twilio:+15005550006": 10}')
        reset_caches()
        for _ in range(6):
            patient = factories.patient(db)
            conversation = get_or_create_conversation(
                db, patient_id=patient.id, channel=Channel.SMS, address="x"
            )
            do_enqueue(
                db,
                conversation=conversation,
                outbound=Outbound((Text("Hi"),)),
                kind=OutboxKind.OUTREACH,
                now=noon,
            )
        db.commit()
        started = time.monotonic()
        assert drain_outbox(noon)["sent"] == 6
        elapsed = time.monotonic() - started
        created = sorted(m.created for m in fake.messages if m.created is not None)
        reset_caches()
    assert len(created) == 6 and elapsed >= 0.5
    assert (created[-1] - created[0]).total_seconds() >= 0.45

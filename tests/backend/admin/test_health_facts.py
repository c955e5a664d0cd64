"""Gathering the health facts from the real things: RQ on Redis (a job waiting, no worker), Rasa played by
a local HTTP server, the outbox's last hour per channel, the last ADT message, the scheduler's beat."""

from __future__ import annotations

import http.server
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from backend.admin.health import Status, all_checks
from backend.admin.health_facts import do_beat, gather, provider_facts, queue_facts, rasa_reachable
from backend.app.settings import get_settings
from backend.models import OutboxStatus
from backend.models.base import utcnow
from bots.domain import Channel
from tests import factories

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.mark.redis
def test_queue_facts_from_rq(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"careloop-health-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CARELOOP_JOB_QUEUE", name)
    get_settings.cache_clear()
    queue = Queue(name, connection=Redis.from_url(REDIS_URL))
    turns = Queue(f"{name}-turns", connection=Redis.from_url(REDIS_URL))
    try:
        assert queue_facts(get_settings()).queued == 0
        queue.enqueue("backend.app.periodic.prune_login_attempts")
        turns.enqueue("backend.dialogue.turns.run_turn", 1)  # every queue counts, not the default alone
        facts = queue_facts(get_settings())
        assert facts.reachable and not facts.inline and facts.queued == 2 and facts.workers == 0
        assert facts.oldest_enqueued_at is not None and facts.oldest_enqueued_at.tzinfo is not None
        assert abs((utcnow() - facts.oldest_enqueued_at).total_seconds()) < 30
    finally:
        queue.empty()
        turns.empty()
        get_settings.cache_clear()


def test_redis_that_does_not_answer_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        facts = queue_facts(get_settings())
    finally:
        get_settings.cache_clear()
    assert not facts.inline and not facts.reachable


class _Rasa(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/version" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"version": "3.6.21"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rasa() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Rasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rasa_reachability(monkeypatch: pytest.MonkeyPatch, rasa: str) -> None:
    assert rasa_reachable(get_settings()) is None  # not configured in the tests
    for url, expected in ((rasa, True), ("http://127.0.0.1:1", False)):
        monkeypatch.setenv("CARELOOP_NLU_URL", url)
        get_settings.cache_clear()
        assert rasa_reachable(get_settings()) is expected
    get_settings.cache_clear()


def test_providers_last_hour_and_the_whole_picture(db: Session) -> None:
    now = utcnow()
    person = factories.patient(db, phone="+8613800138000")
    conv = factories.conversation(db, person)
    for status in (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.FAILED, OutboxStatus.FAILED):
        item = factories.outbox_item(db, conv, at=now - timedelta(minutes=10), status=status)
        if status is not OutboxStatus.FAILED:
            item.sent_at = now - timedelta(minutes=9)
        else:
            item.status_at = now - timedelta(minutes=8)
    old = factories.outbox_item(db, conv, at=now - timedelta(days=2), status=OutboxStatus.DELIVERED)
    old.sent_at = now - timedelta(days=2)
    factories.outbox_item(db, conv, at=now - timedelta(days=2), status=OutboxStatus.FAILED)
    db.commit()
    (sms,) = provider_facts(db, now)
    assert (sms.channel, sms.sent, sms.failed) == (Channel.SMS.value, 2, 2)
    assert (
        sms.last_success is not None
        and abs((now - timedelta(minutes=9) - sms.last_success).total_seconds()) < 1
    )
    do_beat(db, now=now)
    do_beat(db, now=now)  # one row, overwritten
    db.commit()
    checks = {c.name: c for c in all_checks(gather(db, get_settings(), now=now))}
    assert checks["provider:sms"].status is Status.FAILING  # half failed
    assert checks["scheduler"].reason == "heartbeat_fresh"
    assert checks["adt"].reason == "no_adt_yet"
    assert checks["disk:data"].status in {Status.OK, Status.WARNING}

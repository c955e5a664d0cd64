"""At most once: a send whose outcome is unknown (a timeout after the provider accepted it, a sender
that died mid-call) is not sent again where the provider lets us know. The generic gateway dedupes on
our reference; Twilio is looked up by To and body before a resend. Every attempt leaves a row (time,
outcome, provider code, duration; never the text or the number) and a log line naming the item."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AttemptOutcome, OutboxAttempt, OutboxItem, OutboxStatus
from backend.outbox import sender
from backend.outbox.providers import sender_for
from backend.outbox.sender import LEASE, drain_outbox, send_item
from bots.domain import Channel
from channels.base import SendFailed
from tests import factories
from tests.backend.outbox.test_outbox import NOW, SENDER, _item, _queue
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "1")
        reset_caches()
        yield fake
        reset_caches()


@pytest.fixture
def gateway(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_SMS_PROVIDER", "http")
        monkeypatch.setenv("CARELOOP_SMS_GATEWAY_URL", fake.gateway_url)
        monkeypatch.setenv("CARELOOP_SMS_GATEWAY_TOKEN", fake.gateway_token)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "1")
        reset_caches()
        yield fake
        reset_caches()


def _attempts(db: Session, item_id: int) -> list[tuple[AttemptOutcome, str | None]]:
    db.expire_all()
    rows = db.scalars(
        sa.select(OutboxAttempt).where(OutboxAttempt.outbox_id == item_id).order_by(OutboxAttempt.id)
    )
    return [(a.outcome, a.code) for a in rows]


def test_a_timeout_after_twilio_accepted_is_looked_up_not_resent(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000011"))
    twilio.hang_next(seconds=3, accept=True)
    assert send_item(item_id, NOW) == "retry"
    item = _item(db, item_id)
    assert (item.status, item.reason) == (OutboxStatus.PENDING, "ambiguous")
    [accepted] = twilio.messages
    assert send_item(item_id, item.not_before) == "sent"
    assert len(twilio.messages) == 1, "sent twice"
    item = _item(db, item_id)
    assert item.status is OutboxStatus.SENT and item.provider_message_id == accepted.sid
    assert _attempts(db, item_id) == [(AttemptOutcome.AMBIGUOUS, "timeout"), (AttemptOutcome.FOUND, None)]
    assert item.last_error and item.last_error.startswith("timeout")  # kept after success


def test_a_timeout_before_twilio_accepted_is_sent_after_the_lookup(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000012"))
    twilio.hang_next(seconds=3)
    assert send_item(item_id, NOW) == "retry"
    assert twilio.messages == []
    assert send_item(item_id, _item(db, item_id).not_before) == "sent"
    assert len(twilio.messages) == 1
    lookups = [r for r in twilio.requests if r.path.startswith("/2010-04-01") and "To=" in r.path]
    assert len(lookups) == 1, "the resend was not preceded by a lookup"
    assert _attempts(db, item_id) == [(AttemptOutcome.AMBIGUOUS, "timeout"), (AttemptOutcome.SENT, None)]


def test_a_sender_killed_mid_call_is_not_resent_when_its_lease_expires(
    twilio: FakeTwilio, db: Session
) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000013"))
    claimed, _ = sender._claim([item_id], NOW)  # a worker claims it, the provider accepts, the worker dies
    sender_for(Channel.SMS).send(claimed[item_id].delivery)
    assert send_item(item_id, NOW + LEASE - timedelta(seconds=1)) == "skipped"  # its lease still holds
    assert send_item(item_id, NOW + LEASE + timedelta(seconds=1)) == "sent"
    assert len(twilio.messages) == 1, "sent twice"
    assert _attempts(db, item_id) == [
        (AttemptOutcome.AMBIGUOUS, "lease_expired"),
        (AttemptOutcome.FOUND, None),
    ]


def test_the_gateway_reference_makes_a_resend_harmless(gateway: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000014"))
    gateway.hang_next(seconds=3, accept=True)
    assert send_item(item_id, NOW) == "retry"
    assert send_item(item_id, _item(db, item_id).not_before) == "sent"
    [sent] = gateway.gateway_requests
    assert gateway.gateway_repeats == 1 and sent.json["reference"] == str(item_id)
    assert _item(db, item_id).provider_message_id == sent.sid


def test_every_attempt_is_kept_and_logged_without_text_or_number(
    twilio: FakeTwilio, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000015"))
    twilio.fail_next(status=500)
    with caplog.at_level(logging.WARNING, logger="backend.outbox.sender"):
        assert send_item(item_id, NOW) == "retry"
    assert send_item(item_id, _item(db, item_id).not_before) == "sent"
    assert _attempts(db, item_id) == [(AttemptOutcome.RETRY, "500"), (AttemptOutcome.SENT, None)]
    assert all(a.duration_ms is not None for a in db.scalars(sa.select(OutboxAttempt)))
    [line] = [r.getMessage() for r in caplog.records if f"item {item_id}" in r.getMessage()]
    assert "500" in line and "+8613900000015" not in line and "how you are" not in line


def test_a_slow_provider_keeps_its_lease_by_heartbeat(
    twilio: FakeTwilio, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "HEARTBEAT", timedelta(seconds=0.2))
    item_id = _queue(db, factories.patient(db, phone="+8613900000016"))
    with sender._Heartbeat([item_id]):
        db.execute(
            sa.text("UPDATE outbox SET status = 'sending', lease_until = NULL WHERE id = :i"), {"i": item_id}
        )
        db.commit()
        time.sleep(0.6)
    lease = _item(db, item_id).lease_until
    assert lease is not None and lease > sender.utcnow() + LEASE - timedelta(seconds=5)


def test_a_late_result_after_a_takeover_goes_only_into_the_history(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000017"))
    stalled, _ = sender._claim([item_id], NOW)  # a sender claims it and stalls past its lease
    assert send_item(item_id, NOW + LEASE + timedelta(seconds=1)) == "sent"  # another takes over
    late = sender._Done(
        SendFailed("Twilio 503", permanent=False, code="503"), found=False, duration_ms=40_000
    )
    assert sender._record_all({item_id: late}, stalled, NOW + LEASE) == {item_id: "taken_over"}
    assert _item(db, item_id).status is OutboxStatus.SENT and len(twilio.messages) == 1
    assert _attempts(db, item_id) == [(AttemptOutcome.RETRY, "503"), (AttemptOutcome.SENT, None)]


def test_items_of_a_job_killed_before_it_claimed_them_are_due_again_within_a_minute(
    twilio: FakeTwilio, db: Session
) -> None:
    item_id = _queue(db, factories.patient(db, phone="+8613900000018"))
    db.execute(sa.update(OutboxItem).values(lease_until=NOW + sender.QUEUED_LEASE))  # queued, job lost
    db.commit()
    assert drain_outbox(NOW + timedelta(seconds=30)).total() == 0
    assert drain_outbox(NOW + timedelta(minutes=1))["sent"] == 1
    assert len(twilio.messages) == 1 and _item(db, item_id).status is OutboxStatus.SENT

"""The outbound pipeline end to end: outbox gates, the Twilio adapter against a local Twilio, retries,
permanent failures, delivery callbacks and batches, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    ConsentEvent,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
)
from backend.outbox.enqueue import do_enqueue, do_enqueue_batch
from backend.outbox.sender import do_record_status, drain_outbox, send_item
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel, ConsentPurpose
from bots.messages import Choice, Choices, Link, Outbound, Text
from channels.base import DeliveryStatus, StatusUpdate
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, 22:00 the day before in New York
SENDER = "+15005550006"


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        monkeypatch.setenv("CARELOOP_TWILIO_WHATSAPP_FROM", SENDER)
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "2")
        reset_caches()
        yield fake
        reset_caches()


def _queue(
    db: Session,
    patient: Patient,
    *,
    kind: OutboxKind = OutboxKind.OUTREACH,
    channel: Channel = Channel.SMS,
    purpose: ConsentPurpose = ConsentPurpose.CARE,
    outbound: Outbound | None = None,
) -> int:
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=channel, address="x")
    item = do_enqueue(
        db,
        conversation=conversation,
        outbound=outbound or Outbound((Text("Please tell us how you are."),)),
        kind=kind,
        purpose=purpose,
        now=NOW,
    )
    db.commit()
    return item.id


def _item(db: Session, item_id: int) -> OutboxItem:
    db.expire_all()
    item = db.get(OutboxItem, item_id)
    assert item is not None
    return item


def test_an_allowed_message_reaches_twilio_with_numbered_choices(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db, phone="+8613900000001")
    outbound = Outbound(
        (
            Text("Any fever?"),
            Choices((Choice("yes", "Yes"), Choice("no", "No"))),
            Link("https://h.example/q/abc", "Open"),
        )
    )
    item_id = _queue(db, patient, outbound=outbound)
    assert send_item(item_id, NOW) == "sent"
    [sent] = twilio.messages
    assert sent.params["To"] == "+8613900000001" and sent.params["From"] == SENDER
    assert "1. Yes" in sent.params["Body"] and "2. No" in sent.params["Body"]
    assert "https://h.example/q/abc" in sent.params["Body"]
    assert sent.params["StatusCallback"] == "http://127.0.0.1:8000/hooks/twilio/status"
    item = _item(db, item_id)
    assert (item.status, item.provider_message_id, item.attempts) == (OutboxStatus.SENT, sent.sid, 1)
    message = db.get(Message, item.message_id)
    assert message is not None and message.status is MessageStatus.SENT
    assert message.provider_message_id == sent.sid


def test_sending_twice_sends_once(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db))
    assert send_item(item_id, NOW) == "sent"
    assert send_item(item_id, NOW) == "skipped"
    assert drain_outbox(NOW + timedelta(minutes=10)).total() == 0
    assert len(twilio.messages) == 1


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        ("deceased", "excluded:deceased"),
        ("do_not_disturb", "excluded:do_not_disturb"),
        ("dispute", "excluded:dispute"),
    ],
)
def test_excluded_patients_get_no_outreach(twilio: FakeTwilio, db: Session, flag: str, reason: str) -> None:
    patient = factories.patient(db, **{flag: True})
    item_id = _queue(db, patient)
    assert send_item(item_id, NOW) == f"suppressed:{reason}"
    item = _item(db, item_id)
    assert item.status is OutboxStatus.SUPPRESSED and twilio.messages == []
    message = db.get(Message, item.message_id)
    assert message is not None and message.status is MessageStatus.NOT_SENT


def test_a_reply_reaches_a_do_not_disturb_patient_who_wrote_to_us(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db, do_not_disturb=True)
    assert send_item(_queue(db, patient, kind=OutboxKind.REPLY), NOW) == "sent"
    assert len(twilio.messages) == 1


def test_revoked_care_consent_suppresses_even_replies(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db)
    do_revoke_consent(db, patient_id=patient.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    assert send_item(_queue(db, patient, kind=OutboxKind.REPLY), NOW) == "suppressed:no_consent"
    assert twilio.messages == []


def test_marketing_needs_an_explicit_grant(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db)
    first = _queue(db, patient, purpose=ConsentPurpose.MARKETING)
    assert send_item(first, NOW) == "suppressed:no_consent"
    do_grant_consent(
        db, patient_id=patient.id, purpose=ConsentPurpose.MARKETING, channel=Channel.SMS, source="t"
    )
    db.commit()
    assert send_item(_queue(db, patient, purpose=ConsentPurpose.MARKETING), NOW) == "sent"
    assert len(twilio.messages) == 1


def test_quiet_hours_defer_outreach_to_the_local_morning(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db)
    patient.timezone = "America/New_York"  # 22:00 there at NOW
    item_id = _queue(db, patient)
    assert send_item(item_id, NOW) == "deferred:quiet_hours"
    item = _item(db, item_id)
    assert item.status is OutboxStatus.PENDING and item.reason == "quiet_hours"
    assert item.not_before == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert drain_outbox(NOW + timedelta(hours=9)).total() == 0 and twilio.messages == []
    assert drain_outbox(item.not_before)["sent"] == 1
    assert len(twilio.messages) == 1


def test_frequency_cap_defers_the_extra_outreach_by_a_day(
    twilio: FakeTwilio, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_MAX_MESSAGES_PER_DAY", "2")
    reset_caches()
    patient = factories.patient(db)
    ids = [_queue(db, patient) for _ in range(3)]
    assert [send_item(i, NOW) for i in ids] == ["sent", "sent", "deferred:frequency_cap"]
    assert _item(db, ids[2]).not_before == NOW + timedelta(days=1)
    assert send_item(_queue(db, patient, kind=OutboxKind.REPLY), NOW) == "sent"  # replies are not capped


def test_a_provider_error_is_retried_with_backoff_nothing_lost(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db))
    twilio.fail_next(status=500)
    assert send_item(item_id, NOW) == "retry"
    item = _item(db, item_id)
    assert item.status is OutboxStatus.PENDING and item.attempts == 1
    assert NOW + timedelta(seconds=20) <= item.not_before <= NOW + timedelta(seconds=40)
    assert drain_outbox(item.not_before)["sent"] == 1
    assert [r.answered for r in twilio.requests] == [500, 201]
    assert _item(db, item_id).status is OutboxStatus.SENT


def test_a_timeout_is_retried(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db))
    twilio.hang_next(seconds=4)
    assert send_item(item_id, NOW) == "retry"
    assert _item(db, item_id).last_error


def test_retries_stop_after_the_configured_attempts(
    twilio: FakeTwilio, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_SEND_MAX_ATTEMPTS", "2")
    reset_caches()
    item_id = _queue(db, factories.patient(db))
    twilio.fail_next(status=503, times=5)
    assert send_item(item_id, NOW) == "retry"
    assert send_item(item_id, NOW + timedelta(hours=2)) == "failed"
    item = _item(db, item_id)
    assert (item.status, item.reason, item.attempts) == (OutboxStatus.FAILED, "retries_exhausted", 2)


def test_an_invalid_number_fails_at_once_and_marks_contact_invalid(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db, phone="+8613900000077")
    item_id = _queue(db, patient)
    twilio.fail_for("+8613900000077", code=21211)
    assert send_item(item_id, NOW) == "failed"
    assert [r.answered for r in twilio.requests] == [400]  # not retried
    db.expire_all()
    assert db.get(Patient, patient.id).invalid_contact  # type: ignore[union-attr]
    assert send_item(_queue(db, patient), NOW) == "suppressed:unreachable"
    assert len(twilio.requests) == 1
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "patient.contact_invalid")).one()
    assert "+8613900000077" not in str(audit.detail)


def test_delivery_status_moves_forward_only(twilio: FakeTwilio, db: Session) -> None:
    item_id = _queue(db, factories.patient(db))
    send_item(item_id, NOW)
    sid = twilio.messages[0].sid
    assert sid is not None
    assert do_record_status(db, Channel.SMS, StatusUpdate(sid, DeliveryStatus.DELIVERED))
    assert do_record_status(db, Channel.SMS, StatusUpdate(sid, DeliveryStatus.SENT))  # late and out of order
    db.commit()
    item = _item(db, item_id)
    assert item.status is OutboxStatus.DELIVERED
    assert db.get(Message, item.message_id).status is MessageStatus.DELIVERED  # type: ignore[union-attr]
    assert not do_record_status(db, Channel.SMS, StatusUpdate("SM" + "0" * 32, DeliveryStatus.DELIVERED))


def test_a_channel_without_credentials_fails_clearly(db: Session) -> None:
    item_id = _queue(db, factories.patient(db))
    assert send_item(item_id, NOW) == "failed"
    item = _item(db, item_id)
    assert item.status is OutboxStatus.FAILED and "CARELOOP_TWILIO" in (item.last_error or "")


def test_whatsapp_outside_the_window_uses_the_approved_template(twilio: FakeTwilio, db: Session) -> None:
    patient = factories.patient(db, whatsapp="+84912345678")
    conversation = get_or_create_conversation(
        db, patient_id=patient.id, channel=Channel.WHATSAPP, address="x"
    )
    item = do_enqueue(
        db,
        conversation=conversation,
        outbound=Outbound((Text("Your follow-up"),)),
        kind=OutboxKind.OUTREACH,
        template_key="followup_invite",
        template_vars={"title": "Recovery check", "url": "https://h.example/q/x"},
        now=NOW,
    )
    db.commit()
    assert send_item(item.id, NOW) == "sent"
    [sent] = twilio.messages
    assert sent.params["To"] == "whatsapp:+84912345678"
    assert sent.params["ContentSid"].startswith("HX") and "Body" not in sent.params
    assert "Recovery check" in sent.params["ContentVariables"]


# Ten of the sender's chunks (backend/outbox/sender.py CHUNK), every pattern below a hundred times over:
# what a batch must do. How fast 10,000 and more go is bench/channels.py's to measure (this test took
# 167 s on PostgreSQL at 10,000 with the suite on both cores).
BATCH = 1_000


def test_a_thousand_patient_batch_reaches_only_those_allowed(
    twilio: FakeTwilio, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tenth patient opted out by STOP, every tenth (offset) is excluded, every tenth (offset) is in
    quiet hours: none of them gets a message; the quiet ones are deferred, not dropped."""
    # A generous timeout: a short one can expire on a busy machine after
    # the fake accepted a message, which is then retried (at least once) and counted twice here.
    monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "10")
    reset_caches()
    patients = [
        Patient(
            mrn=f"B{n:06d}",
            name=f"Batch {n}",
            language="en",
            timezone="America/New_York" if n % 10 == 2 else "Asia/Shanghai",
            phone=f"+86139{n:08d}",
            deceased=n % 20 == 1,
            do_not_disturb=n % 20 == 11,
        )
        for n in range(BATCH)
    ]
    db.add_all(patients)
    db.flush()
    opted_out = {p.id for n, p in enumerate(patients) if n % 10 == 0}
    db.add_all(
        ConsentEvent(
            patient_id=pid,
            purpose=ConsentPurpose.CARE,
            channel=Channel.SMS,
            granted=False,
            source="sms:keyword",
        )
        for pid in opted_out
    )
    excluded = {p.id for n, p in enumerate(patients) if n % 10 == 1}
    quiet = {p.id for n, p in enumerate(patients) if n % 10 == 2}
    queued = do_enqueue_batch(
        db,
        patient_ids=[p.id for p in patients],
        channel=Channel.SMS,
        outbound_for=lambda p: Outbound((Text("Flu vaccination clinic opens Monday."),)),
        address_for=lambda p: Patient.phone_index(p.phone or ""),
        batch_id="flu-2026",
        now=NOW,
    )
    db.commit()
    assert queued == BATCH
    phones = {p.id: p.phone for p in patients}
    outcomes = drain_outbox(NOW, limit=BATCH)
    reached = {r.params["To"] for r in twilio.messages}
    allowed = set(phones) - opted_out - excluded - quiet
    assert reached == {phones[pid] for pid in allowed}
    assert len(twilio.messages) == len(allowed)  # each once
    assert outcomes["sent"] == len(allowed)
    db.expire_all()
    status = dict(
        db.execute(
            sa.select(OutboxItem.patient_id, OutboxItem.status).where(OutboxItem.batch_id == "flu-2026")
        ).all()
    )
    assert {pid for pid, s in status.items() if s is OutboxStatus.SUPPRESSED} == opted_out | excluded
    assert {pid for pid, s in status.items() if s is OutboxStatus.PENDING} == quiet


def test_the_worker_builds_configured_adapters_ahead_and_survives_a_wrong_one(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.outbox.providers import warm_senders

    assert warm_senders() == [Channel.SMS, Channel.WHATSAPP]
    monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", "not-a-number")
    reset_caches()
    assert warm_senders() == [Channel.WHATSAPP]  # SMS fails when sending, per item; the worker starts

"""WeChat after an ambiguous attempt (WeChat took the request but the answer never came back), against the
local fake WeChat API: a template carries our outbox reference as `client_msg_id`, so a resend within
WeChat's 10-minute de-duplication is delivered once; later it is not resent but marked
`ambiguous_unconfirmed` for a look; time-critical content is resent whatever the age; a customer-service
message, which WeChat cannot de-duplicate, is resent once and then marked. The policy itself is checked
for every combination."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from backend.models import AttemptOutcome, OutboxKind, OutboxStatus, Patient
from backend.outbox.enqueue import do_enqueue, do_enqueue_staff_alert
from backend.outbox.sender import send_item
from backend.services.conversations import get_or_create_conversation
from backend.services.duty import do_set_staff_wechat
from bots.domain import Channel
from bots.messages import Outbound, Text
from channels.wechat_outbound import CUSTOM_AMBIGUOUS_RESENDS, TEMPLATE_DEDUPE, may_resend
from tests import factories
from tests.backend.outbox.test_at_most_once import _attempts
from tests.backend.outbox.test_outbox import NOW, _item
from tests.channels.fake_wechat import CUSTOM_SEND, TEMPLATE_SEND, FakeWeChat
from tests.conftest import reset_caches

OPENID = "oPatientWeChat000000000000001"


@pytest.fixture
def wechat(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeChat]:
    with FakeWeChat() as fake:
        for name, value in {
            "CARELOOP_WECHAT_APP_ID": fake.app_id,
            "CARELOOP_WECHAT_APP_SECRET": fake.secret,
            "CARELOOP_WECHAT_API_ROOT": fake.base_url,
            "CARELOOP_SEND_TIMEOUT_SECONDS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield fake
        reset_caches()


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    """The fake answers a hung request only after its hang: wait for what it does then."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the fake never got there"
        time.sleep(0.05)


def _patient(db: Session) -> Patient:
    return factories.patient(db, wechat_openid=OPENID)


def _queue_template(db: Session, patient: Patient) -> int:
    """An outreach notice outside the 48-hour window (she never wrote): WeChat's template."""
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=Channel.WECHAT, address="x")
    item = do_enqueue(
        db,
        conversation=conversation,
        outbound=Outbound((Text("Your follow-up form is ready."),)),
        kind=OutboxKind.OUTREACH,
        template_key="notice",
        template_vars={"text": "Your follow-up form is ready."},
        now=NOW,
    )
    db.commit()
    return item.id


def test_a_template_resent_within_wechats_dedupe_window_is_delivered_once(
    wechat: FakeWeChat, db: Session
) -> None:
    item_id = _queue_template(db, _patient(db))
    wechat.fail_next(hang=3, path=TEMPLATE_SEND)  # WeChat takes it; its answer comes too late
    assert send_item(item_id, NOW) == "retry"
    item = _item(db, item_id)
    assert (item.status, item.reason) == (OutboxStatus.PENDING, "ambiguous")
    resend_at = NOW + TEMPLATE_DEDUPE - timedelta(seconds=1)
    assert send_item(item_id, max(resend_at, item.not_before or resend_at)) == "sent"
    first, second = wechat.calls(TEMPLATE_SEND)
    assert first.body["client_msg_id"] == second.body["client_msg_id"] == str(item_id)
    time.sleep(3)  # the hung first request has been answered by now: it was not delivered a second time
    assert [d[:2] for d in wechat.delivered_templates] == [(OPENID, str(item_id))]  # once
    assert _item(db, item_id).status is OutboxStatus.SENT
    assert [o for o, _ in _attempts(db, item_id)] == [AttemptOutcome.AMBIGUOUS, AttemptOutcome.SENT]
    assert wechat.problems == []


def test_a_template_is_not_resent_once_the_dedupe_window_has_passed(wechat: FakeWeChat, db: Session) -> None:
    item_id = _queue_template(db, _patient(db))
    wechat.fail_next(hang=3, path=TEMPLATE_SEND)
    assert send_item(item_id, NOW) == "retry"
    assert send_item(item_id, NOW + TEMPLATE_DEDUPE + timedelta(minutes=1)) == "failed"
    item = _item(db, item_id)
    # marked for a person to look at, with the attempts kept; WeChat was not asked again
    assert (item.status, item.reason) == (OutboxStatus.FAILED, "ambiguous_unconfirmed")
    assert _attempts(db, item_id) == [
        (AttemptOutcome.AMBIGUOUS, "timeout"),
        (AttemptOutcome.FAILED, "ambiguous_unconfirmed"),
    ]
    assert len(wechat.calls(TEMPLATE_SEND)) == 1
    _wait_for(lambda: len(wechat.delivered_templates) == 1)  # the hung request, delivered after all


def test_a_staff_alert_is_resent_however_late(wechat: FakeWeChat, db: Session) -> None:
    staff = factories.staff(db, username="onduty")
    do_set_staff_wechat(db, staff=staff, openid=OPENID, by=None)
    item = do_enqueue_staff_alert(
        db, staff=staff, text="An emergency nobody has taken", channel=Channel.WECHAT, now=NOW
    )
    db.commit()
    wechat.fail_next(hang=3, path=TEMPLATE_SEND)
    assert send_item(item.id, NOW) == "retry"
    assert send_item(item.id, NOW + timedelta(hours=1)) == "sent"
    assert len(wechat.calls(TEMPLATE_SEND)) == 2


def test_a_customer_service_reply_is_resent_once_then_marked(wechat: FakeWeChat, db: Session) -> None:
    patient = _patient(db)
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=Channel.WECHAT, address="x")
    factories.reply(db, conversation, "hello", at=NOW - timedelta(minutes=5))  # she wrote: window open
    item_id = do_enqueue(
        db,
        conversation=conversation,
        outbound=Outbound((Text("Thank you."),)),
        kind=OutboxKind.REPLY,
        now=NOW,
    ).id
    db.commit()
    wechat.fail_next(hang=3, path=CUSTOM_SEND, times=2)
    assert send_item(item_id, NOW) == "retry"
    later = _item(db, item_id).not_before
    assert later is not None and send_item(item_id, later) == "retry"  # resent once: ambiguous again
    last = _item(db, item_id).not_before
    assert last is not None and send_item(item_id, last) == "failed"
    item = _item(db, item_id)
    assert (item.status, item.reason) == (OutboxStatus.FAILED, "ambiguous_unconfirmed")
    assert len(wechat.calls(CUSTOM_SEND)) == 2  # at most one duplicate reached her


@pytest.mark.parametrize(
    ("template", "time_critical", "age_minutes", "ambiguous"),
    list(itertools.product([True, False], [True, False], [0, 8, 9, 30], [1, 2, 3])),
)
def test_the_resend_policy(template: bool, time_critical: bool, age_minutes: int, ambiguous: int) -> None:
    since = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    allowed = may_resend(
        template=template,
        time_critical=time_critical,
        ambiguous_since=since,
        ambiguous=ambiguous,
        now=since + timedelta(minutes=age_minutes),
    )
    if time_critical:
        expected = True
    elif template:
        expected = timedelta(minutes=age_minutes) < TEMPLATE_DEDUPE
    else:
        expected = ambiguous <= CUSTOM_AMBIGUOUS_RESENDS
    assert allowed is expected

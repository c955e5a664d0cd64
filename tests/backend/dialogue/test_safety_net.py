"""Emergencies are acted on in every inbound message, whoever holds the conversation, once per message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.dialogue.safety_net import guidance_text
from backend.dialogue.turns import handle_pending
from backend.models import (
    AuditEvent,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    SafetyAlert,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskMention,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.outbox.sender import drain_outbox
from backend.services import mentions
from backend.services.consents import do_revoke_consent
from backend.services.inbox import do_claim
from bots.domain import Channel, ConsentPurpose
from nlu.safety import Emergency
from tests import factories
from tests.channels.fake_twilio import FakeTwilio, incoming_sms, sign
from tests.conftest import reset_caches

PUBLIC = "https://careloop.example.org"


def _guidance(lang: str, category: Emergency) -> str:
    settings = get_settings()
    return guidance_text(load_catalog(settings.content_dir, settings.hospital_name), lang, category)


def _inbound(db: Session, conv: Conversation, text: str, sid: str | None = None) -> Message:
    message = Message(
        conversation_id=conv.id,
        channel=conv.channel,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        provider_message_id=sid,
        text=text,
        created_at=utcnow(),
    )
    db.add(message)
    db.flush()
    return message


def _turn(db: Session, conv: Conversation) -> list[int]:
    queued: list[int] = []
    handle_pending(db, conv.id, queued)
    db.commit()
    db.expire_all()
    return queued


def _outbound(db: Session, conv: Conversation) -> list[Message]:
    return list(
        db.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conv.id, Message.direction == Direction.OUTBOUND)
            .order_by(Message.id)
        )
    )


def _staff_held(db: Session, channel: Channel = Channel.WEBCHAT, language: str = "en") -> dict[str, Any]:
    """A patient whose hand-off a nurse has claimed: the bot is quiet in this conversation."""
    dept = factories.department(db)
    person = factories.patient(db, language=language, dept=dept)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    conv = factories.conversation(db, person, channel)
    task = factories.task(db, person=person, dept=dept, conv=conv)
    do_claim(db, task=task, staff_id=nurse.id)
    db.commit()
    return {"dept": dept, "person": person, "nurse": nurse, "conv": conv, "task": task}


def test_staff_held_emergency_is_answered_raised_and_its_holder_told(db: Session) -> None:
    w = _staff_held(db)
    normal_due = w["task"].due_at
    message = _inbound(db, w["conv"], "I have chest pain and I can't breathe")
    before = utcnow()
    _turn(db, w["conv"])
    [reply] = _outbound(db, w["conv"])
    assert (
        reply.text == _guidance("en", Emergency.BREATHING) and reply.status is MessageStatus.SENT
    )  # the web chat page shows it
    task = db.get(Task, w["task"].id)
    assert task is not None and task.priority is TaskPriority.EMERGENCY
    assert before + timedelta(minutes=15) >= task.due_at - timedelta(seconds=5) and task.due_at < normal_due
    assert task.status is TaskStatus.CLAIMED and task.assignee_id == w["nurse"].id
    kinds = [e.kind for e in db.scalars(sa.select(TaskEvent).where(TaskEvent.task_id == task.id))]
    assert kinds[-2:] == [TaskEventKind.RAISED, TaskEventKind.ALERTED]
    assert mentions.unread_tasks(db, w["nurse"].id) == 1  # her inbox counts push this live
    actions = set(db.scalars(sa.select(AuditEvent.action)))
    assert {"task.raised", "task.alerted", "safety.emergency"} <= actions
    alert = db.scalars(sa.select(SafetyAlert)).one()
    assert (alert.message_id, alert.held_by, alert.category, alert.task_id) == (
        message.id,
        "staff",
        "breathing",
        task.id,
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1


def test_staff_held_emergency_with_its_hand_off_closed_opens_an_emergency_task(db: Session) -> None:
    w = _staff_held(db)
    task = db.get(Task, w["task"].id)
    assert task is not None
    task.status = TaskStatus.CLOSED
    db.commit()
    _inbound(db, w["conv"], "my husband collapsed and is unconscious")
    _turn(db, w["conv"])
    opened = db.scalars(sa.select(Task).where(Task.status != TaskStatus.CLOSED)).one()
    assert (opened.priority, opened.title, opened.source_id) == (
        TaskPriority.EMERGENCY,
        "handoff:emergency",
        w["conv"].id,
    )
    assert opened.due_at - opened.created_at == timedelta(minutes=15)
    assert [m.text for m in _outbound(db, w["conv"])] == [_guidance("en", Emergency.UNCONSCIOUS)]


def test_a_message_without_an_emergency_in_a_staff_held_conversation_stays_for_staff(db: Session) -> None:
    w = _staff_held(db)
    _inbound(db, w["conv"], "the pain went away, thank you")
    _turn(db, w["conv"])
    assert _outbound(db, w["conv"]) == []
    task = db.get(Task, w["task"].id)
    assert task is not None and task.priority is TaskPriority.NORMAL
    assert db.scalars(sa.select(SafetyAlert)).all() == []


def test_guidance_is_in_the_messages_language_and_the_record_keeps_its_own(db: Session) -> None:
    w = _staff_held(db, language="zh-CN")
    _inbound(db, w["conv"], "I have chest pain and I can't breathe")
    _turn(db, w["conv"])
    assert [m.text for m in _outbound(db, w["conv"])] == [_guidance("en", Emergency.BREATHING)]
    person = db.get(Patient, w["person"].id)
    assert person is not None and person.language == "zh-CN"
    assert db.scalars(sa.select(SafetyAlert.language)).one() == "en"


def test_a_short_emergency_is_answered_in_the_records_language(db: Session) -> None:
    w = _staff_held(db, language="vi")
    _inbound(db, w["conv"], "chest pain")  # two words: not clearly any language
    _turn(db, w["conv"])
    assert [m.text for m in _outbound(db, w["conv"])] == [_guidance("vi", Emergency.CHEST_PAIN)]


def test_a_bot_held_emergency_ends_the_bot_and_keeps_the_patients_place(db: Session) -> None:
    dept = factories.department(db)
    person = factories.patient(db, language="en", dept=dept)
    conv = factories.conversation(db, person, Channel.WEBCHAT)
    conv.flow_id = "welcome"
    conv.state = {"flow_id": "welcome", "flow_version": 1, "step": "consent", "slots": {}}
    db.commit()
    _inbound(db, conv, "I want to kill myself")
    _turn(db, conv)
    conversation = db.get(Conversation, conv.id)
    assert conversation is not None and conversation.owner is ConversationOwner.STAFF
    assert conversation.state is not None and conversation.state["ended"] is True
    assert conversation.state["step"] == "consent"
    task = db.scalars(sa.select(Task)).one()
    assert (task.priority, task.department_id) == (TaskPriority.EMERGENCY, dept.id)
    assert db.scalars(sa.select(SafetyAlert.held_by)).one() == "bot"
    assert [m.text for m in _outbound(db, conv)] == [_guidance("en", Emergency.SELF_HARM)]


def test_an_unlinked_wechat_followers_emergency_is_answered_through_the_outbox(db: Session) -> None:
    conv = Conversation(patient_id=None, channel=Channel.WECHAT, address="bidx-follower", reply_to="o-abc")
    db.add(conv)
    db.flush()
    _inbound(db, conv, "我胸口剧痛，喘不过气", sid="wx-1")
    queued = _turn(db, conv)
    item = db.scalars(sa.select(OutboxItem)).one()
    assert queued == [item.id]
    assert (item.kind, item.patient_id, item.channel) == (OutboxKind.EMERGENCY, None, Channel.WECHAT)
    task = db.scalars(sa.select(Task)).one()
    assert (task.priority, task.patient_id) == (TaskPriority.EMERGENCY, None)


def test_an_unknown_phone_numbers_emergency_still_reaches_staff(db: Session) -> None:
    conv = Conversation(patient_id=None, channel=Channel.SMS, address="bidx-unknown")
    db.add(conv)
    db.flush()
    _inbound(db, conv, "my chest hurts so much", sid="SM-unknown")
    _turn(db, conv)
    assert db.scalars(sa.select(OutboxItem)).all() == []  # only a blind index is kept: no address to answer
    alert = db.scalars(sa.select(SafetyAlert)).one()
    assert alert.guidance_message_id is None and alert.task_id is not None
    assert db.scalars(sa.select(Task.priority)).one() is TaskPriority.EMERGENCY


# --- through the SMS webhook, with the sender's real gates ---------------------------------------


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        for name, value in {
            "CARELOOP_PUBLIC_URL": PUBLIC,
            "CARELOOP_TWILIO_ACCOUNT_SID": fake.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": fake.auth_token,
            "CARELOOP_TWILIO_API_BASE": fake.base_url,
            "CARELOOP_TWILIO_SMS_FROM": "+15005550006",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield fake
        reset_caches()


def _post_sms(client: TestClient, fake: FakeTwilio, params: dict[str, str]) -> int:
    signature = sign(f"{PUBLIC}/hooks/twilio/messages", params, fake.auth_token)
    return client.post(
        "/hooks/twilio/messages",
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    ).status_code


@pytest.fixture
def quiet_now(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet time for a patient in Shanghai is the hour we are in now, whatever the hour of the run."""
    hour = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).hour
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", str(hour))
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", str((hour + 1) % 24))
    reset_caches()


def test_revoked_consent_and_quiet_hours_do_not_stop_emergency_guidance_and_nothing_else_goes(
    twilio: FakeTwilio, quiet_now: None, client: TestClient, db: Session
) -> None:
    person = factories.patient(db, phone="+8613800138000", language="en", do_not_disturb=True)
    conv = factories.conversation(db, person, Channel.SMS)
    outreach = factories.outbox_item(db, conv)  # a reminder waiting to go
    do_revoke_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    db.commit()
    assert (
        _post_sms(client, twilio, incoming_sms("+8613800138000", "I can't breathe", sid="SM" + "1" * 32))
        == 200
    )
    drain_outbox()
    db.expire_all()
    guidance = db.scalars(sa.select(OutboxItem).where(OutboxItem.kind == OutboxKind.EMERGENCY)).one()
    assert guidance.status is OutboxStatus.SENT  # recorded in the outbox like every message
    assert [(m.params["To"], m.params["Body"]) for m in twilio.messages] == [
        ("+8613800138000", _guidance("en", Emergency.BREATHING))
    ]
    waiting = db.get(OutboxItem, outreach.id)
    assert waiting is not None and waiting.status is OutboxStatus.SUPPRESSED
    assert db.scalars(sa.select(Task.priority)).one() is TaskPriority.EMERGENCY


def test_a_redelivered_emergency_is_answered_and_raised_once(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    factories.patient(db, phone="+8613800138000", language="en")
    db.commit()
    params = incoming_sms("+8613800138000", "there is heavy bleeding from my wound", sid="SM" + "2" * 32)
    assert _post_sms(client, twilio, params) == 200
    assert _post_sms(client, twilio, params) == 200
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(SafetyAlert)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1
    kinds = db.scalars(sa.select(OutboxItem.kind).where(OutboxItem.kind == OutboxKind.EMERGENCY)).all()
    assert kinds == [OutboxKind.EMERGENCY]


def test_the_same_message_acted_on_again_does_nothing(db: Session) -> None:
    from backend.dialogue.safety_net import do_handle_emergency, emergency_in

    w = _staff_held(db)
    message = _inbound(db, w["conv"], "I have chest pain")
    hit = emergency_in(message.text, None)
    assert hit is not None
    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    args: dict[str, Any] = {
        "message_id": message.id,
        "text": message.text,
        "hit": hit,
        "record_lang": "en",
        "catalog": catalog,
        "department_id": w["dept"].id,
        "queued": [],
        "now": utcnow(),
    }
    assert do_handle_emergency(db, w["conv"], **args) is not None
    assert do_handle_emergency(db, w["conv"], **args) is None
    db.commit()
    assert len(_outbound(db, w["conv"])) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(TaskMention)) == 1


def test_a_wechat_voice_notes_recognised_words_are_checked_like_typed_ones(db: Session) -> None:
    person = factories.patient(db, language="zh-CN", wechat_openid="o-voice")
    conv = factories.conversation(db, person, Channel.WECHAT)
    message = _inbound(db, conv, "我爸爸突然说话不清，嘴歪了", sid="wx-voice-1")
    message.media = [{"url": None, "mime_type": "audio/amr", "media_id": "m-1"}]  # a voice note
    db.commit()
    _turn(db, conv)
    item = db.scalars(sa.select(OutboxItem)).one()
    assert (item.kind, item.patient_id) == (OutboxKind.EMERGENCY, person.id)
    assert db.scalars(sa.select(SafetyAlert.category)).one() == "stroke"


# The rules miss this lay description of a febrile seizure ("jerking in bouts" after a high fever, with no
# word of theirs for a convulsion); the second net reads it as an emergency with a probability above 0.95.
# (The rules learned the earlier example's "eyes rolled up": the assertion below says when to pick another.)
_NET_ONLY = "con sốt cao rồi tự nhiên giật từng cơn"


def test_an_emergency_only_the_classifier_sees_is_acted_on_and_its_source_audited(db: Session) -> None:
    from nlu.safety import check

    assert check(_NET_ONLY) is None  # otherwise this test proves nothing about the second net
    w = _staff_held(db, language="vi")
    _inbound(db, w["conv"], _NET_ONLY)
    _turn(db, w["conv"])
    task = db.get(Task, w["task"].id)
    assert task is not None and task.priority is TaskPriority.EMERGENCY
    alert = db.scalars(sa.select(SafetyAlert)).one()
    category = Emergency(alert.category)  # the categoriser decides: a feverish child's fit is either
    assert category in {Emergency.SEIZURE, Emergency.INFANT_FEVER}
    event = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "safety.emergency")).one()
    assert event.detail["source"] == "classifier"
    assert [m.text for m in _outbound(db, w["conv"])] == [_guidance("vi", category)]


@pytest.fixture
def rules_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CARELOOP_SAFETY_CLASSIFIER", "false")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.usefixtures("rules_only")
def test_with_the_classifier_switched_off_the_rules_answer_alone(db: Session) -> None:
    w = _staff_held(db, language="vi")
    _inbound(db, w["conv"], _NET_ONLY)
    _turn(db, w["conv"])
    task = db.get(Task, w["task"].id)
    assert task is not None and task.priority is TaskPriority.NORMAL
    assert db.scalars(sa.select(SafetyAlert)).all() == []

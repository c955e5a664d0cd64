"""A WeChat follower not yet linked to a patient: the bot answers inside the 48-hour window, and
registration in chat (phone or MRN, and date of birth) binds the openid to the patient's record."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.models import (
    AuditEvent,
    ConsentEvent,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    Role,
    Task,
    TaskKind,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.outbox.sender import send_item
from backend.services.consents import current_consents, do_grant_consent, do_revoke_consent
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.backend.web import test_hooks
from tests.backend.web.test_hooks import _wechat_query, _wechat_text
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.fake_wechat import FakeWeChat

twilio, wechat_api = test_hooks.twilio, test_hooks.wechat_api  # the fake providers' fixtures
FOLLOWER = "o-new-follower-1"
_ids = itertools.count(7_000_000_000_000_000_000)


def _say(client: TestClient, text: str, openid: str = FOLLOWER) -> None:
    now = int(time.time())
    body = _wechat_text(openid, text, now, str(next(_ids)))
    assert client.post("/hooks/wechat", params=_wechat_query(now), content=body).text == "success"


def _sent_texts(fake: FakeWeChat, openid: str = FOLLOWER) -> list[str]:
    found = []
    for call in fake.calls("/cgi-bin/message/custom/send"):
        if call.openid != openid:
            continue
        body = call.body
        if body["msgtype"] == "text":
            found.append(body["text"]["content"])
        elif body["msgtype"] == "msgmenu":
            menu = body["msgmenu"]
            lines = [menu.get("head_content", ""), *(i["content"] for i in menu["list"])]
            found.append("\n".join([*lines, menu.get("tail_content", "")]))
    return found


def _text(key: str, lang: str = "zh-CN") -> str:
    settings = get_settings()
    return load_catalog(settings.content_dir, settings.hospital_name).text(lang, key)


def _first_reply(lang: str = "zh-CN") -> str:
    """A conversation's first reply: the greeting, then (once) the notice that nobody watches the chat
    around the clock."""
    settings = get_settings()
    notice = load_catalog(settings.content_dir, settings.hospital_name).text(
        lang, "safety.notice", emergency_number=settings.emergency_number
    )
    return f"{_text('welcome.greeting', lang)}\n{notice}"


def _register(client: TestClient, phone: str, consent_answer: str) -> None:
    """Hello, the welcome's consent question, then the menu's first option (registration) by phone."""
    for text in ["hello", consent_answer, "menu", "1", "1", phone, "1960-05-17"]:
        _say(client, text)


def _follower_conversation(db: Session) -> Conversation:
    db.expire_all()
    [conversation] = db.scalars(sa.select(Conversation).where(Conversation.channel == Channel.WECHAT))
    return conversation


def test_an_unlinked_follower_is_answered_and_registering_in_chat_binds_the_openid(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613911112222")
    db.commit()
    _say(client, "hello")
    assert _sent_texts(wechat_api)[0] == _first_reply()  # answered, at the openid
    conversation = _follower_conversation(db)
    assert conversation.patient_id is None and conversation.reply_to == FOLLOWER
    assert FOLLOWER not in conversation.address  # the blind index; the openid itself only encrypted
    raw = db.execute(sa.text("SELECT reply_to FROM conversations")).scalar_one()
    assert FOLLOWER not in raw
    assert {item.patient_id for item in db.scalars(sa.select(OutboxItem))} == {None}

    for text in ["1", "menu", "1", "1", "13911112222", "1960-05-17"]:  # consent yes, then registration
        _say(client, text)
    assert _sent_texts(wechat_api)[-2] == _text("reg.bound")
    db.expire_all()
    bound = db.get(Patient, patient.id)
    assert bound is not None and bound.wechat_openid == FOLLOWER
    conversation = _follower_conversation(db)
    assert conversation.patient_id == patient.id
    assert conversation.reply_to is None and conversation.pending_consents is None
    [consent] = db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient.id))
    assert (consent.purpose, consent.channel, consent.granted) == (ConsentPurpose.CARE, Channel.WECHAT, True)
    assert consent.evidence is not None and consent.evidence["given_before_linking"] is True
    actions = list(db.scalars(sa.select(AuditEvent.action)))
    assert "wechat.bound" in actions and "conversation.identified" in actions
    last = db.scalars(sa.select(OutboxItem).order_by(OutboxItem.id.desc())).first()
    assert last is not None and last.patient_id == patient.id and last.status is OutboxStatus.SENT

    _say(client, "1")  # the language question, answered as the patient now
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 1
    assert db.get(Patient, patient.id).language == "zh-CN"  # type: ignore[union-attr]


def test_a_follower_who_declined_before_registering_is_not_messaged_after_it(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613911113333")
    db.commit()
    _register(client, "13911113333", consent_answer="2")  # "no, thanks" to care messages here
    assert _text("welcome.thanks_declined") in _sent_texts(wechat_api)
    db.expire_all()
    assert db.get(Patient, patient.id).wechat_openid == FOLLOWER  # type: ignore[union-attr]
    [consent] = db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient.id))
    assert (consent.channel, consent.granted) == (Channel.WECHAT, False)
    # the replies after binding are the patient's now, and the patient said no on WeChat
    assert _text("reg.bound") not in _sent_texts(wechat_api)
    last = db.scalars(sa.select(OutboxItem).order_by(OutboxItem.id.desc())).first()
    assert last is not None and last.patient_id == patient.id
    assert (last.status, last.reason) == (OutboxStatus.SUPPRESSED, "no_consent")


def test_registration_refuses_a_patient_bound_to_another_follower(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613911114444", wechat_openid="o-the-real-patient")
    db.commit()
    _register(client, "13911114444", consent_answer="1")
    assert _text("reg.refused") in _sent_texts(wechat_api)[-2:]  # then the menu again
    db.expire_all()
    assert db.get(Patient, patient.id).wechat_openid == "o-the-real-patient"  # type: ignore[union-attr]
    conversation = _follower_conversation(db)
    assert conversation.patient_id is None and conversation.reply_to == FOLLOWER
    assert _sent_texts(wechat_api, "o-the-real-patient") == []


def test_a_reply_to_an_unlinked_follower_after_48_hours_is_not_sent(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    _say(client, "hello")
    conversation = _follower_conversation(db)
    db.execute(sa.update(Message).values(created_at=utcnow() - timedelta(hours=49)))
    late = Outbound((Text("late"),))
    item = do_enqueue(db, conversation=conversation, outbound=late, kind=OutboxKind.REPLY)
    db.commit()
    sent = len(_sent_texts(wechat_api))
    assert send_item(item.id) == "suppressed:window_closed"
    assert len(_sent_texts(wechat_api)) == sent


def test_only_replies_go_to_an_unlinked_follower_and_unknown_numbers_get_none(
    twilio: FakeTwilio, wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    _say(client, "hello")
    follower = _follower_conversation(db)
    with pytest.raises(ValueError, match="no known patient"):
        do_enqueue(db, conversation=follower, outbound=Outbound((Text("news"),)), kind=OutboxKind.OUTREACH)
    sms = get_or_create_conversation(db, patient_id=None, channel=Channel.SMS, address="bidx-of-a-number")
    assert sms.reply_to is None
    with pytest.raises(ValueError, match="no known patient"):
        do_enqueue(db, conversation=sms, outbound=Outbound((Text("hi"),)), kind=OutboxKind.REPLY)


def _event(client: TestClient, openid: str, created: int, event: str = "subscribe") -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
    ).encode()
    assert client.post("/hooks/wechat", params=_wechat_query(created), content=body).text == "success"


def _follow(client: TestClient, openid: str, created: int) -> None:
    _event(client, openid, created, "subscribe")


def test_a_new_follower_is_greeted_once_and_no_openid_is_stored_in_plain_text(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    now = int(time.time())
    _follow(client, FOLLOWER, now)
    _follow(client, FOLLOWER, now)  # WeChat delivers again when we are slow to answer
    texts = _sent_texts(wechat_api)
    assert texts[0] == _first_reply() and texts.count(_first_reply()) == 1
    db.expire_all()
    [event] = db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND))
    assert event.status is MessageStatus.PROCESSED and FOLLOWER not in (event.provider_message_id or "")
    _say(client, "1")  # the welcome's consent question, answered
    assert _text("welcome.thanks_granted") in _sent_texts(wechat_api)


def test_a_patient_following_again_is_not_greeted_twice(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    factories.patient(db, wechat_openid=FOLLOWER)
    db.commit()
    _follow(client, FOLLOWER, int(time.time()) - 60)
    _say(client, "1")
    sent = len(_sent_texts(wechat_api))
    _follow(client, FOLLOWER, int(time.time()))  # unfollowed and followed again: the same conversation
    assert len(_sent_texts(wechat_api)) == sent


def test_staff_answer_an_unlinked_follower_who_asked_for_a_person_inside_the_window(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    db.commit()
    for text in ["hello", "1", "menu", "8"]:  # the welcome, then the menu's "a person"
        _say(client, text)
    db.expire_all()
    [task] = db.scalars(sa.select(Task).where(Task.kind == TaskKind.HANDOFF))
    assert task.patient_id is None
    sign_in(client, "agent1")
    page = client.get(f"/staff/inbox/{task.id}").text
    reply = client.post(
        f"/staff/inbox/{task.id}/reply",
        data={"csrf_token": _csrf(page), "text": "A nurse here: how can I help?"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert _sent_texts(wechat_api)[-1] == "A nurse here: how can I help?"
    db.expire_all()
    item = db.scalars(sa.select(OutboxItem).order_by(OutboxItem.id.desc())).first()
    assert item is not None and item.patient_id is None and item.created_by_staff_id is not None

    db.execute(sa.update(Message).values(created_at=utcnow() - timedelta(hours=49)))
    db.commit()
    late = client.post(
        f"/staff/inbox/{task.id}/reply",
        data={"csrf_token": _csrf(client.get(f"/staff/inbox/{task.id}").text), "text": "Still there?"},
    )
    assert late.status_code == 409 and "reply window has closed" in late.text
    assert "Still there?" not in _sent_texts(wechat_api)


def test_following_again_restores_only_what_unfollowing_revoked(
    wechat_api: FakeWeChat, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, wechat_openid=FOLLOWER)
    db.flush()
    do_grant_consent(
        db, patient_id=patient.id, purpose=ConsentPurpose.RESEARCH, channel=Channel.WECHAT, source="staff"
    )
    do_revoke_consent(
        db,
        patient_id=patient.id,
        purpose=ConsentPurpose.MARKETING,
        channel=Channel.WECHAT,
        source="wechat:consent",
    )
    db.commit()
    now = int(time.time())
    _event(client, FOLLOWER, now - 60, "unsubscribe")
    db.expire_all()
    assert not any(e.granted for e in current_consents(db, patient.id).values())  # WeChat forbids sends now
    _follow(client, FOLLOWER, now)
    db.expire_all()
    state = {purpose: e.granted for (purpose, _), e in current_consents(db, patient.id).items()}
    assert state == {
        ConsentPurpose.CARE: True,
        ConsentPurpose.RESEARCH: True,
        ConsentPurpose.MARKETING: False,
    }
    restored = current_consents(db, patient.id)[(ConsentPurpose.CARE, Channel.WECHAT)]
    assert restored.source == "wechat:follow"
    assert _first_reply(patient.language) in _sent_texts(wechat_api)  # and care messages reach her again

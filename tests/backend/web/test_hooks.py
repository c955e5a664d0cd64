"""Provider webhooks through the app: signatures, duplicates, malformed bodies, keywords, status callbacks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from wechatpy.crypto import WeChatCrypto

from backend.models import (
    AuditEvent,
    ConsentEvent,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.outbox.sender import send_item
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text
from channels.sms_gateway import gateway_signature
from channels.wechat_inbound import signature_of
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.channels.fake_twilio import FakeTwilio, incoming_sms, sign
from tests.channels.fake_wechat import FakeWeChat
from tests.conftest import reset_caches

PUBLIC = "https://careloop.example.org"  # what Twilio and WeChat see; the app runs behind a proxy
WECHAT_TOKEN, WECHAT_APP = "wechat-token-for-tests", "wx2c2769f8efd9abc2"
WECHAT_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        for name, value in {
            "CARELOOP_PUBLIC_URL": PUBLIC,
            "CARELOOP_TWILIO_ACCOUNT_SID": fake.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": fake.auth_token,
            "CARELOOP_TWILIO_API_BASE": fake.base_url,
            "CARELOOP_TWILIO_SMS_FROM": "+15005550006",
            "CARELOOP_SMS_GATEWAY_TOKEN": fake.gateway_token,
            "CARELOOP_WECHAT_APP_ID": WECHAT_APP,
            "CARELOOP_WECHAT_TOKEN": WECHAT_TOKEN,
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield fake
        reset_caches()


def _post_sms(client: TestClient, fake: FakeTwilio, params: dict[str, str], *, forge: bool = False) -> int:
    signature = sign(f"{PUBLIC}/hooks/twilio/messages", params, fake.auth_token)
    return client.post(
        "/hooks/twilio/messages",
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "forged" + signature if forge else signature,
        },
    ).status_code


def _inbound(db: Session) -> list[Message]:
    db.expire_all()
    return list(db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND)))


def test_a_signed_sms_from_a_patient_is_stored_and_answered(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    assert _post_sms(client, twilio, incoming_sms("+8613800138000", "hello")) == 200
    [message] = _inbound(db)
    assert message.conversation.patient_id == patient.id and message.text == "hello"
    assert message.status is MessageStatus.PROCESSED  # the turn ran (inline: no Redis here)
    replies = db.scalars(sa.select(OutboxItem).where(OutboxItem.patient_id == patient.id)).all()
    assert replies and all(r.kind is OutboxKind.REPLY and r.status is OutboxStatus.SENT for r in replies)
    assert {m.params["To"] for m in twilio.messages} == {"+8613800138000"}


def test_a_forged_or_missing_signature_is_refused_and_nothing_is_stored(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    factories.patient(db, phone="+8613800138000")
    db.commit()
    assert _post_sms(client, twilio, incoming_sms("+8613800138000"), forge=True) == 403
    unsigned = client.post("/hooks/twilio/messages", data=incoming_sms("+8613800138000"))
    assert unsigned.status_code == 403
    assert _inbound(db) == [] and twilio.requests == []


def test_the_signature_is_checked_on_the_public_url_not_the_internal_one(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    params = incoming_sms("+8613800138000")
    internal = sign("http://127.0.0.1:8000/hooks/twilio/messages", params, twilio.auth_token)
    response = client.post(
        "/hooks/twilio/messages",
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": internal},
    )
    assert response.status_code == 403 and _inbound(db) == []


def test_the_same_delivery_twice_is_stored_once(twilio: FakeTwilio, client: TestClient, db: Session) -> None:
    factories.patient(db, phone="+8613800138000")
    db.commit()
    params = incoming_sms("+8613800138000", "2")
    assert _post_sms(client, twilio, params) == 200
    sent = len(twilio.messages)
    assert _post_sms(client, twilio, params) == 200
    assert len(_inbound(db)) == 1 and len(twilio.messages) == sent  # no second reply either


def test_a_malformed_body_gets_a_clear_400(twilio: FakeTwilio, client: TestClient, db: Session) -> None:
    params = {k: v for k, v in incoming_sms().items() if k != "MessageSid"}
    assert _post_sms(client, twilio, params) == 400
    big = client.post("/hooks/twilio/messages", content=b"x" * 70_000)
    assert big.status_code == 413
    assert _inbound(db) == []


def test_stop_revokes_consent_in_the_same_request_and_nothing_more_is_sent(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+8613800138000")
    db.commit()
    assert _post_sms(client, twilio, incoming_sms("+8613800138000", "退订")) == 200
    db.expire_all()
    revoked = db.scalars(
        sa.select(ConsentEvent).where(
            ConsentEvent.patient_id == patient.id, ConsentEvent.channel == Channel.SMS
        )
    ).all()
    assert {(e.purpose, e.granted) for e in revoked} == {(p, False) for p in ConsentPurpose}
    assert twilio.messages == []  # no bot turn, no reply
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=Channel.SMS, address="x")
    item = do_enqueue(
        db, conversation=conversation, outbound=Outbound((Text("Reminder"),)), kind=OutboxKind.OUTREACH
    )
    db.commit()
    assert send_item(item.id) == "suppressed:no_consent" and twilio.messages == []


def test_help_is_answered_in_the_patients_language_and_start_resubscribes(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, phone="+84912345678", language="vi")
    db.commit()
    assert _post_sms(client, twilio, incoming_sms("+84912345678", "HỦY")) == 200
    assert _post_sms(client, twilio, incoming_sms("+84912345678", "bat dau")) == 200
    assert _post_sms(client, twilio, incoming_sms("+84912345678", "Trợ giúp")) == 200
    bodies = [m.params["Body"] for m in twilio.messages]
    assert len(bodies) == 2 and "nhận lại" in bodies[0] and "Dịch vụ" in bodies[1]
    db.expire_all()
    latest = db.scalars(
        sa.select(ConsentEvent)
        .where(ConsentEvent.patient_id == patient.id, ConsentEvent.purpose == ConsentPurpose.CARE)
        .order_by(ConsentEvent.id.desc())
    ).first()
    assert latest is not None and latest.granted


def test_an_unknown_sender_is_kept_without_a_patient(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    assert _post_sms(client, twilio, incoming_sms("+8613700000000", "who is this")) == 200
    [message] = _inbound(db)
    assert message.conversation.patient_id is None and "+8613700000000" not in message.conversation.address
    assert twilio.messages == []  # nobody to answer on behalf of


def test_a_status_callback_marks_the_message_delivered(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db)
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=Channel.SMS, address="x")
    item = do_enqueue(db, conversation=conversation, outbound=Outbound((Text("Hi"),)), kind=OutboxKind.REPLY)
    db.commit()
    assert send_item(item.id) == "sent"
    url, params, signature = twilio.status_callback(twilio.messages[0].sid or "", "delivered")
    assert url == f"{PUBLIC}/hooks/twilio/status"
    path = url.removeprefix(PUBLIC)
    forged = client.post(path, content=urlencode(params), headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403
    response = client.post(
        path,
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status_code == 204
    db.expire_all()
    assert db.get(OutboxItem, item.id).status is OutboxStatus.DELIVERED  # type: ignore[union-attr]


def test_the_sms_gateway_callback_is_verified_and_stored(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    factories.patient(db, phone="+84912345678")
    db.commit()
    body = json.dumps({"type": "inbound", "id": "gw-1", "from": "+84912345678", "text": "Có"}).encode()
    assert client.post("/hooks/sms-gateway", content=body, headers={"X-Signature": "bad"}).status_code == 403
    assert _inbound(db) == []
    good = client.post(
        "/hooks/sms-gateway",
        content=body,
        headers={"X-Signature": gateway_signature(body, twilio.gateway_token)},
    )
    assert good.status_code == 200
    assert [m.text for m in _inbound(db)] == ["Có"]


def _wechat_query(timestamp: int, nonce: str | None = None) -> dict[str, str]:
    """A signed query as WeChat sends it: a fresh nonce for every request (a nonce seen before with
    another body is refused as a replay)."""
    nonce = nonce or uuid.uuid4().hex[:16]
    return {
        "timestamp": str(timestamp),
        "nonce": nonce,
        "signature": signature_of(WECHAT_TOKEN, str(timestamp), nonce),
        "openid": "o-follower",
    }


def _wechat_text(openid: str, text: str, created: int, msg_id: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def test_wechat_url_verification_echoes_only_for_our_token(twilio: FakeTwilio, client: TestClient) -> None:
    now = int(time.time())
    good = client.get("/hooks/wechat", params={**_wechat_query(now), "echostr": "e123"})
    assert good.status_code == 200 and good.text == "e123"
    bad = client.get("/hooks/wechat", params={**_wechat_query(now), "signature": "0" * 40, "echostr": "e123"})
    assert bad.status_code == 403


def test_a_wechat_message_is_answered_success_and_stored_once(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    patient = factories.patient(db, wechat_openid="o-follower")
    db.commit()
    now = int(time.time())
    body = _wechat_text("o-follower", "你好", now, "6054768590064713728")
    first = client.post("/hooks/wechat", params=_wechat_query(now), content=body)
    again = client.post("/hooks/wechat", params=_wechat_query(now), content=body)
    assert first.text == again.text == "success"
    [message] = _inbound(db)
    assert message.conversation.patient_id == patient.id and message.text == "你好"


def test_wechat_replays_forgeries_and_broken_xml_are_refused(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    now = int(time.time())
    old = now - 600
    replay = client.post(
        "/hooks/wechat", params=_wechat_query(old), content=_wechat_text("o", "hi", old, "1")
    )
    assert replay.status_code == 403
    forged = client.post(
        "/hooks/wechat",
        params={**_wechat_query(now), "signature": "f" * 40},
        content=_wechat_text("o", "hi", now, "2"),
    )
    assert forged.status_code == 403
    broken = client.post("/hooks/wechat", params=_wechat_query(now), content=b"<xml><MsgType>text")
    assert broken.status_code == 400
    assert _inbound(db) == []


def test_wechat_safe_mode_decrypts_and_unfollow_revokes_consent(
    twilio: FakeTwilio, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_WECHAT_ENCODING_AES_KEY", WECHAT_AES)
    reset_caches()
    patient = factories.patient(db, wechat_openid="o-follower")
    db.commit()
    now = int(time.time())
    event = (
        "<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName><FromUserName><![CDATA[o-follower]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unsubscribe]]></Event></xml>"
    )
    encrypted = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES, WECHAT_APP).encrypt_message(event, "n2", str(now))
    envelope = encrypted if isinstance(encrypted, str) else encrypted.decode()
    fields = xmltodict.parse(envelope)["xml"]
    query = {
        "timestamp": str(now),
        "nonce": "n2",
        "encrypt_type": "aes",
        "msg_signature": fields["MsgSignature"],
        "signature": signature_of(WECHAT_TOKEN, str(now), "n2"),
    }
    body = (
        f"<xml><ToUserName>gh_hospital</ToUserName><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
    )
    response = client.post("/hooks/wechat", params=query, content=body.encode())
    assert response.text == "success"
    db.expire_all()
    revoked = db.scalars(
        sa.select(ConsentEvent).where(
            ConsentEvent.patient_id == patient.id, ConsentEvent.channel == Channel.WECHAT
        )
    ).all()
    assert {(e.purpose, e.granted) for e in revoked} == {(p, False) for p in ConsentPurpose}


def _wechat_image(openid: str, created: int, media_id: str, msg_id: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    ).encode()


@pytest.fixture
def wechat_api(twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeWeChat]:
    with FakeWeChat(app_id=WECHAT_APP) as fake:
        monkeypatch.setenv("CARELOOP_WECHAT_APP_SECRET", fake.secret)
        monkeypatch.setenv("CARELOOP_WECHAT_API_ROOT", fake.base_url)
        monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(tmp_path / "media"))
        monkeypatch.setenv("CARELOOP_MAX_MEDIA_BYTES", "100000")
        reset_caches()
        yield fake


def test_a_wechat_photo_is_copied_encrypted_and_shown_only_to_permitted_staff(
    wechat_api: FakeWeChat, client: TestClient, db: Session, tmp_path: Path
) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    patient = factories.patient(db, wechat_openid="o-follower", dept=cardio)
    factories.staff(db, username="nurse1", departments=[cardio])
    factories.staff(db, username="nurse2", departments=[ortho])
    db.commit()
    photo = b"\xff\xd8\xff\xe0" + b"wound photo" * 100
    wechat_api.media["MEDIA_1"] = (photo, "image/jpeg")
    now = int(time.time())
    body = _wechat_image("o-follower", now, "MEDIA_1", "6054768590064713999")
    assert client.post("/hooks/wechat", params=_wechat_query(now), content=body).text == "success"
    [message] = _inbound(db)
    assert message.conversation.patient_id == patient.id
    [item] = message.media or []
    assert item["media_id"] == "MEDIA_1" and item["size"] == len(photo)
    on_disk = (tmp_path / "media" / item["stored"]).read_bytes()
    assert photo not in on_disk and b"wound photo" not in on_disk  # encrypted at rest
    sign_in(client, "nurse2")
    assert client.get(f"/staff/media/{message.id}/0").status_code == 404
    client.cookies.clear()
    sign_in(client, "nurse1")
    shown = client.get(f"/staff/media/{message.id}/0")
    assert (
        shown.status_code == 200 and shown.content == photo and shown.headers["content-type"] == "image/jpeg"
    )
    actions = db.scalars(
        sa.select(AuditEvent.action).where(
            AuditEvent.subject_type == "message", AuditEvent.subject_id == message.id
        )
    ).all()
    assert sorted(actions) == ["media.view", "media.view_denied"]


def test_an_oversized_photo_is_refused_and_the_message_kept(
    wechat_api: FakeWeChat, client: TestClient, db: Session, tmp_path: Path
) -> None:
    factories.patient(db, wechat_openid="o-follower")
    db.commit()
    wechat_api.media["BIG"] = (b"x" * 200_000, "image/jpeg")
    now = int(time.time())
    body = _wechat_image("o-follower", now, "BIG", "6054768590064714000")
    assert client.post("/hooks/wechat", params=_wechat_query(now), content=body).text == "success"
    [message] = _inbound(db)
    assert [m.get("error") for m in message.media or []] == ["too_large"]
    assert not (tmp_path / "media").exists() or list((tmp_path / "media").iterdir()) == []


def test_scanning_a_department_qr_code_lets_that_department_see_the_patient(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    ward = factories.department(db, code="CARD")
    patient = factories.patient(db, wechat_openid="o-follower")  # no encounter in Cardiology
    factories.staff(db, username="nurse1", departments=[ward])
    db.commit()
    sign_in(client, "nurse1")
    assert client.get(f"/staff/patients/{patient.id}").status_code == 403
    now = int(time.time())
    scan = (
        "<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName><FromUserName><![CDATA[o-follower]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event>"
        "<EventKey><![CDATA[dept:CARD]]></EventKey><Ticket><![CDATA[t]]></Ticket></xml>"
    )
    assert client.post("/hooks/wechat", params=_wechat_query(now), content=scan.encode()).text == "success"
    assert client.get(f"/staff/patients/{patient.id}").status_code == 200


def test_the_conversation_moves_to_each_new_message_and_not_for_a_duplicate(db: Session) -> None:
    from datetime import UTC, datetime, timedelta

    from backend.models import Conversation
    from backend.services.inbound import do_receive
    from bots.messages import Inbound

    factories.patient(db, phone="+8613800138000")
    db.commit()
    first_at = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)

    def sms(sid: str, at: datetime) -> Inbound:
        return Inbound(Channel.SMS, "+8613800138000", provider_message_id=sid, received_at=at, text="hi")

    first = do_receive(db, sms("SM" + "1" * 32, first_at))
    second = do_receive(db, sms("SM" + "2" * 32, first_at + timedelta(minutes=5)))
    again = do_receive(db, sms("SM" + "1" * 32, first_at + timedelta(minutes=9)))
    db.commit()
    db.expire_all()
    conversation = db.get(Conversation, first.conversation_id)
    assert conversation is not None and second.conversation_id == again.conversation_id == conversation.id
    assert (first.new, second.new, again.new) == (True, True, False) and again.message_id == first.message_id
    assert conversation.last_message_at == first_at + timedelta(minutes=5)
    stored = {m.provider_message_id: m.created_at for m in _inbound(db)}
    assert stored == {"SM" + "1" * 32: first_at, "SM" + "2" * 32: first_at + timedelta(minutes=5)}


def test_a_first_message_creates_the_conversation_at_its_own_time(db: Session) -> None:
    from datetime import UTC, datetime

    from backend.models import Conversation
    from backend.services.inbound import do_receive
    from bots.messages import Inbound

    at = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    received = do_receive(
        db, Inbound(Channel.SMS, "+8613900000001", provider_message_id="SM" + "3" * 32, received_at=at)
    )
    db.commit()
    db.expire_all()
    conversation = db.get(Conversation, received.conversation_id)
    assert conversation is not None and conversation.patient_id is None  # an unknown sender
    assert conversation.last_message_at == at and received.run_turn


def test_a_photo_whose_fetch_was_lost_in_a_redis_outage_is_fetched_by_the_sweep(
    wechat_api: FakeWeChat, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.app import jobs
    from backend.app.periodic import fetch_missing_media

    factories.patient(db, wechat_openid="o-follower", dept=factories.department(db))
    db.commit()
    photo = b"\xff\xd8\xff\xe0" + b"rash photo" * 50
    wechat_api.media["MEDIA_2"] = (photo, "image/jpeg")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # Redis is down while the photo arrives
    reset_caches()
    now = int(time.time())
    body = _wechat_image("o-follower", now, "MEDIA_2", "6054768590064714001")
    assert client.post("/hooks/wechat", params=_wechat_query(now), content=body).text == "success"
    monkeypatch.delenv("REDIS_URL")
    reset_caches()
    jobs._queue.cache_clear()
    [message] = _inbound(db)
    assert "stored" not in (message.media or [{}])[0]  # the fetch job never reached a queue

    assert fetch_missing_media() == 0  # a minute's grace: its job may still be on its way
    db.execute(
        sa.update(Message).where(Message.id == message.id).values(created_at=utcnow() - timedelta(minutes=2))
    )
    db.commit()
    assert fetch_missing_media() == 1
    db.expire_all()
    [item] = db.get(Message, message.id).media or []  # type: ignore[union-attr]
    assert item["size"] == len(photo) and item["stored"]
    assert fetch_missing_media() == 0  # done once, not again

"""At first contact the patient is told, once per conversation, that the chat is not watched around the
clock and what to do in an emergency; on the web chat and on SMS alike."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.dialogue.turns import handle_pending
from backend.messaging.links import LinkKind, make_token
from backend.models import Conversation, Direction, Message, MessageStatus
from backend.models.base import utcnow
from bots.domain import Channel
from tests import factories


def _notice(lang: str) -> str:
    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    return catalog.text(lang, "safety.notice", emergency_number=settings.emergency_number)


def test_the_web_chat_tells_the_notice_with_the_greeting_once(client: TestClient, db: Session) -> None:
    person = factories.patient(db, language="vi", dept=factories.department(db))
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    page = client.get(f"/c/{token}")
    assert _notice("vi") in page.text
    client.post(f"/c/{token}/messages", data={"text": "?", "client_id": "client-n-1"})
    client.get(f"/c/{token}")
    db.expire_all()
    texts = db.scalars(sa.select(Message.text).where(Message.direction == Direction.OUTBOUND)).all()
    assert sum(_notice("vi") in t for t in texts) == 1
    conversation = db.scalars(sa.select(Conversation)).one()
    assert conversation.notice_sent_at is not None


def test_an_sms_conversations_first_reply_carries_the_notice(db: Session) -> None:
    person = factories.patient(db, language="zh-CN")
    conv = factories.conversation(db, person, Channel.SMS)
    for text in ("你好", "在吗"):
        db.add(
            Message(
                conversation_id=conv.id,
                channel=Channel.SMS,
                direction=Direction.INBOUND,
                status=MessageStatus.RECEIVED,
                text=text,
                created_at=utcnow(),
            )
        )
        db.flush()
        handle_pending(db, conv.id, [])
    db.commit()
    texts = db.scalars(
        sa.select(Message.text).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
    ).all()
    assert _notice("zh-CN") in texts[0]
    assert sum(_notice("zh-CN") in t for t in texts) == 1

"""The web chat end to end through the app: links, turns, consent, dedup, limits, hand-off."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    ConsentEvent,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    MessageStatus,
    Task,
    TaskKind,
    TaskPriority,
)
from bots.domain import Channel, ConsentPurpose
from tests import factories


def _saying(db: Session, text: str) -> Message:
    """The one message with this text (texts are encrypted: compared here, not in SQL)."""
    [found] = [m for m in db.scalars(sa.select(Message)) if m.text == text]
    return found


def _count(db: Session, model: Any) -> int:
    db.expire_all()
    return int(db.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _link(db: Session, language: str = "en") -> tuple[int, str]:
    dept = factories.department(db)
    person = factories.patient(db, language=language, dept=dept)
    db.commit()
    return person.id, make_token(get_settings(), LinkKind.CHAT, person.id)


def _post(client: TestClient, token: str, **form: str) -> Any:
    return client.post(f"/c/{token}/messages", data=form, headers={"Accept": "application/json"})


def test_opening_the_link_greets_the_patient_in_their_language(client: TestClient, db: Session) -> None:
    _, token = _link(db, language="zh-CN")
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    assert "院后随访服务" in page.text and "同意" in page.text
    assert 'lang="zh-CN"' in page.text
    client.get(f"/c/{token}")  # opening it again does not greet twice
    assert _count(db, Message) == 3  # start event + greeting + consent question


def test_patient_grants_consent_with_a_button_and_it_is_recorded(client: TestClient, db: Session) -> None:
    patient_id, token = _link(db)
    client.get(f"/c/{token}")
    response = _post(client, token, choice="yes", text="Yes, I agree", client_id="client-0001")
    assert response.status_code == 200
    texts = [item["text"] for item in response.json()["items"]]
    assert texts[-3:-1] == ["Yes, I agree", "Thank you. We will contact you here about your care."]
    assert texts[-1].startswith("What can I do for you?")  # the welcome ends with the menu
    db.expire_all()
    consent = db.scalars(sa.select(ConsentEvent)).one()
    assert (consent.patient_id, consent.purpose, consent.channel, consent.granted) == (
        patient_id,
        ConsentPurpose.CARE,
        Channel.WEBCHAT,
        True,
    )
    # the question the patient answered, though the turn ended at the menu
    assert consent.source == "webchat:welcome" and consent.evidence["step"] == "consent"
    statuses = {m.direction: m.status for m in db.scalars(sa.select(Message))}
    assert statuses[Direction.INBOUND] is MessageStatus.PROCESSED


def test_typed_answer_declines_consent(client: TestClient, db: Session) -> None:
    _, token = _link(db, language="vi")
    client.get(f"/c/{token}")
    _post(client, token, text="không", client_id="client-0002")
    db.expire_all()
    assert db.scalars(sa.select(ConsentEvent.granted)).all() == [False]


def test_double_submitted_message_is_stored_once(client: TestClient, db: Session) -> None:
    _, token = _link(db)
    client.get(f"/c/{token}")
    first = _post(client, token, text="hello?", client_id="same-client-id")
    second = _post(client, token, text="hello?", client_id="same-client-id")
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    db.expire_all()
    inbound = db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND)).all()
    assert [m.text for m in inbound].count("hello?") == 1  # texts are encrypted: compared here
    replies = db.scalars(sa.select(Message).where(Message.direction == Direction.OUTBOUND)).all()
    assert len(replies) == 3  # greeting, question, one reprompt: the duplicate ran no second turn


def test_message_over_4kb_is_refused_with_a_message_and_nothing_stored(
    client: TestClient, db: Session
) -> None:
    _, token = _link(db, language="zh-CN")
    client.get(f"/c/{token}")
    before = _count(db, Message)
    response = _post(client, token, text="痛" * 1400, client_id="client-0003")  # 4200 bytes in UTF-8
    assert response.status_code == 413
    assert "太长" in response.json()["message"]
    assert _count(db, Message) == before
    assert _post(client, token, text="痛" * 1365, client_id="client-0004").status_code == 200  # 4095 bytes


def test_forged_link_is_404_and_creates_nothing(client: TestClient, db: Session) -> None:
    _, token = _link(db)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for path in (f"/c/{forged}", "/c/not-a-token"):
        response = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert response.status_code == 404
        assert "not valid" in response.text
    assert _post(client, forged, text="hi", client_id="client-0005").status_code == 404
    assert _count(db, Conversation) == 0 and _count(db, Message) == 0


def test_expired_link_is_410_and_creates_nothing(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient_id, _ = _link(db)
    eight_days_ago = time.time() - 8 * 86400
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: eight_days_ago)  # itsdangerous dates tokens with time.time()
        token = make_token(get_settings(), LinkKind.CHAT, patient_id)
    response = client.get(f"/c/{token}", headers={"Accept-Language": "en"})
    assert response.status_code == 410 and "expired" in response.text
    assert _post(client, token, text="hi", client_id="client-0006").status_code == 410
    assert _count(db, Conversation) == 0 and _count(db, Message) == 0


def test_refusal_speaks_the_browsers_language(client: TestClient) -> None:
    response = client.get("/c/not-a-token", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert response.status_code == 404 and "Liên kết này không hợp lệ" in response.text
    assert 'lang="vi"' in response.text


def test_link_for_an_unknown_patient_is_404(client: TestClient, db: Session) -> None:
    token = make_token(get_settings(), LinkKind.CHAT, 99999)
    assert client.get(f"/c/{token}").status_code == 404
    assert _count(db, Conversation) == 0


def test_empty_or_malformed_posts_get_a_clear_error_and_store_nothing(
    client: TestClient, db: Session
) -> None:
    _, token = _link(db)
    client.get(f"/c/{token}")
    before = _count(db, Message)
    assert _post(client, token, text="   ", client_id="client-0007").status_code == 422
    assert _post(client, token, text="hi", client_id="bad id!").status_code == 422
    assert _count(db, Message) == before


def test_two_unclear_answers_hand_the_conversation_to_staff(client: TestClient, db: Session) -> None:
    patient_id, token = _link(db)
    client.get(f"/c/{token}")
    _post(client, token, text="🙂", client_id="client-0008")
    _post(client, token, text="???", client_id="client-0009")
    db.expire_all()
    task = db.scalars(sa.select(Task)).one()
    assert (task.kind, task.patient_id, task.source_type) == (TaskKind.HANDOFF, patient_id, "conversation")
    assert task.department_id is not None and task.due_at > task.created_at
    conversation = db.scalars(sa.select(Conversation)).one()
    assert conversation.owner is ConversationOwner.STAFF
    _post(client, token, text="hello, anyone?", client_id="client-0010")  # staff own it: the bot stays quiet
    db.expire_all()
    last = db.scalars(sa.select(Message).order_by(Message.id.desc()).limit(1)).one()
    assert last.direction is Direction.INBOUND and last.status is MessageStatus.PROCESSED
    assert _count(db, Task) == 1


def test_new_messages_are_fetched_after_an_id(client: TestClient, db: Session) -> None:
    _, token = _link(db)
    client.get(f"/c/{token}")
    items = client.get(f"/c/{token}/messages").json()["items"]
    assert len(items) == 2
    assert client.get(f"/c/{token}/messages", params={"after": items[-1]["id"]}).json()["items"] == []


def test_page_works_without_javascript_by_post_redirect_get(client: TestClient, db: Session) -> None:
    _, token = _link(db)
    client.get(f"/c/{token}")
    response = client.post(
        f"/c/{token}/messages",
        data={"choice": "no", "text": "No, thank you", "client_id": "client-0011"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"/c/{token}"
    assert "We will not send you care messages" in client.get(f"/c/{token}").text


def test_an_emergency_raises_an_emergency_task_and_the_bot_goes_quiet(
    client: TestClient, db: Session
) -> None:
    patient_id, token = _link(db, language="vi")
    client.get(f"/c/{token}")
    reply = _post(client, token, text="tôi bị đau ngực dữ dội", client_id="client-emerg1")
    assert get_settings().emergency_number in reply.json()["items"][-1]["text"]  # the site's own number
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.kind, task.priority, task.title) == (
        TaskKind.HANDOFF,
        TaskPriority.EMERGENCY,
        "handoff:emergency",
    )
    assert task.due_at - task.created_at == timedelta(minutes=15)
    last = str(reply.json()["items"][-1]["id"])
    quiet = _post(client, token, text="còn đó không?", client_id="client-emerg2", after=last)
    assert [i["mine"] for i in quiet.json()["items"]] == [True]  # staff own the conversation now


def test_a_turn_that_fails_keeps_the_message_for_the_retry_sweep(client: TestClient, db: Session) -> None:
    from backend.app.periodic import retry_pending_turns

    _, token = _link(db)
    client.get(f"/c/{token}")
    conversation = db.scalars(sa.select(Conversation)).one()
    conversation.flow_id = "no_such_flow"  # content removed under a live conversation: the turn raises
    db.commit()
    response = _post(client, token, text="hello?", client_id="client-fail-1")
    assert response.status_code == 200 and response.json()["duplicate"] is False
    db.expire_all()
    stored = _saying(db, "hello?")
    assert stored.status is MessageStatus.RECEIVED  # kept, not handled: the turn was rolled back alone
    replies_before = _count(db, Message)
    conversation = db.get(Conversation, conversation.id)
    assert conversation is not None
    conversation.flow_id = None  # the content is back
    stored.created_at = stored.created_at - timedelta(minutes=5)
    db.commit()
    assert retry_pending_turns() == 1
    db.expire_all()
    assert db.get(Message, stored.id).status is MessageStatus.PROCESSED  # type: ignore[union-attr]
    assert _count(db, Message) > replies_before


def test_each_message_moves_the_conversations_last_message_time_bot_or_staff_owned(
    client: TestClient, db: Session
) -> None:
    _, token = _link(db)
    client.get(f"/c/{token}")
    conversation = db.scalars(sa.select(Conversation)).one()
    opened_at = conversation.last_message_at
    assert opened_at is not None
    assert _post(client, token, text="hello?", client_id="client-last-1").status_code == 200
    db.expire_all()
    first = _saying(db, "hello?")
    after_bot = db.get(Conversation, conversation.id)
    assert after_bot is not None and after_bot.last_message_at is not None
    assert after_bot.last_message_at >= first.created_at > opened_at  # the turn's own time, at or after it
    after_bot.owner = ConversationOwner.STAFF  # staff took it over: the bot stays quiet
    db.commit()
    assert _post(client, token, text="anyone there?", client_id="client-last-2").status_code == 200
    db.expire_all()
    second = _saying(db, "anyone there?")
    staff_owned = db.get(Conversation, conversation.id)
    assert staff_owned is not None
    assert staff_owned.last_message_at == second.created_at  # the inbox orders it by this arrival

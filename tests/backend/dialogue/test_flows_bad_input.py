"""Bad input in the flows through the web chat: gibberish, emoji, 4 KB of text and mixed languages are
clarified and then handed to staff (against the real Rasa); two messages of one patient at the same
instant are each handled once, in the order stored; a conversation continues where it was after a
restart of the app."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.dialogue.turns import run_turn
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    Conversation,
    ConversationOwner,
    Direction,
    FeedbackCase,
    Message,
    MessageStatus,
    Task,
    TaskKind,
)
from backend.models.base import utcnow
from backend.services.conversations import store_inbound_row
from backend.web.app import create_app
from channels import webchat
from tests import factories
from tests.backend.dialogue.webchat_driver import MENU, Chat, at_the_menu, next_client_id, text_of
from tests.conftest import reset_caches


def _four_kb(seed: int) -> str:
    """Just under the 4096-byte limit of gibberish words in Latin, Chinese and Vietnamese letters."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz锟斤拷烫屯ăâđêôơư"
    words = ("".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(2000))
    return " ".join(words).encode()[:4090].decode(errors="ignore").strip()


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "first", "second"),
    [
        ("en", "zxqv blorf wump", "asdkjh qwpoeiru zxmcnv"),  # gibberish
        ("zh-CN", "🤷‍♀️🤷‍♀️🎈", "🙂🙃😀"),  # emoji only
        ("vi", _four_kb(1), _four_kb(2)),  # 4 KB of text
        ("en", "hôm nay 天气 very nice", "ok 那个 cái này thì sao"),  # mixed languages
    ],
    ids=["gibberish", "emoji", "4kb", "mixed-languages"],
)
def test_unreadable_free_text_is_clarified_once_then_handed_to_staff(
    with_rasa: str, client: TestClient, db: Session, lang: str, first: str, second: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(first)
    assert text_of(lang, "menu.reprompt") in chat.text()
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 0
    chat.say(second)
    said = [item["text"] for item in chat.seen]  # handed over, then told how long the wait should be
    assert said[0] == text_of(lang, "common.passed_to_staff") and len(said) == 2
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.kind, task.title) == (TaskKind.HANDOFF, "handoff:clarification_failed")
    assert db.scalars(sa.select(Conversation)).one().owner is ConversationOwner.STAFF
    stored = db.scalars(sa.select(Message.text).where(Message.direction == Direction.INBOUND)).all()
    assert first in stored and second in stored  # nothing lost


def _bot_texts(db: Session, conversation_id: int, after: int) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(Message.text)
            .where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.OUTBOUND,
                Message.id > after,
            )
            .order_by(Message.id)
        )
    )


def _conversation_of(db: Session, patient_id: int) -> Conversation:
    db.expire_all()
    return db.scalars(sa.select(Conversation).where(Conversation.patient_id == patient_id)).one()


# At the main menu "faq" then "2" reads the FAQ's second topic (parking); "2" first books (nothing free)
# and comes back to the menu, then "faq" opens the FAQ topics: the replies tell the order apart.
RACE = ({"choice": "faq", "text": "FAQ"}, {"text": "2"})


def _replies_in_order(client: TestClient, db: Session, forms: list[dict[str, str]]) -> list[str]:
    """The bot's replies to `forms` sent one after the other by a fresh patient at the menu."""
    patient_id, chat = at_the_menu(client, db, "en")
    conversation = _conversation_of(db, patient_id)
    start = max(i["id"] for i in chat.seen)
    for form in forms:
        chat.say(**form)
    return _bot_texts(db, conversation.id, start)


def _stored_forms(db: Session, conversation_id: int, after: int) -> list[dict[str, str]]:
    rows = db.scalars(
        sa.select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND,
            Message.id > after,
        )
        .order_by(Message.id)
    ).all()
    return [{k: v for k, v in (("choice", m.choice), ("text", m.text)) if v is not None} for m in rows]


def test_two_messages_at_the_same_instant_are_each_handled_once_in_the_order_stored(
    client: TestClient, db: Session
) -> None:
    patient_id, chat = at_the_menu(client, db, "en")
    conversation = _conversation_of(db, patient_id)
    start = max(i["id"] for i in chat.seen)
    barrier = threading.Barrier(len(RACE))
    statuses: list[int] = []

    def send(form: dict[str, str]) -> None:
        barrier.wait()
        response = client.post(
            f"/c/{chat.token}/messages",
            data={**form, "client_id": next_client_id()},
            headers={"Accept": "application/json"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(form,)) for form in RACE]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200, 200]
    stored = _stored_forms(db, conversation.id, start)
    assert sorted(map(str, stored)) == sorted(map(str, RACE))
    inbound = db.scalars(
        sa.select(Message.status).where(Message.direction == Direction.INBOUND, Message.id > start)
    ).all()
    assert set(inbound) == {MessageStatus.PROCESSED}
    # the replies are exactly those of the two messages handled one after the other in stored order
    assert _bot_texts(db, conversation.id, start) == _replies_in_order(client, db, stored)


def test_a_message_stored_while_another_is_being_stored_waits_and_is_handled_after_it(
    client: TestClient, db: Session
) -> None:
    """The earlier message's transaction is still open when the later one arrives: the later one's turn
    must wait (PostgreSQL: the new row's key-share lock on the conversation blocks the turn's row lock;
    SQLite: the write lock) and then answer both in stored order, or the bot would answer them out of
    the order the chat shows."""
    patient_id, chat = at_the_menu(client, db, "en")
    conversation_id = _conversation_of(db, patient_id).id
    start = max(i["id"] for i in chat.seen)
    later: list[int] = []

    def send_later() -> None:
        response = client.post(
            f"/c/{chat.token}/messages",
            data={**RACE[1], "client_id": next_client_id()},
            headers={"Accept": "application/json"},
        )
        later.append(response.status_code)

    sender = threading.Thread(target=send_later)
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        inbound = webchat.inbound_from_post(
            patient_id=patient_id,
            text=RACE[0]["text"],
            choice=RACE[0]["choice"],
            client_id=next_client_id(),
            received_at=utcnow(),
            max_bytes=4096,
        )
        store_inbound_row(session, conversation.id, inbound, MessageStatus.RECEIVED)  # not committed
        sender.start()
        sender.join(timeout=1.5)
        assert sender.is_alive()  # its turn waits for the earlier message's transaction
    sender.join(timeout=30)
    assert later == [200]
    run_turn(conversation_id)  # the earlier message's own turn job: nothing left for it
    stored = _stored_forms(db, conversation_id, start)
    assert stored == [RACE[0], RACE[1]]
    assert _bot_texts(db, conversation_id, start) == _replies_in_order(client, db, stored)


@pytest.fixture
def restartable(database_url: str) -> Iterator[list[TestClient]]:
    """A running app that the test may replace by a new one (a restart): engines and caches are dropped."""
    running: list[TestClient] = []
    yield running
    for client in running:
        client.__exit__(None, None, None)


def _start(running: list[TestClient]) -> TestClient:
    client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    client.__enter__()
    running.append(client)
    return client


def test_a_conversation_continues_where_it_was_after_the_app_restarts(
    restartable: list[TestClient], db: Session
) -> None:
    person = factories.patient(db, language="vi", dept=factories.department(db))
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    before = Chat(_start(restartable), token)
    before.open()
    before.say(choice="yes")
    before.say(MENU["vi"])
    before.say(choice="feedback")
    before.say(choice="praise")
    before.say(choice="none")
    assert text_of("vi", "fb.ask_text") in before.text()

    restartable.pop().__exit__(None, None, None)  # the server stops ...
    reset_caches()  # ... and a new process starts: no engine, settings, flows or catalogues in memory
    after = Chat(_start(restartable), token, after=before.after)
    assert after.open() == []  # opening the page again says nothing new
    after.say("Các y tá khoa nội rất tận tình.")
    assert text_of("vi", "fb.ask_anonymous") in after.text()
    after.say("không")
    assert text_of("vi", "fb.thanks") in after.text()
    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert (case.kind.value, case.text, case.patient_id) == (
        "praise",
        "Các y tá khoa nội rất tận tình.",
        person.id,
    )

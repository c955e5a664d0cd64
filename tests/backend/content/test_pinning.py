"""Pinning through the real app: a conversation started on text revision 1 finishes on revision 1 after
revision 2 is published; new conversations (and a new run of the same one) speak revision 2."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_from_files
from backend.content.catalogue import DIALOGUES, current_catalog
from backend.content.texts import KIND
from backend.messaging.links import LinkKind, make_token
from backend.models import Conversation, Role
from tests import factories
from tests.backend.dialogue.webchat_driver import MENU, Chat, text_of

NEW_THANKS = "Thank you! Revision two speaks now."


def _chat(client: TestClient, db: Session) -> tuple[int, Chat]:
    person = factories.patient(db, language="en", dept=factories.department(db))
    db.commit()
    return person.id, Chat(client, make_token(get_settings(), LinkKind.CHAT, person.id))


def _pinned(db: Session, patient_id: int) -> int | None:
    db.expire_all()
    return db.scalar(sa.select(Conversation.texts_revision).where(Conversation.patient_id == patient_id))


def _publish_second(db: Session) -> None:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    item = rv.get_item(db, KIND, DIALOGUES)
    current = rv.published_revision(db, item)
    assert current is not None
    body = {lang: dict(table) for lang, table in current.body.items()}
    body["en"]["welcome.thanks_granted"] = NEW_THANKS
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, colleague)
    db.commit()


def test_a_conversation_started_on_revision_1_finishes_on_it_after_revision_2_is_published(
    client: TestClient, db: Session
) -> None:
    assert seed_from_files(db, get_settings().content_dir).number == 1
    db.commit()
    old_thanks = text_of("en", "welcome.thanks_granted")

    early_id, early = _chat(client, db)
    early.open()  # the greeting and the consent question: the run starts on revision 1
    assert _pinned(db, early_id) == 1

    _publish_second(db)
    assert current_catalog(db).text("en", "welcome.thanks_granted") == NEW_THANKS

    early.say(choice="yes")
    assert old_thanks in early.text() and NEW_THANKS not in early.text()
    assert _pinned(db, early_id) == 1

    late_id, late = _chat(client, db)
    late.open()
    late.say(choice="yes")
    assert NEW_THANKS in late.text()
    assert _pinned(db, late_id) == 2

    early.say(MENU["en"])  # the welcome run ended: the next run takes the published texts
    assert _pinned(db, early_id) == 2


def test_before_a_site_is_seeded_the_files_speak_and_nothing_is_pinned(
    client: TestClient, db: Session
) -> None:
    patient_id, chat = _chat(client, db)
    chat.open()
    chat.say(choice="yes")
    assert text_of("en", "welcome.thanks_granted") in chat.text()
    assert _pinned(db, patient_id) is None


def test_an_emergency_as_a_conversations_first_message_gets_the_published_guidance(db: Session) -> None:
    from backend.dialogue.turns import handle_pending
    from backend.models import Direction, Message, MessageStatus
    from backend.models.base import utcnow
    from bots.domain import Channel

    seed_from_files(db, get_settings().content_dir)
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    item = rv.get_item(db, KIND, DIALOGUES)
    current = rv.published_revision(db, item)
    assert current is not None
    body = {lang: dict(table) for lang, table in current.body.items()}
    keys = [k for k in body["en"] if k.startswith("safety.advice.")]
    for key in keys:  # every piece of advice, whichever the matcher picks
        body["en"][key] = "REVISED: " + body["en"][key]
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, approver)  # clinical texts: the approver's grant
    person = factories.patient(db, language="en", dept=factories.department(db))
    conv = Conversation(patient_id=person.id, channel=Channel.WEBCHAT, address="addr-emergency")
    db.add(conv)
    db.flush()
    db.add(
        Message(
            conversation_id=conv.id,
            channel=conv.channel,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            text="I have chest pain and I can't breathe",
            created_at=utcnow(),
        )
    )
    db.commit()
    handle_pending(db, conv.id, [])
    db.commit()
    db.expire_all()
    replies = db.scalars(
        sa.select(Message.text).where(
            Message.conversation_id == conv.id, Message.direction == Direction.OUTBOUND
        )
    ).all()
    assert any("REVISED: " in text for text in replies), replies


def test_staff_see_which_text_revision_a_conversation_ran(client: TestClient, db: Session) -> None:
    from tests.backend.security.test_staff_auth import sign_in

    dept = factories.department(db)
    person = factories.patient(db, language="en", dept=dept)
    factories.staff(db, username="nurse", departments=[dept])
    conv = factories.conversation(db, person)
    conv.texts_revision = 7
    task = factories.task(db, person=person, dept=dept, conv=conv)
    db.commit()
    sign_in(client, "nurse")
    assert "texts revision 7" in client.get(f"/staff/inbox/{task.id}").text

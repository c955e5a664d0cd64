"""Flow revisions through the real app: once seeded the bot runs the published revision from the database;
a conversation started on revision 1 finishes on revision 1 after revision 2 is published, new ones run
revision 2; files never overwrite a published revision."""

from __future__ import annotations

import copy

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_flows, seed_site
from backend.content.flows import KIND
from backend.messaging.links import LinkKind, make_token
from backend.models import ConversationStep, RevisionState, Role
from tests import factories
from tests.backend.dialogue.webchat_driver import Chat, text_of


def _chat(client: TestClient, db: Session) -> tuple[int, Chat]:
    person = factories.patient(db, language="en", dept=factories.department(db))
    db.commit()
    return person.id, Chat(client, make_token(get_settings(), LinkKind.CHAT, person.id))


def _welcome_versions(db: Session, patient_id: int) -> set[int]:
    from backend.models import Conversation

    db.expire_all()
    conv_id = db.scalar(sa.select(Conversation.id).where(Conversation.patient_id == patient_id))
    return set(
        db.scalars(
            sa.select(ConversationStep.flow_version).where(
                ConversationStep.conversation_id == conv_id, ConversationStep.flow_id == "welcome"
            )
        )
    )


def test_a_conversation_started_on_flow_revision_1_finishes_on_it(client: TestClient, db: Session) -> None:
    done = seed_site(db, get_settings().content_dir)
    assert {(d.kind, d.key, d.number, d.published) for d in done if d.kind == KIND} >= {
        (KIND, "welcome", 1, True),
        (KIND, "main_menu", 1, True),
    }
    db.commit()
    early_id, early = _chat(client, db)
    early.open()  # greeting, then the consent question of revision 1

    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    item = rv.get_item(db, KIND, "welcome")
    body = copy.deepcopy(rv.published_revision(db, item).body)  # type: ignore[union-attr]
    body["steps"]["thanks_granted"]["say"] = "welcome.thanks_declined"  # visible: yes now thanks as no does
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, colleague)
    db.commit()
    assert item.published_number == 2

    early.say(choice="yes")
    assert text_of("en", "welcome.thanks_granted") in early.text()  # revision 1's way
    assert _welcome_versions(db, early_id) == {1}

    late_id, late = _chat(client, db)
    late.open()
    late.say(choice="yes")
    assert text_of("en", "welcome.thanks_declined") in late.text()  # revision 2's way
    assert _welcome_versions(db, late_id) == {2}


def test_files_never_overwrite_a_published_flow_they_arrive_as_a_draft(db: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    content = tmp_path / "content"
    shutil.copytree(get_settings().content_dir, content)
    seed_site(db, content)
    assert all(d.number is None for d in seed_flows(db, content))  # the same files again: nothing new
    path = content / "dialogues" / "welcome.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "say: welcome.thanks_granted", "say: welcome.thanks_declined"
        )
    )
    changed = [d for d in seed_flows(db, content) if d.number is not None]
    assert [(d.key, d.number, d.published) for d in changed] == [("welcome", 2, False)]
    item = rv.get_item(db, KIND, "welcome")
    assert item.published_number == 1
    assert rv.get_revision(db, item, 2).state is RevisionState.DRAFT


def test_a_flow_file_with_a_dangling_step_seeds_nothing(db: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    import pytest

    from backend.content.bundle import BundleError
    from backend.models import ContentItem

    content = tmp_path / "content"
    shutil.copytree(get_settings().content_dir, content)
    path = content / "dialogues" / "welcome.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("next: thanks_granted", "next: thanks_lost"))
    with pytest.raises(BundleError, match="welcome: consent: unknown_step choice yes → thanks_lost"):
        seed_flows(db, content)
    assert db.scalar(sa.select(sa.func.count()).where(ContentItem.kind == KIND)) == 0


def test_staff_see_which_flow_revision_a_conversation_ran(client: TestClient, db: Session) -> None:
    from tests.backend.security.test_staff_auth import sign_in

    dept = factories.department(db)
    person = factories.patient(db, language="en", dept=dept)
    factories.staff(db, username="nurse", departments=[dept])
    conv = factories.conversation(db, person)
    conv.flow_id, conv.flow_version = "booking", 3
    task = factories.task(db, person=person, dept=dept, conv=conv)
    db.commit()
    sign_in(client, "nurse")
    assert "flow booking revision 3" in client.get(f"/staff/inbox/{task.id}").text

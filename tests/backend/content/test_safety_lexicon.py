"""The hospital's red-flag phrases through the studio's one revision service: always clinical, validated,
installed at once on publish in this process and at the next inbound message in every other one."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content import safety_lexicon as lexicon
from backend.dialogue.turns import handle_pending
from backend.models import (
    AuditEvent,
    Direction,
    Message,
    MessageStatus,
    RevisionState,
    Role,
    SafetyAlert,
    StaffUser,
    Task,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel
from nlu import safety_site as site
from nlu.red_flags import Emergency
from nlu.safety import check
from tests import factories

WORDS = "我妈说心里头绞着难受"  # "my mum says her heart is wringing": this hospital's patients' words


def _body(**phrases: Any) -> dict[str, Any]:
    body = site.skeleton()
    body["phrases"]["chest_pain"]["zh-CN"] = ["心里头绞着"]
    for key, value in phrases.items():
        body["phrases"][key] = value
    return body


def _people(db: Session) -> tuple[StaffUser, StaffUser, StaffUser]:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    return author, colleague, approver


def _draft(db: Session, author: StaffUser, body: dict[str, Any]) -> Any:
    item = rv.get_item(db, lexicon.KIND, lexicon.KEY, create=True, clinical=True)
    draft = rv.do_start_draft(db, item, author, body=site.skeleton())
    rv.do_save_draft(
        db, item, draft.number, author, version=draft.version, body=body, changelog="local words"
    )
    return item, draft.number


def _refused(reason: Reason, verb: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ActionRefused) as caught:
        verb(*args, **kwargs)
    assert caught.value.reason == reason


def test_a_change_needs_the_approver_and_takes_effect_when_published(db: Session) -> None:
    author, colleague, approver = _people(db)
    item, number = _draft(db, author, _body())
    rv.do_submit(db, item, number, author)
    assert check(WORDS) is None  # submitted is not published
    _refused(Reason.OWN_REVISION, rv.do_approve, db, item, number, author)
    _refused(Reason.NOT_AN_APPROVER, rv.do_approve, db, item, number, colleague)
    assert check(WORDS) is None
    rv.do_approve(db, item, number, approver)
    db.commit()
    hit = check(WORDS)  # at once, in the publishing process, without waiting for a sync
    assert hit is not None and hit.emergency is Emergency.CHEST_PAIN
    assert rv.get_revision(db, item, number).state is RevisionState.PUBLISHED
    actions = db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-3:] == ["content.submitted", "content.approved", "content.published"]


def test_an_invalid_lexicon_stays_a_draft_and_nothing_changes(db: Session) -> None:
    author, _, _ = _people(db)
    item, number = _draft(db, author, _body(breathing={"en": ["appointment"], "vi": [], "zh-CN": []}))
    db.commit()
    with pytest.raises(rv.ContentInvalid) as caught:
        rv.do_submit(db, item, number, author)
    assert [(p.where, p.code) for p in caught.value.problems] == [("phrases/breathing/en", "matches_benign")]
    db.rollback()
    assert rv.get_revision(db, item, number).state is RevisionState.DRAFT
    assert check("I want to book an appointment") is None and check(WORDS) is None


def test_every_process_installs_the_published_revision_at_its_next_sync(db: Session) -> None:
    author, _, approver = _people(db)
    item, number = _draft(db, author, _body())
    rv.do_submit(db, item, number, author)
    rv.do_approve(db, item, number, approver)
    db.commit()
    lexicon.reset()  # another process: it has installed nothing yet
    assert check(WORDS) is None
    assert lexicon.sync(db).revision == number
    assert check(WORDS) is not None
    rv.do_retire(db, item, approver)
    db.commit()
    assert not lexicon.sync(db)  # retired: the built-in rules alone
    assert check(WORDS) is None


def test_a_publish_that_never_committed_is_not_left_installed(db: Session) -> None:
    # what a publish leaves behind in its process before its commit: installed, and marked to re-read
    site.install(site.from_body(_body(), revision=1))
    lexicon.published_hook(lexicon.KEY)
    assert check(WORDS) is not None
    assert not lexicon.sync(db)  # the database has nothing published: the rollback wins
    assert check(WORDS) is None


def test_a_patients_message_in_the_hospitals_words_is_an_emergency_in_another_process(db: Session) -> None:
    author, _, approver = _people(db)
    item, number = _draft(db, author, _body())
    rv.do_submit(db, item, number, author)
    rv.do_approve(db, item, number, approver)
    dept = factories.department(db)
    person = factories.patient(db, language="zh-CN", dept=dept)
    conv = factories.conversation(db, person, Channel.WEBCHAT)
    db.add(
        Message(
            conversation_id=conv.id,
            channel=conv.channel,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            text=WORDS,
            created_at=utcnow(),
        )
    )
    db.commit()
    lexicon.reset()  # the turn runs in a worker that has not seen the publish
    handle_pending(db, conv.id, [])
    db.commit()
    alert = db.scalars(sa.select(SafetyAlert)).one()
    assert alert.category == Emergency.CHEST_PAIN.value
    task = db.scalars(sa.select(Task)).one()
    assert task.priority is TaskPriority.EMERGENCY


def test_the_diff_names_category_and_language(db: Session) -> None:
    before = _body()
    after = _body(stroke={"vi": ["méo miệng"], "en": [], "zh-CN": []})
    after["exceptions"]["zh-CN"] = ["胸痛门诊"]
    changes = [(c.where, c.lang, c.before, c.after) for c in lexicon.diff(before, after)]
    assert changes == [("exceptions", "zh-CN", None, "胸痛门诊"), ("phrases/stroke", "vi", None, "méo miệng")]
    assert lexicon.SafetyLexicon().needs_approver(after, after)  # even no change is clinical


def test_the_editors_textareas_become_a_body() -> None:
    body = lexicon.body_from_form(
        {
            "phrases|stroke|vi": "méo miệng\r\n\r\n  nói ngọng  \n",
            "exceptions|en": "stroke clinic",
            "other": "x",
        }
    )
    assert body["phrases"]["stroke"]["vi"] == ["méo miệng", "nói ngọng"]
    assert body["exceptions"]["en"] == ["stroke clinic"]
    assert body["phrases"]["chest_pain"] == {"zh-CN": [], "vi": [], "en": []}

"""The revision lifecycle on SQLite and PostgreSQL: drafts, concurrent saves, review, approval rules,
immutable published revisions, rollback as a new revision, retire, scheduled publishing, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content import review
from backend.content import revisions as rv
from backend.content.catalogue import DIALOGUES
from backend.content.studio import awaiting as studio_awaiting
from backend.content.texts import KIND
from backend.models import AuditEvent, ContentItem, ContentRevision, RevisionState, Role, StaffUser
from backend.models.base import utcnow
from backend.services.refusal import ActionRefused, Reason
from tests import factories

BODY: dict[str, Any] = {
    "en": {"menu.hello": "Hello {name}", "safety.call": "Call {number}"},
    "vi": {"menu.hello": "Xin chào {name}", "safety.call": "Gọi {number}"},
    "zh-CN": {"menu.hello": "你好 {name}", "safety.call": "请拨打 {number}"},
}


def _with(body: dict[str, Any], lang: str, key: str, text: str) -> dict[str, Any]:
    return {lg: {**table, key: text} if lg == lang else dict(table) for lg, table in body.items()}


def _people(db: Session) -> tuple[StaffUser, StaffUser, StaffUser]:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    return author, colleague, approver


def _seeded(db: Session) -> ContentItem:
    item = rv.get_item(db, KIND, DIALOGUES, create=True)
    rv.do_publish_initial(db, item, BODY, source="files")
    return item


def _refused(reason: Reason, verb: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ActionRefused) as caught:
        verb(*args, **kwargs)
    assert caught.value.reason == reason


def test_edit_review_publish_keeps_one_published_revision_and_audits_each_step(db: Session) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author)
    assert (draft.number, draft.based_on, draft.body) == (2, 1, BODY)
    rv.do_save_draft(
        db, item, 2, author, version=1, body=_with(BODY, "vi", "menu.hello", "Chào {name}"), changelog="vi"
    )
    rv.do_submit(db, item, 2, author)
    _refused(Reason.OWN_REVISION, rv.do_approve, db, item, 2, author)  # self-publishing is off by default
    rv.do_approve(db, item, 2, colleague)
    db.commit()

    states = {r.number: r.state for r in rv.revisions(db, item)}
    assert states == {1: RevisionState.SUPERSEDED, 2: RevisionState.PUBLISHED}
    assert item.published_number == 2
    published = rv.get_revision(db, item, 2)
    assert (published.author_id, published.approver_id, published.changelog) == (
        author.id,
        colleague.id,
        "vi",
    )
    actions = db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == [
        "content.published",
        "content.draft_started",
        "content.draft_saved",
        "content.submitted",
        "content.approved",
        "content.published",
    ]
    # published revisions are never edited: changing them means a new draft
    _refused(Reason.NOT_A_DRAFT, rv.do_save_draft, db, item, 2, author, version=published.version, body={})


def test_the_second_of_two_editors_saving_the_same_draft_is_told_and_the_first_save_stands(
    db: Session,
) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author)
    db.commit()
    first = _with(BODY, "en", "menu.hello", "Hi {name}")
    rv.do_save_draft(db, item, draft.number, author, version=1, body=first)
    db.commit()
    _refused(
        Reason.EDITED_MEANWHILE,
        rv.do_save_draft,
        db,
        item,
        draft.number,
        colleague,
        version=1,
        body=_with(BODY, "en", "menu.hello", "Yo"),
    )
    db.rollback()
    db.expire_all()
    assert rv.get_revision(db, item, draft.number).body == first


def test_a_broken_text_stays_a_draft_and_is_never_submitted_or_published(db: Session) -> None:
    author, _, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author)
    broken = _with(BODY, "zh-CN", "menu.hello", "你好 {name")
    rv.do_save_draft(db, item, draft.number, author, version=1, body=broken)  # a draft may be unfinished
    with pytest.raises(rv.ContentInvalid) as caught:
        rv.do_submit(db, item, draft.number, author)
    assert [(p.where, p.code) for p in caught.value.problems] == [("menu.hello", "broken_placeholder")]
    mismatched = _with(BODY, "vi", "menu.hello", "Xin chào {ten}")
    rv.do_save_draft(db, item, draft.number, author, version=2, body=mismatched)
    with pytest.raises(rv.ContentInvalid):
        rv.do_submit(db, item, draft.number, author)
    assert item.published_number == 1


def test_an_emergency_text_needs_a_second_person_with_the_approver_grant(db: Session) -> None:
    author, colleague, approver = _people(db)
    author.content_approver = True
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author, body=_with(BODY, "en", "safety.call", "Call {number} now"))
    rv.do_submit(db, item, draft.number, author)
    _refused(Reason.NOT_AN_APPROVER, rv.do_approve, db, item, draft.number, colleague)
    _refused(Reason.OWN_REVISION, rv.do_approve, db, item, draft.number, author)  # the grant is not enough
    rv.do_approve(db, item, draft.number, approver)
    assert item.published_number == draft.number


def test_self_publishing_non_clinical_texts_when_the_hospital_allows_it(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("CARELOOP_STUDIO_SELF_PUBLISH", "true")
    reset_caches()
    author, _, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author, body=_with(BODY, "en", "menu.hello", "Hey {name}"))
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, author)
    assert item.published_number == draft.number
    clinical = rv.do_start_draft(db, item, author, body=_with(BODY, "en", "safety.call", "Dial {number}"))
    rv.do_submit(db, item, clinical.number, author)
    _refused(Reason.OWN_REVISION, rv.do_approve, db, item, clinical.number, author)


def test_reject_sends_it_back_with_a_note(db: Session) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author)
    rv.do_submit(db, item, draft.number, author)
    _refused(Reason.REJECT_NOTE, rv.do_reject, db, item, draft.number, colleague, note="  ")
    rv.do_reject(db, item, draft.number, colleague, note="Please shorten the Vietnamese")
    assert (draft.state, draft.note) == (RevisionState.DRAFT, "Please shorten the Vietnamese")
    _refused(Reason.NOT_IN_REVIEW, rv.do_approve, db, item, draft.number, colleague)


def test_rollback_publishes_an_earlier_body_as_a_new_revision(db: Session) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    changed = _with(BODY, "en", "menu.hello", "Howdy {name}")
    draft = rv.do_start_draft(db, item, author, body=changed)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, colleague)
    _refused(Reason.NOT_PUBLISHED, rv.do_rollback, db, item, 2, author)  # already the published one
    back = rv.do_rollback(db, item, 1, author)
    assert (back.number, back.state, back.body, back.source) == (3, RevisionState.PUBLISHED, BODY, "rollback")
    assert rv.get_revision(db, item, 2).state is RevisionState.SUPERSEDED
    assert rv.get_revision(db, item, 2).body == changed  # untouched
    _refused(Reason.NO_SUCH_REVISION, rv.do_rollback, db, item, 9, author)


def test_retire_leaves_the_item_without_a_published_revision(db: Session) -> None:
    author, _, _ = _people(db)
    item = _seeded(db)
    rv.do_retire(db, item, author)
    assert item.published_number is None
    assert rv.get_revision(db, item, 1).state is RevisionState.RETIRED
    _refused(Reason.NOTHING_PUBLISHED, rv.do_retire, db, item, author)


def test_nurses_are_not_editors(db: Session) -> None:
    nurse = factories.staff(db, username="nurse", role=Role.NURSE)
    item = _seeded(db)
    _refused(Reason.NOT_AN_EDITOR, rv.do_start_draft, db, item, nurse)


def test_a_scheduled_publish_waits_for_its_time_then_the_sweep_publishes_it(db: Session) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    now = utcnow()
    draft = rv.do_start_draft(db, item, author, body=_with(BODY, "en", "menu.hello", "Morning {name}"))
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, colleague, publish_at=now + timedelta(hours=2), now=now)
    db.commit()
    assert (draft.state, item.published_number) == (RevisionState.APPROVED, 1)
    assert rv.publish_due(db, now=now + timedelta(hours=1)) == 0
    assert rv.publish_due(db, now=now + timedelta(hours=2)) == 1
    db.commit()
    assert (draft.state, item.published_number) == (RevisionState.PUBLISHED, draft.number)


def test_the_periodic_job_runs_the_sweep(database_url: str) -> None:
    from backend.app.periodic import PERIODIC, publish_scheduled_content

    assert (publish_scheduled_content, 60) in PERIODIC
    assert publish_scheduled_content() == 0


def test_awaiting_lists_what_this_person_may_approve(db: Session) -> None:
    author, colleague, _ = _people(db)
    item = _seeded(db)
    draft = rv.do_start_draft(db, item, author)
    rv.do_submit(db, item, draft.number, author)
    assert [r.number for _, r in studio_awaiting(db, colleague)] == [draft.number]
    assert studio_awaiting(db, author) == []
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == 2


def test_only_an_approver_sets_the_clinical_review_and_it_then_needs_the_grant(db: Session) -> None:
    author, colleague, approver = _people(db)
    item = _seeded(db)
    due = utcnow().date()
    _refused(
        Reason.NOT_AN_APPROVER,
        review.do_set_review,
        db,
        item,
        author,
        clinical=True,
        review_owner_id=author.id,
        review_due=due,
        sources="",
    )
    review.do_set_review(
        db,
        item,
        approver,
        clinical=True,
        review_owner_id=author.id,
        review_due=due,
        sources="WHO guideline 2024",
    )
    assert (item.clinical, item.review_owner_id, item.sources) == (True, author.id, "WHO guideline 2024")
    draft = rv.do_start_draft(db, item, author, body=_with(BODY, "en", "menu.hello", "Hey {name}"))
    rv.do_submit(db, item, draft.number, author)
    _refused(Reason.NOT_AN_APPROVER, rv.do_approve, db, item, draft.number, colleague)  # clinical now


def test_home_lists_overdue_clinical_reviews(db: Session) -> None:
    from backend.content.studio import home

    author, _, approver = _people(db)
    item = _seeded(db)
    today = utcnow().date()
    review.do_set_review(
        db,
        item,
        approver,
        clinical=True,
        review_owner_id=None,
        review_due=today - timedelta(days=1),
        sources="",
    )
    assert [i.key for i in home(db, author, today).overdue] == [DIALOGUES]
    review.do_set_review(
        db, item, approver, clinical=True, review_owner_id=None, review_due=today, sources=""
    )
    assert home(db, author, today).overdue == []

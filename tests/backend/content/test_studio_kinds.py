"""Canned replies and education articles through the studio's one revision service, on SQLite and
PostgreSQL: seeded from content/ (published on a new site, a draft afterwards, never over a published
revision), published by a second person (an approver for education), rolled back, carried by bundles; what
patients and staff get is the published revision, and a sent article names the revision it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import canned, education
from backend.content import revisions as rv
from backend.content.bundle import BundleError, export_bundle, import_bundle, seed_one_file_kinds
from backend.education.library import articles
from backend.models import AuditEvent, ContentRevision, OutboxItem, RevisionState, Role, StaffUser
from backend.services.refusal import ActionRefused, Reason
from backend.web.inbox import canned_replies
from tests import factories
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.test_record import _post_action, _staff_world
from tests.channels.fake_twilio import FakeTwilio

DIET = "cardiology_diet"


def _content(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    source = get_settings().content_dir
    shutil.copytree(source / "education", target / "education")
    shutil.copy(source / "canned_replies.yaml", target / "canned_replies.yaml")
    return target


def _people(db: Session) -> tuple[StaffUser, StaffUser, StaffUser]:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    return author, colleague, approver


def _edit(db: Session, kind: str, key: str, author: StaffUser, change: Any) -> int:
    item = rv.get_item(db, kind, key)
    draft = rv.do_start_draft(db, item, author)
    body = dict(draft.body)
    change(body)
    rv.do_save_draft(db, item, draft.number, author, version=draft.version, body=body)
    rv.do_submit(db, item, draft.number, author)
    return draft.number


def test_files_seed_a_new_site_then_arrive_as_drafts_never_over_the_published_revision(
    db: Session, tmp_path: Path
) -> None:
    content = _content(tmp_path)
    first = seed_one_file_kinds(db, content)
    assert {(i.kind, i.key, i.number, i.published) for i in first} >= {
        (canned.KIND, canned.KEY, 1, True),
        (education.KIND, DIET, 1, True),
    }
    assert rv.get_item(db, education.KIND, DIET).clinical  # education is clinical from its first revision
    assert not rv.get_item(db, canned.KIND, canned.KEY).clinical
    assert all(i.number is None for i in seed_one_file_kinds(db, content))  # the same files: nothing new

    path = content / "education" / f"{DIET}.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Eating well", "Eating wisely"), encoding="utf-8"
    )
    again = {i.key: i for i in seed_one_file_kinds(db, content)}
    assert (again[DIET].number, again[DIET].published) == (2, False)
    db.commit()
    item = rv.get_item(db, education.KIND, DIET)
    assert item.published_number == 1
    assert rv.get_revision(db, item, 2).state is RevisionState.DRAFT
    assert articles(db, content)[DIET].text("title", "en") == "Eating well after leaving cardiology"


def test_an_invalid_file_seeds_nothing_and_names_the_file(db: Session, tmp_path: Path) -> None:
    content = _content(tmp_path)
    path = content / "education" / f"{DIET}.yaml"
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["title"]["en"] = ""
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    with pytest.raises(BundleError, match=f"{DIET}: title: missing en"):
        seed_one_file_kinds(db, content)
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == 0


def test_an_article_needs_an_approver_then_patients_read_it_and_rollback_restores_the_earlier(
    db: Session, tmp_path: Path
) -> None:
    content = _content(tmp_path)
    seed_one_file_kinds(db, content)
    author, colleague, approver = _people(db)

    def retitle(body: dict[str, Any]) -> None:
        body["title"] = {**body["title"], "en": "Eating for your heart"}

    number = _edit(db, education.KIND, DIET, author, retitle)
    item = rv.get_item(db, education.KIND, DIET)
    for who, reason in ((author, Reason.OWN_REVISION), (colleague, Reason.NOT_AN_APPROVER)):
        with pytest.raises(ActionRefused) as refused:
            rv.do_approve(db, item, number, who)
        assert refused.value.reason == reason
    assert articles(db, content)[DIET].text("title", "en") == "Eating well after leaving cardiology"
    rv.do_approve(db, item, number, approver)
    db.commit()
    read = articles(db, content)[DIET]
    assert (read.text("title", "en"), read.revision) == ("Eating for your heart", 2)

    restored = rv.do_rollback(db, item, 1, approver)
    db.commit()
    assert (restored.number, item.published_number) == (3, 3)
    assert articles(db, content)[DIET].text("title", "en") == "Eating well after leaving cardiology"
    assert rv.get_revision(db, item, 2).state is RevisionState.SUPERSEDED

    rv.do_retire(db, item, approver)
    db.commit()
    assert DIET not in articles(db, content)  # retired in the studio: its file does not speak for it


def test_canned_replies_any_colleague_publishes_and_the_inbox_offers_the_published_ones(
    db: Session, tmp_path: Path
) -> None:
    content = _content(tmp_path)
    assert [r["key"] for r in canned_replies(db, content, "vi", "en")][:2] == ["received", "call_back"]
    seed_one_file_kinds(db, content)
    author, colleague, _ = _people(db)

    def add(body: dict[str, Any]) -> None:
        body["replies"] = [
            *body["replies"],
            {"key": "wait", "label": {"en": "Wait"}, "text": {"en": "Please wait."}},
        ]

    number = _edit(db, canned.KIND, canned.KEY, author, add)
    item = rv.get_item(db, canned.KIND, canned.KEY)
    assert "wait" not in [r["key"] for r in canned_replies(db, content, "vi", "en")]
    rv.do_approve(db, item, number, colleague)  # not clinical: another editor suffices
    db.commit()
    offered = {r["key"]: r for r in canned_replies(db, content, "vi", "zh-CN")}
    assert offered["wait"]["text"] == "Please wait."  # no vi translation: English
    assert offered["received"]["label"] == "已收到" and offered["received"]["text"].startswith("Xin chào")


def test_a_bundle_carries_articles_and_canned_replies_and_a_bad_one_imports_nothing(
    db: Session, tmp_path: Path
) -> None:
    seed_one_file_kinds(db, _content(tmp_path))
    db.commit()
    bundle = tmp_path / "bundle"
    written = export_bundle(db, bundle)
    assert (education.KIND, DIET, 1) in written and (canned.KIND, canned.KEY, 1) in written
    assert yaml.safe_load((bundle / "education" / f"{DIET}.yaml").read_text(encoding="utf-8"))["id"] == DIET

    # the same site again: what the bundle holds is what is published, nothing new
    assert all(i.number is None for i in import_bundle(db, bundle))
    replies = bundle / "canned_replies" / f"{canned.KEY}.yaml"
    body = yaml.safe_load(replies.read_text(encoding="utf-8"))
    body["replies"][0]["text"]["en"] = "Thanks, a nurse will reply."
    replies.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    done = {i.kind: i for i in import_bundle(db, bundle)}
    assert (done[canned.KIND].number, done[canned.KIND].published) == (2, False)  # a draft, never published
    assert rv.get_item(db, canned.KIND, canned.KEY).published_number == 1

    body["replies"][0]["key"] = "Not A Key"
    replies.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    before = db.scalar(sa.select(sa.func.count()).select_from(ContentRevision))
    with pytest.raises(BundleError, match="bad_key"):
        import_bundle(db, bundle)
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == before


def test_a_sent_article_is_its_published_revision_and_names_it_and_the_reader_page_shows_it(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
    no_quiet_hours: None,
) -> None:
    from backend.content.bundle import seed_one_file_kinds as seed

    seed(db, get_settings().content_dir)
    author, _, approver = _people(db)

    def retitle(body: dict[str, Any]) -> None:
        body["title"] = {**body["title"], "en": "Eating for your heart"}

    number = _edit(db, education.KIND, DIET, author, retitle)
    rv.do_approve(db, rv.get_item(db, education.KIND, DIET), number, approver)
    cardio, _, _, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", phone="+8613800138000", dept=cardio, language="en")
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "education", channel="sms", article=DIET)
    assert page.status_code == 200
    [sent] = twilio.messages
    assert "Eating for your heart" in sent.params["Body"]
    db.expire_all()
    [audit] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "patient.education_sent")).all()
    assert (audit.detail["article"], audit.detail["revision"]) == (DIET, 2)
    [item] = db.scalars(sa.select(OutboxItem)).all()
    assert item.template_vars["revision"] == "2"
    reader = client.get(f"/e/{DIET}/en")
    assert reader.status_code == 200 and "Eating for your heart" in reader.text


def test_a_first_draft_does_not_silence_the_files_until_something_is_published(
    db: Session, tmp_path: Path
) -> None:
    content = _content(tmp_path)
    author, _, _ = _people(db)
    replies = rv.get_item(db, canned.KIND, canned.KEY, create=True)
    rv.do_start_draft(db, replies, author, body=canned.skeleton())
    article = rv.get_item(db, education.KIND, DIET, create=True, clinical=True)
    rv.do_start_draft(db, article, author, body=education.skeleton(DIET))
    db.commit()
    assert "received" in [r["key"] for r in canned_replies(db, content, "en", "en")]
    assert articles(db, content)[DIET].revision is None  # still the file's


def test_an_article_past_its_review_date_shows_on_the_editors_home(db: Session, tmp_path: Path) -> None:
    from datetime import date

    from backend.content import review, studio

    seed_one_file_kinds(db, _content(tmp_path))
    author, _, approver = _people(db)
    item = rv.get_item(db, education.KIND, DIET)
    review.do_set_review(
        db,
        item,
        approver,
        clinical=True,
        review_owner_id=author.id,
        review_due=date(2026, 6, 1),
        sources="ESC 2021",
    )
    db.commit()
    assert [i.key for i in studio.home(db, author, date(2026, 12, 7)).overdue] == [DIET]
    assert studio.home(db, author, date(2026, 5, 31)).overdue == []

"""Health education: the library in three languages, the article's mobile page, and sending an article from
the patient's record through the outbox (sent once, refused with the reason for an opted-out patient);
both DBs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.education.library import LANGUAGES, ArticleInvalid, library, load_article
from backend.models import AuditEvent, Message, OutboxItem, OutboxStatus
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.test_record import _audits, _post_action, _staff_world
from tests.channels.fake_twilio import FakeTwilio

WARNING_SIGNS = "cardiology_warning_signs"


def test_the_library_has_cardiology_discharge_articles_in_every_language() -> None:
    articles = library(get_settings().content_dir)
    assert {"cardiology_diet", "cardiology_medication", WARNING_SIGNS} <= set(articles)
    for article in articles.values():
        for lang in LANGUAGES:
            assert article.text("title", lang) and article.text("summary", lang) and article.paragraphs(lang)


def test_an_article_missing_a_language_is_refused_naming_the_file_and_the_language(tmp_path: Path) -> None:
    path = tmp_path / "diet.yaml"
    path.write_text(
        "id: diet\ntitle: {zh-CN: 饮食, en: Diet}\nsummary: {zh-CN: a, vi: b, en: c}\n"
        "body: {zh-CN: [x], vi: [y], en: [z]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ArticleInvalid, match=r"diet.yaml: title has no vi text"):
        load_article(path)
    path.write_text("id: other\n", encoding="utf-8")
    with pytest.raises(ArticleInvalid, match="id must be the file's name"):
        load_article(path)


def test_the_article_page_renders_in_the_language_of_the_link_and_an_unknown_one_is_404(
    client: TestClient,
) -> None:
    page = client.get(f"/e/{WARNING_SIGNS}/vi")
    assert page.status_code == 200 and 'lang="vi"' in page.text
    assert "Dấu hiệu cần đi cấp cứu ngay" in page.text and "gọi 115 ngay" in page.text
    assert "立即拨打120" in client.get(f"/e/{WARNING_SIGNS}/zh-CN").text
    assert client.get("/e/no_such_article/en").status_code == 404
    assert client.get(f"/e/{WARNING_SIGNS}/fr").status_code == 404


def test_an_article_is_sent_once_by_sms_with_its_link_and_shown_on_the_timeline(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
    no_quiet_hours: None,
) -> None:
    cardio, _, agent, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", phone="+8613800138000", dept=cardio, language="zh-CN")
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "education", channel="sms", article=WARNING_SIGNS)
    assert page.status_code == 200 and "The article was sent." in page.text
    [sent] = twilio.messages
    assert sent.params["To"] == "+8613800138000"
    assert "需要立即就医的警示症状" in sent.params["Body"]
    assert f"/e/{WARNING_SIGNS}/zh-CN" in sent.params["Body"]
    timeline = page.text.split('id="conversations"', 1)[1]
    assert "需要立即就医的警示症状" in timeline and "[阅读全文]" in timeline
    again = _post_action(client, alice.id, "education", channel="sms", article=WARNING_SIGNS)
    assert again.status_code == 409 and "already sent to the patient today" in again.text
    assert len(twilio.messages) == 1
    db.expire_all()
    [item] = db.scalars(sa.select(OutboxItem)).all()
    assert (item.status, item.created_by_staff_id, item.template_key) == (
        OutboxStatus.SENT,
        agent.id,
        "notice",
    )
    [audit] = _audits(db, "patient.education_sent")
    assert (audit.patient_id, audit.detail["article"], audit.detail["outbox_id"]) == (
        alice.id,
        WARNING_SIGNS,
        item.id,
    )
    assert "警示" not in str(audit.detail)  # ids and codes, never the text


def test_an_article_to_a_patient_who_opted_out_is_refused_with_the_reason_and_nothing_is_queued(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
) -> None:
    cardio, _, _, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    do_revoke_consent(db, patient_id=alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "education", channel="sms", article="cardiology_diet")
    assert page.status_code == 409
    assert "Not sent: the patient has not agreed to messages on this channel." in page.text
    missing = _post_action(client, alice.id, "education", channel="webchat", article="nope")
    assert missing.status_code == 409 and "There is no such article." in missing.text
    assert twilio.messages == []
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    [refusal] = db.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "patient.education_refused")
    ).all()
    # not yet in the studio: the file spoke (revision None)
    assert refusal.detail == {
        "reason": "no_consent",
        "channel": "sms",
        "article": "cardiology_diet",
        "revision": None,
    }
    assert _audits(db, "patient.education_sent") == []

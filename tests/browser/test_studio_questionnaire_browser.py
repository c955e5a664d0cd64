"""In Chromium: an editor starts a questionnaire with two questions, sees the model's error at the second
question, fixes it, previews the patient's form in zh-CN (branching works, nothing is stored), submits; a
colleague with the approver grant approves and it is published; a follow-up plan then offers the form, and
the patient's link opens it. Every studio page passes axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.dispatcher import dispatch_due
from backend.followup.planner import run_planner
from backend.messaging.links import LinkKind, make_token
from backend.models import FollowUpPlan, QuestionnaireResponse, QuestionnaireVersion, Role
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser
LANGS = ("zh-CN", "vi", "en")
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, outside quiet hours


def _fill_texts(block: Any, label: str, texts: dict[str, str]) -> None:
    for lang in LANGS:
        block.get_by_label(f"{label} ({lang})", exact=True).fill(texts[lang])


def test_an_editor_writes_previews_and_submits_a_questionnaire_a_colleague_publishes_it(
    live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="approver1", role=Role.CONTENT_EDITOR).content_approver = True
    db.commit()

    editor = _sign_in(browser, live_server, "editor1")
    editor.get_by_role("link", name="Content studio").click()
    axe.assert_no_serious_violations(editor)
    editor.get_by_label("New questionnaire id (lower-case letters, digits, underscores)").fill("mood")
    editor.get_by_role("button", name="Start a questionnaire").click()
    expect(editor.locator("#revision-state")).to_have_text("Draft")
    axe.assert_no_serious_violations(editor)

    about = editor.locator("#questionnaire-form")
    _fill_texts(about, "Title", {"zh-CN": "心情随访", "vi": "Theo dõi tâm trạng", "en": "Mood check"})
    first = editor.locator("fieldset.qitem[data-n='0']")
    first.get_by_label("Id", exact=True).fill("mood")
    first.get_by_label("Type").select_option("single_choice")
    first.get_by_label("Required").check()
    _fill_texts(first, "Question text", {"zh-CN": "您今天心情怎么样？", "vi": "Hôm nay bạn thấy thế nào?",
                                          "en": "How is your mood today?"})
    first.get_by_label("Options, one per line: code | score | zh-CN | vi | en").fill(
        "good | 0 | 好 | Tốt | Good\nlow | 2 | 不好 | Không tốt | Low"
    )
    editor.get_by_role("button", name="Save draft").click()

    second = editor.locator("fieldset.qitem[data-n='1']")  # the empty "add a question" block
    expect(second.locator("legend")).to_have_text("Add a question")
    second.get_by_label("Id", exact=True).fill("sleep")
    second.get_by_label("Type").select_option("integer")
    second.get_by_label("Minimum").fill("0")
    second.get_by_label("Maximum").fill("24")
    _fill_texts(second, "Question text", {"zh-CN": "您昨晚睡了几个小时？", "vi": "", "en": "Hours of sleep?"})
    when = "Asked only when (one condition per line: question operator value, e.g. fever = yes)"
    second.get_by_label(when).fill("mood = low")
    editor.get_by_label("What changed (changelog)").fill("mood and sleep")
    editor.get_by_role("button", name="Save draft").click()

    sleep = editor.locator("fieldset.qitem[data-item='sleep']")
    # at the question, in the model's words
    expect(sleep.locator(".problems")).to_contain_text("sleep: missing text in vi")
    expect(editor.locator("#problem-count")).to_contain_text("1 problem(s)")
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#studio-error")).to_contain_text("fix them before it goes to review")
    expect(editor.locator("#revision-state")).to_have_text("Draft")

    sleep.get_by_label("Question text (vi)", exact=True).fill("Đêm qua bạn ngủ mấy tiếng?")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator("#problem-count")).to_contain_text("No problems")

    editor.locator("#previews").get_by_role("link", name="zh-CN", exact=True).click()
    expect(editor.get_by_role("heading", name="心情随访")).to_be_visible()
    expect(editor.locator("#preview-note")).to_contain_text("Nothing you enter is stored")
    hours = editor.locator('[data-item="sleep"]')
    expect(hours).to_be_hidden()
    editor.get_by_role("radio", name="不好").check()
    expect(hours).to_be_visible()  # the draft's branching, in the patient's page
    expect(editor.get_by_role("button", name="提交")).to_be_disabled()
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("link", name="Voice prompts").click()
    expect(editor.locator('#voice-prompts tr[data-item="mood"]').first).to_contain_text("您今天心情怎么样")
    axe.assert_no_serious_violations(editor)
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireResponse)) == 0

    editor.get_by_role("link", name="mood · revision 1").click()
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    expect(editor.locator("#approval-hint")).to_be_visible()  # the author cannot approve her own

    colleague = _sign_in(browser, live_server, "approver1")
    colleague.goto(f"{live_server}/staff/studio")
    colleague.locator("#awaiting").get_by_role("link").click()
    expect(colleague.locator("#clinical-note")).to_be_visible()  # scores: a change for an approver
    axe.assert_no_serious_violations(colleague)
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    editor.context.close()
    colleague.context.close()

    db.expire_all()
    version = db.scalars(sa.select(QuestionnaireVersion)).one()
    assert (version.questionnaire_id, version.version) == ("mood", 1)
    dept = factories.department(db)
    patient = factories.patient(db, language="zh-CN")
    encounter = factories.encounter(db, patient, dept, started=NOW - timedelta(days=7))
    encounter.ended_at = NOW - timedelta(days=3.2)
    db.add(FollowUpPlan(name="mood", questionnaire_id="mood", encounter_kinds=["discharge"],
                        department_ids=[dept.id], offsets_days=[3], channels=["webchat"], send_hour=10))
    db.commit()
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {"sent:webchat": 1}  # the plan offers the published form
    db.expire_all()
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    assert response.version_id == version.id

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = phone.new_page()
    page.goto(f"{live_server}/q/{make_token(get_settings(), LinkKind.FORM, response.id)}")
    expect(page.get_by_role("heading", name="心情随访")).to_be_visible()
    expect(page.get_by_role("radio", name="不好")).to_be_visible()
    expect(page.get_by_role("button", name="提交")).to_be_enabled()  # the real form, not the preview
    phone.close()

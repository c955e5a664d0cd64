"""In Chromium: a patient's conversation starts on the welcome flow's revision 1; an editor opens the flow
editor, points a choice at a step that does not exist (the check names it at its step while she types and
after the save), mends it and changes what a step says instead, submits; a colleague approves; the patient
finishes on revision 1 while a new patient runs revision 2. The editor page passes axe and reads in
English, Chinese and Vietnamese. And a flow made from nothing: its words in three languages, a second step,
an effect typed wrong and named as she types (in Chinese too), a step moved, the draft simulated with the
draft texts, then the texts and the flow published by a colleague."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.flows import KIND
from backend.messaging.links import LinkKind, make_token
from backend.models import ConversationStep, RevisionState, Role, StaffUser
from tests import factories
from tests.backend.dialogue.webchat_driver import text_of
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser
EDITOR_TITLES = {"en": "Dialogue flow", "zh-CN": "对话流程", "vi": "Luồng hội thoại"}


def _patient_chat(browser: Any, base: str, db: Session) -> tuple[Any, int]:
    person = factories.patient(db, language="en", dept=factories.department(db))
    db.commit()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True)
    page = phone.new_page()
    page.goto(f"{base}/c/{make_token(get_settings(), LinkKind.CHAT, person.id)}")
    expect(page.locator("#messages")).to_contain_text(text_of("en", "welcome.consent_question"))
    return page, person.id


def _open(step: Any) -> None:
    """Its editing fields; a step with a problem shows them already."""
    details = step.locator("details.edit-step")
    if not details.evaluate("d => d.open"):
        step.locator("summary").click()


def _welcome_versions(db: Session) -> set[int]:
    db.expire_all()
    query = sa.select(ConversationStep.flow_version).where(ConversationStep.flow_id == "welcome")
    return set(db.scalars(query))


def test_edit_a_flow_catch_a_dangling_step_approve_and_running_conversations_stay(
    live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="colleague1", role=Role.CONTENT_EDITOR)
    db.commit()
    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("button", name="Import the message files").click()  # texts and flows: revision 1

    early, _ = _patient_chat(browser, live_server, db)  # starts on the welcome flow's revision 1
    assert _welcome_versions(db) == {1}

    editor.goto(f"{live_server}/staff/studio/items/{KIND}/welcome")
    editor.get_by_role("button", name="New draft").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("revision 2")
    expect(editor.locator("#problem-count")).to_contain_text("No problems")
    expect(editor.locator("#step-consent .says")).to_contain_text(text_of("en", "welcome.consent_question"))
    expect(editor.locator('#flow-graph [data-from="consent"][data-to="thanks_granted"]')).to_have_count(1)
    axe.assert_no_serious_violations(editor)

    consent = editor.locator("#step-consent")
    _open(consent)
    consent.get_by_label("Next step 1").fill("thanks_nowhere")  # the "yes" choice, to a step not there
    problems = editor.locator("#live-problems")
    expect(problems).to_contain_text("consent: goes to a step that does not exist: choice yes → thanks_now")
    expect(problems).to_contain_text("thanks_granted: no step leads here")
    with editor.expect_navigation():
        consent.get_by_role("button", name="Save step consent").click()
    expect(editor.locator("#step-consent .problems")).to_contain_text("choice yes → thanks_nowhere")
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#studio-error")).to_be_visible()  # refused: nothing broken goes to review
    expect(editor.locator("#revision-state")).to_have_text("Draft")

    _open(consent)  # open: it has a problem
    consent.get_by_label("Next step 1").fill("thanks_granted")
    expect(problems).to_contain_text("No problems")  # checked as she types
    with editor.expect_navigation():
        consent.get_by_role("button", name="Save step consent").click()
    granted = editor.locator("#step-thanks_granted")
    _open(granted)
    granted.get_by_label("Says (text key)").fill("welcome.thanks_declined")
    with editor.expect_navigation():
        granted.get_by_role("button", name="Save step thanks_granted").click()
    editor.get_by_label("Changelog").fill("one thank-you for both answers")
    with editor.expect_navigation():
        editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator("#problem-count")).to_contain_text("No problems")
    expect(granted.locator(".says")).to_contain_text(text_of("en", "welcome.thanks_declined"))
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")

    colleague = _sign_in(browser, live_server, "colleague1")
    colleague.goto(f"{live_server}/staff/studio")
    colleague.locator("#awaiting").get_by_role("link").click()
    axe.assert_no_serious_violations(colleague)
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    db.expire_all()
    item = rv.get_item(db, KIND, "welcome")
    assert item.published_number == 2
    assert rv.get_revision(db, item, 1).state is RevisionState.SUPERSEDED

    early.get_by_role("button", name=text_of("en", "welcome.consent_yes")).click()
    expect(early.locator("#messages")).to_contain_text(text_of("en", "welcome.thanks_granted"))  # revision 1
    late, _ = _patient_chat(browser, live_server, db)
    late.get_by_role("button", name=text_of("en", "welcome.consent_yes")).click()
    expect(late.locator("#messages")).to_contain_text(text_of("en", "welcome.thanks_declined"))  # revision 2
    assert _welcome_versions(db) == {1, 2}

    for lang, title in EDITOR_TITLES.items():
        db.execute(sa.update(StaffUser).where(StaffUser.username == "editor1").values(language=lang))
        db.commit()
        editor.goto(f"{live_server}/staff/studio/items/{KIND}/welcome/r/2")
        expect(editor.locator("html")).to_have_attribute("lang", lang)
        expect(editor.get_by_role("heading", level=1)).to_contain_text(title)
        axe.assert_no_serious_violations(editor)
    for page in (editor, colleague, early, late):
        page.context.close()


WORDS = {
    "zh-CN": "探视时间为下午两点到八点。",
    "vi": "Giờ thăm từ 2 đến 8 giờ chiều.",
    "en": "Visiting is 2 to 8 pm.",
}
LANGUAGE_LABELS = {"zh-CN": "Chinese", "vi": "Vietnamese", "en": "English"}


def _as(db: Session, username: str, lang: str) -> None:
    db.execute(sa.update(StaffUser).where(StaffUser.username == username).values(language=lang))
    db.commit()


def test_a_flow_from_scratch_edited_checked_in_chinese_simulated_and_published(
    live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="editor2", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="colleague2", role=Role.CONTENT_EDITOR)
    db.commit()
    editor = _sign_in(browser, live_server, "editor2")
    editor.goto(f"{live_server}/staff/studio")
    with editor.expect_navigation():
        editor.get_by_role("button", name="Import the message files").click()
    editor.goto(f"{live_server}/staff/studio")
    new = editor.locator("#new-flow")
    new.get_by_label("New flow name").fill("visiting")
    new.get_by_label("First step name").fill("hours")
    for lang, words in WORDS.items():
        new.get_by_label(LANGUAGE_LABELS[lang], exact=True).fill(words)
    axe.assert_no_serious_violations(editor)
    new.get_by_role("button", name="Start a flow").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("visiting")
    expect(editor.locator("#step-hours")).to_be_visible()
    expect(editor.locator("#problem-list")).to_contain_text(
        "no published text has this key"
    )  # texts: a draft

    # a second step, then the first goes on to it with an effect
    add = editor.locator("#new-step")
    add.get_by_label("Step name").fill("bye")
    add.get_by_label("Says (text key)").fill("menu.faq")
    add.get_by_label("The flow ends here").check()
    with editor.expect_navigation():
        add.get_by_role("button", name="Add the step").click()
    hours = editor.locator("#step-hours")
    _open(hours)
    hours.get_by_label("The flow ends here").uncheck()
    hours.get_by_label("Next step").fill("bye")
    effects = hours.get_by_label("Effects on entering the step")
    effects.fill("hug")
    problems = editor.locator("#live-problems")
    expect(problems).to_contain_text("hours: there is no effect of this name: hug")  # as she types
    effects.fill("grant_consent purpose=care")
    expect(problems).not_to_contain_text("no effect of this name")
    with editor.expect_navigation():
        hours.get_by_role("button", name="Save step hours").click()
    expect(editor.locator("#step-hours")).to_contain_text("grant_consent")
    bye = editor.locator("#step-bye")
    _open(bye)
    with editor.expect_navigation():
        bye.get_by_role("button", name="Save and move up").click()
    assert editor.locator("fieldset.flow-step").evaluate_all("fs => fs.map(f => f.dataset.step)")[:2] == [
        "bye",
        "hours",
    ]

    # the same check in Chinese, and the page clean for axe in three languages
    _as(db, "editor2", "zh-CN")
    editor.reload()
    hours = editor.locator("#step-hours")
    _open(hours)
    hours.locator("textarea[name$='|effects']").fill("hug")
    expect(problems).to_contain_text("没有这个名称的效果: hug")
    expect(problems).not_to_contain_text("there is no effect")
    axe.assert_no_serious_violations(editor)
    for lang in ("vi", "en"):
        _as(db, "editor2", lang)
        editor.reload()
        expect(editor.locator("html")).to_have_attribute("lang", lang)
        axe.assert_no_serious_violations(editor)

    # the simulator speaks the draft flow with the draft texts
    with editor.expect_navigation():
        editor.locator("#previews").get_by_role("link", name="Vietnamese").click()
    expect(editor.locator("body")).to_contain_text(WORDS["vi"])
    axe.assert_no_serious_violations(editor)

    # publish: the texts, then the flow, each approved by a colleague
    db.expire_all()
    texts_draft = rv.revisions(db, rv.get_item(db, "messages", "dialogues"))[0].number
    editor.goto(f"{live_server}/staff/studio/items/messages/dialogues/r/{texts_draft}")
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    colleague = _sign_in(browser, live_server, "colleague2")
    colleague.goto(f"{live_server}/staff/studio/items/messages/dialogues/r/{texts_draft}")
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    editor.goto(f"{live_server}/staff/studio/items/{KIND}/visiting/r/1")
    expect(editor.locator("#problem-count")).to_contain_text("No problems")
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    colleague.goto(f"{live_server}/staff/studio/items/{KIND}/visiting/r/1")
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    db.expire_all()
    item = rv.get_item(db, KIND, "visiting")
    assert item.published_number == 1
    assert rv.get_revision(db, item, 1).body["steps"]["hours"]["effects"] == [
        {"grant_consent": {"purpose": "care"}}
    ]
    for page in (editor, colleague):
        page.context.close()

"""In Chromium: an editor adds her hospital's words for chest pain, is stopped by a phrase that would alarm on
ordinary messages, tries a message against her draft, submits it; a colleague with the approver grant
publishes it and the rules read those words from the next message on. The page passes axe and reads in
English, Chinese and Vietnamese."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.content import safety_lexicon as lexicon
from backend.models import Role
from nlu.red_flags import Emergency
from nlu.safety import check
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in
from tests.browser.visible_words import leaks

pytestmark = pytest.mark.browser
WORDS = "我妈说心里头绞着难受"
HEADINGS = {"zh-CN": "危急信号用语", "vi": "Cụm từ dấu hiệu nguy hiểm"}
LANGUAGES = {"zh-CN": "中文", "vi": "Tiếng Việt"}


def test_add_phrases_check_try_submit_approve_and_the_rules_read_them(
    live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="approver1", role=Role.CONTENT_EDITOR).content_approver = True
    db.commit()

    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("button", name="Edit the red-flag phrases").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("Red-flag phrases")
    expect(editor.locator("#problem-count")).to_contain_text("No problems")
    axe.assert_no_serious_violations(editor)

    editor.get_by_label("Chest pain, heart attack signs (zh-CN)").fill("心里头绞着")
    editor.get_by_label("Breathing difficulty (en)").fill("appointment")  # a word of every booking
    editor.get_by_role("button", name="Save draft").click()
    problem = editor.locator('#problems li[data-code="matches_benign"]')
    expect(problem).to_contain_text("would raise an alarm on messages known to be ordinary")
    expect(problem).to_contain_text("I want to book an appointment")
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#studio-error")).to_contain_text("This revision has problems")
    expect(editor.locator("#revision-state")).to_have_text("Draft")

    editor.get_by_label("Breathing difficulty (en)").fill("")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator("#problem-count")).to_contain_text("No problems")
    editor.get_by_label("Try a message against this revision").fill(WORDS)
    editor.get_by_role("button", name="Try", exact=True).click()
    expect(editor.locator("#try-result")).to_contain_text("Chest pain, heart attack signs")
    assert check(WORDS) is None  # a draft is tried, never installed
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    expect(editor.locator("#approval-hint")).to_be_visible()

    approver = _sign_in(browser, live_server, "approver1")
    approver.goto(f"{live_server}/staff/studio")
    approver.locator("#awaiting").get_by_role("link").click()
    axe.assert_no_serious_violations(approver)
    approver.get_by_role("button", name="Approve and publish").click()
    expect(approver.locator("#revision-state")).to_have_text("Published")

    lexicon.reset()  # this process is another one than the server's: it reads the database
    db.expire_all()
    assert lexicon.sync(db).revision == 1
    hit = check(WORDS)
    assert hit is not None and hit.emergency is Emergency.CHEST_PAIN

    url = editor.url.split("?")[0]
    for lang, name in LANGUAGES.items():
        editor.locator("#staff-language").select_option(label=name)
        editor.locator("form.staff-lang button").click()
        expect(editor.locator("html")).to_have_attribute("lang", lang)
        editor.goto(url)
        expect(editor.get_by_role("heading", level=1)).to_contain_text(HEADINGS[lang])
        axe.assert_no_serious_violations(editor)
        editor.evaluate("document.querySelectorAll('[translate=no]').forEach(e => e.remove())")
        text = editor.locator("main").inner_text()
        assert not leaks(text, lang, ["心里头绞着", "zh-CN", "vi", "en"]), leaks(text, lang, ["心里头绞着"])
    editor.context.close()
    approver.context.close()

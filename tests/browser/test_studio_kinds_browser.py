"""In Chromium: an editor adds a canned reply that a colleague publishes and the inbox offers; writes a new
education article in English only (the missing translations flagged, the preview in Vietnamese reads
English) that a colleague with the approver grant publishes and the patient's page shows; and listens to a
voice prompt. Each page passes axe and reads in English, Chinese and Vietnamese."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.bundle import seed_from_files, seed_one_file_kinds
from backend.models import Role
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in
from tests.browser.visible_words import leaks

pytestmark = pytest.mark.browser
LANGUAGES = {"zh-CN": "中文", "vi": "Tiếng Việt"}


def _people(db: Session) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="approver1", role=Role.CONTENT_EDITOR).content_approver = True
    db.commit()


def _in_every_language(page: Any, headings: dict[str, str], data: list[str]) -> None:
    """The page in Chinese and Vietnamese: its heading translated, axe clean, no English left over."""
    url = page.url.split("?")[0]
    for lang, name in LANGUAGES.items():
        page.locator("#staff-language").select_option(label=name)
        page.locator("form.staff-lang button").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_contain_text(headings[lang])
        axe.assert_no_serious_violations(page)
        page.evaluate("document.querySelectorAll('[translate=no], main [lang]').forEach(e => e.remove())")
        text = page.locator("main").inner_text()
        assert not leaks(text, lang, data), leaks(text, lang, data)
    page.locator("#staff-language").select_option(label="English")
    page.locator("form.staff-lang button").click()


def test_a_canned_reply_is_added_published_by_a_colleague_and_offered_in_the_inbox(
    live_server: str, browser: Any, db: Session
) -> None:
    _people(db)
    seed_one_file_kinds(db, get_settings().content_dir)
    db.commit()
    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("button", name="Edit the canned replies").click()
    editor.get_by_role("button", name="New draft").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("Canned replies")
    axe.assert_no_serious_violations(editor)
    new = editor.locator("fieldset.canned-reply").last
    new.get_by_label("Key (5)").fill("Wait Please")
    new.get_by_label("Label (5, en)").fill("Wait")
    new.get_by_label("Reply (5, en)").fill("Please wait, a nurse is reading your message.")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator('#problems li[data-code="bad_key"]')).to_contain_text("Wait Please")
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#studio-error")).to_contain_text("This revision has problems")
    editor.get_by_label("Key (5)").fill("wait_please")
    editor.get_by_role("button", name="Save draft").click()
    missing = editor.locator('#problems li[data-code="missing"]')
    expect(missing).to_have_count(4)  # label and text in zh-CN and vi: flagged, not blocking
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")

    colleague = _sign_in(browser, live_server, "approver1")
    colleague.goto(f"{live_server}/staff/studio")
    colleague.locator("#awaiting").get_by_role("link").click()
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    axe.assert_no_serious_violations(colleague)
    _in_every_language(colleague, {"zh-CN": "常用回复", "vi": "Câu trả lời mẫu"}, ["wait_please"])

    from backend.web.inbox import canned_replies

    db.expire_all()
    offered = {r["key"]: r["text"] for r in canned_replies(db, get_settings().content_dir, "vi", "en")}
    assert offered["wait_please"] == "Please wait, a nurse is reading your message."
    editor.context.close()
    colleague.context.close()


def test_a_new_article_in_english_only_is_flagged_previewed_approved_and_read_by_patients(
    live_server: str, browser: Any, db: Session
) -> None:
    _people(db)
    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_label("New article id (lower-case letters, digits, underscores)").fill("knee_exercises")
    editor.get_by_role("button", name="Start an article").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("Education article")
    axe.assert_no_serious_violations(editor)
    editor.get_by_label("Title (en)").fill("Exercises after a knee operation")
    editor.get_by_label("One-line summary, what chat messages carry (en)").fill("Move a little every hour.")
    editor.get_by_label("Paragraphs, a blank line between two (en)").fill(
        "Bend and straighten the knee ten times.\n\nWalk a few steps every hour."
    )
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator("#missing-languages")).to_contain_text("zh-CN")
    expect(editor.locator("#missing-languages")).to_contain_text("vi")
    editor.get_by_label("Language").select_option("vi")
    editor.get_by_role("button", name="Show the preview").click()
    expect(editor.locator("#preview h3")).to_have_text("Exercises after a knee operation")
    expect(editor.locator("#preview p")).to_have_count(3)  # the summary and two paragraphs
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    expect(editor.locator("#approval-hint")).to_be_visible()  # clinical: not the author, an approver

    approver = _sign_in(browser, live_server, "approver1")
    approver.goto(f"{live_server}/staff/studio")
    approver.locator("#awaiting").get_by_role("link").click()
    approver.get_by_role("button", name="Approve and publish").click()
    expect(approver.locator("#revision-state")).to_have_text("Published")
    _in_every_language(
        approver, {"zh-CN": "宣教文章", "vi": "Bài giáo dục sức khỏe"}, ["knee_exercises", "Bend", "Walk"]
    )

    patient = browser.new_page()
    patient.goto(f"{live_server}/e/knee_exercises/vi")
    expect(patient.locator("main")).to_contain_text("Walk a few steps every hour.")
    patient.close()
    editor.context.close()
    approver.context.close()


def test_the_voice_prompts_are_listed_in_three_languages_and_play_as_the_call_says_them(
    live_server: str, browser: Any, db: Session
) -> None:
    _people(db)
    seed_from_files(db, get_settings().content_dir)
    db.commit()
    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("link", name="Voice prompts: the call's fixed wording, in the message texts").click()
    expect(editor.get_by_role("heading", level=1)).to_have_text("Voice prompts")
    goodbye = editor.locator('tr[data-key="voice.goodbye"]')
    expect(goodbye.locator('td[lang="vi"] .text')).not_to_be_empty()
    axe.assert_no_serious_violations(editor)
    src = goodbye.locator('td[lang="en"] audio').get_attribute("src")
    assert src is not None
    played = editor.request.get(f"{live_server}{src}")
    assert played.status == 200 and played.headers["content-type"] == "audio/wav"
    assert played.body()[:4] == b"RIFF" and len(played.body()) > 8000  # more than half a second at 8 kHz
    assert (
        editor.request.get(
            f"{live_server}/staff/studio/voice-prompts/play?key=welcome.greeting&lang=en"
        ).status
        == 404
    )
    editor.get_by_role("link", name="Edit the voice prompts in the message texts (revision 1)").click()
    expect(editor.locator('tr[data-key="voice.goodbye"]')).to_have_count(1)
    expect(editor.locator('tr[data-key="welcome.greeting"]')).to_have_count(
        0
    )  # filtered to the voice prompts
    editor.goto(f"{live_server}/staff/studio/voice-prompts")
    _in_every_language(editor, {"zh-CN": "语音提示", "vi": "Lời nhắc giọng nói"}, [])
    editor.context.close()


def test_provider_templates_count_each_wechat_field_per_language_as_it_is_typed(
    live_server: str, browser: Any, db: Session
) -> None:
    _people(db)
    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("button", name="Edit the provider templates (WeChat, WhatsApp, SMS)").click()
    expect(editor.get_by_role("heading", level=1)).to_contain_text("Provider templates")
    axe.assert_no_serious_violations(editor)
    fields = editor.get_by_label("WeChat: fields (notice)")
    fields.fill("first = {hospital}\nkeyword1 = {hospital} {hospital} {hospital}\nremark = {text}")
    hospital = len(get_settings().hospital_name) * 3 + 2
    count = editor.locator('#counts-notice li[data-field="keyword1"] span[data-lang="en"]')
    expect(count).to_have_text(f"en {hospital}/20")  # counted in the page, before any save
    expect(count).to_have_class("error")
    expect(editor.locator('#counts-notice li[data-field="remark"]')).to_have_count(0)  # not limited
    editor.get_by_label("WeChat: template id (notice)").fill("not an id!")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator('#problems li[data-code="bad_template_id"]')).to_contain_text("not an id!")
    too_long = editor.locator('#problems li[data-code="too_long_for_wechat"]')
    expect(too_long).to_have_count(3)  # in each language
    expect(too_long.first).to_contain_text("keyword1")
    expect(editor.locator('#counts-notice li[data-field="keyword1"] span[data-lang="en"]')).to_have_text(
        f"en {hospital}/20"
    )
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#studio-error")).to_contain_text("This revision has problems")
    # the provider's product name and the placeholders are written as they are in every language
    names = ["Content SID", "HX", "{hospital}", "{title}", "{text}", "{url}"]
    _in_every_language(editor, {"zh-CN": "服务商模板", "vi": "Mẫu"}, names)
    editor.context.close()

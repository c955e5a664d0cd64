"""In Chromium: a content editor talks to the main menu in Vietnamese on /staff/flows/simulate with buttons
and typed answers, sees the hand-off listed as an effect, and nothing is saved; the page passes axe."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import ConsentEvent, Conversation, Message, Role, Task
from tests import factories
from tests.backend.dialogue.webchat_driver import text_of
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser


def test_an_editor_walks_the_main_menu_in_the_simulator_and_nothing_is_saved(
    live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    page = _sign_in(browser, live_server, "editor1")
    page.goto(f"{live_server}/staff/flows")
    # flows and languages by their names on the page (her pages are in English)
    page.locator("tr", has_text="Main menu").get_by_role("link", name="Vietnamese", exact=True).click()
    expect(page.get_by_role("heading", name="Simulator: main_menu (vi)")).to_be_visible()
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text(text_of("vi", "menu.prompt"))
    axe.assert_no_serious_violations(page)

    page.get_by_role("button", name=text_of("vi", "menu.faq")).click()  # a button
    expect(transcript).to_contain_text(text_of("vi", "faq.ask"))
    page.get_by_label("Message").fill("2")  # a typed number: the second topic
    page.get_by_label("Message").press("Enter")
    expect(transcript).to_contain_text(text_of("vi", "faq.parking"))
    page.get_by_label("Message").fill(text_of("vi", "common.no"))
    page.get_by_role("button", name="Send").click()
    expect(transcript).to_contain_text(text_of("vi", "common.back_to_menu"))

    page.get_by_role("button", name=text_of("vi", "menu.human")).click()
    expect(transcript).to_contain_text(text_of("vi", "common.passed_to_staff"))
    expect(transcript.locator(".effect")).to_contain_text(["RequestHandoff", "ended"])
    expect(page.locator("form.reply")).to_have_count(0)  # the conversation ended: no reply form
    page.get_by_role("link", name="Start again").click()
    expect(transcript.locator("li.msg")).to_have_count(2)  # the menu prompt and its options, afresh
    page.context.close()

    db.expire_all()
    for model in (Conversation, Message, Task, ConsentEvent):
        assert db.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model.__name__

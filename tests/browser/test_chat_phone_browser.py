"""The patient's chat page on real phone sizes, in three languages: long links wrap and open, the
composer stays on screen, who wrote each message is said, and reading back up is not interrupted."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Conversation, Direction, Message, MessageStatus, Role
from bots.domain import Channel
from channels import webchat
from tests import factories
from tests.browser.axe import assert_no_serious_violations

pytestmark = pytest.mark.browser

LONG_LINK = "https://hospital.example.org/q/" + "Ab3_" * 40 + "?lang=xx&utm=follow-up"
# What the patient must see, per language: the staff label (role in words) and the bot's label.
SEEN = {
    "zh-CN": ("医护团队 · 护士", "自动助手", "有新消息"),
    "vi": ("Đội ngũ chăm sóc · điều dưỡng", "Trợ lý tự động", "Tin nhắn mới"),
    "en": ("Care team · nurse", "Automated assistant", "New messages"),
}


def _say(db: Session, conversation: Conversation, text: str, *, staff_id: int | None = None) -> Message:
    message = Message(
        conversation_id=conversation.id,
        channel=Channel.WEBCHAT,
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENT,
        text=text,
        sent_by_staff_id=staff_id,
    )
    db.add(message)
    db.commit()
    return message


PHONES = [(360, 640), (390, 844)]


def test_the_chat_page_works_on_a_phone_in_every_language(
    live_server: str, browser: Any, db: Session
) -> None:
    """One server for the six cases (three languages on two phone sizes): starting one costs seconds."""
    nurse = factories.staff(db, username="nurse1", role=Role.NURSE)
    db.commit()
    for lang in SEEN:
        for width, height in PHONES:
            _check_phone(live_server, browser, db, nurse.id, lang, width, height)


def _check_phone(
    live_server: str, browser: Any, db: Session, nurse_id: int, lang: str, width: int, height: int
) -> None:
    person = factories.patient(db, language=lang)
    conversation = Conversation(
        patient_id=person.id, channel=Channel.WEBCHAT, address=webchat.address_for(person.id)
    )
    db.add(conversation)
    db.commit()
    for n in range(14):  # enough history that the page scrolls
        _say(db, conversation, f"{n}. " + "follow-up " * 12)
    _say(db, conversation, f"Please fill in the form: {LONG_LINK}.")
    _say(db, conversation, "I have looked at your answers; please keep the dressing dry.", staff_id=nurse_id)
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    staff_label, bot_label, new_label = SEEN[lang]

    phone = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{live_server}/c/{token}")

    # Nothing is wider than the phone, and the composer is fully on screen.
    expect(page.locator("#messages")).to_contain_text("keep the dressing dry")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for control in (page.locator("#text"), page.locator("#composer button[type=submit]")):
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["y"] >= 0 and box["y"] + box["height"] <= height

    # The long address is a link that opens it, and it wraps inside its bubble.
    link = page.locator(".msg p a").first
    expect(link).to_have_attribute("href", LONG_LINK)
    bubble = link.locator("xpath=ancestor::li").bounding_box()
    assert bubble is not None and bubble["x"] + bubble["width"] <= width

    # A person's reply is labelled as a person's, in the patient's language; the bot's as the bot's.
    staff_message = page.locator(".msg.by-staff").last
    expect(staff_message.locator(".by")).to_have_text(staff_label)
    expect(page.locator(".msg.by-bot .by").first).to_have_text(bot_label)

    # Reading back up: a new reply does not pull the page down; a badge offers to jump to it.
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    _say(db, conversation, "One more thing from the care team.", staff_id=nurse_id)
    jump = page.locator("#jump")
    expect(jump).to_be_visible(timeout=10_000)
    expect(jump).to_contain_text(new_label)
    assert page.evaluate("window.scrollY") < 50
    assert_no_serious_violations(page)
    jump.click()
    expect(jump).to_be_hidden()
    expect(page.locator("#messages")).to_contain_text("One more thing from the care team.")
    at_bottom = "window.innerHeight + window.scrollY >= document.body.scrollHeight - 80"
    assert page.evaluate(at_bottom)
    phone.close()

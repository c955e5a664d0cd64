"""The chat page's own controls on a 360x640 phone, in three languages: a visible language switch that
the bot follows, a large-text mode remembered on the device, and WeChat's in-app browser handled (the
composer stays in the page's flow and on screen). axe-core clean in each state."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, make_token
from backend.models import Conversation, Direction, Message, MessageStatus, Patient
from bots.domain import Channel
from channels import webchat
from tests import factories
from tests.browser.axe import assert_no_serious_violations

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 360, 640
NAMES = {"zh-CN": "中文", "vi": "Tiếng Việt", "en": "English"}
NEXT = {"zh-CN": "vi", "vi": "en", "en": "zh-CN"}  # the language each case switches to
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 12; SM-G9910 Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5049 "
    "MMWEBSDK/20230405 MMWEBID/2585 MicroMessenger/8.0.35.2360(0x2800235B) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)


def _text(lang: str, key: str) -> str:
    settings = get_settings()
    return load_catalog(settings.content_dir, settings.hospital_name).text(lang, key)


def _on_screen(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (selector, box)
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (selector, box)


def test_language_switch_and_large_text_on_a_phone_in_every_language(
    live_server: str, browser: Any, db: Session
) -> None:
    for lang in NAMES:
        _check(live_server, browser, db, lang)


def _check(live_server: str, browser: Any, db: Session, lang: str) -> None:
    person = factories.patient(db, language=lang, dept=factories.department(db))
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    phone = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{live_server}/c/{token}")
    messages = page.locator("#messages")
    page.get_by_role("button", name=_text(lang, "welcome.consent_yes"), exact=True).click()
    expect(messages).to_contain_text(_text(lang, "menu.prompt"))  # the welcome ends with the menu

    # The switch names every language in its own words; the current one is marked.
    switch = page.get_by_role("navigation", name=_text(lang, "pages.language"))
    for code, name in NAMES.items():
        button = switch.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        expect(button).to_have_attribute("lang", code)
    expect(switch.locator("[aria-current=true]")).to_have_text(NAMES[lang])
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    _on_screen(page, "#text")
    assert_no_serious_violations(page)

    # Large text: bigger at once, still no sideways scrolling, remembered after a reload.
    toggle = page.get_by_role("button", name=_text(lang, "pages.large_text"))
    expect(toggle).to_have_attribute("aria-pressed", "false")
    before = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    after = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert before == 16 and after >= 20
    page.reload()
    expect(page.locator("html")).to_have_class("large-text")
    expect(page.get_by_role("button", name=_text(lang, "pages.large_text"))).to_have_attribute(
        "aria-pressed", "true"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    _on_screen(page, "#composer button[type=submit]")
    assert_no_serious_violations(page)

    # Switching language: the page and the bot go on in the new language, and the record says so.
    target = NEXT[lang]
    page.get_by_role("navigation").get_by_role("button", name=NAMES[target], exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", target)
    expect(page.locator("h1")).to_have_text(_text(target, "chat.title"))
    expect(messages).to_contain_text(_text(target, "common.language_set"))
    expect(page.locator("html")).to_have_class("large-text")  # the device's choice outlives the switch
    db.expire_all()
    assert db.get(Patient, person.id).language == target  # type: ignore[union-attr]
    phone.close()


def test_wechat_in_app_browser_keeps_the_composer_in_the_page_and_on_screen(
    live_server: str, browser: Any, db: Session
) -> None:
    for lang in NAMES:
        person = factories.patient(db, language=lang, dept=factories.department(db))
        conversation = Conversation(
            patient_id=person.id, channel=Channel.WEBCHAT, address=webchat.address_for(person.id)
        )
        db.add(conversation)
        db.flush()
        for n in range(14):  # a conversation long enough to scroll
            db.add(
                Message(
                    conversation_id=conversation.id,
                    channel=Channel.WEBCHAT,
                    direction=Direction.OUTBOUND,
                    status=MessageStatus.SENT,
                    text=f"{n}. " + "follow-up " * 12,
                )
            )
        db.commit()
        token = make_token(get_settings(), LinkKind.CHAT, person.id)
        wechat = browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True, user_agent=WECHAT_UA
        )
        page = wechat.new_page()
        page.goto(f"{live_server}/c/{token}")
        expect(page.locator("body")).to_have_class("chat in-wechat")
        expect(page.locator(".msg")).to_have_count(16)  # the history, then the welcome (greeting, consent)
        composer = page.locator("#composer")
        assert composer.evaluate("e => getComputedStyle(e).position") == "sticky"
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        _on_screen(page, "#text")
        _on_screen(page, "#composer button[type=submit]")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        # the last message is above the composer, not under it
        last = page.locator(".msg").last.bounding_box()
        bar = composer.bounding_box()
        assert last is not None and bar is not None and last["y"] + last["height"] <= bar["y"] + 1
        assert_no_serious_violations(page)
        wechat.close()


def test_large_text_chosen_in_the_chat_holds_on_every_patient_page(
    live_server: str, browser: Any, db: Session
) -> None:
    for lang in NAMES:
        person = factories.patient(db, language=lang, dept=factories.department(db))
        db.commit()
        settings = get_settings()
        phone = browser.new_context(
            viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True
        )
        page = phone.new_page()
        page.goto(f"{live_server}/c/{make_token(settings, LinkKind.CHAT, person.id)}")
        page.get_by_role("button", name=_text(lang, "pages.large_text")).click()
        for url in (
            f"{live_server}/e/cardiology_warning_signs/{lang}",
            f"{live_server}/f/{make_token(settings, LinkKind.FEEDBACK, person.id)}",
        ):
            page.goto(url)
            expect(page.locator("html")).to_have_class("large-text")
            toggle = page.get_by_role("button", name=_text(lang, "pages.large_text"))
            expect(toggle).to_have_attribute("aria-pressed", "true")
            assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 20
            assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
            assert_no_serious_violations(page)
        toggle.click()  # and off again, remembered too
        page.reload()
        expect(page.locator("html")).not_to_have_class("large-text")
        phone.close()

"""In Chromium: a patient chats on a phone-sized page; an admin signs in with TOTP and sees it."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import Role
from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_patient_chats_and_admin_sees_the_conversation(live_server: str, browser: Any, db: Session) -> None:
    dept = factories.department(db)
    admin = factories.staff(db, username="admin", role=Role.ADMIN, totp=True)
    person = factories.patient(db, language="zh-CN", name="王秀英", dept=dept)
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    page = phone.new_page()
    page.goto(f"{live_server}/c/{token}")
    expect(page.locator("#messages")).to_contain_text("院后随访服务")
    page.get_by_role("button", name="同意").click()
    expect(page.locator("#messages")).to_contain_text("谢谢！我们会通过这里与您联系随访事宜。")
    expect(page.get_by_role("button", name="同意")).to_have_count(0)  # answered buttons go away
    page.get_by_placeholder("请输入消息").fill("我什么时候复诊？转人工")
    page.get_by_role("button", name="发送").click()
    expect(page.locator("#messages")).to_contain_text("您的消息已转给我们的医护团队")
    expect(page.locator("#messages")).to_contain_text("内回复您")  # the expected wait follows
    expect(page.get_by_placeholder("请输入消息")).to_have_value("")
    page.get_by_placeholder("请输入消息").fill("痛" * 1400)
    page.get_by_role("button", name="发送").click()
    expect(page.locator("#notice")).to_contain_text("您的消息太长了")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows the phone's width
    phone.close()

    desk = browser.new_context(locale="en-GB")
    staff_page = desk.new_page()
    staff_page.goto(f"{live_server}/staff/login")
    staff_page.get_by_label("Username").fill("admin")
    staff_page.get_by_label("Password").fill(PASSWORD)
    staff_page.get_by_label("Authenticator code").fill(pyotp.TOTP(admin.totp_secret or "").now())
    staff_page.get_by_role("button", name="Sign in").click()
    expect(staff_page.get_by_role("heading", name="Home")).to_be_visible()
    staff_page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    expect(staff_page.get_by_role("heading", name="Patients")).to_be_visible()
    staff_page.get_by_label("Name, phone, MRN or ID number").fill("王秀英")
    staff_page.get_by_role("button", name="Search").click()
    staff_page.get_by_role("link", name="王秀英").click()
    conversation = staff_page.locator("#conversations")
    expect(conversation).to_contain_text("我什么时候复诊？转人工")
    expect(conversation).to_contain_text("同意")
    expect(staff_page.locator("#identities")).to_contain_text("Staff answer")
    expect(staff_page.locator("#consents")).to_contain_text("Care messages · Web chat: granted")
    expect(staff_page.locator("#tasks")).to_contain_text("Hand-offs · Normal")
    desk.close()


def test_forged_link_shows_a_clear_page_in_the_browser(live_server: str, browser: Any, db: Session) -> None:
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    response = page.goto(f"{live_server}/c/forged-token")
    assert response is not None and response.status == 404
    expect(page.locator("main")).to_contain_text("Liên kết này không hợp lệ")
    context.close()

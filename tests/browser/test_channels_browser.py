"""In Chromium: an admin saves a channel setting over the environment and sees where it comes from,
replaces a secret that is never shown again, has a WeChat field that would not show in full refused with
each language named, sets a department's quiet hours, and sends herself a test SMS that reaches the local
Twilio through the outbox; the page reads in Chinese and Vietnamese; axe-core finds nothing serious."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import ContactLimit, Role
from tests import factories
from tests.browser import axe
from tests.browser.test_admin_browser import _sign_in
from tests.channels.fake_twilio import FakeTwilio

pytestmark = pytest.mark.browser
SENDER = "+15005550006"


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The local Twilio, in the environment the live server starts with."""
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        monkeypatch.setenv("CARELOOP_HOSPITAL_NAME", "The Second Affiliated Hospital of the University")
        yield fake


def test_an_admin_configures_channels_and_sends_herself_a_test(
    twilio_env: FakeTwilio, live_server: str, browser: Any, db: Session
) -> None:
    cardio = factories.department(db, code="CARD")
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    root.phone = "+8613800138009"
    db.commit()
    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    admin.get_by_role("link", name="Administration").click()
    admin.get_by_role("link", name="Channels and templates").click()
    found = {"channels": axe.describe(axe.violations(admin))}

    row = admin.locator("#setting-sms_signature")
    row.get_by_label("Value").fill("【康复医院】")
    row.get_by_role("button", name="Save").click()
    expect(admin.locator("#refused")).to_contain_text("without brackets")
    expect(admin.locator("#setting-sms_signature").get_by_label("Value")).to_have_value("【康复医院】")
    admin.locator("#setting-sms_signature").get_by_label("Value").fill("康复医院")
    admin.locator("#setting-sms_signature").get_by_role("button", name="Save").click()
    expect(admin.locator("#done")).to_be_visible()
    expect(admin.locator("#setting-sms_signature")).to_have_attribute("data-source", "console")

    token_row = admin.locator("#setting-sms_gateway_token")
    token_row.get_by_label("New secret").fill("gateway-secret-value-42")
    token_row.get_by_role("button", name="Replace").click()
    expect(admin.locator("#setting-sms_gateway_token")).to_contain_text("set, hidden")
    assert "gateway-secret-value-42" not in admin.content()

    wechat = admin.locator("#template-notice-wechat")
    wechat.get_by_label("Fields, one a line: name = text").fill("thing1 = {hospital}")
    wechat.get_by_role("button", name="Save").click()
    expect(admin.locator("#field-problems")).to_contain_text("thing1 in 中文: 48 characters")
    expect(admin.locator("#field-problems")).to_contain_text("thing1 in Tiếng Việt: 48 characters")
    found["refused template"] = axe.describe(axe.violations(admin))

    form = admin.locator("#limit-form")
    form.get_by_label("Applies to").select_option(str(cardio.id))
    form.get_by_label("Quiet from (hour, 0–23)").fill("12")
    form.get_by_label("Quiet until (hour, 0–23)").fill("14")
    form.get_by_role("button", name="Save").click()
    expect(admin.locator("#limit-list")).to_contain_text("12:00–14:00")
    db.expire_all()
    limit = db.scalars(sa.select(ContactLimit)).one()
    assert (limit.department_id, limit.quiet_start, limit.quiet_end) == (cardio.id, 12, 14)

    admin.locator("#test-form").get_by_label("Channel").select_option("sms")
    admin.get_by_role("button", name="Send a test message to me").click()
    expect(admin.locator("#test-result")).to_have_attribute("data-status", "sent")
    found["test result"] = axe.describe(axe.violations(admin))
    assert [m.params["To"] for m in twilio_env.messages] == ["+8613800138009"]

    admin.goto(f"{live_server}/staff/admin/channels")
    admin.locator("#test-form").get_by_label("Channel").select_option("wechat")
    admin.get_by_role("button", name="Send a test message to me").click()
    expect(admin.locator("#test-reason")).to_contain_text("no address on this channel")
    admin.context.close()
    assert {name: text for name, text in found.items() if text} == {}


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ("渠道与模板", "渠道设置", "免打扰时段和每日上限", "测试发送", "服务商模板")),
        ("vi", ("Kênh và mẫu tin", "Thiết lập kênh", "Giờ yên lặng và giới hạn mỗi ngày", "Gửi thử")),
    ],
)
def test_the_channels_page_reads_in_chinese_and_vietnamese(
    live_server: str, browser: Any, db: Session, lang: str, words: tuple[str, ...]
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    root.language = lang
    db.commit()
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server}/staff/login")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(factories.PASSWORD)
    import pyotp

    assert root.totp_secret
    page.locator("input[name=totp_code]").fill(pyotp.TOTP(root.totp_secret).now())
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(lambda url: "/staff/login" not in url)
    page.goto(f"{live_server}/staff/admin/channels")
    text = page.locator("main").inner_text()
    assert all(word in text for word in words), text[:400]
    assert "Channel settings" not in text and "Quiet hours and daily caps" not in text
    assert axe.describe(axe.violations(page)) == ""
    context.close()

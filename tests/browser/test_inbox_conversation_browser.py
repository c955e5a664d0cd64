"""In Chromium, as a nurse sees it: the inbox list shows what is unread and what is urgent in words; a task
opens beside the list on a wide screen (stacked on a phone) with the patient beside it; keyboard shortcuts
claim, reply, insert a canned reply and move between conversations but do nothing while she types; without
JavaScript the same actions work through links and buttons; in English, Chinese and Vietnamese, axe-clean."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Message, StaffUser, Task, TaskPriority, TaskStatus
from backend.models.base import utcnow
from bots.domain import Channel
from tests import factories
from tests.browser.axe import assert_no_serious_violations
from tests.browser.test_accessibility import sign_in

pytestmark = pytest.mark.browser
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


def _two_tasks(db: Session, language: str = "en") -> tuple[Task, Task]:
    cardio = factories.department(db)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    nurse.language = language
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    bob = factories.patient(db, name="Bob Li", dept=cardio)
    first = factories.conversation(db, alice, Channel.SMS)
    factories.reply(db, first, "I feel dizzy, call me on 13800138000", at=utcnow() - timedelta(minutes=5))
    urgent = factories.task(db, person=alice, dept=cardio, conv=first, priority=TaskPriority.URGENT)
    second = factories.conversation(db, bob, Channel.WEBCHAT)
    factories.reply(db, second, "When do I take the tablets?")
    calm = factories.task(db, person=bob, dept=cardio, conv=second, priority=TaskPriority.LOW)
    db.commit()
    return urgent, calm


def test_a_nurse_works_her_inbox_from_the_keyboard(live_server: str, browser: Any, db: Session) -> None:
    urgent, calm = _two_tasks(db)
    context = browser.new_context(locale="en-GB", viewport=WIDE)
    page = context.new_page()
    try:
        sign_in(page, live_server, "nurse1")
        page.goto(f"{live_server}/staff/inbox")
        row = page.locator(f'#tasks tr[data-task="{urgent.id}"]')
        expect(row).to_contain_text("1 unread")
        expect(row).to_contain_text("Urgent")
        expect(row).to_contain_text("I feel dizzy, call me on ***")  # never the phone number
        expect(row).to_contain_text("due in")
        assert row.evaluate("r => getComputedStyle(r.cells[2]).fontWeight") == "700"  # unread is bold
        expect(page.get_by_role("link", name="Export these rows (CSV)")).to_be_visible()
        assert_no_serious_violations(page)

        page.keyboard.press("j")  # the first row's patient link takes the focus
        expect(page.get_by_role("link", name="Alice Wang")).to_be_focused()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/staff/inbox/{urgent.id}")

        # list on the left, the conversation in the middle, the patient on the right
        listed = page.locator(".pane-list").bounding_box()
        main = page.locator(".pane-main").bounding_box()
        side = page.locator("#patient-sidebar").bounding_box()
        assert listed and main and side
        assert listed["x"] + listed["width"] <= main["x"] and main["x"] + main["width"] <= side["x"]
        expect(page.locator("#patient-sidebar")).to_contain_text("65–79")
        expect(page.locator('#conversation li[data-author="patient"]')).to_contain_text("Patient")
        assert_no_serious_violations(page)

        page.keyboard.press("?")
        expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#shortcut-help")).to_be_hidden()

        page.keyboard.press("c")  # claim
        expect(page.locator("#task-status")).to_have_text("Claimed")

        page.keyboard.press("r")
        box = page.get_by_label("Reply to the patient")
        expect(box).to_be_focused()
        page.keyboard.type("jk c x ")  # typing: no shortcut fires
        expect(box).to_have_value("jk c x ")
        assert page.url.endswith(f"/staff/inbox/{urgent.id}")
        page.keyboard.press("Enter")
        page.keyboard.type("/call")  # "/" at the start of a line offers the canned replies
        expect(page.locator("#canned-menu")).to_be_visible()
        expect(page.get_by_role("option", name="Call back")).to_be_visible()
        expect(page.get_by_role("option", name="Received")).to_be_hidden()
        page.keyboard.press("Enter")
        expect(box).to_have_value("jk c x \nWe will call you back today. Please keep your phone nearby.")
        expect(page.locator("#canned-menu")).to_be_hidden()
        box.fill("")
        page.get_by_role("group", name="Canned replies").get_by_role("button", name="Received").click()
        expect(box).to_have_value("Hello, we have received your message. A nurse will contact you shortly.")
        page.get_by_role("button", name="Send reply").click()
        expect(page.locator('#conversation li[data-author="staff"]')).to_contain_text("we have received")

        page.keyboard.press("j")  # next conversation
        page.wait_for_url(f"**/staff/inbox/{calm.id}")
        expect(page.locator(f'#task-list li[data-task="{calm.id}"] a')).to_have_attribute(
            "aria-current", "page"
        )
        page.keyboard.press("k")
        page.wait_for_url(f"**/staff/inbox/{urgent.id}")
        page.keyboard.press("x")  # close: the resolution is where she chooses it
        expect(page.get_by_label("Resolution")).to_be_focused()

        page.goto(f"{live_server}/staff/inbox")
        expect(page.locator(f'#tasks tr[data-task="{urgent.id}"]')).not_to_contain_text("unread")
        expect(page.locator(f'#tasks tr[data-task="{calm.id}"]')).not_to_contain_text("unread")
    finally:
        context.close()
    db.expire_all()
    task = db.get(Task, urgent.id)
    assert task is not None and task.status is TaskStatus.CLAIMED
    sent = db.scalars(sa.select(Message.text).where(Message.sent_by_staff_id.is_not(None))).all()
    assert sent == ["Hello, we have received your message. A nurse will contact you shortly."]


def test_on_a_phone_the_panes_stack(live_server: str, browser: Any, db: Session) -> None:
    urgent, _ = _two_tasks(db)
    context = browser.new_context(locale="en-GB", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, "nurse1")
        page.goto(f"{live_server}/staff/inbox/{urgent.id}")
        listed = page.locator(".pane-list").bounding_box()
        main = page.locator(".pane-main").bounding_box()
        side = page.locator("#patient-sidebar").bounding_box()
        assert listed and main and side
        assert listed["y"] + listed["height"] <= main["y"] <= side["y"]  # one column, top to bottom
        assert main["width"] <= PHONE["width"]
        wide = page.evaluate(
            """w => Array.from(document.querySelectorAll('body *'))
                 .filter(e => e.getBoundingClientRect().right > w + 1)
                 .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)""",
            PHONE["width"],
        )
        assert not wide, f"wider than the phone: {wide}"  # no sideways scrolling
        assert_no_serious_violations(page)
    finally:
        context.close()


def test_without_javascript_the_basic_actions_still_work(live_server: str, browser: Any, db: Session) -> None:
    urgent, calm = _two_tasks(db)
    context = browser.new_context(locale="en-GB", viewport=WIDE, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server, "nurse1")
        page.goto(f"{live_server}/staff/inbox/{urgent.id}")
        expect(page.locator("[data-shortcut-help]")).to_be_hidden()  # no help for shortcuts that cannot work
        page.get_by_role("button", name="Claim").click()
        expect(page.locator("#task-status")).to_have_text("Claimed")
        page.get_by_label("Canned reply").select_option(label="Call back")
        page.get_by_role("button", name="Send reply").click()
        expect(page.locator("#conversation")).to_contain_text("We will call you back today.")
        page.get_by_role("link", name="Next conversation").click()
        page.wait_for_url(f"**/staff/inbox/{calm.id}")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("language", "unread", "urgent_word", "patient_word", "claimed"),
    [
        ("zh-CN", "1 条未读", "紧急", "患者", "已认领"),
        ("vi", "1 chưa đọc", "Khẩn", "Bệnh nhân", "Đã nhận"),
    ],
)
def test_the_inbox_in_chinese_and_vietnamese(
    live_server: str,
    browser: Any,
    db: Session,
    language: str,
    unread: str,
    urgent_word: str,
    patient_word: str,
    claimed: str,
) -> None:
    urgent, _ = _two_tasks(db, language)
    context = browser.new_context(locale="en-GB", viewport=WIDE)
    page = context.new_page()
    try:
        sign_in(page, live_server, "nurse1")
        page.goto(f"{live_server}/staff/inbox")
        expect(page.locator("html")).to_have_attribute("lang", language)
        row = page.locator(f'#tasks tr[data-task="{urgent.id}"]')
        expect(row).to_contain_text(unread)
        expect(row).to_contain_text(urgent_word)
        assert_no_serious_violations(page)
        row.get_by_role("link", name="Alice Wang").click()
        expect(page.locator('#conversation li[data-author="patient"] .by')).to_contain_text(patient_word)
        page.keyboard.press("c")
        expect(page.locator("#task-status")).to_have_text(claimed)
        assert_no_serious_violations(page)
    finally:
        context.close()
    db.expire_all()
    assert db.scalars(sa.select(StaffUser.language).where(StaffUser.username == "nurse1")).one() == language

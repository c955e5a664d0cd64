"""In Chromium, axe-core: the staff inbox, a task and a patient's record have no serious or critical
accessibility violations, and the helper does catch them where they exist."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.followup.catalog import do_publish
from backend.models import Role, StaffUser, TaskKind
from backend.services import inbox
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.browser.axe import assert_no_serious_violations, violations
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/staff/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/staff/login" not in url)


def test_the_helper_finds_serious_violations(browser: Any) -> None:
    page = browser.new_page()
    page.set_content('<html lang="en"><body><main><img src="x.png"><button></button></main></body></html>')
    found = {v["id"] for v in violations(page)}
    assert {"image-alt", "button-name"} <= found
    with pytest.raises(AssertionError, match="image-alt"):
        assert_no_serious_violations(page)
    page.close()


def test_inbox_task_patient_home_and_spot_check_pages_pass_axe(
    live_server: str, browser: Any, db: Session
) -> None:
    dept = factories.department(db)
    factories.staff(db, username="boss", role=Role.MANAGER, departments=[dept])
    person = factories.patient(db, name="Alice Wang", dept=dept)
    conv = factories.conversation(db, person, Channel.SMS)
    factories.reply(db, conv, "I feel dizzy")
    factories.outbox_item(db, conv)
    task = factories.task(db, person=person, dept=dept, conv=conv)
    mine = factories.task(db, kind=TaskKind.ABNORMAL_ANSWER, person=person, dept=dept)
    do_publish(db, DEFINITION)
    db.commit()
    inbox.do_claim(db, task=mine, staff_id=db.scalar(sa.select(StaffUser.id)) or 0)
    db.commit()

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    sign_in(page, live_server, "boss")
    pages = {
        "home": "/staff",
        "inbox": "/staff/inbox",
        "task": f"/staff/inbox/{task.id}",
        "patient": f"/staff/patients/{person.id}",
        "patients": "/staff/patients",
        "home layout": "/staff/home/layout",
        "spot checks": "/staff/spot-checks",
    }
    try:
        for name, path in pages.items():
            page.goto(f"{live_server}{path}")
            expect(page.locator("main h1")).to_be_visible()
            try:
                assert_no_serious_violations(page)
            except AssertionError as exc:
                raise AssertionError(f"{name} page: {exc}") from None
    finally:
        context.close()


def _tab_to(page: Any, test: str, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies the JavaScript predicate `test` (on `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!el && ({test}); }}"):
            return
    raise AssertionError(f"never reached by Tab: {test}")


def test_searching_and_opening_a_patient_works_by_keyboard(
    live_server: str, browser: Any, db: Session
) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    factories.patient(db, name="Alice Wang", dept=dept)
    factories.patient(db, name="Bob Li", dept=dept)
    db.commit()
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    try:
        sign_in(page, live_server, "agent1")
        page.goto(f"{live_server}/staff/patients")
        _tab_to(page, "el.id === 'q'")
        page.keyboard.type("Alice")
        page.keyboard.press("Enter")
        expect(page.locator("#patients tbody tr[data-patient]")).to_have_count(1)
        _tab_to(page, "el.tagName === 'A' && el.textContent === 'Alice Wang'")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Alice Wang", level=1)).to_be_visible()
        _tab_to(page, "el.id === 'message-text'")
        page.keyboard.type("Hello from the ward")
        _tab_to(page, "el.tagName === 'BUTTON' && el.closest('form').action.endsWith('/message')")
        page.keyboard.press("Enter")
        expect(page.locator("#record-notice")).to_contain_text("The message was queued.")
        expect(page.locator("#conversations")).to_contain_text("Hello from the ward")
    finally:
        context.close()

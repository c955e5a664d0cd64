"""In Chromium, axe-core: the staff inbox, a task and a patient's record have no serious or critical
accessibility violations, and the helper does catch them where they exist."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Role, TaskKind
from bots.domain import Channel
from tests import factories
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


def test_inbox_task_and_patient_pages_pass_axe(live_server: str, browser: Any, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    person = factories.patient(db, name="Alice Wang", dept=dept)
    conv = factories.conversation(db, person, Channel.SMS)
    factories.reply(db, conv, "I feel dizzy")
    task = factories.task(db, person=person, dept=dept, conv=conv)
    factories.task(db, kind=TaskKind.ABNORMAL_ANSWER, person=person, dept=dept)
    db.commit()

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    sign_in(page, live_server, "agent1")
    pages = {
        "inbox": "/staff/inbox",
        "task": f"/staff/inbox/{task.id}",
        "patient": f"/staff/patients/{person.id}",
    }
    for name, path in pages.items():
        page.goto(f"{live_server}{path}")
        expect(page.locator("main h1")).to_be_visible()
        try:
            assert_no_serious_violations(page)
        except AssertionError as exc:
            raise AssertionError(f"{name} page: {exc}") from None
    context.close()

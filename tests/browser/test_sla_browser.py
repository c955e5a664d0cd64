"""The response-times page in Chromium: a manager types a table out of order, is told why with what she
typed kept, corrects it and saves; the page has no serious axe-core violations in any of its languages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Role, StaffUser, TaskPriority
from backend.services.sla import sla_for
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser


def test_a_manager_corrects_and_saves_a_departments_response_times(
    live_server: str, browser: Any, db: Session
) -> None:
    icu = factories.department(db)
    factories.department(db)
    boss = factories.staff(db, username="boss", role=Role.MANAGER, departments=[icu])
    db.commit()
    icu_id, icu_name = icu.id, icu.name
    page = _sign_in(browser, live_server, "boss")
    page.get_by_role("link", name="Response times").click()
    expect(page.get_by_role("heading", name="Response times")).to_be_visible()
    assert axe.describe(axe.violations(page)) == ""
    emergency = page.get_by_label(f"{icu_name}: Emergency")
    expect(emergency).to_have_attribute("placeholder", "15")  # the hospital's time shows through
    emergency.fill("90")  # longer than urgent's hour: out of order
    page.get_by_label(f"{icu_name}: Urgent").fill("60")
    page.get_by_role("button", name=f"Save: {icu_name}").click()
    expect(page.get_by_role("alert")).to_contain_text("more urgent priority")
    expect(page.get_by_label(f"{icu_name}: Emergency")).to_have_value("90")  # nothing typed is lost
    assert axe.describe(axe.violations(page)) == ""
    page.get_by_label(f"{icu_name}: Emergency").fill("10")
    page.get_by_role("button", name=f"Save: {icu_name}").click()
    expect(page.get_by_role("status")).to_contain_text("Response times saved")
    expect(page.get_by_label(f"{icu_name}: Emergency")).to_have_value("10")
    db.expire_all()
    assert sla_for(db, TaskPriority.EMERGENCY, icu_id) == timedelta(minutes=10)
    assert sla_for(db, TaskPriority.URGENT, icu_id) == timedelta(minutes=60)
    page.get_by_label("Department", exact=True).select_option(str(icu_id))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#sla tbody tr[data-department]")).to_have_count(1)
    for language, heading in (("zh-CN", "响应时限"), ("vi", "Thời hạn phản hồi")):
        user = db.get(StaffUser, boss.id)
        assert user is not None
        user.language = language
        db.commit()
        page.goto(f"{live_server}/staff/safety/sla")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        assert axe.describe(axe.violations(page)) == ""
    page.context.close()

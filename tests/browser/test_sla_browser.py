"""The response-times page in Chromium: a manager types a table out of order, is told why with what she
typed kept, corrects it and saves, per priority and for one kind of task (where each field says which row
applies); the page has no serious axe-core violations in any of its languages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Role, StaffUser, TaskKind, TaskPriority
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


def test_a_manager_sets_complaint_times_and_sees_which_row_applies(
    live_server: str, browser: Any, db: Session
) -> None:
    icu = factories.department(db)
    ward = factories.department(db)
    boss = factories.staff(db, username="boss", role=Role.MANAGER, departments=[icu])
    db.commit()
    icu_id, icu_name, ward_id, ward_name = icu.id, icu.name, ward.id, ward.name
    page = _sign_in(browser, live_server, "boss")
    page.goto(f"{live_server}/staff/safety/sla")
    page.get_by_label("Task kind").select_option("complaint")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table")).to_contain_text("Minutes per priority for Complaints")
    assert axe.describe(axe.violations(page)) == ""
    # the hospital's complaints: high within 48 hours, normal 48, low 72
    page.get_by_label("Hospital: High").fill("2880")
    page.get_by_label("Hospital: Normal").fill("2880")
    page.get_by_label("Hospital: Low").fill("4320")
    page.get_by_role("button", name="Save: Hospital").click()
    expect(page.get_by_role("status")).to_contain_text("Response times saved")
    # the ward's complaint at high now comes from the hospital's complaint row
    ward_high = page.get_by_label(f"{ward_name}: High")
    expect(ward_high).to_have_attribute("placeholder", "2880")
    expect(page.locator(f"#src-{ward_id}-high")).to_have_text("2880 min: hospital, this kind")
    # the ICU answers complaints sooner, but not in an order that makes urgent wait longer than high
    page.get_by_label(f"{icu_name}: High").fill("600")
    page.get_by_label(f"{icu_name}: Urgent").fill("900")
    page.get_by_role("button", name=f"Save: {icu_name}").click()
    expect(page.get_by_role("alert")).to_contain_text("more urgent priority")
    expect(page.get_by_label(f"{icu_name}: Urgent")).to_have_value("900")  # nothing typed is lost
    expect(page.get_by_label("Task kind")).to_have_value("complaint")  # still on complaints
    assert axe.describe(axe.violations(page)) == ""
    page.get_by_label(f"{icu_name}: Urgent").fill("")
    page.get_by_role("button", name=f"Save: {icu_name}").click()
    expect(page.get_by_role("status")).to_contain_text("Response times saved")
    expect(page.locator(f"#src-{icu_id}-high")).to_have_text("600 min: this department, this kind")
    expect(page.locator(f"#src-{icu_id}-urgent")).to_have_text("60 min: built in")
    db.expire_all()
    assert sla_for(db, TaskPriority.HIGH, icu_id, TaskKind.COMPLAINT) == timedelta(minutes=600)
    assert sla_for(db, TaskPriority.HIGH, ward_id, TaskKind.COMPLAINT) == timedelta(hours=48)
    assert sla_for(db, TaskPriority.HIGH, ward_id, TaskKind.CALLBACK) == timedelta(hours=4)
    for language, caption in (("zh-CN", "投诉"), ("vi", "Khiếu nại")):
        user = db.get(StaffUser, boss.id)
        assert user is not None
        user.language = language
        db.commit()
        page.goto(f"{live_server}/staff/safety/sla?kind=complaint")
        expect(page.get_by_role("table")).to_contain_text(caption)
        assert axe.describe(axe.violations(page)) == ""
    page.context.close()

"""The data-rights pages in Chromium: a nurse breaks the glass on a record outside her departments and
asks for a correction; the privacy officer approves it and reviews the break-glass; a Chinese-speaking
manager reads the access report. Each page has no serious axe-core violations."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import BreakGlass, Patient, Role
from tests import factories
from tests.browser.axe import assert_no_serious_violations
from tests.browser.test_admin_browser import _sign_in

pytestmark = pytest.mark.browser


def test_break_glass_a_correction_and_its_approval(live_server: str, browser: Any, db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    boss = factories.staff(db, username="boss", role=Role.MANAGER)
    boss.language = "zh-CN"
    person = factories.patient(db, name="Alise Wang", dept=ortho)
    db.commit()

    nurse = _sign_in(browser, live_server, "nurse1")
    nurse.goto(f"{live_server}/staff/patients/{person.id}")
    expect(nurse.get_by_role("heading", name="Break the glass")).to_be_visible()
    assert_no_serious_violations(nurse)
    nurse.get_by_label("Why you need this record now").fill(
        "Patient collapsed in our ward, checking allergies"
    )
    nurse.get_by_role("button", name="Open the record").click()
    expect(nurse.get_by_role("heading", name="Alise Wang", level=1)).to_be_visible()
    rights = nurse.locator("#rights")
    rights.get_by_label("Correction").check()
    rights.get_by_label("Name").fill("Alice Wang")
    rights.get_by_label("The patient's reason, and how she asked").fill("Spelling; she showed her ID card")
    rights.get_by_role("button", name="Send to the privacy officer").click()
    expect(nurse.locator("#record-notice")).to_contain_text("sent to the privacy officer")
    expect(nurse.locator("#rights-requests")).to_contain_text("Waiting for a decision")
    assert_no_serious_violations(nurse)
    nurse.context.close()

    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    admin.get_by_role("link", name="Data rights").click()
    expect(admin.locator("#rights-list tbody tr")).to_have_count(1)
    assert_no_serious_violations(admin)
    admin.locator("#rights-list tbody a").first.click()
    expect(admin.locator("#request-changes")).to_contain_text("Alice Wang")
    assert_no_serious_violations(admin)
    admin.get_by_role("button", name="Approve and carry out").click()
    expect(admin.locator("#request-state")).to_have_text("Carried out")
    admin.get_by_role("link", name="Data rights").click()
    admin.get_by_role("link", name="Break-glass review").click()
    row = admin.locator("#grants tbody tr").first
    expect(row).to_contain_text("Patient collapsed in our ward")
    assert_no_serious_violations(admin)
    row.get_by_role("button", name="Mark reviewed").click()
    expect(admin.locator("#grants")).to_contain_text("Nothing to review.")
    admin.context.close()

    manager = browser.new_context(locale="zh-CN").new_page()
    manager.goto(f"{live_server}/staff/login")
    manager.locator("#username").fill("boss")
    manager.locator("#password").fill(factories.PASSWORD)
    manager.locator("#password").press("Enter")
    manager.goto(f"{live_server}/staff/patients/{person.id}/access")
    expect(manager.get_by_role("heading", level=1)).to_contain_text("谁查看过此病历")
    expect(manager.locator("#access-rows")).to_contain_text("Nurse1")
    expect(manager.locator("#access-rows")).to_contain_text("紧急访问")  # the break-glass views say so
    assert_no_serious_violations(manager)
    manager.context.close()

    db.expire_all()
    assert db.get_one(Patient, person.id).name == "Alice Wang"
    assert db.query(BreakGlass).one().reviewed_at is not None

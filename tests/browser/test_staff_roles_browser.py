"""In Chromium: an admin gives a nurse a second role (manager) by ticking it on her account's page, the
staff list shows both and finds her by either, the nurse's next page already offers what a manager may
do (her session goes on), and unticking the last admin's own admin role is refused; axe-core finds
nothing serious on the pages."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffUser
from tests import factories
from tests.browser import axe
from tests.browser.test_admin_browser import _sign_in

pytestmark = pytest.mark.browser


def test_an_admin_gives_a_nurse_a_second_role(live_server: str, browser: Any, db: Session) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.staff(db, username="head.wang", role=Role.NURSE)
    db.commit()
    nurse = _sign_in(browser, live_server, "head.wang")
    expect(nurse.locator('a[href="/staff/outreach"]')).to_have_count(0)  # a nurse alone has no batches
    found: dict[str, str] = {}

    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    admin.goto(f"{live_server}/staff/admin/staff")
    admin.get_by_role("link", name="head.wang").click()
    roles = admin.locator("#s-roles")
    expect(roles.get_by_label("Nurse")).to_be_checked()
    expect(roles.get_by_label("Manager")).not_to_be_checked()
    found["form"] = axe.describe(axe.violations(admin))
    roles.get_by_label("Manager").check()
    admin.get_by_label("Reason for a role change").fill("head nurse of ward 5")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#done")).to_have_text("Saved.")
    roles = admin.locator("#s-roles")
    expect(roles.get_by_label("Nurse")).to_be_checked()
    expect(roles.get_by_label("Manager")).to_be_checked()

    # the list shows both roles, and the role filter finds her by either
    for role in ("manager", "nurse"):
        admin.goto(f"{live_server}/staff/admin/staff?role={role}")
        row = admin.locator("#staff-list tbody tr", has_text="head.wang")
        expect(row.locator("td.roles")).to_have_text("Nurse, Manager")
    admin.goto(f"{live_server}/staff/admin/staff?role=doctor")
    expect(admin.locator("#staff-list")).not_to_contain_text("head.wang")
    found["list"] = axe.describe(axe.violations(admin))

    # her open session goes on, and her next page already shows what a manager may do
    nurse.goto(f"{live_server}/staff")
    expect(nurse.locator(".who")).to_contain_text("Nurse, Manager")
    expect(nurse.locator('a[href="/staff/outreach"]').first).to_be_visible()

    # the last admin cannot untick her own admin role
    admin.goto(f"{live_server}/staff/admin/staff/{root.id}")
    roles = admin.locator("#s-roles")
    roles.get_by_label("Administrator").uncheck()
    roles.get_by_label("Nurse").check()
    admin.get_by_label("Reason for a role change").fill("stepping down")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#refused")).to_contain_text("last active administrator")
    found["refused"] = axe.describe(axe.violations(admin))
    nurse.context.close()
    admin.context.close()

    assert {name: text for name, text in found.items() if text} == {}
    db.expire_all()
    assert db.scalars(sa.select(StaffUser).where(StaffUser.username == "head.wang")).one().roles == {
        Role.NURSE,
        Role.MANAGER,
    }
    assert db.get(StaffUser, root.id).roles == {Role.ADMIN}
    update = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.update")).one()
    assert update.detail["roles_before"] == ["nurse"] and update.detail["reason"] == "head nurse of ward 5"

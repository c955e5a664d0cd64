"""In Chromium: an admin creates a staff account, the new person sets a password through the one-time
link and signs in, the admin deactivates the account and the person's open session is gone at once; an
admin edits the organisation (a clashing code refused, names in three languages saved); axe-core finds
nothing serious on any admin page."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Department, Role, StaffSession, StaffUser
from tests import factories
from tests.browser import axe
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
NEW_PASSWORD = "a-long-new-password"


def _sign_in(
    browser: Any, base: str, username: str, password: str = PASSWORD, secret: str | None = None
) -> Any:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if secret:
        page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def test_create_a_user_who_sets_a_password_then_deactivation_ends_her_session(
    live_server: str, browser: Any, db: Session
) -> None:
    cardio = factories.department(db)
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    admin.get_by_role("link", name="Administration").click()
    admin.get_by_role("link", name="Staff accounts").click()
    admin.get_by_role("link", name="Add a staff account").click()
    admin.get_by_label("Username").fill("nurse.li")
    admin.get_by_label("Name", exact=True).fill("Li Na")
    expect(admin.locator("#s-roles").get_by_label("Nurse")).to_be_checked()  # a new account's usual role
    admin.get_by_label(cardio.name).check()
    admin.get_by_label("Language").select_option("en")
    admin.get_by_role("button", name="Create the account").click()
    expect(admin.get_by_role("heading", name="Account created")).to_be_visible()
    link = admin.locator("#link-url").inner_text()

    # the new nurse opens her link in her own browser: the policy refuses her username, then she sets it
    nurse_context = browser.new_context(locale="en-GB")
    nurse = nurse_context.new_page()
    nurse.goto(link)
    nurse.get_by_label("New password").fill("nurse.li-is-me-ok")
    nurse.get_by_label("The same again").fill("nurse.li-is-me-ok")
    nurse.get_by_role("button", name="Set the password").click()
    expect(nurse.locator("#refused")).to_contain_text("must not contain the username")
    nurse.get_by_label("New password").fill(NEW_PASSWORD)
    nurse.get_by_label("The same again").fill(NEW_PASSWORD)
    nurse.get_by_role("button", name="Set the password").click()
    expect(nurse.locator("#done")).to_be_visible()
    nurse.goto(link)  # good once
    expect(nurse.locator("#refused")).to_contain_text("not valid")
    nurse_context.close()
    signed_in = _sign_in(browser, live_server, "nurse.li", NEW_PASSWORD)
    signed_in.goto(f"{live_server}/staff/inbox")
    expect(signed_in).to_have_url(f"{live_server}/staff/inbox")

    admin.goto(f"{live_server}/staff/admin/staff?role=nurse")
    admin.get_by_role("link", name="nurse.li").click()
    admin.get_by_role("button", name="Deactivate (ends the sessions now)").click()
    expect(admin.locator("#done")).to_contain_text("sessions have ended")

    signed_in.goto(f"{live_server}/staff/inbox")
    expect(signed_in).to_have_url(f"{live_server}/staff/login")  # her session is gone at once
    db.expire_all()
    user = db.scalars(sa.select(StaffUser).where(StaffUser.username == "nurse.li")).one()
    assert not user.active
    assert all(
        s.ended_at is not None
        for s in db.scalars(sa.select(StaffSession).where(StaffSession.staff_id == user.id))
    )

    # the last admin cannot deactivate herself
    admin.goto(f"{live_server}/staff/admin/staff/{root.id}")
    admin.get_by_role("button", name="Deactivate (ends the sessions now)").click()
    expect(admin.locator("#refused")).to_contain_text("last active administrator")
    signed_in.context.close()
    admin.context.close()


def test_an_admin_edits_the_organisation_and_a_clashing_code_is_refused(
    live_server: str, browser: Any, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    ortho = factories.department(db, code="ORTH")
    db.commit()
    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    admin.goto(f"{live_server}/staff/admin/org/department")
    form = admin.locator("#org-add")
    form.get_by_label("Hospital code").fill("ORTH")
    form.get_by_label("Name (English)").fill("Cardiology")
    form.get_by_role("button", name="Add").click()
    expect(admin.locator("#refused")).to_contain_text("already used by: ORTH")
    form = admin.locator("#org-add")
    expect(form.get_by_label("Name (English)")).to_have_value("Cardiology")  # nothing typed is lost
    form.get_by_label("Hospital code").fill("CARD")
    form.get_by_label("Name (Chinese)").fill("心内科")
    form.get_by_label("Name (Vietnamese)").fill("Khoa Tim mạch")
    form.get_by_role("button", name="Add").click()
    expect(admin.locator("#done")).to_be_visible()
    admin.get_by_role("link", name="CARD").click()
    admin.get_by_label("Name (English)").fill("Cardiology and vascular")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#done")).to_have_text("Saved.")
    admin.get_by_role("button", name="Deactivate").click()
    expect(admin.locator("#done")).to_contain_text("Deactivated")
    db.expire_all()
    cardio = db.scalars(sa.select(Department).where(Department.code == "CARD")).one()
    assert cardio.names == {"zh-CN": "心内科", "vi": "Khoa Tim mạch", "en": "Cardiology and vascular"}
    assert not cardio.active
    admin.goto(f"{live_server}/staff/admin/org/ward")
    form = admin.locator("#org-add")
    form.get_by_label("Hospital code").fill("W3")
    form.get_by_label("Name (English)").fill("Ward 3")
    # a deactivated department is not offered for new wards
    expect(form.get_by_label("Department").locator(f'option[value="{cardio.id}"]')).to_have_count(0)
    form.get_by_label("Department").select_option(str(ortho.id))
    form.get_by_role("button", name="Add").click()
    expect(admin.locator("#org-list")).to_contain_text("Ward 3")
    admin.context.close()


def test_every_admin_page_has_no_serious_accessibility_violations(
    live_server: str, browser: Any, db: Session
) -> None:
    dept = factories.department(db)
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    nurse = factories.staff(db, username="nurse1", departments=[dept])
    db.commit()
    admin = _sign_in(browser, live_server, "root", secret=root.totp_secret)
    found = {}
    for url in (
        "/staff/admin",
        "/staff/admin/staff",
        "/staff/admin/staff/new",
        f"/staff/admin/staff/{nurse.id}",
        "/staff/admin/org/department",
        f"/staff/admin/org/department/{dept.id}",
        "/staff/admin/org/ward",
        "/staff/admin/org/clinician",
        "/staff/admin/audit",
        "/staff/admin/health",
        "/staff/admin/settings",
    ):
        admin.goto(f"{live_server}{url}")
        found[url] = axe.describe(axe.violations(admin))
    admin.get_by_text("Administration").first.click()
    admin.goto(f"{live_server}/staff/admin/staff/{nurse.id}")
    admin.get_by_role("button", name="Make a one-time password link").click()
    found["credentials"] = axe.describe(axe.violations(admin))
    link = admin.locator("#link-url").inner_text()
    admin.goto(link)
    found["password"] = axe.describe(axe.violations(admin))
    admin.context.close()
    assert {url: text for url, text in found.items() if text} == {}

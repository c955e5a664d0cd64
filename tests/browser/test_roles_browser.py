"""In Chromium: an admin adds a role, ticks its permissions and gives it to a nurse with a reason, and the
nurse's navigation follows; staff sign in with the hospital account through a local OpenID Connect
provider (and a forged answer is refused in words); axe-core finds nothing serious on these pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffUser
from tests import factories
from tests.backend.security import fake_oidc
from tests.browser import axe
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(browser: Any, base: str, username: str, secret: str | None = None, locale: str = "en-GB") -> Any:
    page = browser.new_context(locale=locale).new_page()
    page.goto(f"{base}/staff/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    if secret:
        page.locator("#totp_code").fill(pyotp.TOTP(secret).now())
    page.locator("#password").press("Enter")
    page.wait_for_url(f"{base}/staff")
    return page


def test_an_admin_adds_a_role_and_gives_it_and_the_pages_are_accessible(
    live_server: str, browser: Any, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.staff(db, username="nurse1")
    db.commit()
    admin = _sign_in(browser, live_server, "root", root.totp_secret)
    found = {}
    admin.get_by_role("link", name="Administration").click()
    admin.get_by_role("link", name="Roles and permissions").click()
    found["list"] = axe.describe(axe.violations(admin))
    admin.get_by_role("link", name="Add a role").click()
    found["new"] = axe.describe(axe.violations(admin))
    admin.get_by_label("Code", exact=True).fill("ward_sister")
    admin.get_by_label("Name", exact=True).fill("Ward sister")
    admin.get_by_label("Run spot checks").check()
    admin.get_by_role("button", name="Add the role").click()
    expect(admin.locator("#done")).to_have_text("Saved.")
    expect(admin.get_by_label("Run spot checks")).to_be_checked()
    expect(admin.get_by_label("Set response times")).not_to_be_checked()
    found["role"] = axe.describe(axe.violations(admin))
    admin.get_by_role("link", name="Roles and permissions").click()
    expect(admin.locator('tr[data-role="ward_sister"]')).to_contain_text("Run spot checks")
    form = admin.locator("#assign")
    form.get_by_label("Username", exact=True).fill("nurse1")
    form.get_by_label("Role", exact=True).select_option("ward_sister")
    form.get_by_role("button", name="Give the role").click()  # no reason yet: the browser asks for one
    form.get_by_label("Reason", exact=True).fill("runs ward 5")
    form.get_by_role("button", name="Give the role").click()
    expect(admin.locator("#done")).to_contain_text("The role is given")
    found["given"] = axe.describe(axe.violations(admin))
    admin.goto(f"{live_server}/staff/admin/roles?permission=nonsense")
    found["bad filter"] = axe.describe(axe.violations(admin))
    admin.context.close()
    nurse = _sign_in(browser, live_server, "nurse1")
    nurse.get_by_role("navigation", name="Main").get_by_role("link", name="Spot checks").click()
    expect(nurse.get_by_role("heading", level=1)).to_be_visible()
    assert nurse.url.endswith("/staff/spot-checks")
    nurse.context.close()
    assert {name: text for name, text in found.items() if text} == {}
    db.expire_all()
    sister = db.scalars(sa.select(StaffUser).where(StaffUser.username == "nurse1")).one()
    assert sister.roles == {"nurse", "ward_sister"}
    given = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.role_assign")).one()
    assert given.detail["reason"] == "runs ward 5"


def test_the_roles_page_speaks_chinese_and_vietnamese(live_server: str, browser: Any, db: Session) -> None:
    found = {}
    for language, title in (("zh-CN", "角色与权限"), ("vi", "Vai trò và quyền")):
        root = factories.staff(db, username=f"root-{language.lower()}", role=Role.ADMIN, totp=True)
        root.language = language
        db.commit()
        page = _sign_in(browser, live_server, root.username, root.totp_secret)
        page.goto(f"{live_server}/staff/admin/roles")
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        found[language] = axe.describe(axe.violations(page))
        page.context.close()
    assert {k: v for k, v in found.items() if v} == {}


@pytest.fixture
def provider(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_oidc.FakeProvider]:
    """A local provider, configured in the environment the live server starts with."""
    found, server = fake_oidc.start()
    monkeypatch.setenv("CARELOOP_OIDC_ISSUER", found.issuer)
    monkeypatch.setenv("CARELOOP_OIDC_CLIENT_ID", fake_oidc.CLIENT_ID)
    monkeypatch.setenv("CARELOOP_OIDC_CLIENT_SECRET", fake_oidc.CLIENT_SECRET)
    monkeypatch.setenv("CARELOOP_OIDC_GROUP_ROLES", json.dumps({"/ward-nurses": "nurse"}))
    monkeypatch.setenv("CARELOOP_PASSWORD_SIGN_IN", "break_glass_only")
    monkeypatch.setenv("CARELOOP_BREAK_GLASS_USERNAMES", '["root"]')
    yield found
    server.shutdown()
    server.server_close()


def test_sign_in_with_the_hospital_account_and_a_forged_answer_refused(
    provider: fake_oidc.FakeProvider, live_server: str, browser: Any, db: Session
) -> None:
    factories.staff(db, username="nurse.li")
    db.commit()
    provider.claims = {"preferred_username": "nurse.li", "groups": ["/ward-nurses"]}
    page = browser.new_context(locale="en-GB").new_page()
    page.goto(f"{live_server}/staff/login")
    found = {"login": axe.describe(axe.violations(page))}
    expect(page.locator("#break-glass")).not_to_have_attribute("open", "")  # the password form is folded away
    page.get_by_role("link", name="Sign in with the hospital account").click()
    page.wait_for_url(f"{live_server}/staff")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    provider.tamper = "forged"
    page.get_by_role("link", name="Sign in with the hospital account").click()
    expect(page.locator("#sso-refused")).to_contain_text("not signed by the hospital")
    found["refused"] = axe.describe(axe.violations(page))
    page.context.close()
    assert {k: v for k, v in found.items() if v} == {}
    db.expire_all()
    methods = [
        e.detail for e in db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sign_in"))
    ]
    refusals = [
        e.detail["reason"]
        for e in db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sso_refused"))
    ]
    assert methods == [{"method": "oidc"}] and refusals == ["bad_signature"]

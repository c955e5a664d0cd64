"""In Chromium: an administrator signs in through the hospital's provider (a local OpenID Connect provider
over real sockets) that did not ask her for a second factor; CareLoop asks for her authenticator code on a
page that passes axe-core and reads in her browser's language, refuses a wrong code, and signs her in on
the right one."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Role, StaffSession
from tests import factories
from tests.backend.security import fake_oidc
from tests.backend.security.test_sso import provider
from tests.browser.axe import assert_no_serious_violations
from tests.browser.visible_words import leaks

__all__ = ["provider"]  # the fixture: it must set the provider's settings before the server starts

pytestmark = pytest.mark.browser

HEADINGS = {"en-GB": "One more step", "zh-CN": "还差一步", "vi-VN": "Còn một bước nữa"}
LANG = {"en-GB": "en", "zh-CN": "zh-CN", "vi-VN": "vi"}


def test_an_admin_types_her_code_after_the_provider_in_three_languages(
    provider: fake_oidc.FakeProvider, live_server: str, browser: Any, db: Session
) -> None:
    # one administrator per language: a code is good once, and each sign-in here spends one
    admins = {
        locale: factories.staff(db, username=f"root{i}", role=Role.ADMIN, totp=True)
        for i, locale in enumerate(HEADINGS)
    }
    db.commit()
    for locale, heading in HEADINGS.items():
        admin = admins[locale]
        assert admin.totp_secret
        provider.claims = {"preferred_username": admin.username, "groups": ["/it-admins"], "amr": ["pwd"]}
        context = browser.new_context(locale=locale)
        page = context.new_page()
        try:
            page.goto(f"{live_server}/staff/login")
            page.locator("#sso").click()
            page.wait_for_url(f"{live_server}/staff/sso/code")
            expect(page.locator("main h1")).to_have_text(heading)
            assert_no_serious_violations(page)
            assert leaks(page.locator("main").inner_text(), LANG[locale], []) == []
            if locale == "en-GB":
                page.locator("#totp_code").fill("000000")
                page.locator("#sso-code button[type=submit]").click()
                expect(page.locator("#sso-code .error")).to_be_visible()
                assert_no_serious_violations(page)
            page.locator("#totp_code").fill(pyotp.TOTP(admin.totp_secret).now())
            page.locator("#sso-code button[type=submit]").click()
            page.wait_for_url(f"{live_server}/staff")
            expect(page.locator(".who")).to_contain_text(admin.display_name)
        finally:
            context.close()
    db.expire_all()
    for admin in admins.values():
        assert db.scalar(sa.select(sa.func.count()).where(StaffSession.staff_id == admin.id)) == 1

"""In Chromium: the integration officer finds a result the hospital's engine refused on the delivery log,
filters it, exports the list, tries it again; the page reads in English, Chinese and Vietnamese with no
untranslated word, and axe-core finds nothing serious."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.integration.results import deliver_due
from backend.models import DeliveryStatus, ResultDelivery, Role
from tests import factories
from tests.backend.integration.results_peers import FakeMllpReceiver
from tests.backend.integration.test_results_writeback import T0, _complete, _configure
from tests.browser import axe
from tests.browser.visible_words import leaks
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
HEADINGS = {"en": "Result deliveries", "zh-CN": "随访结果回传", "vi": "Gửi kết quả về bệnh viện"}
LANGUAGES = {"en": "English", "zh-CN": "中文", "vi": "Tiếng Việt"}


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session) -> Iterator[int]:
    """One completed response whose ORU^R01 the hospital's listener answered AR."""
    with FakeMllpReceiver() as his:
        _configure(monkeypatch, mllp=his.port)
        _complete(db)
        his.plan("AR")
        assert deliver_due(now=T0).failed == 1
    factories.staff(db, username="feed", role=Role.INTEGRATION)
    db.commit()
    yield db.scalars(sa.select(ResultDelivery.id)).one()


def test_the_delivery_log_is_filtered_exported_retried_and_reads_in_three_languages(
    refused: int, live_server: str, browser: Any, db: Session
) -> None:
    page = browser.new_context(locale="en-GB", accept_downloads=True).new_page()
    found: dict[str, str] = {}
    page.goto(f"{live_server}/staff/login")
    page.locator("#username").fill("feed")
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    page.wait_for_url(lambda url: "/staff/login" not in url)
    page.get_by_role("link", name="HL7 messages").first.click()
    page.get_by_role("link", name="Result deliveries").click()
    expect(page.locator("main h1")).to_have_text("Result deliveries")
    expect(page.locator(f'tr[data-delivery="{refused}"]')).to_contain_text("Patient not found")
    found["list"] = axe.describe(axe.violations(page))
    page.get_by_label("Status", exact=True).select_option(label="Delivered")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#deliveries")).to_contain_text("No deliveries.")
    page.get_by_label("Status", exact=True).select_option(label="Failed")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f'tr[data-delivery="{refused}"]')).to_be_visible()
    with page.expect_download() as download:
        page.locator("#export").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(exported) == 2 and ",failed," in exported[1]
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#done")).to_have_text("The delivery will be tried again within a minute.")
    found["retried"] = axe.describe(axe.violations(page))
    leaked: list[str] = []
    for lang, name in LANGUAGES.items():
        page.locator("#staff-language").select_option(label=name)
        page.locator("form.staff-lang button").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.goto(f"{live_server}/staff/integration/results")
        expect(page.locator("main h1")).to_have_text(HEADINGS[lang])
        page.evaluate("document.querySelectorAll('[translate=no]').forEach(e => e.remove())")
        leaked += [
            f"{lang}: {leak}" for leak in leaks(page.locator("body").inner_text(), lang, ["feed", "Feed"])
        ]
    page.context.close()
    assert {name: text for name, text in found.items() if text} == {}
    assert not leaked, "\n".join(leaked)
    db.expire_all()
    assert db.get_one(ResultDelivery, refused).status is DeliveryStatus.PENDING

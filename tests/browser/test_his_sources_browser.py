"""The HIS source pages in Chromium: the integration officer adds a source reading a second database's
view, pulls it (a dry run, shown on the import's page), confirms, and finds the source's outcome and
watermark in the list, filtered and exported; the address is never shown back; no serious axe-core
violations."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Patient, Role
from tests import factories
from tests.backend.imports import his_db
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser


def test_add_a_source_pull_it_confirm_and_read_its_outcome(
    live_server: str, browser: Any, db: Session, database_url: str, tmp_path: Path
) -> None:
    factories.staff(db, username="feed1", role=Role.INTEGRATION)
    db.commit()
    kind = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with his_db.his_database(kind, tmp_path) as his:
        his_db.write(his, [
            ("P0001", "王秀英", "女", date(1956, 3, 12), "+86 138 0013 8000", datetime(2026, 12, 1, 9, 0)),
            ("P0002", "李建国", "男", date(1948, 11, 2), "12345", datetime(2026, 12, 1, 10, 0)),
        ])  # fmt: skip
        page = _sign_in(browser, live_server, "feed1")
        page.goto(f"{live_server}/staff/his-sources")
        assert axe.describe(axe.violations(page)) == ""
        page.get_by_role("link", name="Add a HIS source").click()
        page.get_by_label("Name (also the import source)").fill("HIS-VIEW")
        # PostgreSQL here trusts local connections, so a password is accepted and can be looked for
        address = (
            his if kind == "sqlite" else sa.make_url(his).set(password="s3cret-his").render_as_string(False)
        )
        page.get_by_label("Database address").fill(address)
        page.get_by_label("Query (a SELECT with :since)").fill(his_db.QUERY)
        page.get_by_label("Updated-at column (the watermark)").fill("更新时间")
        page.locator("#column-name").fill("病人名称")
        assert axe.describe(axe.violations(page)) == ""
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#his-saved")).to_be_visible()
        # the address is kept encrypted and never shown again (the page names it with its password hidden)
        assert page.get_by_label("Database address").input_value() == ""
        assert "s3cret-his" not in page.content()

        page.get_by_role("button", name="Pull now (dry run)").click()
        page.wait_for_selector("#import-problems", timeout=30_000)  # the import's own dry-run page
        assert "invalid phone number" in page.inner_text("#import-problems")
        assert "to create" in page.inner_text("#import-counts")
        assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
        page.get_by_role("button", name="Confirm the import").click()
        page.wait_for_selector("#import-counts >> text=created", timeout=30_000)

        page.goto(f"{live_server}/staff/his-sources?outcome=held")
        row = page.locator("#his-sources tbody tr")
        expect(row).to_have_count(1)
        assert "Applied; rows with problems held" in row.inner_text()
        assert "2026-12-01 10:00:00" in row.inner_text()  # the held row's time: it is read again next time
        assert axe.describe(axe.violations(page)) == ""
        page.goto(f"{live_server}/staff/his-sources?outcome=failed")
        expect(page.locator("#his-sources tbody tr")).to_have_text("No HIS sources found.")
        with page.expect_download() as download:
            page.goto(f"{live_server}/staff/his-sources")
            page.locator("#his-export").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert "HIS-VIEW" in exported and "held" in exported
        db.expire_all()
        assert db.scalars(sa.select(Patient.name)).all() == ["王秀英"]
        page.context.close()

"""The imports page in Chromium: the integration officer uploads an Excel patient file, watches the dry
run's bar, reads its problems, confirms, and downloads the reconciliation; no serious axe-core violations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Patient, Role, StaffUser
from tests import factories
from tests.backend.imports.files import PATIENT_HEADERS_VI, xlsx
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser


def test_upload_dry_run_confirm_and_download(
    live_server: str, browser: Any, db: Session, tmp_path: Path
) -> None:
    factories.staff(db, username="feed1", role=Role.INTEGRATION)
    db.commit()
    rows: list[list[object]] = [
        ["VN001", "Nguyễn Thị Lan", "Nữ", datetime(1962, 3, 12), "+84 912 345 678", "Tiếng Việt"],
        ["VN002", "Trần Văn Hùng", "Nam", "05/08/1970", "+84 903 123 456", "Tiếng Việt"],
        ["VN003", "Lê Thị Hoa", "Nữ", "1975-02-30", "12345", "vi"],
    ]
    path = xlsx(tmp_path / "benh-nhan.xlsx", PATIENT_HEADERS_VI, rows)
    page = _sign_in(browser, live_server, "feed1")
    page.goto(f"{live_server}/staff/imports")
    assert axe.describe(axe.violations(page)) == ""
    page.get_by_label("File (CSV or .xlsx").set_input_files(str(path))
    page.get_by_label("The file holds").select_option("patients")
    page.get_by_label("Source system").fill("HIS-VN")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#import-problems", timeout=30_000)  # the bar's page reloads once it ends
    assert page.locator("progress").get_attribute("value") == "100"
    problems = page.inner_text("#import-problems")
    assert "not a date" in problems and "invalid phone number" in problems and "Ngày sinh" in problems
    assert "to create" in page.inner_text("#import-counts")
    assert axe.describe(axe.violations(page)) == ""
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
    page.get_by_role("button", name="Confirm the import").click()
    page.wait_for_selector("#reconciliation", timeout=30_000)
    assert "created" in page.inner_text("#import-counts")
    assert axe.describe(axe.violations(page)) == ""
    with page.expect_download() as download:
        page.locator("#reconciliation").click()
    assert download.value.suggested_filename.startswith("reconciliation-")
    db.expire_all()
    assert sorted(db.scalars(sa.select(Patient.name))) == ["Nguyễn Thị Lan", "Trần Văn Hùng"]
    page.context.close()


def test_an_admin_imports_staff_accounts_from_excel_and_sees_who_needs_a_link(
    live_server: str, browser: Any, db: Session, tmp_path: Path
) -> None:
    from tests.browser.test_admin_browser import _sign_in as sign_in_admin

    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.department(db, code="0301")
    factories.staff(db, username="feed1", role=Role.INTEGRATION)
    db.commit()
    headers = ["Tên đăng nhập", "Họ tên", "Vai trò", "Mã khoa", "Số điện thoại", "Hoạt động"]
    rows = [
        ["lan.nguyen", "Nguyễn Thị Lan", "Điều dưỡng", "0301", "+84 912 345 678", "Có"],
        ["hung.tran", "Trần Văn Hùng", "doctor", "0301", "", ""],
        ["minh", "Lê Minh", "Giám đốc", "0999", "", ""],  # no such role, no such department
    ]
    path = xlsx(tmp_path / "nhan-vien.xlsx", headers, rows)

    # the integration officer imports files, but not staff accounts
    feed = _sign_in(browser, live_server, "feed1")
    feed.goto(f"{live_server}/staff/imports")
    feed.get_by_label("File (CSV or .xlsx").set_input_files(str(path))
    feed.get_by_label("The file holds").select_option("staff")
    feed.get_by_label("Source system").fill("HR")
    feed.get_by_role("button", name="Upload").click()
    assert "Only those who manage staff accounts may import them." in feed.inner_text("main")
    feed.context.close()

    page = sign_in_admin(browser, live_server, "root", secret=root.totp_secret)
    page.goto(f"{live_server}/staff/imports")
    page.get_by_label("File (CSV or .xlsx").set_input_files(str(path))
    page.get_by_label("The file holds").select_option("staff")
    page.get_by_label("Source system").fill("HR")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#import-problems", timeout=30_000)
    problems = page.inner_text("#import-problems")
    assert "unknown role" in problems and "unknown department" in problems
    assert "to create" in page.inner_text("#import-counts")
    assert axe.describe(axe.violations(page)) == ""
    page.get_by_role("button", name="Confirm the import").click()
    page.wait_for_selector("#needs-link", timeout=30_000)
    listed = page.inner_text("#needs-link").split("\n")
    assert listed == ["hung.tran · Trần Văn Hùng", "lan.nguyen · Nguyễn Thị Lan"]
    assert axe.describe(axe.violations(page)) == ""
    db.expire_all()
    lan = db.scalars(sa.select(StaffUser).where(StaffUser.username == "lan.nguyen")).one()
    assert (set(lan.roles), lan.phone, [d.code for d in lan.departments]) == (
        {Role.NURSE},
        "+84912345678",
        ["0301"],
    )
    page.get_by_role("link", name="lan.nguyen").click()  # her page, where the admin issues the link
    expect(page.get_by_role("button", name="Make a one-time password link")).to_be_visible()
    page.context.close()

"""In Chromium: a complaint registered on the phone by one department crosses to a second one, both
add handling records (one with an evidence file), and it is closed with a printable report; a patient
sends praise from the mobile feedback page in their language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import CaseAttachment, CaseProgress, FeedbackCase, HandlingRecord, Task, TaskStatus
from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _sign_in(browser: Any, base: str, username: str) -> Any:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard signs in
    expect(page.get_by_role("heading", name="Home")).to_be_visible()  # sign-in lands on the home page
    return page


def test_a_complaint_crosses_two_departments_and_is_closed_with_a_report(
    live_server: str, browser: Any, db: Session, tmp_path: Path
) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    factories.staff(db, username="nurse2", departments=[ortho])
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    db.commit()

    lead = _sign_in(browser, live_server, "nurse1")
    lead.get_by_role("link", name="Feedback cases").click()
    lead.get_by_role("link", name="Register a case").click()
    lead.get_by_label("Complaint").check()
    lead.get_by_label("Category").select_option("attitude")
    lead.get_by_label("Patient's MRN (empty if unknown)").fill(alice.mrn)
    lead.get_by_label("Department concerned", exact=True).select_option(str(cardio.id))
    lead.get_by_label("What the patient said").fill("The night nurse was rude.")
    lead.get_by_role("button", name="Register").click()
    expect(lead.locator("#case-text")).to_have_text("The night nurse was rude.")
    expect(lead.locator("#case-patient")).to_contain_text("Alice Wang")
    lead.get_by_role("button", name="Claim").click()
    expect(lead.locator("#case-assignee")).to_have_text("Nurse1")
    lead.get_by_label("Add a collaborating department").select_option(str(ortho.id))
    lead.get_by_role("button", name="Add department").click()
    expect(lead.locator("#departments")).to_contain_text("collaborating")
    lead.get_by_label("Kind of record").select_option("facts")
    lead.get_by_label("Record", exact=True).fill("Night shift confirmed the incident.")
    lead.get_by_role("button", name="Add record").click()
    expect(lead.locator("#records")).to_contain_text("Night shift confirmed the incident.")

    helper = _sign_in(browser, live_server, "nurse2")
    helper.get_by_role("link", name="Feedback cases").click()
    helper.locator("#cases a").first.click()
    evidence = tmp_path / "roster.png"
    evidence.write_bytes(PNG)
    helper.get_by_label("Kind of record").select_option("solution")
    helper.get_by_label("Record", exact=True).fill("Moved the patient to another ward.")
    helper.get_by_label("Evidence file (optional, up to 10 MB)").set_input_files(str(evidence))
    helper.get_by_role("button", name="Add record").click()
    expect(helper.locator("#records")).to_contain_text("Moved the patient to another ward.")
    expect(helper.locator("#records")).to_contain_text("roster.png")
    expect(helper.get_by_role("button", name="Close the case")).to_have_count(0)  # the lead closes
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ" + b"\x00" * 62)
    helper.get_by_label("Record", exact=True).fill("Another one.")
    helper.get_by_label("Evidence file (optional, up to 10 MB)").set_input_files(str(bad))
    helper.get_by_role("button", name="Add record").click()
    expect(helper.locator("#action-error")).to_contain_text("This type of file cannot be attached")
    expect(helper.get_by_label("Record", exact=True)).to_have_value("Another one.")

    lead.reload()
    expect(lead.locator("#records")).to_contain_text("Moved the patient to another ward.")
    lead.get_by_label("Summary of the handling").fill("Apologised; the nurse was retrained.")
    lead.get_by_role("button", name="Close the case").click()
    expect(lead.locator("#case-progress")).to_have_text("Closed")
    lead.get_by_role("link", name="Handling report (print)").click()
    expect(lead.get_by_role("heading", name="Patient feedback handling report")).to_be_visible()
    expect(lead.locator("#report-departments")).to_contain_text(cardio.name)
    expect(lead.locator("#report-departments")).to_contain_text(ortho.name)
    expect(lead.locator("#report-records")).to_contain_text("Night shift confirmed the incident.")
    expect(lead.locator("#report-records")).to_contain_text("Moved the patient to another ward.")
    expect(lead.locator("#report-summary")).to_have_text("Apologised; the nurse was retrained.")
    lead.emulate_media(media="print")
    expect(lead.locator(".no-print")).to_be_hidden()  # the print view drops the page's links

    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert case.progress is CaseProgress.CLOSED
    assert db.get_one(Task, case.task_id).status is TaskStatus.CLOSED
    assert db.scalar(sa.select(sa.func.count()).select_from(HandlingRecord)) == 2
    assert [a.filename for a in db.scalars(sa.select(CaseAttachment))] == ["roster.png"]
    lead.context.close()
    helper.context.close()


def test_a_patient_sends_praise_from_the_mobile_page(live_server: str, browser: Any, db: Session) -> None:
    dept = factories.department(db)
    person = factories.patient(db, language="zh-CN", name="王秀英", dept=dept)
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, person.id)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    page = phone.new_page()
    page.goto(f"{live_server}/f/{token}")
    expect(page.get_by_role("heading", name="投诉、表扬与建议")).to_be_visible()
    page.get_by_label("表扬").check()
    page.get_by_label("反馈类别").select_option("nursing")
    page.get_by_label("反馈内容").fill("护士非常耐心，谢谢！")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#feedback-thanks")).to_contain_text("我们已收到您的反馈")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()
    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert (case.kind.value, case.category, case.patient_id, case.text) == (
        "praise",
        "nursing",
        person.id,
        "护士非常耐心，谢谢！",
    )

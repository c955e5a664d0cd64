"""In Chromium: a health-education article's mobile page and the patient's rating of a closed case on the
feedback page have no serious or critical accessibility violations, and the rating works on a phone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import FeedbackCase, Satisfaction
from backend.services import cases
from tests import factories
from tests.browser.axe import assert_no_serious_violations

pytestmark = pytest.mark.browser


def test_the_article_page_and_rating_a_closed_case_pass_axe_and_the_rating_is_kept(
    live_server: str, browser: Any, db: Session
) -> None:
    dept = factories.department(db)
    agent = factories.staff(db, username="agent1")
    person = factories.patient(db, name="Alice Wang", dept=dept, language="vi")
    case = cases.do_register_case(
        db,
        kind="complaint",
        text="Phòng quá ồn vào ban đêm.",
        patient_id=person.id,
        anonymous=False,
        department_id=dept.id,
        channel=None,
        conversation_id=None,
        actor="bot",
    )
    cases.do_close_case(db, case=case, staff_id=agent.id, summary="Đã nhắc nhở khoa.")
    db.commit()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN", is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(f"{live_server}/e/cardiology_warning_signs/vi")
        expect(page.locator("main h1")).to_have_text("Dấu hiệu cần đi cấp cứu ngay")
        assert_no_serious_violations(page)
        page.goto(f"{live_server}/f/{make_token(get_settings(), LinkKind.FEEDBACK, person.id)}")
        expect(page.locator("#feedback-rate")).to_be_visible()
        assert_no_serious_violations(page)
        page.get_by_role("button", name="Hài lòng", exact=True).click()
        expect(page.locator("#feedback-rated")).to_be_visible()
        expect(page.locator("#feedback-rate")).to_have_count(0)
    finally:
        phone.close()
    db.expire_all()
    assert db.get_one(FeedbackCase, case.id).satisfaction is Satisfaction.SATISFIED

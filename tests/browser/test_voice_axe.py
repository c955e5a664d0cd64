"""In Chromium, axe-core: the voice monitoring page and a patient's record with calls have no serious
or critical accessibility violations."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import FollowUpPlan, Role
from backend.models.base import utcnow
from tests import factories
from tests.backend.voice.test_voice_pages import _call
from tests.browser.axe import assert_no_serious_violations
from tests.browser.test_accessibility import sign_in
from voice_ai.call_events import CallState, Outcome

pytestmark = pytest.mark.browser


def test_voice_monitoring_and_the_calls_section_pass_axe(live_server: str, browser: Any, db: Session) -> None:
    publish_all(db, get_settings().content_dir)
    now = utcnow()
    dept = factories.department(db)
    factories.staff(db, username="boss", role=Role.MANAGER, departments=[dept])
    person = factories.patient(db, name="Alice Wang", dept=dept)
    plan = FollowUpPlan(name="Discharge calls", questionnaire_id="nps", channels=["voice"])
    db.add(plan)
    db.flush()
    _call(
        db,
        person,
        dept,
        now,
        plan=plan,
        outcome=Outcome.COMPLETED,
        seconds=42,
        answered_by="human",
        lines=[("speech", 0.9), ("keypad", None)],
        recording_url="https://api.twilio.com/x/RE1",
    )
    _call(db, person, dept, now, plan=plan, state=CallState.NO_ANSWER)
    db.commit()
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    sign_in(page, live_server, "boss")
    try:
        for name, path in {"voice": "/staff/voice", "patient": f"/staff/patients/{person.id}"}.items():
            page.goto(f"{live_server}{path}")
            expect(page.locator("main h1")).to_be_visible()
            try:
                assert_no_serious_violations(page)
            except AssertionError as exc:
                raise AssertionError(f"{name} page: {exc}") from None
        expect(page.locator("article.call")).to_have_count(2)
    finally:
        context.close()

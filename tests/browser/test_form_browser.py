"""In Chromium: a patient fills in a follow-up form on a phone, with branching, a correction and thanks."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import do_publish
from backend.followup.responses import do_start_response
from backend.messaging.links import LinkKind, make_token
from backend.models import QuestionnaireResponse, ResponseStatus, Task
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION

pytestmark = pytest.mark.browser


def test_patient_fills_in_the_form_with_branching(live_server: str, browser: Any, db: Session) -> None:
    version = do_publish(db, DEFINITION)
    patient = factories.patient(db, language="vi", dept=factories.department(db))
    response = do_start_response(
        db, version=version, patient_id=patient.id, channel=Channel.WEBCHAT, language="vi"
    )
    db.commit()
    token = make_token(get_settings(), LinkKind.FORM, response.id)

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live_server}/q/{token}")
    expect(page.get_by_role("heading", name="Recovery check (vi)")).to_be_visible()
    temperature = page.locator('[data-item="temperature"]')
    expect(temperature).to_be_hidden()
    page.get_by_role("radio", name="8").check()
    page.get_by_role("radio", name="Yes (vi)").check()
    expect(temperature).to_be_visible()  # branching in the browser
    page.get_by_label("Temperature? (vi)").fill("45")
    page.get_by_role("button", name="Gửi").click()
    expect(page.locator(".error")).to_be_visible()  # 45 °C is out of range; the server says why
    page.get_by_label("Temperature? (vi)").fill("39,2")
    page.get_by_role("button", name="Gửi").click()
    expect(page.locator("main")).to_contain_text("Cảm ơn bạn!")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
    db.expire_all()
    stored = db.scalars(sa.select(QuestionnaireResponse)).one()
    assert stored.status is ResponseStatus.COMPLETED
    assert stored.answers == {"pain": 8, "fever": "yes", "temperature": "39.2"}
    # pain 8 and 39.2 °C are two findings, raised as one task at the more severe one's priority
    [task] = db.scalars(sa.select(Task)).all()
    assert task.title == "recovery:very_hot" and task.priority.value == "urgent"

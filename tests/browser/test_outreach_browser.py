"""An outreach batch in Chromium, as two managers work it: one writes it and previews it, the other previews
and approves the same counts, the first sends it and watches the bar, and the report shows what the local
Twilio received; every page without serious axe-core violations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Anchor, FollowUpPlan, Role
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in
from tests.channels.fake_twilio import FakeTwilio

pytestmark = pytest.mark.browser


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The local Twilio, named in the environment the server process starts with; no quiet time; a
    batch of more than one patient needs a second manager's approval."""
    with FakeTwilio() as fake:
        for name, value in {
            "CARELOOP_TWILIO_ACCOUNT_SID": fake.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": fake.auth_token,
            "CARELOOP_TWILIO_API_BASE": fake.base_url,
            "CARELOOP_TWILIO_SMS_FROM": "+15005550006",
            "CARELOOP_QUIET_HOURS_START": "0",
            "CARELOOP_QUIET_HOURS_END": "0",
            "CARELOOP_OUTREACH_APPROVAL_THRESHOLD": "1",
        }.items():
            monkeypatch.setenv(name, value)
        yield fake


def _check_axe(page: Any) -> None:
    assert axe.describe(axe.violations(page)) == ""


def test_preview_approve_send_report(
    twilio_env: FakeTwilio, live_server: str, browser: Any, db: Session
) -> None:
    cardio = factories.department(db)
    cardio.name = "Cardiology"
    people = [factories.patient(db, dept=cardio, language=lang) for lang in ("zh-CN", "en", "vi")]
    do_revoke_consent(
        db, patient_id=people[2].id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t"
    )
    plan = FollowUpPlan(
        name="Cardiology day 3",
        questionnaire_id="post_discharge",
        anchor=Anchor.DISCHARGE,
        department_ids=[cardio.id],
        offsets_days=[3, 30],
        channels=["sms"],
        send_hour=10,
    )
    db.add(plan)
    factories.staff(db, username="manager1", role=Role.MANAGER)
    factories.staff(db, username="manager2", role=Role.MANAGER)
    db.commit()

    writer = _sign_in(browser, live_server, "manager1")
    writer.get_by_role("link", name="Outreach").click()
    expect(writer.get_by_role("heading", name="Outreach batches")).to_be_visible()
    _check_axe(writer)
    writer.get_by_role("link", name="Cardiology day 3").click()
    expect(writer.locator('[data-days="30"]')).to_have_text("3")
    _check_axe(writer)
    writer.go_back()
    writer.get_by_role("link", name="New batch").click()
    _check_axe(writer)
    writer.get_by_label("Name", exact=True).fill("Cardiology check-up")
    writer.get_by_label("Message (Chinese)").fill("请预约心内科复查。")
    writer.get_by_label("Message (English)").fill("Please book your cardiology check-up.")
    writer.get_by_label("Department").select_option(label="Cardiology")
    writer.get_by_role("button", name="Create the batch").click()
    expect(writer.get_by_role("heading", name="Cardiology check-up")).to_be_visible()
    batch_url = writer.url
    writer.get_by_role("button", name="Preview", exact=True).click()
    expect(writer.locator('[data-count="send"]')).to_have_text("2")
    expect(writer.locator('[data-count="suppress:no_consent"]')).to_have_text("1")
    expect(writer.locator("#approval")).to_contain_text("another manager must approve")
    _check_axe(writer)
    writer.get_by_role("button", name="Send as previewed").click()
    expect(writer.locator("#batch-error")).to_contain_text("another manager must preview and approve")

    checker = _sign_in(browser, live_server, "manager2")
    checker.goto(batch_url)
    checker.get_by_role("button", name="Preview", exact=True).click()
    checker.get_by_role("button", name="Approve these counts").click()
    expect(checker.locator("#approved-by")).to_contain_text("Manager2")
    checker.context.close()

    writer.goto(batch_url)
    writer.get_by_role("button", name="Send as previewed").click()
    expect(writer.locator("#sending")).to_be_visible()
    expect(writer.locator("#report-chart")).to_be_visible(timeout=20_000)  # work.js reloads when done
    expect(writer.locator('[data-report="sent"]')).to_have_text("2")
    expect(writer.locator('[data-report="suppressed"]')).to_have_text("1")
    _check_axe(writer)
    writer.context.close()
    bodies = sorted(message.params["Body"] for message in twilio_env.messages)
    assert bodies == ["Please book your cardiology check-up.", "请预约心内科复查。"]

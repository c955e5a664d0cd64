"""In Chromium: an editor starts a follow-up plan, is told in the editor's words what is wrong, previews whom
the unsaved form reaches (the page's script swaps the preview in, nothing is stored), saves and submits it;
a colleague with the approver grant publishes it, and the editor pauses it from the plans list. The pages
pass axe, and read in Chinese and Vietnamese they show no untranslated English word or raw code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.followup.catalog import do_publish
from backend.models import ContentRevision, FollowUpPlan, Role, StaffUser
from backend.models.base import utcnow
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in
from tests.browser.visible_words import leaks

pytestmark = pytest.mark.browser


def test_an_editor_previews_submits_a_colleague_publishes_and_the_plan_is_paused(
    live_server: str, browser: Any, db: Session
) -> None:
    do_publish(db, DEFINITION)
    dept = factories.department(db)
    dept.names = {"en": "Cardiology", "zh-CN": "心内科", "vi": "Khoa tim mạch"}
    for days_ago in (1, 2, 10):
        patient = factories.patient(db)
        enc = factories.encounter(db, patient, dept)
        enc.ended_at = utcnow() - timedelta(days=days_ago)
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="approver1", role=Role.CONTENT_EDITOR).content_approver = True
    db.commit()

    editor = _sign_in(browser, live_server, "editor1")
    editor.goto(f"{live_server}/staff/studio")
    editor.get_by_role("link", name="Follow-up plans: whom to contact, with what, when and how").click()
    axe.assert_no_serious_violations(editor)
    editor.get_by_label("Plan key (lower-case letters, digits, underscores)").fill("cardio")
    editor.locator("#new-plan-name").fill("Cardiology discharges")
    editor.get_by_role("button", name="Start a plan").click()
    expect(editor.locator("#revision-state")).to_have_text("Draft")
    expect(editor.locator("#plan-problems")).to_contain_text("Questionnaire is required")
    axe.assert_no_serious_violations(editor)

    editor.get_by_label("Questionnaire").select_option("recovery")
    editor.get_by_label("Cardiology").check()
    editor.get_by_label("Days after").fill("3, 30, soon")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator('#plan-problems li[data-field="offsets_days"]')).to_contain_text(
        "Days after must be a whole number in the range"
    )
    expect(editor.get_by_label("Days after")).to_have_value("3, 30, soon")  # kept as typed

    editor.get_by_label("Days after").fill("3, 30")
    editor.get_by_role("button", name="Preview whom it reaches").click()
    expect(editor.locator('#plan-horizons td[data-days="30"]')).to_have_text("3")
    expect(editor.locator('#plan-horizons td[data-days="7"]')).to_have_text("2")
    expect(editor.locator("#plan-departments-chart")).to_be_visible()
    expect(editor.locator("#plan-sample tbody tr")).to_have_count(3)
    assert "/preview" not in editor.url  # the script swapped the preview in; the page stayed
    axe.assert_no_serious_violations(editor)
    db.expire_all()
    assert db.scalars(sa.select(ContentRevision)).one().body["offsets_days"] == [3, 30, "soon"]  # unsaved

    editor.get_by_label("Days after").fill("3, 30-90/30")  # a repeat: every 30 days from day 30 to 90
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.get_by_label("Days after")).to_have_value("3, 30, 60, 90")
    expect(editor.locator("#problem-count")).to_have_text("No problems.")
    editor.get_by_label("Days after").fill("3, 30")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.locator("#problem-count")).to_have_text("No problems.")
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    expect(editor.locator("#approval-hint")).to_be_visible()  # not her own to approve

    colleague = _sign_in(browser, live_server, "approver1")
    colleague.goto(f"{live_server}/staff/studio")
    colleague.locator("#awaiting").get_by_role("link").click()
    axe.assert_no_serious_violations(colleague)
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")
    expect(colleague.locator("#plan-published")).to_contain_text("Revision 1 is published.")
    colleague.context.close()

    editor.goto(f"{live_server}/staff/studio/plans")
    row = editor.locator('#plans tr[data-key="cardio"]')
    expect(row).to_contain_text("Running")
    row.get_by_role("button", name="Pause this plan").click()
    expect(editor.locator('#plans tr[data-key="cardio"]')).to_contain_text("Paused")
    axe.assert_no_serious_violations(editor)
    db.expire_all()
    assert db.scalars(sa.select(FollowUpPlan)).one().active is False

    found: list[str] = []
    data = [
        "Cardiology discharges",
        "cardio",
        "recovery",
        "Cardiology",
        "心内科",
        "Khoa tim mạch",
        "Department",
        "Editor1",
    ]
    for lang in ("zh-CN", "vi"):
        db.execute(sa.update(StaffUser).where(StaffUser.username == "editor1").values(language=lang))
        db.commit()
        for path in ("/staff/studio/plans", "/staff/studio/items/plans/cardio/r/1"):
            editor.goto(f"{live_server}{path}")
            expect(editor.locator("html")).to_have_attribute("lang", lang)
            editor.evaluate("document.querySelectorAll('[translate=no]').forEach(e => e.remove())")
            found += [
                f"{lang} {path}: {leak}" for leak in leaks(editor.locator("body").inner_text(), lang, data)
            ]
        axe.assert_no_serious_violations(editor)
    assert not found, "\n".join(found)
    editor.context.close()

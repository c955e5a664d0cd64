"""In Chromium: a patient's abnormal answer appears in the right nurse's open inbox within a second (and not
in another department's); she replies from the task and the patient reads it on the web chat page."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import do_publish
from backend.followup.invite import do_send_form_invite
from backend.followup.responses import do_start_response
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    ConversationOwner,
    Direction,
    FollowUpPlan,
    Message,
    OutreachStatus,
    OutreachTask,
    Task,
    TaskKind,
)
from backend.models.base import utcnow
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.browser.axe import assert_no_serious_violations
from tests.browser.test_accessibility import sign_in

pytestmark = pytest.mark.browser
PUSH_SECONDS = 1.0


def test_an_abnormal_answer_reaches_the_nurse_who_replies_on_the_web_chat(
    live_server: str, browser: Any, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_PUBLIC_URL", live_server)  # the invitation's link points at the server
    get_settings.cache_clear()
    cardio, ortho = factories.department(db), factories.department(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    factories.staff(db, username="nurse2", departments=[ortho])
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    factories.task(db, kind=TaskKind.CALLBACK, person=alice, dept=cardio)  # the inbox is not empty
    version = do_publish(db, DEFINITION)
    plan = FollowUpPlan(name="Discharge", questionnaire_id="recovery", offsets_days=[3], channels=["webchat"])
    db.add(plan)
    db.flush()
    encounter = alice.encounters[0]
    now = utcnow()
    follow_up = OutreachTask(
        plan_id=plan.id,
        patient_id=alice.id,
        encounter_id=encounter.id,
        department_id=cardio.id,
        questionnaire_id="recovery",
        offset_days=3,
        due_at=now,
        next_attempt_at=now + timedelta(days=2),  # not yet due for a resend by the server's dispatcher
        status=OutreachStatus.SENT,
    )
    db.add(follow_up)
    db.flush()
    response = do_start_response(
        db, version=version, patient_id=alice.id, channel=Channel.WEBCHAT, language="en", task=follow_up
    )
    do_send_form_invite(
        db, response=response, channel=Channel.WEBCHAT, address=f"web:{alice.id}", lang="en", now=now
    )
    db.commit()

    desk = browser.new_context(locale="en-GB")
    other_desk = browser.new_context(locale="en-GB")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True)
    try:
        nurse = desk.new_page()
        sign_in(nurse, live_server, "nurse1")
        nurse.goto(f"{live_server}/staff/inbox")
        expect(nurse.locator("#tasks tbody tr[data-task]")).to_have_count(1)
        other = other_desk.new_page()
        sign_in(other, live_server, "nurse2")
        other.goto(f"{live_server}/staff/inbox")
        expect(other.locator("#tasks")).to_contain_text("No tasks found.")

        patient = phone.new_page()
        patient.goto(f"{live_server}/c/{make_token(get_settings(), LinkKind.CHAT, alice.id)}")
        patient.get_by_role("link", name="Open the questionnaire").click()  # the invitation in the chat
        patient.get_by_role("radio", name="8").check()
        patient.get_by_role("radio", name="No").check()
        patient.get_by_role("button", name="Submit").click()
        expect(patient.locator("main")).to_contain_text("Thank")
        submitted = time.monotonic()

        row = nurse.locator("#tasks tbody tr[data-task]", has_text="Abnormal answers")
        expect(row).to_have_count(1, timeout=5000)
        pushed = time.monotonic() - submitted
        assert pushed <= PUSH_SECONDS, f"the finding took {pushed:.2f} s to appear"
        expect(nurse.locator("#inbox-changed")).to_be_visible()
        time.sleep(1.0)  # the other department's stream has had its chance
        expect(other.locator("#tasks")).to_contain_text("No tasks found.")

        row.get_by_role("link", name="Alice Wang").click()
        expect(nurse.locator("main h1")).to_be_visible()
        assert_no_serious_violations(nurse)
        nurse.get_by_label("Reply to the patient").fill(
            "Please take your painkiller and call us if it stays at 8."
        )
        nurse.get_by_role("button", name="Send reply").click()
        expect(nurse.locator("#conversation")).to_contain_text("Please take your painkiller")

        patient.goto(f"{live_server}/c/{make_token(get_settings(), LinkKind.CHAT, alice.id)}")
        expect(patient.locator("#messages")).to_contain_text("Please take your painkiller", timeout=5000)
    finally:  # close the pages' event streams, or the server waits for them at shutdown
        for context in (desk, other_desk, phone):
            context.close()
    db.expire_all()
    [task] = db.scalars(sa.select(Task).where(Task.kind == TaskKind.ABNORMAL_ANSWER)).all()
    assert task.department_id == cardio.id
    reply = db.scalars(
        sa.select(Message).where(
            Message.direction == Direction.OUTBOUND, Message.sent_by_staff_id.is_not(None)
        )
    ).one()
    assert reply.channel is Channel.WEBCHAT and reply.conversation.owner is ConversationOwner.STAFF

"""The safety review queue and the on-duty page: mark a message from the task page, review, export."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Conversation, Direction, DutyRoster, MissedEscalation, Role
from backend.services.refusal import ActionRefused
from backend.services.safety_review import do_mark_missed
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


def _world(db: Session) -> Any:
    dept, other = factories.department(db), factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    outsider = factories.staff(db, username="outsider", departments=[other])
    manager = factories.staff(db, username="boss", role=Role.MANAGER, departments=[dept])
    person = factories.patient(db, dept=dept)
    conv = factories.conversation(db, person, Channel.WEBCHAT)
    task = factories.task(db, person=person, dept=dept, conv=conv)
    message = factories.reply(db, conv, "my leg is swollen and hot since the operation")
    db.commit()
    return SimpleNamespace(
        nurse=nurse,
        outsider=outsider,
        manager=manager,
        task=task,
        message=message,
        dept=dept,
    )


def test_a_nurse_marks_a_message_from_the_task_page_and_a_reviewer_exports_it(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    sign_in(client, "nurse")
    page = client.get(f"/staff/inbox/{w.task.id}")
    assert "Should have escalated" in page.text
    response = client.post(
        "/staff/safety/missed",
        data={
            "csrf_token": _csrf(page.text),
            "message_id": str(w.message.id),
            "back": f"/staff/inbox/{w.task.id}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].endswith("?safety=marked")
    db.expire_all()
    entry = db.scalars(sa.select(MissedEscalation)).one()
    assert (entry.message_id, entry.marked_by) == (w.message.id, w.nurse.id)
    assert client.get("/staff/safety/reviews").status_code == 403  # nurses mark; reviewers review
    client.cookies.clear()
    sign_in(client, "boss")
    listing = client.get("/staff/safety/reviews")
    assert listing.status_code == 200 and "my leg is swollen" in listing.text
    rows = list(csv.DictReader(io.StringIO(client.get("/staff/safety/reviews.csv").text)))
    assert [(r["text"], r["language"], r["reviewed"]) for r in rows] == [
        ("my leg is swollen and hot since the operation", "en", "no")
    ]
    client.post(f"/staff/safety/reviews/{entry.id}/reviewed", data={"csrf_token": _csrf(listing.text)})
    assert "my leg is swollen" not in client.get("/staff/safety/reviews").text
    assert "my leg is swollen" in client.get("/staff/safety/reviews?all=true").text
    actions = set(db.scalars(sa.select(AuditEvent.action)))
    assert {"safety.missed_marked", "safety.missed_reviewed", "safety.reviews_export"} <= actions


def test_marking_is_refused_outside_her_departments_twice_or_for_the_bots_own_words(db: Session) -> None:
    w = _world(db)
    outsider, nurse = w.outsider, w.nurse
    message_id = w.message.id
    for user, mid, reason in (
        (outsider, message_id, "outside_departments"),
        (nurse, message_id + 999, "not_a_patient_message"),
    ):
        try:
            do_mark_missed(db, message_id=mid, user=user, category=None, note="")
        except ActionRefused as exc:
            assert exc.reason == reason
        else:
            raise AssertionError(reason)
    do_mark_missed(db, message_id=message_id, user=nurse, category="anaphylaxis", note="")
    try:
        do_mark_missed(db, message_id=message_id, user=nurse, category=None, note="")
    except ActionRefused as exc:
        assert exc.reason == "already_marked"
    else:
        raise AssertionError("marked twice")


def test_a_reviewer_sets_who_is_on_duty(client: TestClient, db: Session) -> None:
    w = _world(db)
    sign_in(client, "boss")
    page = client.get("/staff/safety/duty")
    assert page.status_code == 200 and "Nurse" in page.text
    dept_id = w.dept.id
    response = client.post(
        f"/staff/safety/duty/{dept_id}",
        data={
            "csrf_token": _csrf(page.text),
            "on_duty": str(w.nurse.id),
            "fallback": str(w.manager.id),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    db.expire_all()
    roster = db.get(DutyRoster, dept_id)
    assert roster is not None and (roster.on_duty_id, roster.fallback_id) == (w.nurse.id, w.manager.id)
    assert db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "duty.set")).all() == [
        "duty.set"
    ]


def test_a_nurse_marks_a_message_from_the_patients_record(client: TestClient, db: Session) -> None:
    w = _world(db)
    person_id, message_id = w.task.patient_id, w.message.id
    bot_line = factories.reply(db, db.get(Conversation, w.message.conversation_id), "How are you today?")
    bot_line.direction = Direction.OUTBOUND
    db.commit()
    sign_in(client, "nurse")
    page = client.get(f"/staff/patients/{person_id}")
    assert page.status_code == 200
    buttons = re.findall(r'name="message_id" value="(\d+)"', page.text)
    assert buttons == [str(message_id)]  # the patient's own words only, not the bot's
    response = client.post(
        "/staff/safety/missed",
        data={
            "csrf_token": _csrf(page.text),
            "message_id": str(message_id),
            "back": f"/staff/patients/{person_id}",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == f"/staff/patients/{person_id}?safety=marked"
    after = client.get(response.headers["location"])
    assert 'id="record-notice"' in after.text and "Marked for the safety review." in after.text
    assert re.findall(r'name="message_id" value="(\d+)"', after.text) == []  # marked: no button now
    db.expire_all()
    entry = db.scalars(sa.select(MissedEscalation)).one()
    assert (entry.message_id, entry.marked_by) == (message_id, w.nurse.id)
    again = client.post(
        "/staff/safety/missed",
        data={
            "csrf_token": _csrf(page.text),
            "message_id": str(message_id),
            "back": f"/staff/patients/{person_id}",
        },
    )
    assert 'id="record-error"' in again.text and "already marked" in again.text
    assert client.get(f"/staff/patients/{person_id}?safety=<b>x</b>").text.count("<b>x</b>") == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(MissedEscalation)) == 1

"""The staff inbox: scoping, filters, task actions with events and audit, replies on each channel,
hand-back, SLA escalation, CSRF, the live count stream and query counts, on both databases."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    AuditEvent,
    Conversation,
    ConversationOwner,
    Department,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    Patient,
    Role,
    StaffUser,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services import inbox, inbox_queue
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.channels.fake_twilio import FakeTwilio

ALICE_PHONE = "+8613800138000"


@dataclass
class World:
    now: datetime
    cardio: Department
    ortho: Department
    agent: StaffUser  # service centre: every department
    nurse: StaffUser  # cardiology
    ortho_nurse: StaffUser
    manager: StaffUser  # cardiology's supervisor
    alice: Patient  # cardiology, writes by SMS
    bob: Patient  # orthopaedics, web chat
    tasks: dict[str, Task]


def _world(db: Session) -> World:
    now = utcnow()
    cardio, ortho = factories.department(db), factories.department(db)
    agent = factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    ortho_nurse = factories.staff(db, username="nurse2", departments=[ortho])
    manager = factories.staff(db, username="manager1", role=Role.MANAGER, departments=[cardio])
    alice = factories.patient(db, name="Alice Wang", phone=ALICE_PHONE, dept=cardio)
    bob = factories.patient(db, name="Bob Li", dept=ortho)
    sms = factories.conversation(db, alice, Channel.SMS)
    web = factories.conversation(db, bob, Channel.WEBCHAT)
    tasks = {
        # normal (24 h) raised 23 h ago: due in an hour, inside the last quarter
        "alice": factories.task(db, person=alice, dept=cardio, conv=sms, now=now - timedelta(hours=23)),
        # urgent (1 h) raised 2 h ago: breached
        "bob": factories.task(
            db, priority=TaskPriority.URGENT, dept=ortho, conv=web, now=now - timedelta(hours=2)
        ),
        "abnormal": factories.task(
            db, kind=TaskKind.ABNORMAL_ANSWER, priority=TaskPriority.HIGH, person=alice, dept=cardio, now=now
        ),
        "complaint": factories.task(
            db, kind=TaskKind.COMPLAINT, priority=TaskPriority.LOW, person=bob, dept=ortho, now=now
        ),
        "callback": factories.task(db, kind=TaskKind.CALLBACK, person=alice, dept=cardio, now=now),
    }
    inbox.do_assign(db, task=tasks["abnormal"], staff_id=agent.id, assignee=nurse, now=now)
    inbox.do_close(
        db,
        task=tasks["callback"],
        staff_id=agent.id,
        code=inbox.ResolutionCode.RESOLVED,
        summary="called",
        now=now,
    )
    db.commit()
    return World(now, cardio, ortho, agent, nurse, ortho_nurse, manager, alice, bob, tasks)


def _names(w: World, rows: list[inbox_queue.TaskRow]) -> list[str]:
    by_id = {t.id: name for name, t in w.tasks.items()}
    return [by_id[r.task.id] for r in rows]


def _task(db: Session, task_id: int) -> Task:
    db.expire_all()
    return db.get_one(Task, task_id)


def _events(db: Session, task_id: int) -> list[TaskEvent]:
    db.expire_all()
    return list(db.scalars(sa.select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)))


def _audits(db: Session, task_id: int) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_type == "task", AuditEvent.subject_id == task_id)
            .where(AuditEvent.action.not_in(["task.raise", "task.view"]))
            .order_by(AuditEvent.id)
        )
    )


def _token(client: TestClient, task_id: int | None = None) -> str:
    return _csrf(client.get(f"/staff/inbox/{task_id}" if task_id else "/staff/inbox").text)


# --- queues: scoping and filters -----------------------------------------------------------------


def test_a_ward_nurse_sees_only_her_departments_tasks(client: TestClient, db: Session) -> None:
    w = _world(db)
    sign_in(client, "nurse1")
    page = client.get("/staff/inbox")
    assert page.status_code == 200
    shown = {int(i) for i in re.findall(r'data-task="(\d+)"', page.text)}
    assert shown == {w.tasks["alice"].id, w.tasks["abnormal"].id}
    assert 'data-count="handoff">1<' in page.text and 'data-count="complaint">0<' in page.text
    assert client.get(f"/staff/inbox/{w.tasks['bob'].id}").status_code == 403
    denied = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "task.view_denied")).one()
    assert (denied.staff_id, denied.subject_id) == (w.nurse.id, w.tasks["bob"].id)
    view = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "inbox.view")).one()
    assert view.detail["patients"] == [w.alice.id]


def test_the_service_centre_sees_every_department(client: TestClient, db: Session) -> None:
    w = _world(db)
    sign_in(client, "agent1")
    page = client.get("/staff/inbox")
    shown = {int(i) for i in re.findall(r'data-task="(\d+)"', page.text)}
    assert shown == {w.tasks[n].id for n in ("alice", "bob", "abnormal", "complaint")}
    assert 'data-count="handoff">2<' in page.text
    assert client.get(f"/staff/inbox/{w.tasks['bob'].id}").status_code == 200


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ["bob", "alice", "abnormal", "complaint"]),  # not closed, earliest due first
        ({"queue": "handoff"}, ["bob", "alice"]),
        ({"queue": "complaint"}, ["complaint"]),
        ({"department": "cardio"}, ["alice", "abnormal"]),
        ({"priority": "urgent"}, ["bob"]),
        ({"status": "open"}, ["bob", "alice", "complaint"]),
        ({"status": "claimed"}, ["abnormal"]),
        ({"status": "closed"}, ["callback"]),
        ({"channel": "webchat"}, ["bob"]),
        ({"channel": "sms"}, ["alice"]),
        ({"sla": "breached"}, ["bob"]),
        ({"sla": "due_soon"}, ["alice"]),
        ({"sla": "ok"}, ["abnormal", "complaint"]),
        ({"assignee": "none"}, ["bob", "alice", "complaint"]),
        ({"assignee": "nurse"}, ["abnormal"]),
        ({"assignee": "me"}, []),  # the agent has none
        ({"queue": "handoff", "department": "ortho", "sla": "breached"}, ["bob"]),
    ],
)
def test_each_filter_narrows_the_queue(db: Session, values: dict[str, str], expected: list[str]) -> None:
    w = _world(db)
    ids = {"cardio": str(w.cardio.id), "ortho": str(w.ortho.id), "nurse": str(w.nurse.id)}
    resolved = {k: ids.get(v, v) for k, v in values.items()}
    rows = inbox_queue.task_rows(db, user=w.agent, filters=inbox_queue.parse_filters(resolved), now=w.now)
    assert _names(w, rows) == expected


def test_filters_work_through_the_page_and_bad_values_get_a_400(client: TestClient, db: Session) -> None:
    w = _world(db)
    sign_in(client, "nurse1")
    mine = client.get("/staff/inbox", params={"assignee": "me"})
    assert re.findall(r'data-task="(\d+)"', mine.text) == [str(w.tasks["abnormal"].id)]
    assert client.get("/staff/inbox", params={"sla": "late"}).status_code == 400
    assert client.get("/staff/inbox", params={"priority": "bogus"}).status_code == 400


# --- actions -------------------------------------------------------------------------------------


def test_claiming_takes_the_task_and_a_second_claim_is_told_it_lost(client: TestClient, db: Session) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    done = client.post(
        f"/staff/inbox/{task_id}/claim", data={"csrf_token": _token(client, task_id)}, follow_redirects=False
    )
    assert done.status_code == 303
    task = _task(db, task_id)
    assert (task.status, task.assignee_id) == (TaskStatus.CLAIMED, w.nurse.id)
    assert [(e.kind, e.actor_id) for e in _events(db, task_id)] == [(TaskEventKind.CLAIMED, w.nurse.id)]
    assert [a.action for a in _audits(db, task_id)] == ["task.claimed"]
    with pytest.raises(inbox.ActionRefused, match="already_claimed"):
        inbox.do_claim(db, task=_task(db, task_id), staff_id=w.agent.id)
    db.rollback()
    sign_in(client, "agent1")
    again = client.post(f"/staff/inbox/{task_id}/claim", data={"csrf_token": _token(client, task_id)})
    assert again.status_code == 409 and "already claimed" in again.text
    assert _task(db, task_id).assignee_id == w.nurse.id


def test_assigning_to_a_person_records_who_and_refuses_other_departments(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "agent1")
    token = _token(client, task_id)
    client.post(f"/staff/inbox/{task_id}/assign", data={"csrf_token": token, "assignee": str(w.manager.id)})
    task = _task(db, task_id)
    assert (task.status, task.assignee_id) == (TaskStatus.CLAIMED, w.manager.id)
    [event] = _events(db, task_id)
    assert (event.kind, event.actor_id, event.detail["to"]) == (
        TaskEventKind.ASSIGNED,
        w.agent.id,
        w.manager.id,
    )
    refused = client.post(
        f"/staff/inbox/{task_id}/assign", data={"csrf_token": token, "assignee": str(w.ortho_nurse.id)}
    )
    assert refused.status_code == 409 and _task(db, task_id).assignee_id == w.manager.id
    assert [a.action for a in _audits(db, task_id)] == ["task.assigned"]


def test_transferring_moves_the_task_to_the_other_departments_queue(client: TestClient, db: Session) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    done = client.post(
        f"/staff/inbox/{task_id}/transfer",
        data={"csrf_token": _token(client, task_id), "department": str(w.ortho.id)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/staff/inbox"  # no longer hers
    task = _task(db, task_id)
    assert (task.department_id, task.status, task.assignee_id) == (w.ortho.id, TaskStatus.OPEN, None)
    [event] = _events(db, task_id)
    assert event.detail == {"to": w.ortho.id, "previous": w.cardio.id}
    assert [a.action for a in _audits(db, task_id)] == ["task.transferred"]
    assert client.get(f"/staff/inbox/{task_id}").status_code == 403
    sign_in(client, "nurse2")
    assert str(task_id) in client.get("/staff/inbox").text


def test_a_note_records_its_mentions_and_keeps_the_text_out_of_the_audit(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    text = "@manager1 please look; @nobody is not a user; mail a@b.c"
    client.post(f"/staff/inbox/{task_id}/note", data={"csrf_token": _token(client, task_id), "text": text})
    [event] = _events(db, task_id)
    assert (event.kind, event.detail) == (TaskEventKind.NOTE, {"text": text, "mentions": [w.manager.id]})
    [audit] = _audits(db, task_id)
    assert audit.action == "task.note" and audit.detail == {"mentions": [w.manager.id]}
    assert "please look" in client.get(f"/staff/inbox/{task_id}").text


def test_closing_with_a_code_and_reopening_are_events_with_state(client: TestClient, db: Session) -> None:
    w = _world(db)
    task_id = w.tasks["abnormal"].id  # assigned to the nurse
    sign_in(client, "nurse1")
    token = _token(client, task_id)
    client.post(
        f"/staff/inbox/{task_id}/close",
        data={"csrf_token": token, "code": "advice_given", "summary": "Told her to rest"},
    )
    task = _task(db, task_id)
    assert task.status is TaskStatus.CLOSED and task.closed_at is not None
    closed = _events(db, task_id)[-1]
    assert (closed.kind, closed.detail) == (
        TaskEventKind.CLOSED,
        {"code": "advice_given", "summary": "Told her to rest"},
    )
    again = client.post(
        f"/staff/inbox/{task_id}/close", data={"csrf_token": token, "code": "resolved", "summary": "s"}
    )
    assert again.status_code == 409 and "Reopen it first" in again.text
    noted = client.post(
        f"/staff/inbox/{task_id}/note", data={"csrf_token": token, "text": "x"}, follow_redirects=False
    )
    assert noted.status_code == 303  # notes are allowed on a closed task
    client.post(f"/staff/inbox/{task_id}/reopen", data={"csrf_token": token})
    task = _task(db, task_id)
    assert (task.status, task.closed_at, task.assignee_id) == (TaskStatus.CLAIMED, None, w.nurse.id)
    assert task.due_at > w.now + timedelta(hours=3)  # a fresh SLA window
    assert [e.kind for e in _events(db, task_id)][-3:] == [
        TaskEventKind.CLOSED,
        TaskEventKind.NOTE,
        TaskEventKind.REOPENED,
    ]
    actions = [a.action for a in _audits(db, task_id)]
    assert actions[-3:] == ["task.closed", "task.note", "task.reopened"]
    closed_audit = [a for a in _audits(db, task_id) if a.action == "task.closed"][-1]
    assert closed_audit.detail == {"code": "advice_given"}  # the summary stays out of the audit trail


@pytest.mark.parametrize("action", ["claim", "note", "close", "reopen", "reply", "hand-back"])
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, db: Session, action: str
) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    form = {"text": "hi", "code": "resolved", "summary": "done"}
    assert client.post(f"/staff/inbox/{task_id}/{action}", data=form).status_code == 422
    forged = client.post(f"/staff/inbox/{task_id}/{action}", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 403
    task = _task(db, task_id)
    assert (task.status, task.assignee_id) == (TaskStatus.OPEN, None)
    assert _events(db, task_id) == [] and _audits(db, task_id) == []
    assert (
        db.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.direction == Direction.OUTBOUND)
        )
        == 0
    )


# --- replies and hand-back -----------------------------------------------------------------------


def test_a_reply_on_sms_reaches_twilio_and_the_page_shows_it_sent(
    twilio: FakeTwilio,  # noqa: F811
    client: TestClient,
    db: Session,
) -> None:
    w = _world(db)
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    done = client.post(
        f"/staff/inbox/{task_id}/reply",
        data={"csrf_token": _token(client, task_id), "text": "Please rest and drink water."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    [sent] = twilio.messages
    assert sent.params["To"] == ALICE_PHONE and sent.params["Body"] == "Please rest and drink water."
    db.expire_all()
    message = db.scalars(sa.select(Message).where(Message.sent_by_staff_id == w.nurse.id)).one()
    assert message.status is MessageStatus.SENT and message.provider_message_id == sent.sid
    task = _task(db, task_id)
    assert (task.status, task.assignee_id) == (TaskStatus.CLAIMED, w.nurse.id)  # replying claims it
    replied = _events(db, task_id)[-1]
    assert replied.kind is TaskEventKind.REPLIED and replied.detail["channel"] == "sms"
    page = client.get(f"/staff/inbox/{task_id}").text
    assert "Please rest and drink water." in page and 'class="delivery sent"' in page


def test_a_canned_reply_is_sent_in_the_patients_language(
    twilio: FakeTwilio,  # noqa: F811
    client: TestClient,
    db: Session,
) -> None:
    w = _world(db)
    w.alice.language = "vi"
    db.commit()
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    page = client.get(f"/staff/inbox/{task_id}").text
    assert "Đã nhận" not in page and "Received" in page  # labels in the nurse's language
    client.post(f"/staff/inbox/{task_id}/reply", data={"csrf_token": _csrf(page), "canned": "received"})
    assert twilio.messages[-1].params["Body"].startswith("Xin chào, chúng tôi đã nhận")


def test_a_reply_to_a_patient_who_revoked_consent_is_refused_with_the_reason_and_the_draft_kept(
    twilio: FakeTwilio,  # noqa: F811
    client: TestClient,
    db: Session,
) -> None:
    w = _world(db)
    do_revoke_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    task_id = w.tasks["alice"].id
    sign_in(client, "nurse1")
    page = client.post(
        f"/staff/inbox/{task_id}/reply", data={"csrf_token": _token(client, task_id), "text": "Hello there"}
    )
    assert page.status_code == 409
    assert "Not sent: the patient has not agreed to messages on this channel." in page.text
    assert ">Hello there</textarea>" in page.text
    assert twilio.messages == []
    db.expire_all()
    assert db.scalars(sa.select(OutboxItem)).all() == []
    [refusal] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "task.reply_refused")).all()
    assert refusal.detail == {"reason": "no_consent", "channel": "sms"}
    assert [e.kind for e in _events(db, task_id)].count(TaskEventKind.REPLIED) == 0


def test_a_reply_on_web_chat_appears_in_the_patients_chat(client: TestClient, db: Session) -> None:
    w = _world(db)
    task_id = w.tasks["bob"].id
    sign_in(client, "agent1")
    client.post(
        f"/staff/inbox/{task_id}/reply",
        data={"csrf_token": _token(client, task_id), "text": "A nurse is here."},
    )
    db.expire_all()
    message = db.scalars(sa.select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    assert (message.status, message.sent_by_staff_id) == (MessageStatus.SENT, w.agent.id)
    token = make_token(get_settings(), LinkKind.CHAT, w.bob.id)
    items = client.get(f"/c/{token}/messages").json()["items"]
    assert [i["text"] for i in items] == ["A nurse is here."]


def test_handing_back_lets_the_bot_answer_again(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    person = factories.patient(db, dept=dept)
    db.commit()
    token = make_token(get_settings(), LinkKind.CHAT, person.id)
    client.get(f"/c/{token}")
    for n, text in enumerate(["🙂", "???"]):  # two unclear answers: the bot hands over
        client.post(f"/c/{token}/messages", data={"text": text, "client_id": f"client-h{n:04d}"})
    db.expire_all()
    task = db.scalars(sa.select(Task)).one()
    conversation = db.scalars(sa.select(Conversation)).one()
    assert conversation.owner is ConversationOwner.STAFF
    sign_in(client, "agent1")
    client.post(f"/staff/inbox/{task.id}/hand-back", data={"csrf_token": _token(client, task.id)})
    db.expire_all()
    assert db.get_one(Conversation, conversation.id).owner is ConversationOwner.BOT
    assert [e.kind for e in _events(db, task.id)] == [TaskEventKind.HANDED_BACK]
    assert [a.action for a in _audits(db, task.id)] == ["task.handed_back"]
    before = db.scalar(sa.select(sa.func.max(Message.id)))
    client.post(f"/c/{token}/messages", data={"choice": "yes", "text": "Yes", "client_id": "client-h0009"})
    db.expire_all()
    answers = db.scalars(
        sa.select(Message).where(Message.id > before, Message.direction == Direction.OUTBOUND)
    ).all()
    assert answers and all(m.sent_by_staff_id is None for m in answers)  # the bot spoke


# --- SLA -----------------------------------------------------------------------------------------


def test_a_breached_urgent_task_is_escalated_to_the_department_supervisor_once(db: Session) -> None:
    w = _world(db)
    urgent = factories.task(
        db, priority=TaskPriority.URGENT, person=w.alice, dept=w.cardio, now=w.now - timedelta(hours=2)
    )
    db.commit()
    assert inbox.escalate_breached_tasks(w.now) == 2  # cardiology's urgent one, and bob's in orthopaedics
    task = _task(db, urgent.id)
    assert (task.assignee_id, task.status) == (w.manager.id, TaskStatus.CLAIMED)
    [event] = _events(db, urgent.id)
    assert (event.kind, event.actor_id, event.detail["supervisor"]) == (
        TaskEventKind.ESCALATED,
        None,
        w.manager.id,
    )
    [orphan] = _events(db, w.tasks["bob"].id)  # orthopaedics has no manager: the event says so
    assert orphan.detail["reason"] == "no_supervisor" and _task(db, w.tasks["bob"].id).assignee_id is None
    assert [a.action for a in _audits(db, urgent.id)] == ["task.escalated"]
    assert inbox.escalate_breached_tasks(w.now + timedelta(minutes=1)) == 0


def test_escalation_runs_every_minute() -> None:
    from backend.app.periodic import PERIODIC

    assert (inbox.escalate_breached_tasks, 60) in PERIODIC


# --- live counts ---------------------------------------------------------------------------------


def test_the_event_stream_sends_the_signed_in_users_counts_first(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.web import inbox as inbox_web

    _world(db)
    monkeypatch.setattr(inbox_web, "STREAM_SECONDS", 0.0)  # end after the first event
    sign_in(client, "nurse1")
    with client.stream("GET", "/staff/inbox/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    event = body.split("event: counts\n", 1)[1]
    counts = json.loads(event.split("data: ", 1)[1].split("\n", 1)[0])
    assert counts == {
        "handoff": 1,
        "abnormal_answer": 1,
        "complaint": 0,
        "callback": 0,
        "loss_to_follow_up": 0,
        "integration": 0,
        "mentioned": 0,
    }


def test_the_event_stream_needs_a_sign_in(client: TestClient, db: Session) -> None:
    response = client.get("/staff/inbox/events", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"


# --- query counts --------------------------------------------------------------------------------


def test_the_queue_page_costs_the_same_queries_for_50_rows_as_for_a_few(
    client: TestClient, db: Session, statements: list[str]
) -> None:
    w = _world(db)
    sign_in(client, "agent1")
    client.get("/staff/inbox")  # warm up: first-request work is not the page's
    statements.clear()
    short = client.get("/staff/inbox")
    short_count = len(statements)
    for _ in range(60):
        person = factories.patient(db, dept=w.cardio)
        conv = factories.conversation(db, person, Channel.SMS)
        factories.task(db, person=person, dept=w.cardio, conv=conv)
    db.commit()
    statements.clear()
    full = client.get("/staff/inbox")
    assert short.status_code == full.status_code == 200
    assert len(re.findall(r'data-task="', full.text)) == 50
    assert len(statements) == short_count, statements

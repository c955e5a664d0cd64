"""Feedback cases on both databases: registering raises the inbox task, a complaint crossing two
departments to its report, concurrent claims, and department scoping."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app import db as db_module
from backend.models import (
    AuditEvent,
    CaseKind,
    CaseProgress,
    CaseSource,
    FeedbackCase,
    HandlingRecord,
    RecordKind,
    Role,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.services import case_queries, cases, inbox_queue
from backend.services.inbox import ActionRefused
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.backend.services.case_world import (
    actions_of,
    case_row,
    csrf_of,
    make_world,
    register_case,
)

# --- registering ---------------------------------------------------------------------------------


def test_the_agreed_entry_point_registers_a_case_with_its_inbox_task(db: Session) -> None:
    w = make_world(db)
    case = register_case(db, w, conversation_id=factories.conversation(db, w.alice).id)
    case = case_row(db, case.id)
    assert (case.kind, case.category, case.source, case.channel) == (
        CaseKind.COMPLAINT,
        "other",
        CaseSource.CHAT,
        Channel.SMS,
    )
    assert case.progress is CaseProgress.NEW and case.conversation_id is not None
    task = db.get_one(Task, case.task_id)
    assert (task.kind, task.priority, task.source_type, task.source_id) == (
        TaskKind.COMPLAINT,
        TaskPriority.HIGH,
        "feedback_case",
        case.id,
    )
    assert (task.department_id, task.patient_id) == (w.cardio.id, w.alice.id)
    rows = inbox_queue.task_rows(
        db, user=w.nurse, filters=inbox_queue.InboxFilters(queue=TaskKind.COMPLAINT), now=task.created_at
    )
    assert [r.task.id for r in rows] == [task.id]
    assert actions_of(db, case.id) == ["case.register"]
    detail = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "case.register")).one()
    assert "rude" not in str(detail) and detail["source"] == "chat"  # codes, never the patient's words


@pytest.mark.parametrize(
    ("actor", "source", "staff"),
    [
        ("patient", CaseSource.MOBILE, False),
        ("survey:inpatient", CaseSource.SURVEY, False),
        ("staff:", CaseSource.PHONE, True),
    ],
)
def test_the_actor_names_the_source(db: Session, actor: str, source: CaseSource, staff: bool) -> None:
    w = make_world(db)
    actor = f"staff:{w.agent.id}" if staff else actor
    case = case_row(db, register_case(db, w, actor=actor, kind="praise").id)
    assert case.source is source and case.registered_by_id == (w.agent.id if staff else None)
    assert db.get_one(Task, case.task_id).priority is TaskPriority.LOW  # praise is not urgent


def test_registering_refuses_bad_input_and_keeps_nothing(db: Session) -> None:
    w = make_world(db)
    for kw, reason in [({"text": "  "}, "text_length"), ({"patient_id": 999999}, "no_such_patient")]:
        with pytest.raises(ActionRefused, match=reason):
            register_case(db, w, **kw)
        db.rollback()
    with pytest.raises(ValueError, match="nonsense"):
        register_case(db, w, kind="nonsense")
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(FeedbackCase)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


def test_an_anonymous_case_keeps_the_patient_from_the_departments(client: TestClient, db: Session) -> None:
    w = make_world(db)
    case = register_case(db, w, anonymous=True)
    assert db.get_one(Task, case.task_id).patient_id is None  # the inbox names nobody
    sign_in(client, "nurse1")
    page = client.get(f"/staff/cases/{case.id}").text
    assert "Alice Wang" not in page and "Anonymous" in page
    assert case_queries.patient_cases(db, user=w.nurse, patient_id=w.alice.id) == []
    sign_in(client, "agent1")
    assert "Alice Wang" in client.get(f"/staff/cases/{case.id}").text  # the service centre may call back
    assert [c.id for c in case_queries.patient_cases(db, user=w.agent, patient_id=w.alice.id)] == [case.id]


def test_staff_register_a_case_from_the_phone(client: TestClient, db: Session) -> None:
    w = make_world(db)
    sign_in(client, "nurse1")
    token = _csrf(client.get("/staff/cases/new").text)
    form = {"csrf_token": token, "kind": "complaint", "category": "waiting", "text": "Waited 3 hours."}
    bad = client.post("/staff/cases", data=form | {"mrn": "NOPE"})
    assert bad.status_code == 400 and "No patient with this MRN" in bad.text and "Waited 3 hours." in bad.text
    done = client.post(
        "/staff/cases",
        data=form | {"mrn": w.alice.mrn, "department": str(w.cardio.id)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert done.headers["location"] == f"/staff/cases/{case.id}"
    assert (case.source, case.category, case.patient_id, case.registered_by_id) == (
        CaseSource.PHONE,
        "waiting",
        w.alice.id,
        w.nurse.id,
    )


# --- a complaint crossing two departments ----------------------------------------------------------


def test_a_complaint_crosses_to_a_second_department_and_is_closed_with_a_report(
    client: TestClient, db: Session
) -> None:
    w = make_world(db)
    case = register_case(db, w)
    sign_in(client, "nurse1")
    client.post(f"/staff/cases/{case.id}/claim", data={"csrf_token": csrf_of(client, case.id)})
    client.post(
        f"/staff/cases/{case.id}/collaborate",
        data={"csrf_token": csrf_of(client, case.id), "department": w.ortho.id, "assignee": w.ortho_nurse.id},
    )
    client.post(
        f"/staff/cases/{case.id}/record",
        data={"csrf_token": csrf_of(client, case.id), "kind": "facts", "text": "Night shift confirmed it."},
    )
    assert client.get(f"/staff/inbox/{case.task_id}").status_code == 200

    sign_in(client, "nurse2")  # orthopaedics now works on it too
    page = client.get(f"/staff/cases/{case.id}")
    assert page.status_code == 200
    added = client.post(
        f"/staff/cases/{case.id}/record",
        data={"csrf_token": _csrf(page.text), "kind": "solution", "text": "Transfer bed agreed."},
        follow_redirects=False,
    )
    assert added.status_code == 303
    refused = client.post(
        f"/staff/cases/{case.id}/close", data={"csrf_token": csrf_of(client, case.id), "summary": "x"}
    )
    assert refused.status_code == 409 and "Only the lead department" in refused.text
    listed = client.get("/staff/cases", params={"department": w.ortho.id}).text
    assert f'data-case="{case.id}"' in listed

    sign_in(client, "nurse1")
    client.post(
        f"/staff/cases/{case.id}/close",
        data={"csrf_token": csrf_of(client, case.id), "summary": "Apologised; staff retrained."},
    )
    case = case_row(db, case.id)
    assert case.progress is CaseProgress.CLOSED and case.summary == "Apologised; staff retrained."
    records = db.scalars(sa.select(HandlingRecord).order_by(HandlingRecord.id)).all()
    assert [(r.kind, r.author_id, r.department_id) for r in records] == [
        (RecordKind.FACTS, w.nurse.id, w.cardio.id),
        (RecordKind.SOLUTION, w.ortho_nurse.id, w.ortho.id),
    ]
    task = db.get_one(Task, case.task_id)
    assert task.status is TaskStatus.CLOSED and task.assignee_id == w.nurse.id
    closing = db.scalars(
        sa.select(TaskEvent).where(TaskEvent.task_id == task.id, TaskEvent.kind == TaskEventKind.CLOSED)
    ).one()
    assert closing.detail == {"code": "resolved", "summary": "Apologised; staff retrained."}
    assert actions_of(db, case.id) == [
        "case.register",
        "case.claim",
        "case.collaborate",
        "case.record",
        "case.record",
        "case.close",
    ]
    report = client.get(f"/staff/cases/{case.id}/report")
    assert report.status_code == 200
    for text in (
        "Night shift confirmed it.",
        "Transfer bed agreed.",
        "Apologised; staff retrained.",
        "Alice Wang",
    ):
        assert text in report.text
    assert w.cardio.name in report.text and w.ortho.name in report.text
    assert (
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.report")).one().staff_id
        == w.nurse.id
    )
    # reopening brings the task back; a closed task can't be closed again from the inbox behind the case
    client.post(f"/staff/cases/{case.id}/reopen", data={"csrf_token": csrf_of(client, case.id)})
    assert case_row(db, case.id).progress is CaseProgress.IN_PROGRESS
    assert db.get_one(Task, case.task_id).status is TaskStatus.CLAIMED
    inbox_close = client.post(
        f"/staff/inbox/{case.task_id}/close",
        data={"csrf_token": csrf_of(client, case.id), "code": "resolved", "summary": "x"},
    )
    assert inbox_close.status_code == 409 and "feedback case" in inbox_close.text


def test_two_agents_claiming_the_same_case_at_once_one_wins(db: Session, database_url: str) -> None:
    w = make_world(db)
    case = register_case(db, w)
    agent2 = factories.staff(db, username="agent2", role=Role.SERVICE_AGENT)
    db.commit()
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def claim(staff_id: int) -> None:
        barrier.wait(timeout=10)  # both start together (SQLite then serialises the two transactions)
        session = db_module.session_factory()()
        try:
            found = session.get_one(FeedbackCase, case.id)
            cases.do_claim_case(session, case=found, staff_id=staff_id)
            session.commit()
            outcomes[staff_id] = "won"
        except ActionRefused as exc:
            session.rollback()
            outcomes[staff_id] = exc.reason
        finally:
            session.close()

    threads = [threading.Thread(target=claim, args=(s,), daemon=True) for s in (w.agent.id, agent2.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes.values()) == ["already_claimed", "won"]
    winner = next(s for s, o in outcomes.items() if o == "won")
    db.expire_all()
    assert db.get_one(Task, case.task_id).assignee_id == winner
    assert actions_of(db, case.id).count("case.claim") == 1


def test_the_agent_who_lost_the_claim_is_told_on_the_page(client: TestClient, db: Session) -> None:
    w = make_world(db)
    case = register_case(db, w)
    sign_in(client, "nurse1")
    token = csrf_of(client, case.id)
    cases.do_claim_case(db, case=case_row(db, case.id), staff_id=w.agent.id)
    db.commit()
    lost = client.post(f"/staff/cases/{case.id}/claim", data={"csrf_token": token})
    assert lost.status_code == 409 and "Someone else has already claimed this case." in lost.text
    assert db.get_one(Task, case.task_id).assignee_id == w.agent.id


# --- scoping -------------------------------------------------------------------------------------


def test_a_nurse_of_another_department_is_denied_and_it_is_audited(client: TestClient, db: Session) -> None:
    w = make_world(db)
    case = register_case(db, w)
    sign_in(client, "nurse3")
    assert f'data-case="{case.id}"' not in client.get("/staff/cases").text
    for url in (f"/staff/cases/{case.id}", f"/staff/cases/{case.id}/report"):
        page = client.get(url)
        assert page.status_code == 403 and "The night nurse" not in page.text
    token = _csrf(client.get("/staff/cases").text)
    posted = client.post(f"/staff/cases/{case.id}/claim", data={"csrf_token": token})
    assert posted.status_code == 403
    db.expire_all()
    denials = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.view_denied")).all()
    assert len(denials) == 3 and {d.staff_id for d in denials} == {w.derm_nurse.id}
    assert db.get_one(Task, case.task_id).assignee_id is None
    assert client.get("/staff/cases/999999").status_code == 404

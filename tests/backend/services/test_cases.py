"""Feedback cases on both databases: registering raises the inbox task, a complaint crossing two
departments to its report, concurrent claims, refused files, refused notices, department scoping,
filters, statistics, the Excel export and the patient's feedback page."""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.app import db as db_module
from backend.app.settings import get_settings
from backend.i18n import translations
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    AuditEvent,
    CaseAttachment,
    CaseKind,
    CaseProgress,
    CaseSource,
    Department,
    FeedbackCase,
    HandlingRecord,
    OutboxItem,
    Patient,
    RecordKind,
    Role,
    StaffUser,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.services import case_queries, cases, inbox_queue
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.inbox import ActionRefused
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

ALICE_PHONE = "+8613800138000"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class World:
    cardio: Department
    ortho: Department
    derm: Department
    agent: StaffUser  # service centre: every department
    nurse: StaffUser  # cardiology
    ortho_nurse: StaffUser
    derm_nurse: StaffUser  # a third department, never involved
    alice: Patient  # cardiology


@pytest.fixture
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    folder = tmp_path / "media"
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(folder))
    monkeypatch.setenv("CARELOOP_MAX_ATTACHMENT_BYTES", "1000")
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", "0")  # no quiet time: notices go at once
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", "0")
    reset_caches()
    return folder


def _world(db: Session) -> World:
    cardio, ortho, derm = (factories.department(db) for _ in range(3))
    w = World(
        cardio,
        ortho,
        derm,
        factories.staff(db, username="agent1", role=Role.SERVICE_AGENT),
        factories.staff(db, username="nurse1", departments=[cardio]),
        factories.staff(db, username="nurse2", departments=[ortho]),
        factories.staff(db, username="nurse3", departments=[derm]),
        factories.patient(db, name="Alice Wang", phone=ALICE_PHONE, dept=cardio),
    )
    db.commit()
    return w


def _register(db: Session, w: World, **kw: object) -> FeedbackCase:
    args: dict[str, object] = {
        "kind": "complaint",
        "text": "The night nurse was rude to my mother.",
        "patient_id": w.alice.id,
        "anonymous": False,
        "department_id": w.cardio.id,
        "channel": "sms",
        "conversation_id": None,
        "actor": "bot",
    }
    args.update(kw)
    case = cases.do_register_case(db, **args)  # type: ignore[arg-type]
    db.commit()
    return case


def _case(db: Session, case_id: int) -> FeedbackCase:
    db.expire_all()
    return db.get_one(FeedbackCase, case_id)


def _actions(db: Session, case_id: int) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.subject_type == "case", AuditEvent.subject_id == case_id)
            .where(AuditEvent.action.not_in(["case.view", "case.report"]))
            .order_by(AuditEvent.id)
        )
    )


def _token(client: TestClient, case_id: int) -> str:
    return _csrf(client.get(f"/staff/cases/{case_id}").text)


# --- registering ---------------------------------------------------------------------------------


def test_the_agreed_entry_point_registers_a_case_with_its_inbox_task(db: Session) -> None:
    w = _world(db)
    case = _register(db, w, conversation_id=factories.conversation(db, w.alice).id)
    case = _case(db, case.id)
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
    assert _actions(db, case.id) == ["case.register"]
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
    w = _world(db)
    actor = f"staff:{w.agent.id}" if staff else actor
    case = _case(db, _register(db, w, actor=actor, kind="praise").id)
    assert case.source is source and case.registered_by_id == (w.agent.id if staff else None)
    assert db.get_one(Task, case.task_id).priority is TaskPriority.LOW  # praise is not urgent


def test_registering_refuses_bad_input_and_keeps_nothing(db: Session) -> None:
    w = _world(db)
    for kw, reason in [({"text": "  "}, "text_length"), ({"patient_id": 999999}, "no_such_patient")]:
        with pytest.raises(ActionRefused, match=reason):
            _register(db, w, **kw)
        db.rollback()
    with pytest.raises(ValueError, match="nonsense"):
        _register(db, w, kind="nonsense")
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(FeedbackCase)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


def test_an_anonymous_case_keeps_the_patient_from_the_departments(client: TestClient, db: Session) -> None:
    w = _world(db)
    case = _register(db, w, anonymous=True)
    assert db.get_one(Task, case.task_id).patient_id is None  # the inbox names nobody
    sign_in(client, "nurse1")
    page = client.get(f"/staff/cases/{case.id}").text
    assert "Alice Wang" not in page and "Anonymous" in page
    assert case_queries.patient_cases(db, user=w.nurse, patient_id=w.alice.id) == []
    sign_in(client, "agent1")
    assert "Alice Wang" in client.get(f"/staff/cases/{case.id}").text  # the service centre may call back
    assert [c.id for c in case_queries.patient_cases(db, user=w.agent, patient_id=w.alice.id)] == [case.id]


def test_staff_register_a_case_from_the_phone(client: TestClient, db: Session) -> None:
    w = _world(db)
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
    w = _world(db)
    case = _register(db, w)
    sign_in(client, "nurse1")
    client.post(f"/staff/cases/{case.id}/claim", data={"csrf_token": _token(client, case.id)})
    client.post(
        f"/staff/cases/{case.id}/collaborate",
        data={"csrf_token": _token(client, case.id), "department": w.ortho.id, "assignee": w.ortho_nurse.id},
    )
    client.post(
        f"/staff/cases/{case.id}/record",
        data={"csrf_token": _token(client, case.id), "kind": "facts", "text": "Night shift confirmed it."},
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
        f"/staff/cases/{case.id}/close", data={"csrf_token": _token(client, case.id), "summary": "x"}
    )
    assert refused.status_code == 409 and "Only the lead department" in refused.text
    listed = client.get("/staff/cases", params={"department": w.ortho.id}).text
    assert f'data-case="{case.id}"' in listed

    sign_in(client, "nurse1")
    client.post(
        f"/staff/cases/{case.id}/close",
        data={"csrf_token": _token(client, case.id), "summary": "Apologised; staff retrained."},
    )
    case = _case(db, case.id)
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
    assert _actions(db, case.id) == [
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
    client.post(f"/staff/cases/{case.id}/reopen", data={"csrf_token": _token(client, case.id)})
    assert _case(db, case.id).progress is CaseProgress.IN_PROGRESS
    assert db.get_one(Task, case.task_id).status is TaskStatus.CLAIMED
    inbox_close = client.post(
        f"/staff/inbox/{case.task_id}/close",
        data={"csrf_token": _token(client, case.id), "code": "resolved", "summary": "x"},
    )
    assert inbox_close.status_code == 409 and "feedback case" in inbox_close.text


def test_two_agents_claiming_the_same_case_at_once_one_wins(db: Session, database_url: str) -> None:
    w = _world(db)
    case = _register(db, w)
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
    assert _actions(db, case.id).count("case.claim") == 1


def test_the_agent_who_lost_the_claim_is_told_on_the_page(client: TestClient, db: Session) -> None:
    w = _world(db)
    case = _register(db, w)
    sign_in(client, "nurse1")
    token = _token(client, case.id)
    cases.do_claim_case(db, case=_case(db, case.id), staff_id=w.agent.id)
    db.commit()
    lost = client.post(f"/staff/cases/{case.id}/claim", data={"csrf_token": token})
    assert lost.status_code == 409 and "Someone else has already claimed this case." in lost.text
    assert db.get_one(Task, case.task_id).assignee_id == w.agent.id


# --- attachments ---------------------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


def test_an_oversized_file_and_an_executable_are_refused_and_nothing_is_stored(
    media: Path, client: TestClient, db: Session
) -> None:
    w = _world(db)
    case = _register(db, w)
    sign_in(client, "nurse1")
    attempts = [
        ("photo.png", PNG + b"\x00" * 1000, "The file is too large. Files of up to"),
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, "This type of file cannot be attached"),
        (
            "invoice.pdf",
            b"MZ\x90\x00" + b"\x00" * 60,
            "This type of file cannot be attached",
        ),  # renamed program
    ]
    for name, data, message in attempts:
        refused = client.post(
            f"/staff/cases/{case.id}/record",
            data={"csrf_token": _token(client, case.id), "kind": "facts", "text": "See the evidence."},
            files={"file": (name, data, "application/octet-stream")},
        )
        assert refused.status_code == 409 and message in refused.text
        assert "See the evidence." in refused.text  # the record's text is kept in the form
    assert _files(media) == []
    assert db.scalar(sa.select(sa.func.count()).select_from(CaseAttachment)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(HandlingRecord)) == 0

    ok = client.post(
        f"/staff/cases/{case.id}/record",
        data={"csrf_token": _token(client, case.id), "kind": "facts", "text": "Photo of the ward."},
        files={"file": ("ward.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    attachment = db.scalars(sa.select(CaseAttachment)).one()
    [stored] = _files(media)
    assert stored.name == attachment.stored and PNG not in stored.read_bytes()  # sealed, not plain
    served = client.get(f"/staff/cases/{case.id}/attachments/{attachment.id}")
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert db.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "case.attachment_view")
    ).one().staff_id == (w.nurse.id)
    sign_in(client, "nurse3")
    denied = client.get(f"/staff/cases/{case.id}/attachments/{attachment.id}")
    assert denied.status_code == 403 and PNG not in denied.content


# --- notifying the patient -------------------------------------------------------------------------


def _closed(db: Session, w: World) -> FeedbackCase:
    case = _register(db, w)
    cases.do_close_case(db, case=_case(db, case.id), staff_id=w.nurse.id, summary="The nurse apologised.")
    db.commit()
    return case


def test_a_notice_to_a_patient_who_opted_out_is_refused_with_the_reason_and_the_draft_kept(
    twilio: FakeTwilio,  # noqa: F811
    media: Path,
    client: TestClient,
    db: Session,
) -> None:
    w = _world(db)
    case = _closed(db, w)
    do_revoke_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    sign_in(client, "nurse1")
    page = client.get(f"/staff/cases/{case.id}").text
    assert "The nurse apologised." in page  # the default notice carries the summary
    refused = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _csrf(page), "channel": "sms", "text": "We are sorry; the nurse apologised."},
    )
    assert refused.status_code == 409
    assert "Not sent: the patient has opted out of messages on this channel." in refused.text
    assert "We are sorry; the nurse apologised." in refused.text
    assert twilio.messages == [] and db.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    assert _case(db, case.id).notice_draft == "We are sorry; the nurse apologised."
    reason = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "case.notice_refused")).one()
    assert reason == {"reason": "no_consent", "channel": "sms"}
    assert "We are sorry; the nurse apologised." in client.get(f"/staff/cases/{case.id}").text  # still there

    sent = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _token(client, case.id), "channel": "whatsapp", "text": "Outcome: apology."},
    )
    assert sent.status_code == 409 and "no valid address" in sent.text  # no WhatsApp number on record
    do_grant_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    done = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _token(client, case.id), "channel": "sms", "text": "Outcome: apology."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    [message] = twilio.messages
    assert message.params["To"] == ALICE_PHONE and message.params["Body"].startswith("Outcome: apology.")
    case = _case(db, case.id)
    assert case.notice_draft is None and case.notice_outbox_id is not None

    # the notice links to the patient's page where she rates the handling; short, as it goes by SMS
    link = re.search(r"(https?://[^/\s]+)(/s/\S+)", message.params["Body"])
    assert link is not None and len(link.group(0)) < 60
    opened = client.get(link.group(2), follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith(f"{link.group(1)}/f/")
    rating_page = client.get(opened.headers["location"].removeprefix(link.group(1))).text
    assert f'id="rate-q-{case.id}"' in rating_page
    cases.do_record_satisfaction(db, case=case, staff_id=None, satisfaction=cases.Satisfaction.SATISFIED)
    db.commit()
    again = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _token(client, case.id), "channel": "sms", "text": "One more word."},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert twilio.messages[-1].params["Body"] == "One more word."  # rated already: no link this time


# --- scoping -------------------------------------------------------------------------------------


def test_a_nurse_of_another_department_is_denied_and_it_is_audited(client: TestClient, db: Session) -> None:
    w = _world(db)
    case = _register(db, w)
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


# --- list, statistics, export ----------------------------------------------------------------------


def _several(db: Session, w: World) -> list[FeedbackCase]:
    made = [
        _register(db, w),
        _register(db, w, kind="praise", department_id=w.ortho.id),
        _register(db, w, kind="suggestion", patient_id=None),
    ]
    first, second, _ = (_case(db, c.id) for c in made)
    cases.do_set_validity(db, case=first, staff_id=w.agent.id, valid=True)
    cases.do_set_validity(db, case=second, staff_id=w.agent.id, valid=False, reason="Not our patient")
    cases.do_close_case(db, case=first, staff_id=w.agent.id, summary="done")
    cases.do_record_satisfaction(
        db, case=first, staff_id=w.agent.id, satisfaction=cases.Satisfaction.SATISFIED
    )
    db.commit()
    return made


def test_filters_statistics_and_the_excel_export(client: TestClient, db: Session) -> None:
    w = _world(db)
    first, second, _ = _several(db, w)
    sign_in(client, "agent1")
    listed = client.get("/staff/cases", params={"kind": "praise"}).text
    assert f'data-case="{second.id}"' in listed and f'data-case="{first.id}"' not in listed
    assert client.get("/staff/cases", params={"validity": "maybe"}).status_code == 400
    stats = case_queries.case_stats(db, user=w.agent, filters=case_queries.CaseFilters())
    assert stats.total == 3
    assert stats.by_kind == {"complaint": 1, "praise": 1, "suggestion": 1}
    assert stats.by_validity == {"valid": 1, "invalid": 1, "unjudged": 1}
    assert stats.by_progress == {"new": 2, "in_progress": 0, "closed": 1}
    assert stats.by_satisfaction == {"satisfied": 1, "dissatisfied": 0, "unknown": 2}
    assert stats.by_category == {"other": 3}
    nurse_stats = case_queries.case_stats(db, user=w.nurse, filters=case_queries.CaseFilters())
    assert nurse_stats.total == 2  # cardiology leads the first and the third, not the praise
    page = client.get("/staff/cases/stats", params={"progress": "new"}).text
    assert 'id="stats-total"' in page and "<strong>2</strong>" in page
    export = client.get("/staff/cases/export.xlsx", params={"kind": "complaint"})
    assert export.status_code == 200
    book = load_workbook(io.BytesIO(export.content))
    rows = list(book["Cases"].iter_rows(values_only=True))
    assert rows[0][0] == "Filters"
    assert {("kind", "complaint"), ("category", "all")} <= {
        r[:2] for r in rows
    }  # the file states its filters
    header = rows.index(next(r for r in rows if r[0] == "number"))
    assert [r[0] for r in rows[header + 1 :]] == [first.id]
    summary = list(book["Statistics"].iter_rows(values_only=True))
    assert ("total", None, 1, 1) in summary and ("kind", "Complaint", 1, 1) in summary
    assert (
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.export")).one().detail["rows"] == 1
    )


# --- the patient's page --------------------------------------------------------------------------


def test_a_patient_sends_a_complaint_from_the_mobile_page_in_their_language(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    w.alice.language = "vi"
    db.commit()
    token = make_token(get_settings(), LinkKind.FEEDBACK, w.alice.id)
    page = client.get(f"/f/{token}")
    assert page.status_code == 200 and "Khiếu nại, khen ngợi và góp ý" in page.text
    empty = client.post(f"/f/{token}", data={"kind": "complaint", "category": "waiting", "text": " "})
    assert empty.status_code == 400 and "Vui lòng viết nội dung" in empty.text
    sent = client.post(
        f"/f/{token}",
        data={
            "kind": "complaint",
            "category": "waiting",
            "department": str(w.cardio.id),
            "text": "Chờ quá lâu.",
        },
    )
    assert sent.status_code == 200 and "Ý kiến của bạn đã được tiếp nhận" in sent.text
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert (case.source, case.patient_id, case.department_id, case.text) == (
        CaseSource.MOBILE,
        w.alice.id,
        w.cardio.id,
        "Chờ quá lâu.",
    )
    assert db.get_one(Task, case.task_id).department_id == w.cardio.id
    assert client.get("/f/forged").status_code == 404
    chat_token = make_token(get_settings(), LinkKind.CHAT, w.alice.id)
    assert client.get(f"/f/{chat_token}").status_code == 404  # a chat link is not a feedback link


def test_every_case_label_and_section_string_is_translated() -> None:
    """The code names shown through label() and the patient-page section (outside the glob of
    test_every_staff_ui_string_is_translated) have zh-CN and vi entries."""
    import re

    from backend.i18n import CATALOG_DIR
    from backend.web.cases import LABELS

    used = {english for group in LABELS.values() for english in group.values()}
    section = (CATALOG_DIR.parent / "web" / "templates" / "staff" / "patient" / "_cases.html").read_text(
        "utf-8"
    )
    used |= set(re.findall(r'_\("([^"]+)"\)', section))
    for lang in ("zh-CN", "vi"):
        gettext = translations(lang).gettext
        assert [u for u in sorted(used) if gettext(u) == u] == [], lang

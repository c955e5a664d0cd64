"""The staff message log and reply triage pages: filters, scoping, audit, CSRF, query counts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import (
    AttemptOutcome,
    AuditEvent,
    Department,
    EncounterKind,
    Message,
    OutboxAttempt,
    OutboxItem,
    OutboxStatus,
    Patient,
    Role,
    StaffUser,
)
from backend.services.message_log import message_log as log_page
from backend.services.message_log import parse_log_filters
from backend.services.replies import (
    do_mark_handled,
    do_mark_invalid,
    parse_reply_filters,
    replies,
)
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import sign_in

DAY = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
ALICE_PHONE = "+8613800138000"
TYPED_PHONE = "138 0013 8000"  # how a nurse types Alice's number


@dataclass
class World:
    cardio: Department
    ortho: Department
    agent: StaffUser  # sees every department
    nurse: StaffUser  # cardiology only
    doctor: StaffUser  # queued some of the messages
    alice: Patient  # cardiology discharge
    bob: Patient  # orthopaedics outpatient
    carol: Patient  # cardiology once, orthopaedics latest
    items: dict[str, OutboxItem]
    replies: dict[str, Message]


def _world(db: Session) -> World:
    cardio, ortho = factories.department(db), factories.department(db)
    agent = factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    doctor = factories.staff(db, username="doctor1", role=Role.DOCTOR, departments=[cardio])
    alice = factories.patient(db, name="Alice Wang", phone=ALICE_PHONE, mrn="MRN-ALICE", dept=cardio)
    bob = factories.patient(db, name="Bob Li")
    factories.encounter(db, bob, ortho, kind=EncounterKind.OUTPATIENT)
    carol = factories.patient(db, name="Carol Ng")
    factories.encounter(db, carol, cardio, started=DAY - timedelta(days=60))
    factories.encounter(db, carol, ortho, started=DAY - timedelta(days=2))
    sms_a = factories.conversation(db, alice, Channel.SMS)
    wechat_b = factories.conversation(db, bob, Channel.WECHAT)
    whatsapp_c = factories.conversation(db, carol, Channel.WHATSAPP)
    items = {
        "a1": factories.outbox_item(
            db,
            sms_a,
            at=DAY + timedelta(days=1),
            template_key="discharge_d3",
            staff_id=doctor.id,
            status=OutboxStatus.SENT,
        ),
        "b1": factories.outbox_item(
            db,
            wechat_b,
            at=DAY + timedelta(days=2),
            template_key="discharge_d3",
            status=OutboxStatus.SUPPRESSED,
            reason="no_consent",
        ),
        "c1": factories.outbox_item(db, whatsapp_c, at=DAY + timedelta(days=3), staff_id=doctor.id),
    }
    found = {
        "r1": factories.reply(db, sms_a, "I feel fine", at=DAY + timedelta(days=1, hours=1)),
        "r3": factories.reply(db, wechat_b, "ok thanks", at=DAY + timedelta(days=2, hours=1)),
    }
    items["a2"] = factories.outbox_item(
        db,
        sms_a,
        at=DAY + timedelta(days=4),
        template_key="reminder",
        status=OutboxStatus.FAILED,
        reason="provider_error",
        attempts=3,
        last_error="30007 carrier filtered",
    )
    found["r2"] = factories.reply(db, sms_a, "chest pain again", at=DAY + timedelta(days=4, hours=1))
    found["r4"] = factories.reply(
        db, factories.conversation(db, None, Channel.SMS), "who is this", at=DAY + timedelta(days=5)
    )
    factories.reply(db, factories.conversation(db, alice, Channel.WEBCHAT), "web chat is not a channel reply")
    db.commit()
    return World(cardio, ortho, agent, nurse, doctor, alice, bob, carol, items, found)


def _names(w: World, rows: list[Any], attr: str) -> list[str]:
    ids = {v.id: k for k, v in (w.items if attr == "item" else w.replies).items()}
    return [ids[getattr(r, attr).id] for r in rows]


# --- outbound log: filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ["a2", "c1", "b1", "a1"]),  # newest first
        ({"start": "2026-11-03", "end": "2026-11-04"}, ["c1", "b1"]),  # both dates inclusive
        ({"patient": "alice"}, ["a2", "a1"]),
        ({"patient": "mrn-alice"}, ["a2", "a1"]),  # a whole MRN, through its blind index
        ({"phone": TYPED_PHONE}, ["a2", "a1"]),
        ({"channel": "wechat"}, ["b1"]),
        ({"department": "{cardio}"}, ["a2", "a1"]),  # Carol's latest encounter is orthopaedics
        ({"department": "{ortho}"}, ["c1", "b1"]),
        ({"template": "discharge_d3"}, ["b1", "a1"]),
        ({"sender": "system"}, ["a2", "b1"]),
        ({"sender": "{doctor}"}, ["c1", "a1"]),
        ({"status": "failed"}, ["a2"]),
        ({"status": "failed", "channel": "wechat"}, []),
    ],
)
def test_each_log_filter_narrows_the_list(db: Session, values: dict[str, str], expected: list[str]) -> None:
    w = _world(db)
    ids = {"cardio": w.cardio.id, "ortho": w.ortho.id, "doctor": w.doctor.id}
    filters = parse_log_filters({k: v.format(**ids) for k, v in values.items()})
    assert _names(w, log_page(db, user=w.agent, filters=filters).rows, "item") == expected


def test_log_rows_carry_masked_phone_reason_attempts_and_error_code(db: Session) -> None:
    w = _world(db)
    row = log_page(db, user=w.agent, filters=parse_log_filters({"status": "failed"})).rows[0]
    assert (row.patient_name, row.phone, row.sender) == ("Alice Wang", "+86138****8000", None)
    assert (row.item.reason, row.item.attempts, row.error_code) == ("provider_error", 3, "30007")


def test_log_rows_show_the_attempt_history_even_after_success(client: TestClient, db: Session) -> None:
    w = _world(db)
    item = w.items["a1"]
    for n, (outcome, code) in enumerate(
        [(AttemptOutcome.AMBIGUOUS, "timeout"), (AttemptOutcome.FOUND, None)]
    ):
        db.add(
            OutboxAttempt(
                outbox_id=item.id,
                started_at=DAY + timedelta(minutes=n),
                outcome=outcome,
                code=code,
                duration_ms=1200,
            )
        )
    db.commit()
    [row] = [
        r for r in log_page(db, user=w.agent, filters=parse_log_filters({})).rows if r.item.id == item.id
    ]
    assert [(a.outcome, a.code) for a in row.history] == [
        (AttemptOutcome.AMBIGUOUS, "timeout"),
        (AttemptOutcome.FOUND, None),
    ]
    sign_in(client, "agent1")
    client.cookies.set("lang", "vi")
    page = client.get("/staff/messages", headers={"Accept-Language": "vi"}).text
    history = page[page.index(f'data-outbox="{item.id}"') :].split("</tr>")[0]
    # outcomes in words, the provider's own code as it came
    assert "Outcome unknown" in history and "timeout</code>" in history and "Found at the provider" in history
    assert "1200" in history
    assert ALICE_PHONE not in history


def test_log_pages_by_keyset_without_gaps_or_repeats(db: Session) -> None:
    w = _world(db)
    conv = factories.conversation(db, w.alice, Channel.SMS)
    for n in range(7):  # several at the same instant: the id breaks the tie
        factories.outbox_item(db, conv, at=DAY + timedelta(days=10, minutes=n // 3))
    db.commit()
    seen: list[int] = []
    page = log_page(db, user=w.agent, filters=parse_log_filters({}), limit=3)
    while True:
        seen += [r.item.id for r in page.rows]
        if page.next_cursor is None:
            break
        page = log_page(db, user=w.agent, filters=parse_log_filters({}), after=page.next_cursor, limit=3)
    assert len(seen) == 11 and len(set(seen)) == 11
    assert seen[-4:] == [w.items[k].id for k in ("a2", "c1", "b1", "a1")]


def test_a_ward_nurse_does_not_see_another_departments_patients(client: TestClient, db: Session) -> None:
    w = _world(db)
    # Carol has had a cardiology encounter, so she stays visible even though her latest is elsewhere.
    assert _names(w, log_page(db, user=w.nurse, filters=parse_log_filters({})).rows, "item") == [
        "a2",
        "c1",
        "a1",
    ]
    sign_in(client, "nurse1")
    page = client.get("/staff/messages").text
    assert "Alice Wang" in page and "Carol Ng" in page and "Bob Li" not in page
    assert "Bob Li" not in client.get("/staff/messages", params={"channel": "wechat"}).text
    assert "Bob Li" not in client.get("/staff/replies").text


def test_phone_search_finds_by_blind_index_and_the_number_is_never_audited(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    sign_in(client, "agent1")
    page = _post_search(client, "/staff/messages", {"phone": TYPED_PHONE})
    assert page.status_code == 200
    shown = re.findall(r'data-outbox="(\d+)"', page.text)
    assert shown == [str(w.items["a2"].id), str(w.items["a1"].id)]
    assert "+86138****8000" in page.text
    db.expire_all()
    views = list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "messages.view")))
    assert len(views) == 2  # the page the form came from, and the search
    assert views[-1].detail["filters"]["phone_search"] is True
    assert views[-1].detail["patients"] == [w.alice.id]
    every_row = json.dumps([(e.action, e.detail) for e in db.scalars(sa.select(AuditEvent))])
    for form in (TYPED_PHONE, ALICE_PHONE, "13800138000", "0013"):
        assert form not in every_row


def test_sensitive_filters_are_not_read_from_the_url(client: TestClient, db: Session) -> None:
    _world(db)
    sign_in(client, "agent1")
    page = client.get("/staff/messages", params={"patient": "Bob", "phone": TYPED_PHONE}).text
    assert len(re.findall(r"data-outbox=", page)) == 4  # ignored: names and numbers only come by POST


def test_each_log_view_writes_one_audit_row_with_its_filters(client: TestClient, db: Session) -> None:
    w = _world(db)
    sign_in(client, "agent1")
    client.get("/staff/messages", params={"channel": "sms", "status": "failed"})
    db.expire_all()
    (view,) = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "messages.view"))
    assert view.staff_id == w.agent.id
    assert view.detail["filters"]["channel"] == "sms" and view.detail["filters"]["status"] == "failed"
    assert view.detail["patients"] == [w.alice.id]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/staff/messages", {"start": "2026-13-45"}, "From"),
        ("/staff/messages", {"end": "yesterday"}, "Until"),
        ("/staff/messages", {"channel": "pigeon"}, "Channel"),
        ("/staff/messages", {"channel": "webchat"}, "Channel"),  # not an outbox channel
        ("/staff/messages", {"status": "lost"}, "Status"),
        ("/staff/messages", {"sender": "someone"}, "Sender"),
        ("/staff/messages", {"department": "cardio"}, "Department"),
        ("/staff/messages", {"after": "not-a-cursor"}, "Next page"),
        ("/staff/replies", {"patient_type": "vip"}, "Patient type"),
        ("/staff/replies", {"handled": "maybe"}, "Handled"),
        ("/staff/replies", {"invalid": "2"}, "Invalid reply"),
    ],
)
def test_unknown_filter_values_get_a_clear_400(
    client: TestClient, db: Session, path: str, params: dict[str, str], field: str
) -> None:
    _world(db)
    sign_in(client, "agent1")
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert re.search(
        r'id="filter-error">This filter value cannot be used: ' + re.escape(field), response.text
    )


def test_a_typed_phone_that_is_no_number_gets_a_400(client: TestClient, db: Session) -> None:
    _world(db)
    sign_in(client, "agent1")
    response = _post_search(client, "/staff/messages", {"phone": "call me maybe"})
    assert response.status_code == 400 and "This filter value cannot be used: Phone" in response.text


def test_a_filter_search_without_the_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    _world(db)
    sign_in(client, "agent1")
    assert (
        client.post("/staff/messages", data={"phone": TYPED_PHONE, "csrf_token": "forged"}).status_code == 403
    )
    assert client.post("/staff/replies", data={"content": "pain"}).status_code == 403


# --- inbound replies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ["r4", "r2", "r3", "r1"]),  # external channels only: the web chat message is not listed
        ({"patient_type": "outpatient"}, ["r3"]),
        ({"patient_type": "discharge"}, ["r2", "r1"]),
        ({"department": "{cardio}"}, ["r2", "r1"]),
        ({"department": "{ortho}"}, ["r3"]),
        ({"content": "PAIN"}, ["r2"]),
        ({"content": "%"}, []),  # a LIKE wildcard is searched for literally
        ({"template": "discharge_d3"}, ["r3", "r1"]),  # r2 answers the later reminder
        ({"template": "reminder"}, ["r2"]),
        ({"handled": "yes"}, ["r1"]),
        ({"handled": "no"}, ["r4", "r2", "r3"]),
        ({"invalid": "yes"}, ["r4"]),
        ({"invalid": "no", "handled": "no"}, ["r2", "r3"]),
    ],
)
def test_each_reply_filter_narrows_the_list(db: Session, values: dict[str, str], expected: list[str]) -> None:
    w = _world(db)
    do_mark_handled(db, message=w.replies["r1"], staff_id=w.agent.id)
    do_mark_invalid(db, message=w.replies["r4"], staff_id=w.agent.id)
    db.commit()
    ids = {"cardio": w.cardio.id, "ortho": w.ortho.id}
    filters = parse_reply_filters({k: v.format(**ids) for k, v in values.items()})
    assert _names(w, replies(db, user=w.agent, filters=filters).rows, "message") == expected


def test_reply_rows_show_the_template_they_answer_and_the_patient(db: Session) -> None:
    w = _world(db)
    rows = {r.message.id: r for r in replies(db, user=w.agent, filters=parse_reply_filters({})).rows}
    r2, r4 = rows[w.replies["r2"].id], rows[w.replies["r4"].id]
    assert (r2.template_key, r2.patient_name, r2.phone) == ("reminder", "Alice Wang", "+86138****8000")
    assert (r2.patient_type, r2.department_id) == (EncounterKind.DISCHARGE, w.cardio.id)
    assert (r4.patient_id, r4.template_key) == (None, None)  # a sender no record matches
    nurse_rows = replies(db, user=w.nurse, filters=parse_reply_filters({})).rows
    assert _names(w, nurse_rows, "message") == ["r2", "r1"]  # no unknown senders, no orthopaedics


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _post_search(client: TestClient, path: str, data: dict[str, str]) -> Any:
    token = _csrf(client.get(path).text)
    return client.post(path, data={**data, "csrf_token": token})


def _reply(db: Session, message_id: int) -> Message:
    db.expire_all()
    found = db.get(Message, message_id)
    assert found is not None
    return found


def test_marking_a_reply_handled_records_who_and_when_and_audits(client: TestClient, db: Session) -> None:
    w = _world(db)
    r2 = w.replies["r2"].id
    sign_in(client, "nurse1")
    token = _csrf(client.get("/staff/replies").text)
    done = client.post(
        f"/staff/replies/{r2}/handled",
        data={"csrf_token": token, "back": "handled=no&content=secret&evil=1"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/staff/replies?handled=no"
    reply = _reply(db, r2)
    assert reply.handled_by_staff_id == w.nurse.id and reply.handled_at is not None
    assert reply.invalid_reply is False
    (event,) = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "reply.handled"))
    assert (event.staff_id, event.patient_id, event.subject_type, event.subject_id) == (
        w.nurse.id,
        w.alice.id,
        "message",
        r2,
    )
    assert "Nurse1" in client.get("/staff/replies", params={"handled": "yes"}).text


def test_marking_a_reply_invalid_sets_the_flag_and_audits(client: TestClient, db: Session) -> None:
    w = _world(db)
    r1 = w.replies["r1"].id
    sign_in(client, "nurse1")
    token = _csrf(client.get("/staff/replies").text)
    assert client.post(f"/staff/replies/{r1}/invalid", data={"csrf_token": token}).status_code == 200
    reply = _reply(db, r1)
    assert reply.invalid_reply is True and reply.handled_at is None
    assert db.scalars(sa.select(AuditEvent.action).where(AuditEvent.subject_id == r1)).all() == [
        "reply.invalid"
    ]


def test_marking_twice_keeps_the_first_handler(db: Session) -> None:
    w = _world(db)
    message = w.replies["r1"]
    assert do_mark_handled(db, message=message, staff_id=w.nurse.id, now=DAY) is True
    assert do_mark_handled(db, message=message, staff_id=w.agent.id) is False
    assert (message.handled_by_staff_id, message.handled_at) == (w.nurse.id, DAY)


@pytest.mark.parametrize("action", ["handled", "invalid"])
def test_a_triage_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, db: Session, action: str
) -> None:
    w = _world(db)
    r1 = w.replies["r1"].id
    sign_in(client, "nurse1")
    assert client.post(f"/staff/replies/{r1}/{action}", data={}).status_code == 422
    assert client.post(f"/staff/replies/{r1}/{action}", data={"csrf_token": "forged"}).status_code == 403
    reply = _reply(db, r1)
    assert (reply.handled_at, reply.handled_by_staff_id, reply.invalid_reply) == (None, None, False)
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action.like("reply.%"))) == 0


def test_a_nurse_cannot_triage_another_departments_reply(client: TestClient, db: Session) -> None:
    w = _world(db)
    r3 = w.replies["r3"].id  # Bob, orthopaedics
    sign_in(client, "nurse1")
    token = _csrf(client.get("/staff/replies").text)
    assert client.post(f"/staff/replies/{r3}/handled", data={"csrf_token": token}).status_code == 404
    assert _reply(db, r3).handled_at is None
    assert db.scalars(sa.select(AuditEvent.action).where(AuditEvent.subject_id == r3)).all() == [
        "reply.denied"
    ]


# --- query counts --------------------------------------------------------------------------------


def _fill(db: Session, w: World, n: int) -> None:
    """n more patients, each with an encounter, a queued message and a reply."""
    for _ in range(n):
        person = factories.patient(db, dept=w.cardio)
        conv = factories.conversation(db, person, Channel.SMS)
        factories.outbox_item(db, conv, template_key="bulk", staff_id=w.doctor.id)
        factories.reply(db, conv, "yes")
    db.commit()


@pytest.mark.parametrize("path", ["/staff/messages", "/staff/replies"])
def test_a_full_page_costs_the_same_queries_as_a_short_one(
    client: TestClient, db: Session, statements: list[str], path: str
) -> None:
    w = _world(db)
    sign_in(client, "nurse1")
    client.get(path)  # warm up: first-request work is not the page's
    statements.clear()
    short = client.get(path)
    short_count = len(statements)
    _fill(db, w, 60)
    statements.clear()
    full = client.get(path)
    assert short.status_code == full.status_code == 200
    assert len(re.findall(r"data-(?:outbox|message)=", full.text)) == 50 and "Next page" in full.text
    assert len(statements) == short_count, statements

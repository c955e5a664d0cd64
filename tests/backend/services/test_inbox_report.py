"""Inbox gaps: the ward filter, keyset paging of the queue, and the task-event report (hand-off rate,
first-response and resolution times per queue and agent), on both databases."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import ResolutionCode, Role, TaskKind, Ward
from backend.models.base import utcnow
from backend.services import inbox, inbox_queue
from backend.services.message_log import InvalidFilter
from backend.services.task_report import task_report
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import sign_in


def _ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-task="(\d+)"', page)]


def test_the_ward_filter_keeps_tasks_of_patients_on_the_ward(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    ward, other = (
        Ward(department_id=dept.id, code="W1", name="Ward 1"),
        Ward(department_id=dept.id, code="W2", name="Ward 2"),
    )
    db.add_all([ward, other])
    db.flush()
    on, off = factories.patient(db, name="On Ward"), factories.patient(db, name="Off Ward")
    factories.encounter(db, on, dept).ward_id = ward.id
    factories.encounter(db, off, dept).ward_id = other.id
    mine = factories.task(db, kind=TaskKind.CALLBACK, person=on, dept=dept)
    factories.task(db, kind=TaskKind.CALLBACK, person=off, dept=dept)
    db.commit()
    sign_in(client, "agent1")
    page = client.get(f"/staff/inbox?ward={ward.id}")
    assert page.status_code == 200 and _ids(page.text) == [mine.id]
    assert f'<option value="{ward.id}" selected>Ward 1</option>' in page.text
    assert client.get("/staff/inbox?ward=first").status_code == 400


def test_the_queue_pages_on_by_due_time(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    now = utcnow()
    person = factories.patient(db, dept=dept)
    tasks = [
        factories.task(
            db, kind=TaskKind.CALLBACK, person=person, dept=dept, now=now + timedelta(minutes=i % 7)
        )
        for i in range(61)
    ]
    db.commit()
    expected = [t.id for t in sorted(tasks, key=lambda t: (t.due_at, t.id))]
    sign_in(client, "agent1")
    first = client.get("/staff/inbox?queue=callback")
    assert _ids(first.text) == expected[:50]
    link = html.unescape(re.search(r'href="(/staff/inbox\?[^"]+)" rel="next"', first.text).group(1))  # type: ignore[union-attr]
    assert "queue=callback" in link and "%2B00%3A00" in link  # the cursor's zone survives the URL
    second = client.get(link)
    assert second.status_code == 200 and _ids(second.text) == expected[50:]
    assert 'rel="next"' not in second.text
    assert client.get("/staff/inbox?after=yesterday").status_code == 400


def test_parse_filters_reads_ward_and_cursor() -> None:
    f = inbox_queue.parse_filters({"ward": "3", "after": "2026-12-01T10:00:00+00:00|42"})
    assert f.ward_id == 3 and f.after is not None and f.after.id == 42
    with pytest.raises(InvalidFilter):
        inbox_queue.parse_filters({"after": "2026-12-01T10:00:00|42"})  # a naive time


def test_the_report_measures_hand_offs_and_times_per_queue_and_agent(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    ann = factories.staff(db, username="ann", role=Role.SERVICE_AGENT)
    ben = factories.staff(db, username="ben", role=Role.SERVICE_AGENT)
    start = utcnow() - timedelta(hours=5)
    people = [factories.patient(db, dept=dept) for _ in range(4)]
    convs = [factories.conversation(db, p, Channel.WEBCHAT) for p in people]
    for conv in convs:  # four conversations with a patient message; two handed off
        factories.reply(db, conv, "hello", at=start)
    h1 = factories.task(db, person=people[0], dept=dept, conv=convs[0], now=start)
    h2 = factories.task(db, person=people[1], dept=dept, conv=convs[1], now=start)
    cb = factories.task(db, kind=TaskKind.CALLBACK, person=people[2], dept=dept, now=start)
    inbox.do_claim(db, task=h1, staff_id=ann.id, now=start + timedelta(minutes=10))
    inbox.do_close(
        db,
        task=h1,
        staff_id=ann.id,
        code=ResolutionCode.RESOLVED,
        summary="ok",
        now=start + timedelta(minutes=40),
    )
    inbox.do_add_note(db, task=h2, staff_id=ben.id, text="looking", now=start + timedelta(minutes=30))
    inbox.do_escalate(db, task=cb, now=start + timedelta(minutes=1))  # the system: not a response
    inbox.do_close(
        db,
        task=cb,
        staff_id=ben.id,
        code=ResolutionCode.RESOLVED,
        summary="called",
        now=start + timedelta(minutes=120),
    )
    db.commit()
    report = task_report(db, user=ann, start=start - timedelta(minutes=1), end=utcnow())
    assert (report.conversations, report.handed_off, report.hand_off_rate, report.bot_resolution_rate) == (
        4,
        2,
        0.5,
        0.5,
    )
    handoff = report.by_queue["handoff"]
    assert handoff.tasks == 2 and sorted(handoff.first_response.minutes) == pytest.approx([10, 30])
    assert handoff.first_response.median == pytest.approx(20)
    assert handoff.resolution.minutes == pytest.approx([40])
    callback = report.by_queue["callback"]
    assert callback.first_response.minutes == pytest.approx([120])  # the escalation did not count
    assert report.by_queue["complaint"].tasks == 0
    assert report.by_agent["Ann"].first_response.minutes == pytest.approx([10])
    assert report.by_agent["Ben"].resolution.minutes == pytest.approx([120])
    assert sorted(report.by_agent["Ben"].first_response.minutes) == pytest.approx([30, 120])
    sign_in(client, "ann")
    page = client.get("/staff/inbox/report")
    assert page.status_code == 200 and '<dd id="hand-off-rate">50.0 %</dd>' in page.text
    assert client.get("/staff/inbox/report?start=soon").status_code == 400

"""@mentions in task notes across departments: the mentioned colleague is told ("mentioned me", home page),
may open that one task (audited) and no other of that department, and opening it reads the mention; on
both databases."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, TaskMention
from backend.services import inbox, inbox_queue, mentions
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.test_inbox import _token, _world


def _shown(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-task="(\d+)"', html)}


def _mentions_widget(html: str) -> str:
    return html.split('id="widget-mentions"', 1)[1].split("</section>", 1)[0]


def _live_counts(client: TestClient) -> dict[str, int]:
    """The first counts event of the inbox's live stream (STREAM_SECONDS is 0 in these tests)."""
    with client.stream("GET", "/staff/inbox/events") as response:
        body = "".join(response.iter_text())
    data = body.split("event: counts\n", 1)[1].split("data: ", 1)[1].split("\n", 1)[0]
    counts: dict[str, int] = json.loads(data)
    return counts


@pytest.fixture(autouse=True)
def _short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.web import inbox as inbox_web

    monkeypatch.setattr(inbox_web, "STREAM_SECONDS", 0.0)  # a stream ends after its first event


def _audit(db: Session, action: str, staff_id: int) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.staff_id == staff_id)
            .order_by(AuditEvent.id)
        )
    )


def test_a_colleague_of_another_department_mentioned_on_a_task_is_told_and_may_open_only_that_task(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    task, other = w.tasks["alice"], w.tasks["abnormal"]  # both cardiology; nurse2 is orthopaedics
    sign_in(client, "nurse1")
    posted = client.post(
        f"/staff/inbox/{task.id}/note",
        data={"csrf_token": _token(client, task.id), "text": "@nurse2 could you check the cast?"},
        follow_redirects=False,
    )
    assert posted.status_code == 303

    sign_in(client, "nurse2")
    assert _live_counts(client)["mentioned"] == 1  # pushed to her open inbox
    assert 'data-count="mentioned">1<' in client.get("/staff/inbox").text
    assert _shown(client.get("/staff/inbox?mentioned=me").text) == {task.id}
    assert task.id not in _shown(client.get("/staff/inbox").text)  # her own queues stay her department's
    widget = _mentions_widget(client.get("/staff").text)
    assert f'href="/staff/inbox/{task.id}"' in widget and task.title in widget
    assert "Nurse1" in widget and "unread" in widget

    page = client.get(f"/staff/inbox/{task.id}")
    assert page.status_code == 200 and "could you check the cast?" in page.text and "Alice Wang" in page.text
    [view] = [a for a in _audit(db, "task.view", w.ortho_nurse.id) if a.subject_id == task.id]
    assert view.patient_id == w.alice.id

    assert client.get(f"/staff/inbox/{other.id}").status_code == 403
    [denied] = _audit(db, "task.view_denied", w.ortho_nurse.id)
    assert denied.subject_id == other.id
    assert client.get(f"/staff/patients/{w.alice.id}").status_code == 403  # the record stays scoped
    assert [a.patient_id for a in _audit(db, "patient.view_denied", w.ortho_nurse.id)] == [w.alice.id]

    # opened: read, no longer in "mentioned me", still on the home page as read
    assert _shown(client.get("/staff/inbox?mentioned=me").text) == set()
    assert _live_counts(client)["mentioned"] == 0
    widget = _mentions_widget(client.get("/staff").text)
    assert f'href="/staff/inbox/{task.id}"' in widget and "unread" not in widget
    db.expire_all()
    [mention] = db.scalars(sa.select(TaskMention)).all()
    assert (mention.task_id, mention.staff_id, mention.by_id) == (task.id, w.ortho_nurse.id, w.nurse.id)
    assert mention.read_at is not None
    # the home page showed the task: audited with its patient
    assert w.alice.id in _audit(db, "home.view", w.ortho_nurse.id)[-1].detail["patients"]


def test_she_may_add_her_own_note_to_the_task_she_was_mentioned_on(client: TestClient, db: Session) -> None:
    w = _world(db)
    task = w.tasks["alice"]
    inbox.do_add_note(db, task=task, staff_id=w.nurse.id, text="@nurse2 your view?")
    db.commit()
    sign_in(client, "nurse2")
    answer = client.post(
        f"/staff/inbox/{task.id}/note",
        data={"csrf_token": _token(client, task.id), "text": "@nurse1 looks fine"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    sign_in(client, "nurse1")
    assert _shown(client.get("/staff/inbox?mentioned=me").text) == {task.id}
    assert "looks fine" in client.get(f"/staff/inbox/{task.id}").text


def test_a_colleague_mentioned_from_another_department_may_read_and_note_but_not_handle_the_task(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    task = w.tasks["alice"]  # cardiology, an SMS conversation; nurse2 is orthopaedics
    inbox.do_add_note(db, task=task, staff_id=w.nurse.id, text="@nurse2 your view?")
    db.commit()
    sign_in(client, "nurse2")
    page = client.get(f"/staff/inbox/{task.id}").text
    assert 'id="mentioned-only"' in page
    for form in ("claim", "assign", "transfer", "close", "reply"):
        assert f'action="/staff/inbox/{task.id}/{form}"' not in page
    assert f'action="/staff/inbox/{task.id}/note"' in page

    events_before = len(inbox_queue.events_of(db, task.id))
    token = _token(client, task.id)
    attempts = {
        "claim": {},
        "assign": {"assignee": str(w.ortho_nurse.id)},
        "transfer": {"department": str(w.ortho.id)},
        "close": {"code": "resolved", "summary": "done"},
        "reply": {"text": "Hello from orthopaedics"},
        "hand-back": {},
    }
    for verb, form in attempts.items():
        refused = client.post(f"/staff/inbox/{task.id}/{verb}", data={"csrf_token": token, **form})
        assert refused.status_code == 409, verb
        assert "you can read it and add notes" in refused.text, verb
    db.expire_all()
    after = db.get_one(type(task), task.id)
    assert (after.status, after.assignee_id, after.department_id) == (task.status, None, w.cardio.id)
    assert len(inbox_queue.events_of(db, task.id)) == events_before  # nothing happened to it
    assert "Hello from orthopaedics" not in client.get(f"/staff/inbox/{task.id}").text  # nothing sent
    noted = client.post(
        f"/staff/inbox/{task.id}/note", data={"csrf_token": token, "text": "a cast check is enough"}
    )
    assert noted.status_code == 200 and "a cast check is enough" in noted.text


def test_a_mention_of_an_unknown_or_inactive_username_or_of_oneself_gives_nothing(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    gone = factories.staff(db, username="gone1", departments=[w.ortho])
    gone.active = False
    db.commit()
    task = w.tasks["alice"]
    sign_in(client, "nurse1")
    client.post(
        f"/staff/inbox/{task.id}/note",
        data={"csrf_token": _token(client, task.id), "text": "@nobody @gone1 @nurse1 anyone?"},
    )
    db.expire_all()
    assert "anyone?" in client.get(f"/staff/inbox/{task.id}").text  # the note itself is kept
    assert db.scalars(sa.select(TaskMention)).all() == []
    assert inbox_queue.task_for(db, user=db.get_one(type(gone), gone.id), task_id=task.id) is None
    assert _shown(client.get("/staff/inbox?mentioned=me").text) == set()
    sign_in(client, "nurse2")
    assert _shown(client.get("/staff/inbox?mentioned=me").text) == set()
    assert client.get(f"/staff/inbox/{task.id}").status_code == 403
    assert "No one has mentioned you." in _mentions_widget(client.get("/staff").text)


def test_a_bad_mentioned_filter_value_gets_a_400(client: TestClient, db: Session) -> None:
    _world(db)
    sign_in(client, "nurse2")
    page = client.get("/staff/inbox?mentioned=someone")
    assert page.status_code == 400 and 'id="filter-error"' in page.text and "Mentioned me" in page.text


def test_the_latest_mentions_come_newest_first_and_opening_reads_only_that_tasks(db: Session) -> None:
    w = _world(db)
    first, second = w.tasks["alice"], w.tasks["abnormal"]
    inbox.do_add_note(db, task=first, staff_id=w.nurse.id, text="@nurse2 one", now=w.now)
    inbox.do_add_note(
        db, task=second, staff_id=w.manager.id, text="@nurse2 two", now=w.now + timedelta(minutes=1)
    )
    db.commit()
    items = mentions.latest(db, w.ortho_nurse)
    assert [(i.task.id, i.by_name) for i in items] == [(second.id, "Manager1"), (first.id, "Nurse1")]
    assert all(i.unread for i in items)
    assert mentions.do_mark_read(db, task_id=first.id, staff_id=w.ortho_nurse.id) == 1
    db.commit()
    unread = {i.task.id for i in mentions.latest(db, w.ortho_nurse) if i.unread}
    assert unread == {second.id}
    rows = inbox_queue.task_rows(
        db, user=w.ortho_nurse, filters=inbox_queue.parse_filters({"mentioned": "me"}), now=w.now
    )
    assert [r.task.id for r in rows] == [second.id]

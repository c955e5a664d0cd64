"""The inbox as a conversation tool: safe previews, unread per staff member, urgency shown in words, SLA
countdowns, CSV export, the two-pane task page with its patient sidebar and neighbours, and the staff
language kept on her account; on both databases."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffUser, Task, TaskPriority, TaskRead
from backend.models.base import utcnow
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.inbox_view import age_band, safe_preview
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


def test_a_preview_masks_phone_numbers_and_folds_long_text() -> None:
    assert safe_preview("call me on +86 138-0013-8000 please") == "call me on *** please"
    assert safe_preview("my number is 13800138000") == "my number is ***"
    assert (
        safe_preview("pain 8 since 3 days, temp 39.5") == "pain 8 since 3 days, temp 39.5"
    )  # short numbers stay
    long = safe_preview("word " * 40)
    assert len(long) == 80 and long.endswith("…")
    assert safe_preview("two\n\nlines") == "two lines"


def test_an_age_band_hides_the_birth_date() -> None:
    today = date(2026, 12, 7)
    assert age_band(date(1960, 5, 17), today) == "65–79"
    assert age_band(date(2010, 1, 1), today) == "0–17"
    assert age_band(date(1940, 1, 1), today) == "80+"
    assert age_band(None, today) == ""


def _world(db: Session) -> dict[str, object]:
    cardio = factories.department(db)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    colleague = factories.staff(db, username="nurse2", departments=[cardio])
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    conv = factories.conversation(db, alice, Channel.SMS)
    now = utcnow()
    factories.reply(db, conv, "I feel dizzy, call 13800138000", at=now - timedelta(minutes=3))
    urgent = factories.task(db, person=alice, dept=cardio, conv=conv, priority=TaskPriority.URGENT)
    bob = factories.patient(db, name="Bob Li", dept=cardio)
    calm = factories.task(db, person=bob, dept=cardio, priority=TaskPriority.LOW)
    do_grant_consent(db, patient_id=alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test")
    do_revoke_consent(
        db, patient_id=alice.id, purpose=ConsentPurpose.MARKETING, channel=Channel.SMS, source="sms:STOP"
    )
    db.commit()
    return {"nurse": nurse, "colleague": colleague, "conv": conv, "urgent": urgent, "calm": calm}


def _row(page: str, task: Task) -> str:
    match = re.search(rf'<tr data-task="{task.id}".*?</tr>', page, re.S)
    assert match, f"task {task.id} is not in the list"
    return match.group(0)


def test_the_list_shows_previews_unread_urgency_and_countdowns(client: TestClient, db: Session) -> None:
    w = _world(db)
    urgent, calm = w["urgent"], w["calm"]
    assert isinstance(urgent, Task) and isinstance(calm, Task)
    assert sign_in(client, "nurse1").status_code == 303
    page = client.get("/staff/inbox").text
    row = _row(page, urgent)
    assert "I feel dizzy, call ***" in row and "13800138000" not in page  # the preview, never the number
    assert 'class="unread priority-urgent"' in row and "1 unread" in row
    assert "Urgent</span>" in row and "⚠" not in row  # urgency in words (and an icon kept from readers)
    assert re.search(r"due in \d+ (h \d+ )?min", row)
    assert "unread" in _row(page, calm)  # never opened: new to her

    opened = client.get(f"/staff/inbox/{urgent.id}")
    assert opened.status_code == 200
    after = client.get("/staff/inbox").text
    assert "unread" not in _row(after, urgent)  # she has read it
    assert "unread" in _row(after, calm)
    factories.reply(db, db.get(type(w["conv"]), w["conv"].id), "still dizzy")  # type: ignore[union-attr, arg-type]
    db.commit()
    assert "1 unread" in _row(client.get("/staff/inbox").text, urgent)  # a new message is unread again

    # the colleague's markers are her own
    client.cookies.clear()
    assert sign_in(client, "nurse2").status_code == 303
    assert "2 unread" in _row(client.get("/staff/inbox").text, urgent)
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(TaskRead)) == 1


def test_an_overdue_task_counts_up(client: TestClient, db: Session) -> None:
    w = _world(db)
    calm = w["calm"]
    assert isinstance(calm, Task)
    db.execute(sa.update(Task).where(Task.id == calm.id).values(due_at=utcnow() - timedelta(minutes=65)))
    db.commit()
    assert sign_in(client, "nurse1").status_code == 303
    row = _row(client.get("/staff/inbox").text, calm)
    assert re.search(r"overdue 1 h [5-7] min", row), row


def test_the_export_has_the_rows_and_is_audited(client: TestClient, db: Session) -> None:
    w = _world(db)
    assert sign_in(client, "nurse1").status_code == 303
    response = client.get("/staff/inbox/export.csv?priority=urgent")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["task_id"] for r in rows] == [str(w["urgent"].id)]  # type: ignore[attr-defined]
    assert rows[0]["priority"] == "urgent" and rows[0]["patient"] == "Alice Wang"
    assert "dizzy" not in response.text  # no message text leaves in a file
    bad = client.get("/staff/inbox/export.csv?priority=nonsense")
    assert bad.status_code == 400 and "priority" in bad.text
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "inbox.export")) == 1


def test_the_task_page_has_the_list_the_patient_and_its_neighbours(client: TestClient, db: Session) -> None:
    w = _world(db)
    urgent, calm = w["urgent"], w["calm"]
    assert isinstance(urgent, Task) and isinstance(calm, Task)
    assert sign_in(client, "nurse1").status_code == 303
    page = client.get(f"/staff/inbox/{urgent.id}").text
    assert 'id="task-list"' in page and f'<li data-task="{calm.id}"' in page
    assert f'id="next-task" rel="next" href="/staff/inbox/{calm.id}"' in page
    assert 'id="previous-task"' not in page  # the most urgent is first
    sidebar = page[page.index('id="patient-sidebar"') :]
    assert "65–79" in sidebar and "1960" not in sidebar
    assert "Care messages · SMS" in sidebar[sidebar.index('id="sidebar-consents"') :]
    assert "Health news and offers · SMS" in sidebar[sidebar.index('id="sidebar-opt-outs"') :]
    assert 'data-author="patient"' in page and "Patient</span>" in page
    # filters ride along between tasks; a bad one falls back to the default list rather than failing
    filtered = client.get(f"/staff/inbox/{calm.id}?priority=low").text
    assert (
        f'href="/staff/inbox/{calm.id}?priority=low"' in filtered
        and f'data-task="{urgent.id}"' not in filtered
    )
    assert client.get(f"/staff/inbox/{calm.id}?priority=nonsense").status_code == 200


def test_the_language_choice_is_kept_on_her_account(client: TestClient, db: Session) -> None:
    _world(db)
    assert sign_in(client, "nurse1").status_code == 303
    page = client.get("/staff/inbox").text
    token = _csrf(page)
    done = client.post(
        "/staff/language",
        data={"language": "vi", "back": "/staff/inbox?priority=urgent", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/staff/inbox?priority=urgent"
    assert '<html lang="vi">' in client.get("/staff/inbox").text
    # another device: a fresh sign-in gets her choice
    client.cookies.clear()
    assert sign_in(client, "nurse1").status_code == 303
    assert '<html lang="vi">' in client.get("/staff/inbox").text
    refused = client.post(
        "/staff/language", data={"language": "fr", "back": "/staff", "csrf_token": _csrf(page)}
    )
    assert refused.status_code in (400, 403)  # the old page's token is gone with the old sign-in
    token = _csrf(client.get("/staff").text)
    refused = client.post("/staff/language", data={"language": "fr", "back": "/staff", "csrf_token": token})
    assert refused.status_code == 400
    elsewhere = client.post(
        "/staff/language",
        data={"language": "en", "back": "//evil.example/", "csrf_token": token},
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/staff"
    db.expire_all()
    user = db.scalars(sa.select(StaffUser).where(StaffUser.username == "nurse1")).one()
    assert user.language == "en" and user.roles == {Role.NURSE}
    changes = db.scalars(
        sa.select(AuditEvent.detail).where(AuditEvent.action == "staff.language").order_by(AuditEvent.id)
    ).all()
    assert [(c["before"], c["after"]) for c in changes] == [("en", "vi"), ("vi", "en")]

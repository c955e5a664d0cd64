"""The configurable home page: default widgets, a user's own choice and order (stored), what each shows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, FollowUpPlan, HomeLayout, OutreachTask, Role, TaskKind
from backend.models.base import utcnow
from backend.services import inbox
from backend.services.home import DEFAULT_LAYOUT, LayoutInvalid, Widget, parse_layout
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


def _widgets(html: str) -> list[str]:
    return re.findall(r'id="widget-([a-z_]+)"', html)


def test_parse_layout_keeps_shown_widgets_in_their_positions() -> None:
    assert parse_layout({}) == []
    values = {
        "show_shortcuts": "on",
        "order_shortcuts": "1",
        "show_my_tasks": "on",
        "order_my_tasks": "2",
        "order_queues": "0",
    }
    assert parse_layout(values) == [Widget.SHORTCUTS, Widget.MY_TASKS]  # queues not ticked: not shown
    tied = {f"show_{w.value}": "on" for w in Widget}
    assert parse_layout(tied) == list(DEFAULT_LAYOUT)  # no positions: the default order
    with pytest.raises(LayoutInvalid):
        parse_layout({"show_queues": "on", "order_queues": "first"})


def test_staff_land_on_the_default_home_page_then_choose_their_own(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse1", departments=[dept])
    other = factories.staff(db, username="nurse2", departments=[dept])
    alice = factories.patient(db, name="Alice Wang", dept=dept)
    mine = factories.task(db, kind=TaskKind.CALLBACK, person=alice, dept=dept)
    inbox.do_assign(db, task=mine, staff_id=other.id, assignee=nurse)
    factories.task(db, kind=TaskKind.COMPLAINT, person=alice, dept=dept)  # not hers
    db.commit()
    login = sign_in(client, "nurse1")
    assert login.headers["location"] == "/staff"
    page = client.get("/staff")
    assert page.status_code == 200 and _widgets(page.text) == [w.value for w in DEFAULT_LAYOUT]
    my = page.text.split('id="widget-my_tasks"', 1)[1].split("</section>", 1)[0]
    assert f'href="/staff/inbox/{mine.id}"' in my and my.count("<li>") == 1
    assert 'data-count="callback">1<' in page.text and 'data-count="complaint">1<' in page.text
    form = client.get("/staff/home/layout")
    saved = client.post(
        "/staff/home/layout",
        data={
            "csrf_token": _csrf(form.text),
            "show_shortcuts": "on",
            "order_shortcuts": "1",
            "show_my_tasks": "on",
            "order_my_tasks": "5",
        },
    )
    assert saved.status_code == 200 and _widgets(saved.text) == ["shortcuts", "my_tasks"]
    db.expire_all()
    assert db.get_one(HomeLayout, nurse.id).widgets == ["shortcuts", "my_tasks"]
    assert db.scalar(sa.select(AuditEvent).where(AuditEvent.action == "home.layout")).staff_id == nurse.id
    sign_in(client, "nurse2")  # each user has her own
    assert _widgets(client.get("/staff").text) == [w.value for w in DEFAULT_LAYOUT]
    bad = client.post(
        "/staff/home/layout",
        data={
            "csrf_token": _csrf(client.get("/staff/home/layout").text),
            "show_queues": "on",
            "order_queues": "x",
        },
    )
    assert bad.status_code == 400 and "whole numbers" in bad.text
    assert db.get(HomeLayout, other.id) is None


def test_due_follow_ups_are_the_users_departments_and_due_within_a_day(
    client: TestClient, db: Session
) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    factories.staff(db, username="boss", role=Role.MANAGER, departments=[cardio])
    plan = FollowUpPlan(name="p", questionnaire_id="recovery", offsets_days=[3], channels=["sms"])
    db.add(plan)
    db.flush()
    now = utcnow()
    rows = {}
    for name, dept, due in (
        ("Due Soon", cardio, now + timedelta(hours=3)),
        ("Far Away", cardio, now + timedelta(days=3)),
        ("Other Dept", ortho, now),
    ):
        person = factories.patient(db, name=name)
        enc = factories.encounter(db, person, dept)
        rows[name] = OutreachTask(
            plan_id=plan.id,
            patient_id=person.id,
            encounter_id=enc.id,
            department_id=dept.id,
            questionnaire_id="recovery",
            offset_days=3,
            due_at=due,
            next_attempt_at=due,
        )
        db.add(rows[name])
    db.commit()
    sign_in(client, "nurse1")
    widget = client.get("/staff").text.split('id="widget-due_follow_ups"', 1)[1].split("</section>", 1)[0]
    assert "Due Soon" in widget and "Far Away" not in widget and "Other Dept" not in widget
    [view] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "home.view")).all()
    assert view.detail["patients"] == [rows["Due Soon"].patient_id]
    sign_in(client, "boss")
    widget = client.get("/staff").text.split('id="widget-due_follow_ups"', 1)[1].split("</section>", 1)[0]
    assert "Other Dept" in widget and "Due Soon" in widget
    shortcuts = client.get("/staff").text.split('id="widget-shortcuts"', 1)[1]
    assert 'href="/staff/spot-checks"' in shortcuts

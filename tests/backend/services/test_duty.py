"""An emergency nobody takes alerts the on-duty person, then the fallback, on their phones; audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Role,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.outbox.sender import send_item
from backend.services.duty import alert_unclaimed_emergencies, do_set_roster, do_set_staff_phone
from backend.services.inbox import do_add_note, escalate_breached_tasks
from backend.services.tasks import do_raise_priority
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        for name, value in {
            "CARELOOP_TWILIO_ACCOUNT_SID": fake.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": fake.auth_token,
            "CARELOOP_TWILIO_API_BASE": fake.base_url,
            "CARELOOP_TWILIO_SMS_FROM": "+15005550006",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield fake
        reset_caches()


def _ward(db: Session) -> dict[str, Any]:
    dept = factories.department(db)
    on_duty = factories.staff(db, username="onduty", departments=[dept])
    fallback = factories.staff(db, username="fallback", role=Role.MANAGER, departments=[dept])
    do_set_staff_phone(db, staff=on_duty, phone="+8613900000001", by=None)
    do_set_staff_phone(db, staff=fallback, phone="139 0000 0002", by=None)
    do_set_roster(db, department_id=dept.id, on_duty_id=on_duty.id, fallback_id=fallback.id, staff_id=None)
    person = factories.patient(db, dept=dept)
    db.commit()
    return {"dept": dept, "on_duty": on_duty, "fallback": fallback, "person": person}


def _emergency(db: Session, w: dict[str, Any], at: Any) -> Task:
    task = factories.task(db, priority=TaskPriority.EMERGENCY, person=w["person"], dept=w["dept"], now=at)
    db.commit()
    return task


def _alerts(db: Session) -> list[tuple[Any, ...]]:
    db.expire_all()
    return [
        (e.detail.get("role"), e.detail.get("staff"))
        for e in db.scalars(
            sa.select(TaskEvent).where(TaskEvent.kind == TaskEventKind.ALERTED).order_by(TaskEvent.id)
        )
    ]


def test_an_untaken_emergency_alerts_the_on_duty_person_then_the_fallback_once_each(
    twilio: FakeTwilio, db: Session
) -> None:
    w = _ward(db)
    start = utcnow() - timedelta(minutes=40)
    task = _emergency(db, w, start)
    assert alert_unclaimed_emergencies(start + timedelta(minutes=14)) == []  # not yet
    [first] = alert_unclaimed_emergencies(start + timedelta(minutes=15))
    assert _alerts(db) == [("on_duty", w["on_duty"].id)]
    assert alert_unclaimed_emergencies(start + timedelta(minutes=20)) == []  # the fallback's turn comes later
    [second] = alert_unclaimed_emergencies(start + timedelta(minutes=30))
    assert _alerts(db) == [("on_duty", w["on_duty"].id), ("fallback", w["fallback"].id)]
    assert alert_unclaimed_emergencies(start + timedelta(minutes=60)) == []  # everyone has been told
    items = {i.id: i for i in db.scalars(sa.select(OutboxItem))}
    assert {(items[i].kind, items[i].to_staff_id, items[i].patient_id) for i in (first, second)} == {
        (OutboxKind.STAFF_ALERT, w["on_duty"].id, None),
        (OutboxKind.STAFF_ALERT, w["fallback"].id, None),
    }
    assert send_item(first) == "sent" and send_item(second) == "sent"
    assert [m.params["To"] for m in twilio.messages] == ["+8613900000001", "+8613900000002"]
    assert f"/staff/inbox/{task.id}" in twilio.messages[0].params["Body"]
    db.expire_all()
    assert db.get(OutboxItem, first).status is OutboxStatus.SENT  # type: ignore[union-attr]
    audited = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "task.alerted")).all()
    assert audited == ["task.alerted", "task.alerted"]


def test_an_emergency_someone_acted_on_alerts_nobody(db: Session) -> None:
    w = _ward(db)
    start = utcnow() - timedelta(minutes=40)
    task = _emergency(db, w, start)
    do_add_note(
        db, task=task, staff_id=w["fallback"].id, text="calling the patient", now=start + timedelta(minutes=5)
    )
    db.commit()
    assert alert_unclaimed_emergencies(start + timedelta(minutes=30)) == []
    assert _alerts(db) == []


def test_a_hand_off_raised_to_an_emergency_counts_from_the_raise(db: Session) -> None:
    w = _ward(db)
    start = utcnow() - timedelta(hours=3)
    task = factories.task(db, priority=TaskPriority.NORMAL, person=w["person"], dept=w["dept"], now=start)
    do_add_note(
        db, task=task, staff_id=w["on_duty"].id, text="spoke to her", now=start + timedelta(minutes=1)
    )
    raised_at = start + timedelta(hours=2)
    do_raise_priority(db, task=task, priority=TaskPriority.EMERGENCY, now=raised_at)
    db.commit()
    assert alert_unclaimed_emergencies(raised_at + timedelta(minutes=10)) == []
    assert (
        len(alert_unclaimed_emergencies(raised_at + timedelta(minutes=15))) == 1
    )  # the old note is no answer


def test_with_no_one_reachable_on_duty_the_alert_says_so_once(db: Session) -> None:
    dept = factories.department(db)
    person = factories.patient(db, dept=dept)
    start = utcnow() - timedelta(minutes=40)
    factories.task(db, priority=TaskPriority.EMERGENCY, person=person, dept=dept, now=start)
    db.commit()
    assert alert_unclaimed_emergencies(start + timedelta(minutes=15)) == []
    assert alert_unclaimed_emergencies(start + timedelta(minutes=35)) == []
    assert _alerts(db) == [("nobody", None)]


def test_the_sla_escalation_job_runs_the_duty_alerts(twilio: FakeTwilio, db: Session) -> None:
    w = _ward(db)
    _emergency(db, w, utcnow() - timedelta(minutes=16))
    escalate_breached_tasks()
    assert _alerts(db) == [("on_duty", w["on_duty"].id)]
    assert [m.params["To"] for m in twilio.messages] == ["+8613900000001"]  # sent at once, whatever the hour


def test_the_cli_sets_and_clears_a_staff_members_phone(db: Session) -> None:
    from backend.app.cli import main
    from backend.models import StaffUser

    user = factories.staff(db, username="nurse")
    db.commit()
    assert main(["staff-phone", "Nurse", "138 0013 8000"]) == 0
    db.expire_all()
    assert db.get(StaffUser, user.id).phone == "+8613800138000"  # type: ignore[union-attr]
    assert main(["staff-phone", "nurse", "not a number"]) == 2
    assert main(["staff-phone", "nurse", "-"]) == 0
    db.expire_all()
    assert db.get(StaffUser, user.id).phone is None  # type: ignore[union-attr]


def test_the_roster_refuses_an_unknown_or_inactive_person(db: Session) -> None:
    from backend.services.refusal import ActionRefused

    w = _ward(db)
    w["fallback"].active = False
    db.flush()
    for on_duty, fallback in ((w["on_duty"].id, w["fallback"].id), (99999, None)):
        try:
            do_set_roster(
                db, department_id=w["dept"].id, on_duty_id=on_duty, fallback_id=fallback, staff_id=None
            )
        except ActionRefused as exc:
            assert exc.reason == "unknown_department_or_staff"
        else:
            raise AssertionError("accepted")

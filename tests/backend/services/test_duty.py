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
    StaffUser,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.outbox.sender import send_item
from backend.services.duty import (
    alert_unclaimed_emergencies,
    do_set_roster,
    do_set_staff_phone,
    do_set_staff_wechat,
)
from backend.services.inbox import do_add_note, escalate_breached_tasks
from backend.services.tasks import do_raise_priority
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.fake_wechat import TEMPLATE_SEND, FakeWeChat
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


OPENID = "oStaffOnDuty0000000000000001"


@pytest.fixture
def wechat_and_sms(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeWeChat, FakeTwilio]]:
    with FakeWeChat() as wechat:
        for name, value in {
            "CARELOOP_PUBLIC_URL": "https://careloop.example.org",
            "CARELOOP_WECHAT_APP_ID": wechat.app_id,
            "CARELOOP_WECHAT_APP_SECRET": wechat.secret,
            "CARELOOP_WECHAT_API_ROOT": wechat.base_url,
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield wechat, twilio
        reset_caches()


def test_an_on_duty_person_with_a_bound_wechat_is_alerted_there_beside_the_sms(
    wechat_and_sms: tuple[FakeWeChat, FakeTwilio], db: Session
) -> None:
    wechat, twilio = wechat_and_sms
    w = _ward(db)
    do_set_staff_wechat(db, staff=w["on_duty"], openid=OPENID, by=None)
    db.commit()
    start = utcnow() - timedelta(minutes=40)
    task = _emergency(db, w, start)
    queued = alert_unclaimed_emergencies(start + timedelta(minutes=15))
    assert len(queued) == 2  # one alert event, two messages: SMS and WeChat
    assert _alerts(db) == [("on_duty", w["on_duty"].id)]
    assert [send_item(i) for i in queued] == ["sent", "sent"]
    assert [m.params["To"] for m in twilio.messages] == ["+8613900000001"]
    [call] = wechat.calls(TEMPLATE_SEND)
    assert call.openid == OPENID and call.body["template_id"] == "DEMO-wechat-staff-alert"
    assert call.body["url"] == f"https://careloop.example.org/staff/inbox/{task.id}"
    assert f"/staff/inbox/{task.id}" in call.body["data"]["remark"]["value"]
    db.expire_all()
    items = list(db.scalars(sa.select(OutboxItem).where(OutboxItem.id.in_(queued))))
    assert {(i.channel.value, i.kind, i.status) for i in items} == {
        ("sms", OutboxKind.STAFF_ALERT, OutboxStatus.SENT),
        ("wechat", OutboxKind.STAFF_ALERT, OutboxStatus.SENT),
    }
    event = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "task.alerted")).one()
    assert event.detail["channels"] == ["sms", "wechat"]


def test_a_wechat_alone_is_enough_to_be_reachable_and_an_unbound_one_is_not_used(
    wechat_and_sms: tuple[FakeWeChat, FakeTwilio], db: Session
) -> None:
    wechat, twilio = wechat_and_sms
    w = _ward(db)
    do_set_staff_phone(db, staff=w["on_duty"], phone=None, by=None)
    do_set_staff_wechat(db, staff=w["on_duty"], openid=OPENID, by=None)
    db.commit()
    start = utcnow() - timedelta(minutes=40)
    _emergency(db, w, start)
    [only] = alert_unclaimed_emergencies(start + timedelta(minutes=15))
    assert send_item(only) == "sent" and twilio.messages == []
    assert [c.openid for c in wechat.calls(TEMPLATE_SEND)] == [OPENID]
    [fallback] = alert_unclaimed_emergencies(start + timedelta(minutes=30))  # no WeChat bound: SMS only
    assert send_item(fallback) == "sent"
    assert [m.params["To"] for m in twilio.messages] == ["+8613900000002"]
    assert len(wechat.calls(TEMPLATE_SEND)) == 1


def test_an_alert_queued_before_her_wechat_was_unbound_is_not_sent(
    wechat_and_sms: tuple[FakeWeChat, FakeTwilio], db: Session
) -> None:
    wechat, _ = wechat_and_sms
    w = _ward(db)
    do_set_staff_phone(db, staff=w["on_duty"], phone=None, by=None)
    do_set_staff_wechat(db, staff=w["on_duty"], openid=OPENID, by=None)
    db.commit()
    start = utcnow() - timedelta(minutes=40)
    _emergency(db, w, start)
    [queued] = alert_unclaimed_emergencies(start + timedelta(minutes=15))
    staff = db.get(StaffUser, w["on_duty"].id)
    assert staff is not None
    do_set_staff_wechat(db, staff=staff, openid=None, by=None)
    db.commit()
    assert send_item(queued) != "sent"
    assert wechat.calls(TEMPLATE_SEND) == []
    db.expire_all()
    item = db.get(OutboxItem, queued)
    assert item is not None and (item.status, item.reason) == (OutboxStatus.SUPPRESSED, "unreachable")


def test_the_cli_binds_and_unbinds_a_staff_members_wechat(db: Session) -> None:
    from backend.app.cli import main
    from backend.models import StaffUser

    user = factories.staff(db, username="nurse")
    db.commit()
    assert main(["staff-wechat", "Nurse", OPENID]) == 0
    db.expire_all()
    assert db.get(StaffUser, user.id).wechat_openid == OPENID  # type: ignore[union-attr]
    assert main(["staff-wechat", "nurse", "not an openid!"]) == 2
    assert db.get(StaffUser, user.id).wechat_openid == OPENID  # type: ignore[union-attr]
    assert main(["staff-wechat", "nurse", "-"]) == 0
    db.expire_all()
    assert db.get(StaffUser, user.id).wechat_openid is None  # type: ignore[union-attr]

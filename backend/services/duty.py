"""The on-duty roster: who answers a department's emergencies now, who is told when she does not.

An emergency task nobody has acted on (no claim, reply, note, assignment or closing by a person since it
became an emergency) for `duty_alert_minutes` alerts the department's on-duty staff member by SMS to her
own phone and, when she has bound one, on her own WeChat (a template message), through the outbox; as
long again later, the fallback. Each alert is a task event and an
audit row. Run from the periodic job that escalates SLA breaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.i18n import translations
from backend.models import Department, DutyRoster, StaffUser, Task, TaskEvent, TaskEventKind, TaskPriority
from backend.models.base import utcnow
from backend.models.staff import staff_departments
from backend.models.tasks import not_closed
from backend.outbox.enqueue import STAFF_ALERT_CHANNELS, do_enqueue_staff_alert
from backend.outbox.gates import staff_address
from backend.security.identifiers import normalise_phone
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel

ROLES = ("on_duty", "fallback")  # who is alerted, in order
DUTY = "duty"  # an ALERTED event's `via` for these alerts (the holder's inbox alert says "inbox")


def do_set_roster(
    session: Session,
    *,
    department_id: int,
    on_duty_id: int | None,
    fallback_id: int | None,
    staff_id: int | None,
    now: datetime | None = None,
) -> DutyRoster:
    """Who is on duty for the department from now, and the fallback; audited. Refused (ActionRefused)
    for an unknown department or someone who is not an active staff member."""
    people = {p for p in (on_duty_id, fallback_id) if p is not None}
    active = set(session.scalars(sa.select(StaffUser.id).where(StaffUser.id.in_(people), StaffUser.active)))
    if session.get(Department, department_id) is None or people - active:
        raise ActionRefused(Reason.UNKNOWN_DEPARTMENT_OR_STAFF)
    now = now or utcnow()
    roster = session.get(DutyRoster, department_id)
    if roster is None:
        roster = DutyRoster(department_id=department_id)
        session.add(roster)
    roster.on_duty_id, roster.fallback_id = on_duty_id, fallback_id
    roster.updated_by, roster.updated_at = staff_id, now
    session.flush()
    audit.record(
        session,
        "duty.set",
        staff_id=staff_id,
        subject=("department", department_id),
        on_duty=on_duty_id,
        fallback=fallback_id,
    )
    return roster


def do_set_staff_phone(session: Session, *, staff: StaffUser, phone: str | None, by: int | None) -> None:
    """Her own mobile for on-duty alerts, E.164, kept encrypted. Raises InvalidPhoneNumber."""
    staff.phone = normalise_phone(phone, get_settings().default_region) if phone else None
    audit.record(session, "staff.phone", staff_id=by, subject=("staff", staff.id), set=phone is not None)


_OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}")  # WeChat openids are 28 such characters


def do_set_staff_wechat(session: Session, *, staff: StaffUser, openid: str | None, by: int | None) -> None:
    """Her own openid on the hospital's official account, for on-duty alerts, kept encrypted. Raises
    ValueError for something that is not an openid (nothing changed)."""
    value = openid.strip() if openid else None
    if value is not None and not _OPENID.fullmatch(value):
        raise ValueError("not a WeChat openid")
    staff.wechat_openid = value
    audit.record(session, "staff.wechat", staff_id=by, subject=("staff", staff.id), set=value is not None)


def _since(task: Task, events: list[TaskEvent]) -> datetime:
    """When the task became an emergency: raised, else raised as one."""
    raised = [e.at for e in events if e.kind is TaskEventKind.RAISED and e.detail.get("to") == "emergency"]
    return raised[-1] if raised else task.created_at


def _reachable(session: Session, staff_id: int | None) -> tuple[StaffUser, list[Channel]] | None:
    """The staff member and the channels her own alerts can reach her on, or None when none can."""
    staff = session.get(StaffUser, staff_id) if staff_id is not None else None
    if staff is None or not staff.active:
        return None
    channels = [c for c in STAFF_ALERT_CHANNELS if staff_address(staff, c)]
    return (staff, channels) if channels else None


def _task_url(task: Task) -> str:
    return f"{get_settings().public_url}/staff/inbox/{task.id}"


def _alert_text(task: Task, staff: StaffUser, minutes: int) -> str:
    gettext = translations(staff.language).gettext
    return gettext("CareLoop: emergency task %(id)s has not been taken for %(minutes)s minutes. %(url)s") % {
        "id": task.id,
        "minutes": minutes,
        "url": _task_url(task),
    }


def do_alert_duty(session: Session, *, task: Task, now: datetime) -> TaskEvent | None:
    """The next alert this emergency is due, if any: None when someone acted, it is not yet time, or
    everyone on the roster has been told."""
    window = timedelta(minutes=get_settings().duty_alert_minutes)
    events = list(
        session.scalars(sa.select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id))
    )
    since = _since(task, events)
    if any(e.actor_id is not None and e.at >= since for e in events):
        return None  # a person claimed, replied, noted, assigned or closed it since
    sent = [
        e for e in events if e.kind is TaskEventKind.ALERTED and e.detail.get("via") == DUTY and e.at >= since
    ]
    if now - (sent[-1].at if sent else since) < window:
        return None
    told = {e.detail.get("role") for e in sent}
    if "nobody" in told or "fallback" in told:
        return None
    roster = session.get(DutyRoster, task.department_id) if task.department_id is not None else None
    people = {"on_duty": roster.on_duty_id, "fallback": roster.fallback_id} if roster else {}
    for role in ROLES:
        found = _reachable(session, people.get(role)) if role not in told else None
        if found is None:
            continue
        staff, channels = found
        minutes = int((now - since).total_seconds() // 60)
        text = _alert_text(task, staff, minutes)
        url = _task_url(task)
        ids = [
            do_enqueue_staff_alert(session, staff=staff, text=text, channel=c, url=url, now=now).id
            for c in channels
        ]
        detail = {"role": role, "staff": staff.id, "outbox_id": ids[0], "outbox_ids": ids}
        return _event(session, task, now, channels=[c.value for c in channels], **detail)
    return _event(session, task, now, role="nobody", staff=None, reason="no_one_reachable_on_duty")


def _event(session: Session, task: Task, now: datetime, **detail: Any) -> TaskEvent:
    event = TaskEvent(
        task_id=task.id, kind=TaskEventKind.ALERTED, actor_id=None, detail={"via": DUTY, **detail}, at=now
    )
    session.add(event)
    session.flush()
    audit.record(
        session, "task.alerted", patient_id=task.patient_id, subject=("task", task.id), via=DUTY, **detail
    )
    return event


def alert_unclaimed_emergencies(now: datetime | None = None) -> list[int]:
    """Periodic: alert for every open emergency task that is due one. Returns the outbox ids queued
    (the caller kicks them: SMS goes at once, whatever the hour)."""
    now = now or utcnow()
    queued: list[int] = []
    with session_scope() as session:
        tasks = session.scalars(
            sa.select(Task)
            .where(Task.priority == TaskPriority.EMERGENCY, not_closed())
            .order_by(Task.id)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        for task in list(tasks):
            event = do_alert_duty(session, task=task, now=now)
            if event is not None:
                queued.extend(int(i) for i in event.detail.get("outbox_ids", []))
    return queued


@dataclass(frozen=True)
class RosterRow:
    department: Department
    roster: DutyRoster | None
    staff: list[StaffUser]  # the department's active staff, to choose from


def roster_rows(session: Session) -> list[RosterRow]:
    """Every department with its roster and the staff who may be on duty for it."""
    departments = list(session.scalars(sa.select(Department).order_by(Department.name)))
    rosters = {r.department_id: r for r in session.scalars(sa.select(DutyRoster))}
    members: dict[int, list[StaffUser]] = {}
    for department_id, user in session.execute(
        sa.select(staff_departments.c.department_id, StaffUser)
        .join(StaffUser, StaffUser.id == staff_departments.c.staff_id)
        .where(StaffUser.active)
        .order_by(StaffUser.display_name)
    ):
        members.setdefault(department_id, []).append(user)
    return [RosterRow(d, rosters.get(d.id), members.get(d.id, [])) for d in departments]

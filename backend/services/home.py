"""A staff member's home page: which widgets (my tasks, mentions, due follow-ups, queues, shortcuts), in
what order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    HomeLayout,
    OutreachStatus,
    OutreachTask,
    Patient,
    StaffUser,
    Task,
    TaskStatus,
)
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.patients import department_ids

WIDGET_ROWS = 10
DUE_WITHIN = timedelta(hours=24)


class Widget(StrEnum):
    MY_TASKS = "my_tasks"
    MENTIONS = "mentions"  # notes that @mention the user (backend/services/mentions.latest)
    DUE_FOLLOW_UPS = "due_follow_ups"
    QUEUES = "queues"
    SHORTCUTS = "shortcuts"


DEFAULT_LAYOUT = (Widget.MY_TASKS, Widget.MENTIONS, Widget.DUE_FOLLOW_UPS, Widget.QUEUES, Widget.SHORTCUTS)


class LayoutInvalid(ValueError):
    """The submitted layout names an unknown widget or a position that is not a number."""


def parse_layout(values: Mapping[str, str]) -> list[Widget]:
    """From the layout form: `show_<widget>` ("on" to show) and `order_<widget>` (a position number).
    Shown widgets sorted by position, ties in the default order; raises LayoutInvalid."""
    chosen: list[tuple[int, int, Widget]] = []
    for rank, widget in enumerate(Widget):
        if values.get(f"show_{widget.value}") != "on":
            continue
        text = values.get(f"order_{widget.value}", "").strip() or str(rank + 1)
        if not (text.isascii() and text.isdigit()) or len(text) > 3:  # "²".isdigit() too
            raise LayoutInvalid(widget.value)
        chosen.append((int(text), rank, widget))
    return [widget for _, _, widget in sorted(chosen)]


def layout_of(session: Session, staff_id: int) -> list[Widget]:
    row = session.get(HomeLayout, staff_id)
    if row is None:
        return list(DEFAULT_LAYOUT)
    return [Widget(w) for w in row.widgets if w in set(Widget)]  # a widget since removed is skipped


def do_save_layout(session: Session, *, staff_id: int, widgets: list[Widget], ip: str | None = None) -> None:
    row = session.get(HomeLayout, staff_id)
    if row is None:
        row = HomeLayout(staff_id=staff_id, widgets=[])
        session.add(row)
    row.widgets = [w.value for w in widgets]
    audit.record(session, "home.layout", staff_id=staff_id, ip=ip, widgets=row.widgets)


@dataclass(frozen=True)
class TaskItem:
    task: Task
    patient_name: str


def my_tasks(session: Session, user: StaffUser) -> list[TaskItem]:
    rows = session.execute(
        sa.select(Task, Patient.name)
        .outerjoin(Patient, Patient.id == Task.patient_id)
        .where(Task.assignee_id == user.id, Task.status != TaskStatus.CLOSED)
        .order_by(Task.due_at, Task.id)
        .limit(WIDGET_ROWS)
    )
    return [TaskItem(task, name or "") for task, name in rows]


@dataclass(frozen=True)
class FollowUpItem:
    follow_up: OutreachTask
    patient_name: str


def due_follow_ups(session: Session, user: StaffUser, now: datetime) -> list[FollowUpItem]:
    """Follow-ups of the user's departments whose next contact is due within a day (or overdue)."""
    query = (
        sa.select(OutreachTask, Patient.name)
        .join(Patient, Patient.id == OutreachTask.patient_id)
        .where(
            OutreachTask.status.in_([OutreachStatus.SCHEDULED, OutreachStatus.SENT]),
            OutreachTask.next_attempt_at <= now + DUE_WITHIN,
        )
    )
    allowed = department_ids(user)
    if allowed is not None:
        query = query.where(OutreachTask.department_id.in_(allowed))
    rows = session.execute(query.order_by(OutreachTask.next_attempt_at, OutreachTask.id).limit(WIDGET_ROWS))
    return [FollowUpItem(task, name) for task, name in rows]


def shortcuts(user: StaffUser) -> list[str]:
    """Keys of the pages the user may open, in the order the widget lists them."""
    keys = ["inbox", "patients", "stats", "messages", "replies"]
    if may(user, Permission.SPOT_CHECKS):
        keys.append("spot_checks")
    return keys

"""@mentions in task notes: who was mentioned (that opens the one task to her), "mentioned me", read state.

A mention opens the task to the colleague named, so it is access given. Staff of the task's department
(and those who see every department) may give it to anyone; a colleague who sees the task only because
she was mentioned may name only people who can see it already: mention-only access is not passed on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from backend.models import StaffUser, Task, TaskEvent, TaskMention
from backend.models.base import utcnow
from backend.services.patients import department_ids

WIDGET_ROWS = 10


def record(session: Session, event: TaskEvent, staff_ids: list[int], by_id: int | None) -> None:
    """One unread mention per colleague named in the note (the author naming herself is no mention)."""
    session.flush()  # the event's id
    for staff_id in staff_ids:
        if staff_id != by_id:
            session.add(
                TaskMention(
                    task_id=event.task_id, event_id=event.id, staff_id=staff_id, by_id=by_id, at=event.at
                )
            )


def sees_by_department(user: StaffUser, task: Task) -> bool:
    allowed = department_ids(user)
    return allowed is None or task.department_id in allowed


def outsiders(session: Session, *, author: StaffUser, task: Task, staff_ids: list[int]) -> list[int]:
    """Who among `staff_ids` the author may not bring in: none for the task's own department; for a
    colleague there only by a mention, everyone who could not see the task already."""
    if sees_by_department(author, task):
        return []
    already = set(session.scalars(sa.select(TaskMention.staff_id).where(TaskMention.task_id == task.id)))
    people = session.scalars(sa.select(StaffUser).where(StaffUser.id.in_(staff_ids))).all()
    return sorted(p.id for p in people if p.id not in already and not sees_by_department(p, task))


def mentioned_on_task(staff_id: int, *, unread: bool = False) -> ColumnElement[bool]:
    """A condition on `Task`: the staff member is mentioned on it (and has not opened it since)."""
    condition = sa.exists().where(TaskMention.task_id == Task.id, TaskMention.staff_id == staff_id)
    return condition.where(TaskMention.read_at.is_(None)) if unread else condition


def unread_tasks(session: Session, staff_id: int) -> int:
    """How many tasks mention her and she has not opened since ("Mentioned me", kept live on the inbox)."""
    return int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(TaskMention.task_id))).where(
                TaskMention.staff_id == staff_id, TaskMention.read_at.is_(None)
            )
        )
        or 0
    )


def do_mark_read(session: Session, *, task_id: int, staff_id: int, now: datetime | None = None) -> int:
    """She opened the task: her mentions on it are read. Returns how many were unread."""
    result = session.execute(
        sa.update(TaskMention)
        .where(
            TaskMention.task_id == task_id, TaskMention.staff_id == staff_id, TaskMention.read_at.is_(None)
        )
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MentionItem:
    task: Task
    by_name: str
    at: datetime
    unread: bool


def latest(session: Session, user: StaffUser, limit: int = WIDGET_ROWS) -> list[MentionItem]:
    """The user's latest mentions, newest first: the home page's widget."""
    author = aliased(StaffUser)
    rows = session.execute(
        sa.select(TaskMention, Task, author.display_name)
        .join(Task, Task.id == TaskMention.task_id)
        .outerjoin(author, author.id == TaskMention.by_id)
        .where(TaskMention.staff_id == user.id)
        .order_by(TaskMention.at.desc(), TaskMention.id.desc())
        .limit(limit)
    )
    return [MentionItem(task, name or "", m.at, m.read_at is None) for m, task, name in rows]

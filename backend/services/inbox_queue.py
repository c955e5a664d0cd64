"""The staff inbox's queues: SLA state, filters, the task list, counts per queue, task lookups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.app.db import session_scope
from backend.models import (
    Conversation,
    Encounter,
    Message,
    OutboxItem,
    Patient,
    QuestionnaireResponse,
    StaffSession,
    StaffUser,
    Task,
    TaskEvent,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.tasks import not_closed
from backend.services import mentions
from backend.services.anonymity import visible_messages
from backend.services.ids import parse_id as parse_ids
from backend.services.message_log import (
    Cursor,
    InvalidFilter,
    parse_choice,
    parse_cursor,
    parse_id,
    text_value,
)
from backend.services.patients import department_ids
from backend.services.sla import default_sla
from bots.domain import Channel

PAGE_SIZE = 50
DUE_SOON_SHARE = 0.25  # "due soon": the last quarter of the priority's SLA window


class SlaState(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    BREACHED = "breached"


def sla_state(task: Task, now: datetime) -> SlaState | None:
    if task.status is TaskStatus.CLOSED:
        return None
    if task.due_at <= now:
        return SlaState.BREACHED
    return (
        SlaState.DUE_SOON if task.due_at <= now + default_sla(task.priority) * DUE_SOON_SHARE else SlaState.OK
    )


def _sla_condition(state: SlaState, now: datetime) -> ColumnElement[bool]:
    if state is SlaState.BREACHED:
        return Task.due_at <= now
    soon = sa.or_(
        *(
            sa.and_(Task.priority == p, Task.due_at <= now + default_sla(p) * DUE_SOON_SHARE)
            for p in TaskPriority
        )
    )
    return sa.and_(Task.due_at > now, soon if state is SlaState.DUE_SOON else sa.not_(soon))


# --- the queue list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilters:
    queue: TaskKind | None = None
    department_id: int | None = None
    priority: TaskPriority | None = None
    status: TaskStatus | None = None  # None: everything not closed
    channel: Channel | None = None
    sla: SlaState | None = None
    assignee: str = ""  # "", "me", "none" or a staff id
    ward_id: int | None = None  # the patient has a visit on the ward
    mentioned: bool = False  # "me": tasks whose notes mention the user and she has not opened since
    after: Cursor | None = None  # keyset paging: rows due after this one

    def audit_detail(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "department": self.department_id,
            "ward": self.ward_id,
            "page": self.after is not None,
            "priority": self.priority,
            "status": self.status,
            "channel": self.channel,
            "sla": self.sla,
            "assignee": self.assignee or None,
            "mentioned": self.mentioned or None,
        }


def parse_filters(values: Mapping[str, str]) -> InboxFilters:
    """Raises InvalidFilter naming the first value the page cannot use."""
    assignee = text_value(values, "assignee")
    if assignee not in ("", "me", "none") and parse_ids(assignee) is None:
        raise InvalidFilter("assignee")
    mentioned = text_value(values, "mentioned")
    if mentioned not in ("", "me"):
        raise InvalidFilter("mentioned")
    return InboxFilters(
        queue=parse_choice(values, "queue", TaskKind),
        department_id=parse_id(values, "department"),
        priority=parse_choice(values, "priority", TaskPriority),
        status=parse_choice(values, "status", TaskStatus),
        channel=parse_choice(values, "channel", Channel),
        sla=parse_choice(values, "sla", SlaState),
        assignee=assignee,
        ward_id=parse_id(values, "ward"),
        mentioned=mentioned == "me",
        after=parse_cursor(values),
    )


def _scope(user: StaffUser) -> list[ColumnElement[bool]]:
    """Conditions keeping tasks to the user's departments (the same department rule as patient scoping);
    none for the service centre, managers and admins."""
    allowed = department_ids(user)
    return [] if allowed is None else [Task.department_id.in_(allowed)]


def _visible(user: StaffUser) -> list[ColumnElement[bool]]:
    """What the user may open: her departments' tasks, and any task whose notes @mention her (that task
    only, with its patient's data the task page shows; the patient's record stays department-scoped)."""
    allowed = department_ids(user)
    if allowed is None:
        return []
    return [sa.or_(Task.department_id.in_(allowed), mentions.mentioned_on_task(user.id))]


def _conversation_join() -> ColumnElement[bool]:
    return sa.and_(Task.source_type == "conversation", Conversation.id == Task.source_id)


@dataclass(frozen=True)
class TaskRow:
    task: Task
    patient_name: str
    assignee_name: str | None
    channel: Channel | None
    sla: SlaState | None


def task_rows(
    session: Session, *, user: StaffUser, filters: InboxFilters, now: datetime, limit: int = PAGE_SIZE
) -> list[TaskRow]:
    """Most urgent first (earliest due), one SQL statement whatever the page size."""
    query = (
        sa.select(Task, Patient.name, StaffUser.display_name, Conversation.channel)
        .outerjoin(Patient, Patient.id == Task.patient_id)
        .outerjoin(StaffUser, StaffUser.id == Task.assignee_id)
        .outerjoin(Conversation, _conversation_join())
    )
    if filters.queue is not None:
        query = query.where(Task.kind == filters.queue)
    if filters.department_id is not None:
        query = query.where(Task.department_id == filters.department_id)
    if filters.priority is not None:
        query = query.where(Task.priority == filters.priority)
    if filters.status is None:
        query = query.where(not_closed())
    else:
        query = query.where(Task.status == filters.status)
    if filters.channel is not None:
        query = query.where(Conversation.channel == filters.channel)
    if filters.sla is not None:
        query = query.where(not_closed(), _sla_condition(filters.sla, now))
    if filters.assignee == "me":
        query = query.where(Task.assignee_id == user.id)
    elif filters.assignee == "none":
        query = query.where(Task.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Task.assignee_id == int(filters.assignee))
    if filters.ward_id is not None:
        on_ward = sa.select(Encounter.id).where(
            Encounter.patient_id == Task.patient_id, Encounter.ward_id == filters.ward_id
        )
        query = query.where(sa.exists(on_ward))
    if filters.after is not None:
        at, ident = filters.after.at, filters.after.id
        query = query.where(sa.or_(Task.due_at > at, sa.and_(Task.due_at == at, Task.id > ident)))
    if filters.mentioned:
        query = query.where(mentions.mentioned_on_task(user.id, unread=True))
    scope = _visible(user) if filters.mentioned else _scope(user)
    query = query.where(*scope).order_by(Task.due_at, Task.id).limit(limit)
    return [
        TaskRow(task, name or "", assignee, channel, sla_state(task, now))
        for task, name, assignee, channel in session.execute(query)
    ]


def next_page(rows: list[TaskRow], limit: int = PAGE_SIZE) -> Cursor | None:
    """Where the next page starts, if this one is full (keyset on due time and id, most urgent first)."""
    if len(rows) < limit:
        return None
    last = rows[-1].task
    return Cursor(last.due_at, last.id)


MENTIONED = "mentioned"  # the counts' key for tasks whose notes mention the user, unread


def queue_counts(session: Session, user: StaffUser) -> dict[str, int]:
    """Tasks not yet closed per queue, within the user's departments (every queue present), and under
    `mentioned` the tasks mentioning her that she has not opened since, so the live stream tells her."""
    query = sa.select(Task.kind, sa.func.count()).where(not_closed(), *_scope(user)).group_by(Task.kind)
    counts = dict.fromkeys((k.value for k in TaskKind), 0)
    counts.update({TaskKind(kind).value: int(n) for kind, n in session.execute(query)})
    counts[MENTIONED] = mentions.unread_tasks(session, user.id)
    return counts


def counts_for(staff_session_id: int) -> dict[str, int] | None:
    """Counts for a signed-in browser, in a database session of its own (the live stream polls this).
    None once the sign-in has ended or the user was deactivated: the stream then stops."""
    with session_scope() as session:
        signed_in = session.get(StaffSession, staff_session_id)
        if signed_in is None or signed_in.ended_at is not None or not signed_in.staff.active:
            return None
        return queue_counts(session, signed_in.staff)


def task_for(session: Session, *, user: StaffUser, task_id: int) -> Task | None:
    """The task if it is within the user's departments or its notes mention her: the one rule for opening
    a task and acting on it."""
    found: Task | None = session.scalar(sa.select(Task).where(Task.id == task_id, *_visible(user)))
    return found


def conversation_of(session: Session, task: Task) -> Conversation | None:
    """The conversation a task is about: the hand-off's own, or for an abnormal answer the patient's latest
    conversation on the channel the questionnaire was answered on (where a reply reaches them)."""
    if task.source_type == "conversation":
        return session.get(Conversation, task.source_id)
    if task.source_type == "response":
        response = session.get(QuestionnaireResponse, task.source_id)
        if response is None:
            return None
        found: Conversation | None = session.scalars(
            sa.select(Conversation)
            .where(Conversation.patient_id == response.patient_id, Conversation.channel == response.channel)
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()
        return found
    return None


def events_of(session: Session, task_id: int) -> list[TaskEvent]:
    return list(
        session.scalars(sa.select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id))
    )


def recent_messages(
    session: Session, conversation_id: int, *, user: StaffUser, limit: int = 200
) -> tuple[list[Message], dict[int, OutboxItem]]:
    """The conversation's last `limit` messages the viewer may see beside the patient (not an anonymous
    case's), oldest first, and the outbox item of each one sent."""
    messages = list(
        session.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conversation_id, *visible_messages(user))
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )[::-1]
    outbox = {
        i.message_id: i
        for i in session.scalars(
            sa.select(OutboxItem).where(OutboxItem.message_id.in_([m.id for m in messages]))
        )
    }
    return messages, outbox


def may_handle(user: StaffUser, task: Task) -> bool:
    """Whether `user` could see the task: the rule an assignment target must meet."""
    allowed = department_ids(user)
    return user.active and (allowed is None or task.department_id in allowed)

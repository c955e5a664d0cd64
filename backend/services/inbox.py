"""The staff inbox: queues of tasks within a user's departments, the actions on a task, SLA escalation."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.models import (
    ConversationOwner,
    Message,
    OutboxKind,
    Patient,
    ResolutionCode,
    StaffUser,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.models.staff import staff_departments
from backend.outbox.sender import kick
from backend.security.permissions import Permission, holders
from backend.services import audit, mentions
from backend.services.duty import alert_unclaimed_emergencies
from backend.services.inbox_queue import conversation_of, may_handle
from backend.services.refusal import ActionRefused, NotSent, Reason
from backend.services.sla import sla_for
from backend.services.staff_message import MAX_TEXT, do_staff_message

MAX_NOTE = 4000
MAX_REPLY = MAX_TEXT
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.-]{1,64})")


# --- actions: each writes a task event and an audit row in the caller's transaction ---------------


def _event(
    session: Session,
    task: Task,
    kind: TaskEventKind,
    actor_id: int | None,
    now: datetime,
    ip: str | None = None,
    **detail: Any,
) -> TaskEvent:
    event = TaskEvent(task_id=task.id, kind=kind, actor_id=actor_id, detail=detail, at=now)
    session.add(event)
    private = {"text", "summary"}  # staff-written text stays in the task's history, not the audit trail
    audit.record(
        session,
        f"task.{kind.value}",
        staff_id=actor_id,
        patient_id=task.patient_id,
        subject=("task", task.id),
        ip=ip,
        **{k: v for k, v in detail.items() if k not in private},
    )
    return event


def _open(task: Task) -> None:
    if task.status is TaskStatus.CLOSED:
        raise ActionRefused(Reason.CLOSED)


def do_claim(
    session: Session, *, task: Task, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> None:
    """Take an open, unassigned task. A conditional update, so of two agents claiming at once one wins
    and the other gets ActionRefused(Reason.ALREADY_CLAIMED)."""
    _open(task)
    result = session.execute(
        sa.update(Task)
        .where(Task.id == task.id, Task.status == TaskStatus.OPEN, Task.assignee_id.is_(None))
        .values(status=TaskStatus.CLAIMED, assignee_id=staff_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ActionRefused(Reason.ALREADY_CLAIMED)
    session.refresh(task)
    _event(session, task, TaskEventKind.CLAIMED, staff_id, now or utcnow(), ip)


def do_assign(
    session: Session,
    *,
    task: Task,
    staff_id: int,
    assignee: StaffUser,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    _open(task)
    if not may_handle(assignee, task):
        raise ActionRefused(Reason.ASSIGNEE_OUTSIDE_DEPARTMENT)
    previous, task.assignee_id, task.status = task.assignee_id, assignee.id, TaskStatus.CLAIMED
    _event(
        session,
        task,
        TaskEventKind.ASSIGNED,
        staff_id,
        now or utcnow(),
        ip,
        to=assignee.id,
        previous=previous,
    )


def do_transfer(
    session: Session,
    *,
    task: Task,
    staff_id: int,
    department_id: int,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    """Hand the task to another department's queue, unassigned."""
    _open(task)
    if department_id == task.department_id:
        raise ActionRefused(Reason.SAME_DEPARTMENT)
    previous = task.department_id
    task.department_id, task.assignee_id, task.status = department_id, None, TaskStatus.OPEN
    _event(
        session,
        task,
        TaskEventKind.TRANSFERRED,
        staff_id,
        now or utcnow(),
        ip,
        to=department_id,
        previous=previous,
    )


def do_add_note(
    session: Session,
    *,
    task: Task,
    staff_id: int,
    text: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> list[int]:
    """An internal note (never sent to the patient). Returns the ids of the active staff it @mentions; each
    is told ("mentioned me", home page) and may open this task even outside her departments. A colleague
    who sees the task only through a mention may name only people who can see it already
    (`mentions.outsiders`); otherwise nothing is written."""
    text = text.strip()
    if not text or len(text) > MAX_NOTE:
        raise ActionRefused(Reason.NOTE_LENGTH)
    names = sorted(set(MENTION.findall(text)))
    mentioned = (
        list(
            session.scalars(
                sa.select(StaffUser.id)
                .where(StaffUser.username.in_(names), StaffUser.active)
                .order_by(StaffUser.id)
            )
        )
        if names
        else []
    )
    author = session.get(StaffUser, staff_id)
    if (
        mentioned
        and author is not None
        and mentions.outsiders(session, author=author, task=task, staff_ids=mentioned)
    ):
        raise ActionRefused(Reason.MENTION_OUTSIDE)  # mention-only access is not passed on
    event = _event(
        session, task, TaskEventKind.NOTE, staff_id, now or utcnow(), ip, text=text, mentions=mentioned
    )
    mentions.record(session, event, mentioned, staff_id)  # each one may now open this task
    return mentioned


def do_close(
    session: Session,
    *,
    task: Task,
    staff_id: int,
    code: ResolutionCode,
    summary: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    _open(task)
    summary = summary.strip()
    if not summary or len(summary) > MAX_NOTE:
        raise ActionRefused(Reason.SUMMARY_LENGTH)
    now = now or utcnow()
    task.status, task.closed_at = TaskStatus.CLOSED, now
    _event(session, task, TaskEventKind.CLOSED, staff_id, now, ip, code=code.value, summary=summary)


def do_reopen(
    session: Session, *, task: Task, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> None:
    """Back into the queue with a fresh SLA window, still with whoever had it."""
    if task.status is not TaskStatus.CLOSED:
        raise ActionRefused(Reason.NOT_CLOSED)
    now = now or utcnow()
    task.status = TaskStatus.CLAIMED if task.assignee_id else TaskStatus.OPEN
    task.closed_at, task.due_at = None, now + sla_for(session, task.priority, task.department_id, task.kind)
    _event(session, task, TaskEventKind.REOPENED, staff_id, now, ip)


def do_reply(
    session: Session,
    *,
    task: Task,
    staff_id: int,
    text: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[Message, int | None]:
    """Answer the patient in the conversation the hand-off came from, through `do_staff_message`: consent,
    exclusions and the channel's window are checked now (a refusal raises ActionRefused with the reason,
    after its audit row; the page keeps the draft) and again by the sender. The caller commits, then kicks
    the returned outbox id. On the web chat the message row is the delivery. An open task is claimed by
    the replier."""
    _open(task)
    conversation = conversation_of(session, task)
    if conversation is None or (conversation.patient_id is None and not conversation.reply_to):
        raise ActionRefused(Reason.NO_CONVERSATION)  # (an unlinked WeChat follower can be answered)
    # A hand-off's conversation is staff's until handed back; answering an abnormal answer takes the
    # patient's conversation over from the bot (hand it back from the task when done).
    took_over = conversation.owner is ConversationOwner.BOT and task.source_type != "conversation"
    if conversation.owner is not ConversationOwner.STAFF and not took_over:
        raise ActionRefused(Reason.BOT_OWNS_CONVERSATION)
    now = now or utcnow()
    patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
    sent = do_staff_message(
        session,
        patient=patient,
        channel=conversation.channel,
        outbound=text,
        kind=OutboxKind.REPLY,
        staff_id=staff_id,
        action=None,  # the task event below writes the audit row
        refused_action="task.reply_refused",
        subject=("task", task.id),
        conversation=conversation,
        ip=ip,
        now=now,
    )
    if sent.refused is not None or sent.message is None:
        raise NotSent(sent.refused or "suppressed")
    message, item_id = sent.message, sent.outbox_id
    if took_over:
        conversation.owner = ConversationOwner.STAFF
    if task.status is TaskStatus.OPEN and task.assignee_id is None:
        task.status, task.assignee_id = TaskStatus.CLAIMED, staff_id
        _event(session, task, TaskEventKind.CLAIMED, staff_id, now, ip)
    _event(
        session,
        task,
        TaskEventKind.REPLIED,
        staff_id,
        now,
        ip,
        message_id=message.id,
        outbox_id=item_id,
        channel=conversation.channel.value,
        took_over=took_over,
    )
    return message, item_id


def do_hand_back(
    session: Session, *, task: Task, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> None:
    """The bot answers the conversation again from the patient's next message."""
    conversation = conversation_of(session, task)
    if conversation is None:
        raise ActionRefused(Reason.NO_CONVERSATION)
    if conversation.owner is ConversationOwner.BOT:
        raise ActionRefused(Reason.BOT_OWNS_CONVERSATION)
    conversation.owner = ConversationOwner.BOT
    _event(
        session,
        task,
        TaskEventKind.HANDED_BACK,
        staff_id,
        now or utcnow(),
        ip,
        conversation_id=conversation.id,
    )


# --- SLA -----------------------------------------------------------------------------------------


def supervisor_of(session: Session, department_id: int | None) -> StaffUser | None:
    """The department's supervisor: its first active member whose role supervises tasks."""
    if department_id is None:
        return None
    found: StaffUser | None = session.scalar(
        sa.select(StaffUser)
        .join(staff_departments, staff_departments.c.staff_id == StaffUser.id)
        .where(
            staff_departments.c.department_id == department_id,
            holders(Permission.TASKS_SUPERVISE),
            StaffUser.active,
        )
        .order_by(StaffUser.id)
        .limit(1)
    )
    return found


def do_escalate(session: Session, *, task: Task, now: datetime) -> StaffUser | None:
    """Give a breached task to the department's supervisor; with none, the event still says it breached."""
    supervisor = supervisor_of(session, task.department_id)
    previous = task.assignee_id
    if supervisor is not None:
        task.assignee_id, task.status = supervisor.id, TaskStatus.CLAIMED
    _event(
        session,
        task,
        TaskEventKind.ESCALATED,
        None,
        now,
        supervisor=supervisor.id if supervisor else None,
        previous=previous,
        reason=None if supervisor else "no_supervisor",
    )
    return supervisor


def escalate_breached_tasks(now: datetime | None = None) -> int:
    """Periodic: every open task past its due time, not yet escalated in this SLA window, to the
    department's supervisor; then the on-duty alerts of emergencies (services/duty.py). Returns how many
    tasks were escalated."""
    now = now or utcnow()
    escalated = sa.exists().where(
        TaskEvent.task_id == Task.id, TaskEvent.kind == TaskEventKind.ESCALATED, TaskEvent.at >= Task.due_at
    )
    with session_scope() as session:
        tasks = list(
            session.scalars(
                sa.select(Task)
                .where(Task.status != TaskStatus.CLOSED, Task.due_at <= now, sa.not_(escalated))
                .order_by(Task.due_at, Task.id)
                .limit(500)
                .with_for_update(skip_locked=True)
            )
        )
        for task in tasks:
            do_escalate(session, task=task, now=now)
    # an emergency nobody has taken: the on-duty person, then the fallback, on their own phones
    for item_id in alert_unclaimed_emergencies(now):
        kick(item_id)
    return len(tasks)

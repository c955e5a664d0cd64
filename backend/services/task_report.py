"""Inbox report from task events: hand-off rate, first-response and resolution times per queue and agent."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    Conversation,
    Direction,
    Message,
    Patient,
    StaffUser,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskKind,
)
from backend.services.patients import department_ids, scoped_to_user

# What counts as a person's first response to a task (the system's escalation does not).
RESPONSES = (
    TaskEventKind.CLAIMED,
    TaskEventKind.ASSIGNED,
    TaskEventKind.REPLIED,
    TaskEventKind.NOTE,
    TaskEventKind.TRANSFERRED,
    TaskEventKind.CLOSED,
)


@dataclass
class Times:
    """Minutes from a task's creation to a moment, over several tasks."""

    minutes: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.minutes)

    @property
    def median(self) -> float | None:
        return statistics.median(self.minutes) if self.minutes else None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.minutes) if self.minutes else None


@dataclass
class Line:
    tasks: int = 0
    first_response: Times = field(default_factory=Times)
    resolution: Times = field(default_factory=Times)


@dataclass(frozen=True)
class Report:
    conversations: int  # with a patient message in the period
    handed_off: int  # of those, handed to staff in the period
    by_queue: dict[str, Line]
    by_agent: dict[str, Line]  # display name of who responded / closed

    @property
    def hand_off_rate(self) -> float | None:
        return self.handed_off / self.conversations if self.conversations else None

    @property
    def bot_resolution_rate(self) -> float | None:
        rate = self.hand_off_rate
        return None if rate is None else 1 - rate


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def task_report(session: Session, *, user: StaffUser, start: datetime, end: datetime) -> Report:
    """Tasks raised in [start, end) within the user's departments; a few statements whatever the volume."""
    allowed = department_ids(user)
    scope = [] if allowed is None else [Task.department_id.in_(allowed)]
    tasks = {
        t.id: t
        for t in session.scalars(
            sa.select(Task).where(Task.created_at >= start, Task.created_at < end, *scope)
        )
    }
    first: dict[int, TaskEvent] = {}
    closed: dict[int, TaskEvent] = {}
    if tasks:
        events = session.scalars(
            sa.select(TaskEvent)
            .join(Task, Task.id == TaskEvent.task_id)
            .where(
                Task.created_at >= start,
                Task.created_at < end,
                *scope,
                TaskEvent.kind.in_(RESPONSES),
                TaskEvent.actor_id.is_not(None),
            )
            .order_by(TaskEvent.id)
        )
        for event in events:
            first.setdefault(event.task_id, event)
            if event.kind is TaskEventKind.CLOSED:
                closed.setdefault(event.task_id, event)
    rows = session.execute(sa.select(StaffUser.id, StaffUser.display_name))
    names: dict[int, str] = {ident: name for ident, name in rows}
    by_queue: dict[str, Line] = {k.value: Line() for k in TaskKind}
    by_agent: dict[str, Line] = defaultdict(Line)
    for task in tasks.values():
        by_queue[task.kind.value].tasks += 1
        if task.id in first:
            event = first[task.id]
            minutes = _minutes(task.created_at, event.at)
            by_queue[task.kind.value].first_response.minutes.append(minutes)
            agent = by_agent[names.get(event.actor_id or 0, "?")]
            agent.tasks += 1
            agent.first_response.minutes.append(minutes)
        if task.id in closed:
            event = closed[task.id]
            minutes = _minutes(task.created_at, event.at)
            by_queue[task.kind.value].resolution.minutes.append(minutes)
            by_agent[names.get(event.actor_id or 0, "?")].resolution.minutes.append(minutes)
    active = session.scalar(
        scoped_to_user(
            sa.select(sa.func.count(sa.distinct(Message.conversation_id)))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Patient, Patient.id == Conversation.patient_id)
            .where(
                Message.direction == Direction.INBOUND, Message.created_at >= start, Message.created_at < end
            ),
            user,
        )
    )
    handed = len(
        {
            t.source_id
            for t in tasks.values()
            if t.kind is TaskKind.HANDOFF and t.source_type == "conversation"
        }
    )
    return Report(int(active or 0), handed, by_queue, dict(sorted(by_agent.items())))

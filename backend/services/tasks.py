"""Raising staff tasks with a priority and an SLA due time, and raising an open task's priority."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.models import Task, TaskEvent, TaskEventKind, TaskKind, TaskPriority, TaskStatus
from backend.models.base import utcnow
from backend.services import audit
from backend.services.sla import sla_for


def do_raise_task(
    session: Session,
    *,
    kind: TaskKind,
    priority: TaskPriority,
    title: str,
    source: tuple[str, int],
    patient_id: int | None,
    department_id: int | None,
    now: datetime | None = None,
) -> Task:
    now = now or utcnow()
    task = Task(
        kind=kind,
        priority=priority,
        title=title,
        source_type=source[0],
        source_id=source[1],
        patient_id=patient_id,
        department_id=department_id,
        due_at=now + sla_for(session, priority, department_id, kind),
        created_at=now,
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        "task.raise",
        patient_id=patient_id,
        subject=("task", task.id),
        kind=kind.value,
        priority=priority.value,
    )
    return task


def do_raise_priority(
    session: Session, *, task: Task, priority: TaskPriority, now: datetime | None = None, **detail: Any
) -> TaskEvent | None:
    """Make an open task more urgent (never less): the priority and a due time recomputed from now, which
    only ever comes sooner. Writes a `raised` task event and its audit row; None when it was already as
    urgent (or closed)."""
    if task.status is TaskStatus.CLOSED or task.priority.rank <= priority.rank:
        return None
    now = now or utcnow()
    previous = task.priority
    task.priority = priority
    task.due_at = min(task.due_at, now + sla_for(session, priority, task.department_id, task.kind))
    event = TaskEvent(
        task_id=task.id,
        kind=TaskEventKind.RAISED,
        actor_id=None,
        detail={"from": previous.value, "to": priority.value, **detail},
        at=now,
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        "task.raised",
        patient_id=task.patient_id,
        subject=("task", task.id),
        previous=previous.value,
        priority=priority.value,
        **detail,
    )
    return event

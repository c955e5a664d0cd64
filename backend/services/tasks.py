"""Raising staff tasks with a priority and an SLA due time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from backend.models import Task, TaskKind, TaskPriority
from backend.models.base import utcnow
from backend.services import audit


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
        due_at=now + priority.sla,
        created_at=now,
    )
    session.add(task)
    session.flush()
    audit.record(session, "task.raise", patient_id=patient_id, subject=("task", task.id), kind=kind.value)
    return task

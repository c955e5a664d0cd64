"""Response times: one table from task priority to SLA for every source, with per-department rows."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import SlaPolicy, TaskPriority
from backend.services import audit


def default_sla(priority: TaskPriority) -> timedelta:
    """The hospital's response time for the priority: the settings' table, else the built-in one."""
    minutes = get_settings().sla_minutes.get(priority.value)
    return timedelta(minutes=minutes) if minutes is not None else priority.sla


def sla_for(session: Session, priority: TaskPriority, department_id: int | None) -> timedelta:
    """How long staff have to act on a task of this priority in this department."""
    if department_id is not None:
        minutes = session.scalar(
            sa.select(SlaPolicy.minutes).where(
                SlaPolicy.department_id == department_id, SlaPolicy.priority == priority
            )
        )
        if minutes is not None:
            return timedelta(minutes=minutes)
    return default_sla(priority)


def sla_table(session: Session, department_id: int | None) -> dict[TaskPriority, timedelta]:
    """Every priority's response time in the department (for the settings page and reports)."""
    return {priority: sla_for(session, priority, department_id) for priority in TaskPriority}


def do_set_department_sla(
    session: Session,
    *,
    department_id: int,
    priority: TaskPriority,
    minutes: int | None,
    staff_id: int | None = None,
) -> None:
    """Set (or with None, remove) a department's own response time for one priority. Applies to tasks
    raised from now on; tasks already open keep their due time."""
    if minutes is not None and minutes < 1:
        raise ValueError("minutes must be at least 1")
    row = session.scalar(
        sa.select(SlaPolicy).where(SlaPolicy.department_id == department_id, SlaPolicy.priority == priority)
    )
    if minutes is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(SlaPolicy(department_id=department_id, priority=priority, minutes=minutes))
    else:
        row.minutes = minutes
    session.flush()
    audit.record(
        session,
        "sla.set",
        staff_id=staff_id,
        subject=("department", department_id),
        priority=priority.value,
        minutes=minutes,
    )

"""Response times: one table from task priority to SLA for every source, with per-department rows.

The staff page (/staff/safety/sla) lists each department's table beside the hospital's, and saves a
department's whole table at once through `do_set_department_table`, which refuses a table that is not
whole minutes from 1 or that gives a more urgent priority longer than a less urgent one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Department, SlaPolicy, StaffUser, TaskPriority
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason

MAX_MINUTES = 60 * 24 * 30  # a month: anything longer is a typing slip, not a response time


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


def may_manage(user: StaffUser) -> bool:
    """Those whose role may set response times (managers and administrators, unless changed)."""
    return may(user, Permission.SLA_MANAGE)


def hospital_table() -> dict[TaskPriority, int]:
    """The hospital's minutes per priority (settings, else built in), shown beside each department's."""
    return {p: int(default_sla(p).total_seconds() // 60) for p in TaskPriority}


@dataclass(frozen=True)
class DepartmentSla:
    """One department's row of the page: its own minutes where it has them (None: the hospital's)."""

    department: Department
    own: dict[TaskPriority, int | None]

    def effective(self, hospital: Mapping[TaskPriority, int]) -> dict[TaskPriority, int]:
        return {p: m if (m := self.own[p]) is not None else hospital[p] for p in TaskPriority}


def department_tables(session: Session, department_id: int | None = None) -> list[DepartmentSla]:
    """Each active department's own response times (or just the one asked for), in code order: two
    queries whatever the number of departments."""
    query = sa.select(Department).where(Department.active).order_by(Department.code)
    if department_id is not None:
        query = query.where(Department.id == department_id)
    departments = list(session.scalars(query))
    own: dict[int, dict[TaskPriority, int | None]] = {d.id: dict.fromkeys(TaskPriority) for d in departments}
    rows = session.execute(
        sa.select(SlaPolicy.department_id, SlaPolicy.priority, SlaPolicy.minutes).where(
            SlaPolicy.department_id.in_(own)
        )
    )
    for dept_id, priority, minutes in rows:
        own[dept_id][priority] = minutes
    return [DepartmentSla(d, own[d.id]) for d in departments]


def parse_minutes(raw: str) -> int | None:
    """A form's field: blank is "the hospital's"; otherwise whole minutes from 1 to a month."""
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_MINUTES:
        raise ActionRefused(Reason.SLA_MINUTES)
    return int(text)


def order_problem(table: Mapping[TaskPriority, int]) -> TaskPriority | None:
    """The first priority given longer than the next less urgent one (emergency ≤ urgent ≤ high ≤
    normal ≤ low must hold), or None when the table is in order."""
    for more, less in pairwise(sorted(TaskPriority, key=lambda p: p.rank)):
        if table[more] > table[less]:
            return more
    return None


def do_set_department_table(
    session: Session,
    *,
    department_id: int,
    minutes: Mapping[TaskPriority, int | None],
    staff_id: int | None,
) -> list[TaskPriority]:
    """Save one department's table (None for a priority: the hospital's time), checked whole: each time
    from 1 minute, and in order with the hospital's filling the gaps. Refused (ActionRefused) with
    nothing changed otherwise. Returns the priorities that changed; each change is audited."""
    found = department_tables(session, department_id)
    if not found:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    current = found[0]
    if any(m is not None and not 1 <= m <= MAX_MINUTES for m in minutes.values()):
        raise ActionRefused(Reason.SLA_MINUTES)
    wanted = {p: minutes.get(p) for p in TaskPriority}
    if order_problem(DepartmentSla(current.department, wanted).effective(hospital_table())) is not None:
        raise ActionRefused(Reason.SLA_ORDER)
    changed = [p for p in TaskPriority if wanted[p] != current.own[p]]
    for priority in changed:
        do_set_department_sla(
            session,
            department_id=department_id,
            priority=priority,
            minutes=wanted[priority],
            staff_id=staff_id,
        )
    return changed


def export_rows(
    tables: Sequence[DepartmentSla], hospital: Mapping[TaskPriority, int]
) -> list[tuple[str, str, int, str]]:
    """The rows the export holds: department, priority, minutes in force, and whose they are."""
    return [
        (
            t.department.code,
            p.value,
            t.effective(hospital)[p],
            "hospital" if t.own[p] is None else "department",
        )
        for t in tables
        for p in TaskPriority
    ]

"""Response times: one table from task priority to SLA for every source, with per-department rows and
optional rows per task kind (the hospital's and each department's).

`sla_for` is the one place a task's due time comes from; the order it reads the rows in is
backend/services/sla_levels.py's. The staff page (/staff/safety/sla) lists each department's table beside
the hospital's, per priority or for one kind of task, and saves a whole row at once through
`do_set_department_table` / `do_set_kind_table`, which refuse a row that is not whole minutes from 1 or
that leaves any table in force giving a more urgent priority longer than a less urgent one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Department, SlaKindPolicy, SlaPolicy, StaffUser, TaskKind, TaskPriority
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.services.sla_levels import MAX_MINUTES, Levels, SlaSource, affected_scopes, order_problem

__all__ = ["MAX_MINUTES", "SlaSource", "order_problem"]  # re-exported: the page and tests read them here


def default_sla(priority: TaskPriority) -> timedelta:
    """The hospital's response time for the priority: the settings' table, else the built-in one."""
    minutes = get_settings().sla_minutes.get(priority.value)
    return timedelta(minutes=minutes) if minutes is not None else priority.sla


def load_levels(
    session: Session, department_ids: Collection[int] | None = None, kind: TaskKind | None = None
) -> Levels:
    """The SLA rows (those of the departments asked for and the hospital's, of one kind when given) in
    two queries, with the settings' table."""
    per_priority = sa.select(SlaPolicy.department_id, SlaPolicy.priority, SlaPolicy.minutes)
    per_kind = sa.select(
        SlaKindPolicy.department_id, SlaKindPolicy.kind, SlaKindPolicy.priority, SlaKindPolicy.minutes
    )
    if department_ids is not None:
        per_priority = per_priority.where(SlaPolicy.department_id.in_(department_ids))
        scopes = ["hospital", *(_scope(d) for d in department_ids)]
        per_kind = per_kind.where(SlaKindPolicy.scope.in_(scopes))
    if kind is not None:
        per_kind = per_kind.where(SlaKindPolicy.kind == kind)
    department: dict[int, dict[TaskPriority, int]] = {}
    for dept_id, priority, minutes in session.execute(per_priority):
        department.setdefault(dept_id, {})[priority] = minutes
    kinds: dict[tuple[int | None, TaskKind], dict[TaskPriority, int]] = {}
    for scope_id, task_kind, kind_priority, kind_minutes in session.execute(per_kind):
        kinds.setdefault((scope_id, task_kind), {})[kind_priority] = kind_minutes
    return Levels(department, kinds, dict(get_settings().sla_minutes))


def sla_for(
    session: Session, priority: TaskPriority, department_id: int | None, kind: TaskKind | None = None
) -> timedelta:
    """How long staff have to act on a task of this priority (and kind) in this department."""
    return timedelta(minutes=sla_source(session, priority, department_id, kind)[0])


def sla_source(
    session: Session, priority: TaskPriority, department_id: int | None, kind: TaskKind | None = None
) -> tuple[int, SlaSource]:
    """The minutes `sla_for` gives, and the row they come from."""
    ids = [department_id] if department_id is not None else []
    return load_levels(session, ids, kind).resolve(priority, department_id, kind)


def _scope(department_id: int | None) -> str:
    return "hospital" if department_id is None else f"department:{department_id}"


def do_set_department_sla(
    session: Session,
    *,
    department_id: int,
    priority: TaskPriority,
    minutes: int | None,
    staff_id: int | None = None,
    kind: TaskKind | None = None,
) -> None:
    """Set (or with None, remove) a department's own response time for one priority (and kind). Applies
    to tasks raised from now on; tasks already open keep their due time."""
    _set_one(session, department_id, kind, priority, minutes, staff_id)


def _set_one(
    session: Session,
    department_id: int | None,
    kind: TaskKind | None,
    priority: TaskPriority,
    minutes: int | None,
    staff_id: int | None,
) -> None:
    if minutes is not None and minutes < 1:
        raise ValueError("minutes must be at least 1")
    row: SlaPolicy | SlaKindPolicy | None
    if kind is None:
        assert department_id is not None, "the hospital's per-priority table is the settings'"
        row = session.scalar(
            sa.select(SlaPolicy).where(
                SlaPolicy.department_id == department_id, SlaPolicy.priority == priority
            )
        )
    else:
        row = session.scalar(
            sa.select(SlaKindPolicy).where(
                SlaKindPolicy.scope == _scope(department_id),
                SlaKindPolicy.kind == kind,
                SlaKindPolicy.priority == priority,
            )
        )
    if minutes is None:
        if row is not None:
            session.delete(row)
    elif row is not None:
        row.minutes = minutes
    elif kind is None:
        assert department_id is not None
        session.add(SlaPolicy(department_id=department_id, priority=priority, minutes=minutes))
    else:
        scope = _scope(department_id)
        session.add(
            SlaKindPolicy(
                scope=scope, department_id=department_id, kind=kind, priority=priority, minutes=minutes
            )
        )
    session.flush()
    audit.record(
        session,
        "sla.set",
        staff_id=staff_id,
        subject=("department", department_id) if department_id is not None else None,
        priority=priority.value,
        kind=kind.value if kind is not None else None,
        minutes=minutes,
    )


def may_manage(user: StaffUser) -> bool:
    """Those whose role may set response times (managers and administrators, unless changed)."""
    return may(user, Permission.SLA_MANAGE)


def hospital_table() -> dict[TaskPriority, int]:
    """The hospital's minutes per priority (settings, else built in), shown beside each department's."""
    return {p: int(default_sla(p).total_seconds() // 60) for p in TaskPriority}


@dataclass(frozen=True)
class SlaRow:
    """One editable row of the page: the hospital's (department None; only with a kind) or a department's
    table, per priority (kind None) or for one kind. `own` is what this row sets (None: not set here),
    `fallback` what a blank field gives and from which row, `in_force` what tasks get and from where."""

    department: Department | None
    kind: TaskKind | None
    own: dict[TaskPriority, int | None]
    fallback: dict[TaskPriority, tuple[int, SlaSource]]
    in_force: dict[TaskPriority, tuple[int, SlaSource]]

    @property
    def key(self) -> str:
        """The row's id in the page and its form's path segment: "hospital" or the department's id."""
        return "hospital" if self.department is None else str(self.department.id)


def _departments(session: Session, department_id: int | None = None) -> list[Department]:
    query = sa.select(Department).where(Department.active).order_by(Department.code)
    if department_id is not None:
        query = query.where(Department.id == department_id)
    return list(session.scalars(query))


def _row(levels: Levels, department: Department | None, kind: TaskKind | None) -> SlaRow:
    dept_id = department.id if department is not None else None
    mine = (
        levels.kind.get((dept_id, kind), {}) if kind is not None else levels.department.get(dept_id or 0, {})
    )
    return SlaRow(
        department,
        kind,
        {p: mine.get(p) for p in TaskPriority},
        levels.below(dept_id, kind).table(dept_id, kind),
        levels.table(dept_id, kind),
    )


def sla_rows(session: Session, kind: TaskKind | None, department_id: int | None = None) -> list[SlaRow]:
    """The page's rows: with a kind, the hospital's row for it then each active department's (or the one
    asked for); without, each department's per-priority row. Three queries whatever the number."""
    departments = _departments(session, department_id)
    levels = load_levels(session, [d.id for d in departments], kind)
    rows = [_row(levels, None, kind)] if kind is not None else []
    return rows + [_row(levels, d, kind) for d in departments]


def parse_minutes(raw: str) -> int | None:
    """A form's field: blank is "the hospital's"; otherwise whole minutes from 1 to a month."""
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_MINUTES:
        raise ActionRefused(Reason.SLA_MINUTES)
    return int(text)


def do_set_department_table(
    session: Session,
    *,
    department_id: int,
    minutes: Mapping[TaskPriority, int | None],
    staff_id: int | None,
) -> list[TaskPriority]:
    """Save one department's per-priority table (None for a priority: the hospital's time); see
    `do_set_kind_table` for the checks."""
    return do_set_kind_table(
        session, kind=None, department_id=department_id, minutes=minutes, staff_id=staff_id
    )


def do_set_kind_table(
    session: Session,
    *,
    kind: TaskKind | None,
    department_id: int | None,
    minutes: Mapping[TaskPriority, int | None],
    staff_id: int | None,
) -> list[TaskPriority]:
    """Save one row whole: a department's (or with a kind, the hospital's: department None) times for
    every priority, None for "not set here". Checked whole: each time from 1 minute to a month, and every
    table in force afterwards (this row's, and those that fall back to it) in order. Refused
    (ActionRefused) with nothing changed otherwise. Returns the priorities that changed, each audited."""
    if department_id is None and kind is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)  # the hospital's per-priority table is the settings'
    active = {d.id: d for d in _departments(session)}
    if department_id is not None and department_id not in active:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    if any(m is not None and not 1 <= m <= MAX_MINUTES for m in minutes.values()):
        raise ActionRefused(Reason.SLA_MINUTES)
    wanted = {p: minutes.get(p) for p in TaskPriority}
    levels = load_levels(session, list(active))
    current = _row(levels, active[department_id] if department_id is not None else None, kind).own
    scopes = affected_scopes(department_id, kind, list(active))
    if levels.with_row(department_id, kind, wanted).first_disorder(scopes) is not None:
        raise ActionRefused(Reason.SLA_ORDER)
    changed = [p for p in TaskPriority if wanted[p] != current[p]]
    for priority in changed:
        _set_one(session, department_id, kind, priority, wanted[priority], staff_id)
    return changed


def export_rows(rows: Sequence[SlaRow]) -> list[tuple[str, str, str, int, str]]:
    """The rows the export holds: department (or hospital), kind, priority, minutes in force,
    and the row they come from ("any" kind: the tables per priority)."""
    return [
        (
            r.department.code if r.department is not None else "hospital",
            r.kind.value if r.kind is not None else "any",
            p.value,
            r.in_force[p][0],
            r.in_force[p][1].value,
        )
        for r in rows
        for p in TaskPriority
    ]

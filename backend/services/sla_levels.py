"""Which response time applies to a task, and from which row: pure decisions over the SLA rows.

Resolution, most specific first: the department's time for the task's kind and priority, the department's
time for the priority, the hospital's time for the kind and priority, the settings' table, the built-in
table. `Levels` holds the rows (loaded by backend/services/sla.py in two queries) and answers without
I/O, so the page, the export, the checks and every due time read the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise

from backend.models.tasks import TaskKind, TaskPriority

MAX_MINUTES = 60 * 24 * 30  # a month: anything longer is a typing slip, not a response time

Table = Mapping[TaskPriority, int]


class SlaSource(StrEnum):
    """The row a response time comes from, most specific first."""

    DEPARTMENT_KIND = "department_kind"
    DEPARTMENT = "department"
    HOSPITAL_KIND = "hospital_kind"
    SETTINGS = "settings"
    BUILT_IN = "built_in"


_DEFAULTS = frozenset({SlaSource.SETTINGS, SlaSource.BUILT_IN})


def built_in_minutes(priority: TaskPriority) -> int:
    return int(priority.sla.total_seconds() // 60)


def order_problem(table: Table) -> TaskPriority | None:
    """The first priority given longer than the next less urgent one (emergency ≤ urgent ≤ high ≤
    normal ≤ low must hold), or None when the table is in order."""
    for more, less in pairwise(sorted(TaskPriority, key=lambda p: p.rank)):
        if table[more] > table[less]:
            return more
    return None


@dataclass(frozen=True)
class Levels:
    """The rows that can set a response time: per department and priority, per department or hospital
    (None) and kind and priority, and the settings' minutes per priority value."""

    department: Mapping[int, Table] = field(default_factory=dict)
    kind: Mapping[tuple[int | None, TaskKind], Table] = field(default_factory=dict)
    settings: Mapping[str, int] = field(default_factory=dict)

    def resolve(
        self, priority: TaskPriority, department_id: int | None, kind: TaskKind | None
    ) -> tuple[int, SlaSource]:
        """Minutes for a task of this priority, department and kind, and the row they come from."""
        candidates: list[tuple[SlaSource, Table | None]] = []
        if department_id is not None and kind is not None:
            candidates.append((SlaSource.DEPARTMENT_KIND, self.kind.get((department_id, kind))))
        if department_id is not None:
            candidates.append((SlaSource.DEPARTMENT, self.department.get(department_id)))
        if kind is not None:
            candidates.append((SlaSource.HOSPITAL_KIND, self.kind.get((None, kind))))
        for source, table in candidates:
            if table is not None and priority in table:
                return table[priority], source
        if (minutes := self.settings.get(priority.value)) is not None:
            return minutes, SlaSource.SETTINGS
        return built_in_minutes(priority), SlaSource.BUILT_IN

    def table(
        self, department_id: int | None, kind: TaskKind | None
    ) -> dict[TaskPriority, tuple[int, SlaSource]]:
        """Every priority's minutes in force, with their row."""
        return {p: self.resolve(p, department_id, kind) for p in TaskPriority}

    def below(self, department_id: int | None, kind: TaskKind | None) -> Levels:
        """These levels without the one that `department_id` and `kind` name (kind None: the department's
        per-priority row): what a blank field of that row falls back to."""
        if kind is None:
            assert department_id is not None, "the hospital's per-priority table is the settings'"
            return replace(self, department={k: v for k, v in self.department.items() if k != department_id})
        return replace(self, kind={k: v for k, v in self.kind.items() if k != (department_id, kind)})

    def with_row(
        self, department_id: int | None, kind: TaskKind | None, own: Mapping[TaskPriority, int | None]
    ) -> Levels:
        """These levels with one row replaced by `own` (None for a priority: not set at this level)."""
        row = {p: m for p, m in own.items() if m is not None}
        base = self.below(department_id, kind)
        if kind is None:
            assert department_id is not None
            return replace(base, department={**base.department, department_id: row})
        return replace(base, kind={**base.kind, (department_id, kind): row})

    def first_disorder(
        self, scopes: Iterable[tuple[int | None, TaskKind | None]]
    ) -> tuple[int | None, TaskKind | None, TaskPriority] | None:
        """The first of these tables in force (department or hospital None, kind or None) that gives a
        more urgent priority longer than a less urgent one; None when all are in order. A table made only
        of the settings' and built-in times is not judged here: no row of ours is in it."""
        for department_id, kind in scopes:
            table = self.table(department_id, kind)
            if all(source in _DEFAULTS for _, source in table.values()):
                continue
            minutes = {p: m for p, (m, _) in table.items()}
            if (priority := order_problem(minutes)) is not None:
                return department_id, kind, priority
        return None


def affected_scopes(
    department_id: int | None, kind: TaskKind | None, department_ids: Iterable[int]
) -> list[tuple[int | None, TaskKind | None]]:
    """The tables in force that read the row of `department_id` and `kind`: the row's own, and those that
    fall back to it (a department's per-priority row under each of its kinds; the hospital's row for a
    kind under each department's)."""
    if kind is None:
        return [(department_id, None), *((department_id, k) for k in TaskKind)]
    if department_id is None:
        return [(None, kind), *((d, kind) for d in department_ids)]
    return [(department_id, kind)]

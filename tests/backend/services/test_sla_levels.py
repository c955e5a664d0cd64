"""Which response time applies: the resolution order over every combination of rows, the fallback a blank
field shows, and which tables in force a row's change can put out of order (pure, no database)."""

from __future__ import annotations

from itertools import product

import pytest

from backend.models import TaskKind, TaskPriority
from backend.services.sla_levels import (
    Levels,
    SlaSource,
    affected_scopes,
    built_in_minutes,
    order_problem,
)

E, U, H, N, L = (
    TaskPriority.EMERGENCY,
    TaskPriority.URGENT,
    TaskPriority.HIGH,
    TaskPriority.NORMAL,
    TaskPriority.LOW,
)
DEPT, OTHER = 7, 8
ORDER = (
    SlaSource.DEPARTMENT_KIND,
    SlaSource.DEPARTMENT,
    SlaSource.HOSPITAL_KIND,
    SlaSource.SETTINGS,
    SlaSource.BUILT_IN,
)
MINUTES = {  # a distinct time per level, so the answer says which level it came from
    SlaSource.DEPARTMENT_KIND: 11,
    SlaSource.DEPARTMENT: 22,
    SlaSource.HOSPITAL_KIND: 33,
    SlaSource.SETTINGS: 44,
}


def _levels(present: set[SlaSource], kind: TaskKind, priority: TaskPriority) -> Levels:
    """Rows at the levels asked for, for one priority, plus decoys: the same kind in another department,
    another kind in this department and the hospital, another priority."""
    other_kind = next(k for k in TaskKind if k is not kind)
    other_priority = next(p for p in TaskPriority if p is not priority)
    kinds: dict[tuple[int | None, TaskKind], dict[TaskPriority, int]] = {
        (OTHER, kind): {priority: 1},
        (DEPT, other_kind): {priority: 2},
        (None, other_kind): {priority: 3},
    }
    department = {OTHER: {priority: 4}, DEPT: {other_priority: 5}}
    if SlaSource.DEPARTMENT_KIND in present:
        kinds[(DEPT, kind)] = {priority: MINUTES[SlaSource.DEPARTMENT_KIND]}
    if SlaSource.DEPARTMENT in present:
        department[DEPT] = {**department[DEPT], priority: MINUTES[SlaSource.DEPARTMENT]}
    if SlaSource.HOSPITAL_KIND in present:
        kinds[(None, kind)] = {priority: MINUTES[SlaSource.HOSPITAL_KIND]}
    settings = {priority.value: MINUTES[SlaSource.SETTINGS]} if SlaSource.SETTINGS in present else {}
    return Levels(department, kinds, settings)


@pytest.mark.parametrize("priority", list(TaskPriority))
@pytest.mark.parametrize("kind", list(TaskKind))
def test_the_most_specific_row_present_wins_for_every_combination(
    kind: TaskKind, priority: TaskPriority
) -> None:
    levels_present = ORDER[:-1]
    for flags in product((False, True), repeat=len(levels_present)):
        present = {s for s, on in zip(levels_present, flags, strict=True) if on}
        levels = _levels(present, kind, priority)
        expected = next((s for s in ORDER if s in present), SlaSource.BUILT_IN)
        minutes = MINUTES.get(expected, built_in_minutes(priority))
        assert levels.resolve(priority, DEPT, kind) == (minutes, expected), present
        # without a kind, the kind rows are never read
        no_kind = next((s for s in ORDER if s in present and "kind" not in s.value), SlaSource.BUILT_IN)
        assert levels.resolve(priority, DEPT, None)[1] == no_kind
        # without a department, only the hospital's rows are read
        no_dept = next(
            (s for s in ORDER if s in present and not s.value.startswith("department")), SlaSource.BUILT_IN
        )
        assert levels.resolve(priority, None, kind)[1] == no_dept


def test_the_built_in_table_is_the_models() -> None:
    assert Levels().table(None, None) == {
        E: (15, SlaSource.BUILT_IN),
        U: (60, SlaSource.BUILT_IN),
        H: (240, SlaSource.BUILT_IN),
        N: (1440, SlaSource.BUILT_IN),
        L: (4320, SlaSource.BUILT_IN),
    }


def test_a_blank_field_falls_back_to_the_next_level_down() -> None:
    k = TaskKind.COMPLAINT
    levels = Levels({DEPT: {H: 120}}, {(DEPT, k): {H: 60}, (None, k): {H: 2880, N: 2880}}, {"high": 300})
    # the department's complaint row: without it, the department's per-priority row, then the hospital's
    below = levels.below(DEPT, k)
    assert below.resolve(H, DEPT, k) == (120, SlaSource.DEPARTMENT)
    assert below.resolve(N, DEPT, k) == (2880, SlaSource.HOSPITAL_KIND)
    # the department's per-priority row: without it, the hospital's complaint time (for complaints)
    assert levels.below(DEPT, None).resolve(H, DEPT, None) == (300, SlaSource.SETTINGS)
    assert levels.below(DEPT, None).resolve(H, DEPT, k) == (60, SlaSource.DEPARTMENT_KIND)
    # the hospital's complaint row: without it, the settings, then the built-in table
    assert levels.below(None, k).resolve(H, None, k) == (300, SlaSource.SETTINGS)
    assert levels.below(None, k).resolve(N, None, k) == (1440, SlaSource.BUILT_IN)


def test_a_replaced_row_keeps_only_the_priorities_it_sets() -> None:
    k = TaskKind.CALLBACK
    levels = Levels({}, {(None, k): {E: 5, U: 10}}).with_row(None, k, {E: None, U: 30, H: 240})
    assert levels.kind[(None, k)] == {U: 30, H: 240}
    replaced = Levels({DEPT: {E: 5}}).with_row(DEPT, None, dict.fromkeys(TaskPriority))
    assert replaced.department[DEPT] == {}
    assert replaced.resolve(E, DEPT, None) == (15, SlaSource.BUILT_IN)


def test_a_hospital_kind_row_can_put_a_departments_table_out_of_order() -> None:
    k = TaskKind.COMPLAINT
    # the department wants emergencies within 30 minutes; the hospital's complaints at urgent within 20
    levels = Levels({DEPT: {E: 30}}).with_row(None, k, {U: 20})
    assert levels.first_disorder(affected_scopes(None, k, [DEPT, OTHER])) == (DEPT, k, E)
    # the hospital's own complaint table is in order, and the other department's too
    assert levels.first_disorder([(None, k), (OTHER, k)]) is None
    # a department row for complaints mends it
    mended = levels.with_row(DEPT, k, {E: 15})
    assert mended.first_disorder(affected_scopes(None, k, [DEPT, OTHER])) is None


def test_tables_of_defaults_alone_are_not_judged() -> None:
    # settings out of order (not ours to refuse here): no row of ours, nothing reported
    levels = Levels(settings={"emergency": 500})
    assert levels.first_disorder([(None, TaskKind.CALLBACK), (DEPT, None)]) is None
    assert levels.with_row(DEPT, None, {L: 4320}).first_disorder([(DEPT, None)]) == (DEPT, None, E)


def test_the_scopes_a_row_reaches() -> None:
    k = TaskKind.HANDOFF
    assert affected_scopes(DEPT, k, [DEPT, OTHER]) == [(DEPT, k)]
    assert affected_scopes(None, k, [DEPT, OTHER]) == [(None, k), (DEPT, k), (OTHER, k)]
    assert affected_scopes(DEPT, None, [DEPT, OTHER]) == [(DEPT, None), *((DEPT, kk) for kk in TaskKind)]


def test_order_is_judged_on_neighbours_in_rank() -> None:
    assert order_problem({E: 15, U: 60, H: 240, N: 1440, L: 4320}) is None
    assert order_problem({E: 61, U: 60, H: 240, N: 1440, L: 4320}) is E
    assert order_problem({E: 15, U: 60, H: 240, N: 5000, L: 4320}) is N

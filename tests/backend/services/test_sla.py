"""One severity-to-SLA table for every source: built-in times, the settings' own, a department's own."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.followup.responses import PRIORITY
from backend.models import (
    AuditEvent,
    ResolutionCode,
    TaskEvent,
    TaskEventKind,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services.inbox import do_close, do_reopen
from backend.services.sla import do_set_department_sla, sla_for
from backend.services.tasks import do_raise_priority, do_raise_task
from questionnaires.model import Severity
from tests import factories
from tests.conftest import reset_caches

BUILT_IN = {
    TaskPriority.EMERGENCY: timedelta(minutes=15),
    TaskPriority.URGENT: timedelta(hours=1),
    TaskPriority.HIGH: timedelta(hours=4),
    TaskPriority.NORMAL: timedelta(hours=24),
    TaskPriority.LOW: timedelta(hours=72),
}


def _raise(db: Session, priority: TaskPriority, dept_id: int | None) -> timedelta:
    task = do_raise_task(
        db,
        kind=TaskKind.HANDOFF,
        priority=priority,
        title="t",
        source=("conversation", 1),
        patient_id=None,
        department_id=dept_id,
    )
    return task.due_at - task.created_at


def test_every_priority_is_due_after_its_built_in_time(db: Session) -> None:
    dept = factories.department(db)
    assert {p: _raise(db, p, dept.id) for p in TaskPriority} == BUILT_IN


def test_a_department_sets_its_own_time_and_others_keep_the_hospitals(db: Session) -> None:
    icu, ward = factories.department(db), factories.department(db)
    do_set_department_sla(db, department_id=icu.id, priority=TaskPriority.EMERGENCY, minutes=5, staff_id=None)
    assert _raise(db, TaskPriority.EMERGENCY, icu.id) == timedelta(minutes=5)
    assert _raise(db, TaskPriority.URGENT, icu.id) == timedelta(hours=1)
    assert _raise(db, TaskPriority.EMERGENCY, ward.id) == timedelta(minutes=15)
    assert _raise(db, TaskPriority.EMERGENCY, None) == timedelta(minutes=15)
    assert db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "sla.set")).all() == ["sla.set"]
    do_set_department_sla(db, department_id=icu.id, priority=TaskPriority.EMERGENCY, minutes=None)
    assert sla_for(db, TaskPriority.EMERGENCY, icu.id) == timedelta(minutes=15)


def test_the_settings_table_changes_the_hospitals_defaults(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_SLA_MINUTES", '{"emergency": 10, "normal": 480}')
    reset_caches()
    assert _raise(db, TaskPriority.EMERGENCY, None) == timedelta(minutes=10)
    assert _raise(db, TaskPriority.NORMAL, None) == timedelta(hours=8)
    assert _raise(db, TaskPriority.URGENT, None) == timedelta(hours=1)


@pytest.mark.parametrize("table", [{"critical": 5}, {"emergency": 0}])
def test_the_settings_refuse_an_unknown_priority_or_no_time(table: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(sla_minutes=table)  # type: ignore[call-arg]


def test_every_finding_severity_is_the_task_priority_of_its_name() -> None:
    assert {s.value: p.value for s, p in PRIORITY.items()} == {s.value: s.value for s in Severity}


def test_a_raised_task_is_due_sooner_and_never_lowered(db: Session) -> None:
    dept = factories.department(db)
    task = factories.task(db, priority=TaskPriority.NORMAL, dept=dept)
    now = utcnow()
    event = do_raise_priority(db, task=task, priority=TaskPriority.EMERGENCY, now=now, message_id=1)
    assert event is not None and event.kind is TaskEventKind.RAISED
    assert event.detail == {"from": "normal", "to": "emergency", "message_id": 1}
    assert (task.priority, task.due_at) == (TaskPriority.EMERGENCY, now + timedelta(minutes=15))
    assert do_raise_priority(db, task=task, priority=TaskPriority.HIGH, now=now) is None
    assert task.priority is TaskPriority.EMERGENCY
    assert db.scalar(sa.select(sa.func.count()).select_from(TaskEvent)) == 1


def test_a_reopened_task_gets_its_departments_time(db: Session) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    do_set_department_sla(db, department_id=dept.id, priority=TaskPriority.NORMAL, minutes=120)
    task = factories.task(db, priority=TaskPriority.NORMAL, dept=dept)
    do_close(db, task=task, staff_id=nurse.id, code=ResolutionCode.RESOLVED, summary="done")
    now = utcnow()
    do_reopen(db, task=task, staff_id=nurse.id, now=now)
    assert task.status is TaskStatus.OPEN and task.due_at == now + timedelta(hours=2)

"""Response times per task kind: the hospital's and a department's rows for a kind, saved whole and
checked, read by every due time (raised, reopened, raised in priority, a complaint's promised wait), and
edited, filtered and exported on the response-times page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    ResolutionCode,
    Role,
    SlaKindPolicy,
    SlaPolicy,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.services.inbox import do_close, do_reopen
from backend.services.refusal import ActionRefused
from backend.services.sla import (
    SlaSource,
    do_set_department_table,
    do_set_kind_table,
    sla_for,
    sla_rows,
    sla_source,
)
from backend.services.tasks import do_raise_priority, do_raise_task
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in

E, U, H, N, L = (
    TaskPriority.EMERGENCY,
    TaskPriority.URGENT,
    TaskPriority.HIGH,
    TaskPriority.NORMAL,
    TaskPriority.LOW,
)
COMPLAINT, CALLBACK = TaskKind.COMPLAINT, TaskKind.CALLBACK


def _raise(db: Session, kind: TaskKind, priority: TaskPriority, dept_id: int | None) -> timedelta:
    task = do_raise_task(
        db,
        kind=kind,
        priority=priority,
        title="t",
        source=("conversation", 1),
        patient_id=None,
        department_id=dept_id,
    )
    return task.due_at - task.created_at


def _rows(db: Session) -> set[tuple[str, TaskKind, TaskPriority, int]]:
    query = sa.select(SlaKindPolicy.scope, SlaKindPolicy.kind, SlaKindPolicy.priority, SlaKindPolicy.minutes)
    return {(scope, kind, priority, minutes) for scope, kind, priority, minutes in db.execute(query)}


def test_each_level_applies_in_its_order_to_raised_tasks(db: Session) -> None:
    icu, ward = factories.department(db), factories.department(db)
    # the hospital: complaints at high priority within 48 hours, normal within 72
    do_set_kind_table(
        db, kind=COMPLAINT, department_id=None, minutes={H: 2880, N: 4320, L: 4320}, staff_id=None
    )
    # the ICU: its own high (2 hours) for every kind, and complaints at high within a day
    do_set_department_table(db, department_id=icu.id, minutes={H: 120}, staff_id=None)
    do_set_kind_table(db, kind=COMPLAINT, department_id=icu.id, minutes={H: 1440}, staff_id=None)
    assert _raise(db, COMPLAINT, H, icu.id) == timedelta(hours=24)  # department + kind
    assert _raise(db, CALLBACK, H, icu.id) == timedelta(hours=2)  # department
    assert _raise(db, COMPLAINT, N, icu.id) == timedelta(hours=72)  # hospital + kind
    assert _raise(db, COMPLAINT, H, ward.id) == timedelta(hours=48)  # hospital + kind
    assert _raise(db, COMPLAINT, H, None) == timedelta(hours=48)
    assert _raise(db, CALLBACK, H, ward.id) == timedelta(hours=4)  # built in
    assert sla_source(db, H, icu.id, COMPLAINT) == (1440, SlaSource.DEPARTMENT_KIND)
    assert sla_source(db, N, ward.id, CALLBACK) == (1440, SlaSource.BUILT_IN)
    # without a kind (a caller that has none), the kind rows are not read
    assert sla_for(db, H, ward.id) == timedelta(hours=4)


def test_reopening_and_raising_a_task_use_its_kind(db: Session) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    do_set_kind_table(
        db, kind=TaskKind.HANDOFF, department_id=dept.id, minutes={E: 5, U: 20, N: 600}, staff_id=None
    )
    task = factories.task(db, priority=N, dept=dept)
    assert task.kind is TaskKind.HANDOFF
    do_close(db, task=task, staff_id=nurse.id, code=ResolutionCode.RESOLVED, summary="done")
    now = utcnow()
    do_reopen(db, task=task, staff_id=nurse.id, now=now)
    assert task.due_at == now + timedelta(minutes=600)
    do_raise_priority(db, task=task, priority=U, now=now)
    assert task.due_at == now + timedelta(minutes=20)


def test_a_row_is_saved_whole_changes_are_audited_and_a_blank_removes(db: Session) -> None:
    dept = factories.department(db)
    changed = do_set_kind_table(
        db, kind=CALLBACK, department_id=dept.id, minutes={E: 5, U: 30}, staff_id=None
    )
    assert changed == [E, U]
    scope = f"department:{dept.id}"
    assert _rows(db) == {(scope, CALLBACK, E, 5), (scope, CALLBACK, U, 30)}
    assert (
        do_set_kind_table(db, kind=CALLBACK, department_id=dept.id, minutes={E: 5, U: 30}, staff_id=None)
        == []
    )
    assert do_set_kind_table(db, kind=CALLBACK, department_id=dept.id, minutes={E: 5}, staff_id=None) == [U]
    assert _rows(db) == {(scope, CALLBACK, E, 5)}
    details = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "sla.set")).all()
    assert [(d["kind"], d["priority"], d["minutes"]) for d in details] == [
        ("callback", "emergency", 5),
        ("callback", "urgent", 30),
        ("callback", "urgent", None),
    ]
    assert db.scalars(sa.select(SlaPolicy)).all() == []  # the per-priority table is untouched


@pytest.mark.parametrize(
    ("department", "minutes", "reason"),
    [
        ("icu", {E: 0}, "sla_minutes"),
        ("icu", {E: 60 * 24 * 30 + 1}, "sla_minutes"),
        ("icu", {E: 90}, "sla_order"),  # longer than the urgent hour it falls back to
        ("hospital", {U: 20}, "sla_order"),  # under the ICU's own 30-minute emergency time
        ("missing", {E: 5}, "no_such_department"),
    ],
)
def test_a_bad_row_is_refused_and_nothing_changes(
    db: Session, department: str, minutes: dict[TaskPriority, int], reason: str
) -> None:
    icu = factories.department(db)
    do_set_department_table(db, department_id=icu.id, minutes={E: 30}, staff_id=None)
    do_set_kind_table(db, kind=COMPLAINT, department_id=icu.id, minutes={N: 2000}, staff_id=None)
    before, audits = _rows(db), db.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    dept_id = {"icu": icu.id, "hospital": None, "missing": icu.id + 999}[department]
    with pytest.raises(ActionRefused) as refused:
        do_set_kind_table(db, kind=COMPLAINT, department_id=dept_id, minutes=minutes, staff_id=None)
    assert refused.value.reason == reason
    assert _rows(db) == before
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == audits
    assert sla_for(db, E, icu.id, COMPLAINT) == timedelta(minutes=30)


def test_a_department_row_that_would_disorder_one_of_its_kind_tables_is_refused(db: Session) -> None:
    icu = factories.department(db)
    do_set_kind_table(db, kind=CALLBACK, department_id=None, minutes={U: 30}, staff_id=None)
    # emergencies in 45 minutes for every kind: callbacks at urgent would then be due before them
    with pytest.raises(ActionRefused) as refused:
        do_set_department_table(db, department_id=icu.id, minutes={E: 45}, staff_id=None)
    assert refused.value.reason == "sla_order"
    assert db.scalars(sa.select(SlaPolicy)).all() == []


def test_the_hospitals_per_priority_table_is_not_a_row_of_the_page(db: Session) -> None:
    with pytest.raises(ActionRefused):
        do_set_kind_table(db, kind=None, department_id=None, minutes={E: 5}, staff_id=None)


def test_the_rows_say_what_applies_and_where_it_comes_from(db: Session) -> None:
    icu, ward = factories.department(db), factories.department(db)
    do_set_kind_table(
        db, kind=COMPLAINT, department_id=None, minutes={H: 2880, N: 2880, L: 4320}, staff_id=None
    )
    do_set_kind_table(db, kind=COMPLAINT, department_id=icu.id, minutes={H: 600}, staff_id=None)
    hospital, *departments = sla_rows(db, COMPLAINT)
    assert hospital.key == "hospital" and hospital.own[H] == 2880 and hospital.own[E] is None
    assert hospital.fallback[H] == (240, SlaSource.BUILT_IN)
    by_id = {r.department.id: r for r in departments if r.department is not None}
    assert by_id[icu.id].in_force[H] == (600, SlaSource.DEPARTMENT_KIND)
    assert by_id[icu.id].fallback[H] == (2880, SlaSource.HOSPITAL_KIND)
    assert by_id[ward.id].in_force[H] == (2880, SlaSource.HOSPITAL_KIND)
    assert by_id[ward.id].in_force[E] == (15, SlaSource.BUILT_IN)
    assert [r.key for r in sla_rows(db, COMPLAINT, ward.id)] == ["hospital", str(ward.id)]
    assert [r.key for r in sla_rows(db, None)] == [
        str(d.id) for d in sorted((icu, ward), key=lambda d: d.code)
    ]


def test_the_page_edits_a_kind_for_the_hospital_and_a_department(client: TestClient, db: Session) -> None:
    icu, ward = factories.department(db), factories.department(db)
    factories.staff(db, username="boss", role=Role.MANAGER, departments=[icu])
    db.commit()
    icu_id, ward_id, icu_code = icu.id, ward.id, icu.code
    sign_in(client, "boss")
    page = client.get("/staff/safety/sla?kind=complaint")
    assert page.status_code == 200 and 'data-row="hospital"' in page.text
    assert 'data-source="built_in"' in page.text and 'data-source="hospital_kind"' not in page.text
    csrf = _csrf(page.text)
    form = {"csrf_token": csrf, "kind": "complaint", "high": "2880", "normal": "2880", "low": "4320"}
    saved = client.post("/staff/safety/sla/hospital", data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/staff/safety/sla?saved=hospital&kind=complaint"
    shown = client.get(saved.headers["location"])
    assert 'id="saved"' in shown.text and 'data-source="hospital_kind"' in shown.text
    bad = client.post(
        f"/staff/safety/sla/{icu_id}",
        data={"csrf_token": csrf, "kind": "complaint", "filter": str(icu_id), "normal": "5000"},
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'id="action-error"' in bad.text and 'value="5000"' in bad.text
    assert f'data-department="{ward_id}"' not in bad.text  # the filter is kept
    for row in ("nobody", "99999999999999999999", str(icu_id + 999)):
        missing = client.post(f"/staff/safety/sla/{row}", data={**form, "csrf_token": csrf})
        assert missing.status_code == 404, row
    good = client.post(
        f"/staff/safety/sla/{icu_id}",
        data={"csrf_token": csrf, "kind": "complaint", "high": "600"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    db.expire_all()
    assert sla_for(db, H, icu_id, COMPLAINT) == timedelta(minutes=600)
    assert sla_for(db, H, ward_id, COMPLAINT) == timedelta(minutes=2880)
    assert sla_for(db, H, ward_id, CALLBACK) == timedelta(minutes=240)
    export = client.get(f"/staff/safety/sla.xlsx?kind=complaint&department={icu_id}")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert ("hospital", "complaint", "high", 2880, "hospital_kind") in rows
    assert (icu_code, "complaint", "high", 600, "department_kind") in rows
    assert (icu_code, "complaint", "emergency", 15, "built_in") in rows
    assert not any(r[0] == icu_code and r[1] != "complaint" for r in rows)  # only the kind asked for
    views = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "sla.view")).all()
    assert {"kind": "complaint"}.items() <= views[0].items()

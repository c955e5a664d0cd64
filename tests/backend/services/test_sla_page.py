"""The response-times page: managers see each department's table beside the hospital's, save a
department's whole table (checked: whole minutes from 1, more urgent never longer), export it."""

from __future__ import annotations

import io
from datetime import timedelta
from itertools import pairwise, product

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, SlaPolicy, TaskPriority
from backend.services.refusal import ActionRefused
from backend.services.sla import (
    MAX_MINUTES,
    do_set_department_table,
    hospital_table,
    order_problem,
    parse_minutes,
    sla_for,
)
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in

E, U, H, N, L = (
    TaskPriority.EMERGENCY,
    TaskPriority.URGENT,
    TaskPriority.HIGH,
    TaskPriority.NORMAL,
    TaskPriority.LOW,
)
HOSPITAL = {E: 15, U: 60, H: 240, N: 1440, L: 4320}


def test_the_hospital_table_is_the_built_in_one_without_settings() -> None:
    assert hospital_table() == HOSPITAL


@pytest.mark.parametrize(
    ("raw", "expected"), [("", None), ("  ", None), ("1", 1), (" 30 ", 30), (str(MAX_MINUTES), MAX_MINUTES)]
)
def test_a_field_is_blank_or_whole_minutes(raw: str, expected: int | None) -> None:
    assert parse_minutes(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-5", "1.5", "abc", "１０x", str(MAX_MINUTES + 1), "15m"])
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(ActionRefused) as refused:
        parse_minutes(raw)
    assert refused.value.reason == "sla_minutes"


def test_order_holds_for_every_pair_of_neighbours() -> None:
    assert order_problem(HOSPITAL) is None
    assert order_problem(dict.fromkeys(TaskPriority, 10)) is None  # equal times are in order
    for more, less in pairwise(sorted(TaskPriority, key=lambda p: p.rank)):
        table = dict(HOSPITAL)
        table[more] = table[less] + 1
        assert order_problem(table) == more


def test_every_small_table_is_judged_as_its_sorted_order_says() -> None:
    for values in product((1, 2, 3), repeat=len(TaskPriority)):
        table = dict(zip(sorted(TaskPriority, key=lambda p: p.rank), values, strict=True))
        assert (order_problem(table) is None) == (list(values) == sorted(values))


def test_a_department_table_is_saved_whole_and_checked_with_the_hospitals_filling_gaps(db: Session) -> None:
    icu = factories.department(db)
    changed = do_set_department_table(
        db, department_id=icu.id, minutes={E: 5, U: 30, H: None, N: None, L: None}, staff_id=None
    )
    assert changed == [E, U]
    assert sla_for(db, E, icu.id) == timedelta(minutes=5) and sla_for(db, H, icu.id) == timedelta(hours=4)
    # urgent longer than the hospital's high (240): refused, nothing changed
    with pytest.raises(ActionRefused) as refused:
        do_set_department_table(db, department_id=icu.id, minutes={E: 1, U: 300}, staff_id=None)
    assert refused.value.reason == "sla_order"
    assert sla_for(db, E, icu.id) == timedelta(minutes=5)
    with pytest.raises(ActionRefused) as refused:
        do_set_department_table(db, department_id=icu.id, minutes={E: 0}, staff_id=None)
    assert refused.value.reason == "sla_minutes"
    with pytest.raises(ActionRefused) as refused:
        do_set_department_table(db, department_id=icu.id + 999, minutes={E: 5}, staff_id=None)
    assert refused.value.reason == "no_such_department"
    # blank again: back to the hospital's, its row removed
    assert do_set_department_table(db, department_id=icu.id, minutes={}, staff_id=None) == [E, U]
    assert db.scalars(sa.select(SlaPolicy)).all() == []


def test_a_manager_edits_filters_and_exports_and_a_nurse_may_not(client: TestClient, db: Session) -> None:
    icu, ward = factories.department(db), factories.department(db)
    factories.staff(db, username="boss", role=Role.MANAGER, departments=[icu])
    factories.staff(db, username="nurse", departments=[icu])
    db.commit()
    icu_id, ward_id, icu_code, ward_code = icu.id, ward.id, icu.code, ward.code
    sign_in(client, "nurse")
    assert client.get("/staff/safety/sla").status_code == 403
    assert client.get("/staff/safety/sla.xlsx").status_code == 403
    client.cookies.clear()
    sign_in(client, "boss")
    page = client.get("/staff/safety/sla")
    assert page.status_code == 200 and f'data-department="{ward_id}"' in page.text
    csrf = _csrf(page.text)
    bad = client.post(
        f"/staff/safety/sla/{icu_id}",
        data={"csrf_token": csrf, "emergency": "90", "urgent": "60"},
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'id="action-error"' in bad.text
    assert 'value="90"' in bad.text  # what was typed is shown again, not lost
    assert db.scalars(sa.select(SlaPolicy)).all() == []
    saved = client.post(
        f"/staff/safety/sla/{icu_id}",
        data={"csrf_token": csrf, "emergency": "10", "urgent": "45", "filter": str(icu_id)},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/staff/safety/sla?saved={icu_id}&department={icu_id}"
    filtered = client.get(saved.headers["location"])
    assert 'id="saved"' in filtered.text and f'data-department="{ward_id}"' not in filtered.text
    db.expire_all()
    assert sla_for(db, E, icu_id) == timedelta(minutes=10) and sla_for(db, E, ward_id) == timedelta(
        minutes=15
    )
    export = client.get("/staff/safety/sla.xlsx")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert (icu_code, "any", "emergency", 10, "department") in rows
    assert (ward_code, "any", "emergency", 15, "built_in") in rows
    assert (ward_code, "complaint", "high", 240, "built_in") in rows  # every kind's table in force too
    actions = list(db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("sla.%"))))
    assert actions.count("sla.set") == 2 and {"sla.view", "sla.export"} <= set(actions)

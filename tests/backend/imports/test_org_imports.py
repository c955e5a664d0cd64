"""The hospital's organisation imported from its files (departments, wards, doctors and nurses) on SQLite
and PostgreSQL: the same dry run and confirm as patient files, applied through the admin console's verbs
(each entry audited), names merged by language, re-running the same file changes nothing, and codes
reconciled both ways."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.imports import storage
from backend.imports.reconcile import report_kind
from backend.imports.service import do_start_dry_run
from backend.models import AuditEvent, Clinician, ClinicianKind, Department, Ward, WorkState
from backend.security.crypto import current_cipher
from backend.work import runs
from tests import factories
from tests.backend.imports.files import csv_bytes, xlsx
from tests.backend.imports.jobs_helpers import confirm, dry_run, reloaded, stored
from tests.conftest import reset_caches

DEPARTMENT_HEADERS = ["科室代码", "科室名称", "英文名称", "Tên tiếng Việt"]
DEPARTMENTS = [
    ["0301", "心内科", "Cardiology", "Khoa Tim mạch"],
    ["0402", "普外科", "General Surgery", ""],
    ["内 科", "内科", "", ""],  # a code with a space and a Chinese character
    ["0501", "", "", ""],  # no name in any language
    ["0301", "心血管内科", "", ""],  # the same code again
]


def _sheet(job_id: int, name: str) -> list[tuple[object, ...]]:
    data = current_cipher().unseal(report_kind(job_id), storage.report_path(job_id).read_bytes())
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [tuple(row) for row in book[name].iter_rows(min_row=2, values_only=True)]


@pytest.fixture
def chinese_hospital(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_DEFAULT_LANGUAGE", "zh-CN")
    reset_caches()


@pytest.fixture
def vietnamese_hospital(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_DEFAULT_LANGUAGE", "vi")
    reset_caches()


def test_a_department_file_lists_every_problem_then_creates_audited_departments_once(
    db: Session, chinese_hospital: None
) -> None:
    dry = dry_run(db, "departments", csv_bytes(DEPARTMENT_HEADERS, DEPARTMENTS, encoding="utf-8-sig"))
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 2, "with problems": 3}
    assert sorted((e["at"], e["error"]) for e in dry.errors) == [
        (4, "not a code (letters, digits, dot, dash or underscore; at most 32) · 科室代码"),
        (5, "no name in any language"),
        (6, "duplicate of an earlier row · 2"),
    ]
    assert db.scalar(sa.select(sa.func.count()).select_from(Department)) == 0  # a dry run writes nothing

    done = confirm(db, dry)
    assert done.state is WorkState.DONE, done.failure
    assert done.counts == {"created": 2, "with problems": 3}
    db.expire_all()
    cardiology = db.scalars(sa.select(Department).where(Department.code == "0301")).one()
    # the plain name column is in the hospital's language; a column naming its language says which
    assert cardiology.names == {"zh-CN": "心内科", "en": "Cardiology", "vi": "Khoa Tim mạch"}
    assert cardiology.name == "Cardiology" and cardiology.active
    assert cardiology.name_in("zh-CN") == "心内科"
    created = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "org.department_create")).all()
    assert sorted(e.subject_id for e in created) == sorted(d.id for d in db.scalars(sa.select(Department)))

    again = dry_run(db, "departments", csv_bytes(DEPARTMENT_HEADERS, DEPARTMENTS, encoding="utf-8-sig"))
    assert again.counts == {"unchanged": 2, "with problems": 3}


def test_a_file_adds_its_languages_names_keeps_the_others_and_never_reactivates(
    db: Session, chinese_hospital: None
) -> None:
    held = factories.department(db, code="0301")
    held.names = {"en": "Cardiology", "vi": "Khoa Tim mạch"}
    held.active = False
    db.commit()
    dry = dry_run(db, "departments", csv_bytes(["科室代码", "科室名称"], [["0301", "心内科"]]))
    assert dry.counts == {"to update": 1}
    assert confirm(db, dry).counts == {"updated": 1}
    db.expire_all()
    department = db.get(Department, held.id)
    assert department is not None
    assert department.names == {"en": "Cardiology", "vi": "Khoa Tim mạch", "zh-CN": "心内科"}
    assert department.active is False  # whether it is in use is the admin console's to say
    update = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "org.department_update")).one()
    assert update.detail["changed"] == ["names"]


def test_wards_in_vietnamese_need_a_known_department(db: Session, vietnamese_hospital: None) -> None:
    medicine = factories.department(db, code="K01")
    db.commit()
    headers = ["Mã buồng", "Mã khoa", "Tên buồng"]
    rows = [["B101", "K01", "Buồng hồi sức"], ["B102", "K99", "Buồng sau mổ"], ["B103", "", "Buồng 3"]]
    dry = dry_run(db, "wards", csv_bytes(headers, rows, encoding="utf-8-sig"))
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 1, "with problems": 2}
    assert sorted((e["at"], e["error"]) for e in dry.errors) == [
        (3, "unknown department"),
        (4, "required value missing · Mã khoa"),
    ]
    assert confirm(db, dry).counts == {"created": 1, "with problems": 2}
    db.expire_all()
    ward = db.scalars(sa.select(Ward)).one()
    assert (ward.code, ward.department_id, ward.names) == ("B101", medicine.id, {"vi": "Buồng hồi sức"})


def test_doctors_and_nurses_from_excel_with_kind_and_title(
    db: Session, tmp_path: Path, chinese_hospital: None
) -> None:
    surgery = factories.department(db, code="0402")
    cardiology = factories.department(db, code="0301")
    db.commit()
    headers = ["工号", "姓名", "科室代码", "人员类别", "职称", "English name"]
    rows = [
        ["D1001", "李明", "0402", "医生", "主任医师", "Li Ming"],
        ["N2001", "王芳", "0402", "护士", "主管护师", ""],
        ["D1002", "陈刚", "0402", "药师", "", ""],  # not a doctor or a nurse
    ]
    path = xlsx(tmp_path / "clinicians.xlsx", headers, rows)
    dry = dry_run(db, "clinicians", path.read_bytes())
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 2, "with problems": 1}
    assert [(e["at"], e["error"]) for e in dry.errors] == [(4, "unknown kind of clinician · 人员类别")]
    assert confirm(db, dry).counts == {"created": 2, "with problems": 1}
    db.expire_all()
    li, wang = db.scalars(sa.select(Clinician).order_by(Clinician.code)).all()
    assert (li.code, li.kind, li.title) == ("D1001", ClinicianKind.DOCTOR, "主任医师")
    assert li.department_id == surgery.id
    assert li.names == {"zh-CN": "李明", "en": "Li Ming"} and li.name_in("zh-CN") == "李明"
    assert (wang.code, wang.kind, wang.title) == ("N2001", ClinicianKind.NURSE, "主管护师")

    moved = [["D1001", "李明", "0301", "", "", "Li Ming"]]  # moved to cardiology; kind and title unsaid
    dry = dry_run(db, "clinicians", xlsx(tmp_path / "moved.xlsx", headers, moved).read_bytes())
    assert dry.counts == {"to update": 1}
    confirm(db, dry)
    db.expire_all()
    moved_li = db.get(Clinician, li.id)
    assert moved_li is not None and (moved_li.kind, moved_li.title) == (ClinicianKind.DOCTOR, "主任医师")
    assert moved_li.department_id == cardiology.id


def test_department_codes_reconcile_both_ways_and_nothing_is_imported(db: Session) -> None:
    factories.department(db, code="0301")
    factories.department(db, code="0999")
    db.commit()
    his = csv_bytes(["科室代码", "科室名称"], [["0301", "心内科"], ["0777", "新科室"]])
    job = do_start_dry_run(
        db, kind="departments", file=stored(his), name="d.csv", source="HIS", encoding=None,
        staff_id=None, reconcile_only=True,
    )  # fmt: skip
    db.commit()
    runs.run_job(job.id)
    done = reloaded(db, job.id)
    assert done.state is WorkState.DONE, done.failure
    assert done.result == {"reconciliation": {"in the file only": 1, "in CareLoop only": 1}}
    assert _sheet(job.id, "In the file only") == [(3, "0777")]
    assert [row[1] for row in _sheet(job.id, "In CareLoop only")] == ["0999"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Department)) == 2

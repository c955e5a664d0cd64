"""Imports end to end on SQLite and PostgreSQL: the dry run lists every problem and writes nothing, the
confirm applies exactly its plan through the HL7 path's verbs, re-running the same file changes nothing,
and a confirm is refused when the file or the affected records changed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import storage
from backend.imports.service import ImportReason, ImportRefused, do_start_confirm
from backend.models import (
    AuditEvent,
    Encounter,
    EncounterKind,
    ImportMapping,
    Patient,
    PatientIdentifier,
    Sex,
    WorkState,
)
from tests import factories
from tests.backend.imports.files import (
    PATIENT_HEADERS_VI,
    PATIENT_HEADERS_ZH,
    PATIENTS_VI,
    PATIENTS_ZH,
    csv_bytes,
)
from tests.backend.imports.jobs_helpers import confirm, dry_run, reloaded, stored

BAD_PATIENTS = [
    ["P0004", "赵敏", "女", "1985-13-40", "13800138001", "中文"],  # bad date
    ["P0005", "钱多多", "男", "1985-01-01", "12345", "中文"],  # bad phone
    ["P0001", "王秀英", "女", "1956-03-12", "13800138000", "中文"],  # duplicate of row 2
    ["", "无名氏", "未知", "", "", "火星语"],  # no identifier, unknown language
]


def _named(db: Session, name: str) -> Patient:
    """The one patient of that name (names are encrypted: compared here, not in SQL)."""
    [found] = [p for p in db.scalars(sa.select(Patient)) if p.name == name]
    return found


def _patients(db: Session) -> int:
    return int(db.scalar(sa.select(sa.func.count()).select_from(Patient)) or 0)


def test_a_gbk_patient_file_dry_runs_with_every_problem_then_confirms_exactly_its_plan(db: Session) -> None:
    data = csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH + BAD_PATIENTS, encoding="gbk")
    dry = dry_run(db, "patients", data)
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 3, "with problems": 4}
    assert dry.result is not None and dry.result["encoding"] == "gb18030" and dry.result["writes"] == 3
    problems = {(e["at"], e["error"]) for e in dry.errors}
    assert problems == {
        (5, "not a date · 出生日期"),
        (6, "invalid phone number · 手机号"),
        (7, "duplicate of an earlier row · 2"),
        (8, "required value missing · 病案号"),
        (8, "unknown language · 语言"),
    }
    assert _patients(db) == 0  # a dry run writes nothing
    mapping = db.scalars(sa.select(ImportMapping)).one()
    assert (mapping.source, mapping.kind, mapping.columns["name"]) == ("HIS", "patients", "姓名")

    done = confirm(db, dry)
    assert done.state is WorkState.DONE, done.failure
    assert done.counts == {"created": 3, "with problems": 4}
    db.expire_all()
    wang = _named(db, "王秀英")
    assert (wang.mrn, wang.sex, wang.birth_date.isoformat(), wang.phone, wang.language) == (
        "P0001", Sex.FEMALE, "1956-03-12", "+8613800138000", "zh-CN",
    )  # fmt: skip
    li = _named(db, "李建国")
    assert li.phone == "+8613912345678" and li.birth_date.isoformat() == "1948-11-02"
    identifiers = db.scalars(sa.select(PatientIdentifier)).all()
    assert {(i.authority, i.value) for i in identifiers} == {
        ("HIS", "P0001"),
        ("HIS", "P0002"),
        ("HIS", "P0003"),
    }
    created = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "patient.created")).all()
    assert [d["source"] for d in created] == ["import:patients"] * 3
    # the reconciliation: P0004 and P0005 (bad date, bad phone) are in the file only; the duplicate of
    # P0001 is in CareLoop, and a row without an identifier names nobody
    assert done.result is not None
    assert done.result["reconciliation"] == {"in the file only": 2, "in CareLoop only": 0}
    assert storage.report_path(done.id).exists()

    # the same file again: nothing would change, and there is nothing to confirm
    again = dry_run(db, "patients", data)
    assert again.counts == {"unchanged": 3, "with problems": 4}
    try:
        do_start_confirm(db, again, staff_id=None)
    except ImportRefused as refused:
        assert refused.reason is ImportReason.NOTHING_TO_APPLY
    else:
        raise AssertionError("a confirm with nothing to apply was started")
    assert _patients(db) == 3


def test_a_bom_file_in_vietnamese_updates_only_what_changed(db: Session) -> None:
    first = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_VI, PATIENTS_VI, encoding="utf-8-sig"))
    assert confirm(db, first).counts == {"created": 2}
    changed = [PATIENTS_VI[0], [*PATIENTS_VI[1][:4], "+84 903 999 888", "Tiếng Việt"]]
    second = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_VI, changed, encoding="utf-8-sig"))
    assert second.counts == {"unchanged": 1, "to update": 1}
    assert confirm(db, second).counts == {"unchanged": 1, "updated": 1}
    db.expire_all()
    hung = _named(db, "Trần Văn Hùng")
    assert (
        hung.phone == "+84903999888" and hung.language == "vi" and hung.birth_date.isoformat() == "1970-08-05"
    )


def test_a_confirm_is_refused_when_the_affected_records_changed_since_the_dry_run(db: Session) -> None:
    confirm(db, dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH)))
    renamed = [["P0001", "王秀兰", "女", "1956-03-12", "13800138000", "中文"], *PATIENTS_ZH[1:]]
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, renamed))
    assert dry.counts == {"to update": 1, "unchanged": 2}
    wang = db.scalars(sa.select(Patient).where(Patient.mrn_bidx == Patient.code_index("mrn", "P0001"))).one()
    wang.birth_date = datetime(1957, 1, 1, tzinfo=UTC).date()  # someone edits the record meanwhile
    db.commit()
    refused = confirm(db, dry)
    assert refused.state is WorkState.FAILED
    assert refused.failure is not None and "1 rows changed since the dry run" in refused.failure
    assert [(e["at"], e["error"]) for e in refused.errors] == [(2, "changed since the dry run")]
    db.expire_all()
    assert db.get(Patient, wang.id).name == "王秀英"  # type: ignore[union-attr]


def test_a_confirm_is_refused_when_the_stored_file_changed(db: Session) -> None:
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH))
    assert dry.result is not None
    path = storage.file_path(dry.result["file"])
    path.write_bytes(path.read_bytes().replace("王秀英".encode(), "王秀兰".encode()))
    refused = confirm(db, dry)
    assert refused.state is WorkState.FAILED and "the file changed" in (refused.failure or "")
    assert _patients(db) == 0


ENCOUNTER_HEADERS = ["病案号", "住院号", "就诊类型", "科室代码", "入院时间", "出院时间", "诊断编码"]


def test_encounters_map_codes_report_unknown_ones_and_plan_discharges(db: Session) -> None:
    cardiology = factories.department(db, code="0301")
    factories.patient(db, mrn="X9")  # known to CareLoop by MRN only
    db.commit()
    confirm(db, dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH)))
    other_visit = dry_run(
        db,
        "encounters",
        csv_bytes(ENCOUNTER_HEADERS, [["X9", "V900", "门诊", "0301", "2026-11-01 09:00", "", ""]]),
    )
    assert other_visit.counts == {"to create": 1}
    confirm(db, other_visit)
    rows = [
        ["P0001", "V1001", "住院", "0301", "2026-11-20 08:30", "2026-11-27 10:00", "I10, E11.9"],
        ["P0002", "V1002", "门诊", "0301", "2026/11/25 14:05:00", "", "J45.x01"],
        ["P0003", "V1003", "住院", "9999", "2026-11-20", "", ""],  # unknown department
        ["P0404", "V1004", "住院", "0301", "2026-11-20", "", ""],  # unknown patient
        ["P0001", "V900", "门诊", "0301", "2026-11-20", "", ""],  # the visit belongs to another patient
        ["P0002", "V1005", "住院", "0301", "2026-11-20", "2026-11-19", "II0"],  # discharge first, bad code
        ["P0002", "V1002", "门诊", "0301", "2026-11-25 14:05", "", ""],  # duplicate in file
    ]
    dry = dry_run(db, "encounters", csv_bytes(ENCOUNTER_HEADERS, rows))
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 2, "with problems": 5}
    assert sorted((e["at"], e["error"]) for e in dry.errors) == [
        (4, "unknown department"),
        (5, "unknown patient"),
        (6, "duplicate in database: the visit number belongs to another patient"),
        (7, "discharge before admission · 出院时间"),
        (7, "not an ICD-10 code · 诊断编码"),
        (8, "duplicate of an earlier row · 3"),
    ]
    done = confirm(db, dry)
    assert done.counts == {"created": 2, "with problems": 5}
    db.expire_all()
    stay = db.scalars(sa.select(Encounter).where(Encounter.patient_id == _named(db, "王秀英").id)).one()
    assert stay.kind is EncounterKind.DISCHARGE and stay.department_id == cardiology.id
    assert stay.ended_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert [d["code"] for d in stay.diagnoses] == ["I10", "E11.9"] and stay.primary_diagnosis == "I10"
    discharged = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "encounter.discharged")).one()
    assert discharged.detail["source"] == "import:encounters" and "follow_ups_planned" in discharged.detail
    assert dry_run(db, "encounters", csv_bytes(ENCOUNTER_HEADERS, rows)).counts == {
        "unchanged": 2,
        "with problems": 5,
    }


def test_a_death_list_records_deaths_once(db: Session) -> None:
    confirm(db, dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH)))
    deaths = csv_bytes(
        ["病案号", "死亡日期"], [["P0002", "2026-12-01"], ["P0404", "2026-12-01"], ["P0003", "2030-01-01"]]
    )
    dry = dry_run(db, "exclusions", deaths)
    assert dry.counts == {"to update": 1, "with problems": 2}
    assert sorted((e["at"], e["error"]) for e in dry.errors) == [
        (3, "unknown patient"),
        (4, "date in the future · 死亡日期"),
    ]
    confirm(db, dry)
    db.expire_all()
    assert [p.name for p in db.scalars(sa.select(Patient).where(Patient.deceased))] == ["李建国"]
    actions = Counter(db.scalars(sa.select(AuditEvent.action)))
    assert actions["patient.death_recorded"] == 1
    assert dry_run(db, "exclusions", deaths).counts == {"unchanged": 1, "with problems": 2}


def test_an_excel_file_with_merged_cells_and_formulas_reports_them_on_their_rows(
    db: Session, tmp_path: Path
) -> None:
    from tests.backend.imports.files import xlsx

    rows: list[list[object]] = [
        ["P0001", "王秀英", "女", datetime(1956, 3, 12), 13800138000, "中文"],
        ["P0002", "李建国", "男", "1948-11-02", "=1+1", "中文"],
        ["P0003", "张伟", "男", "1990-07-01", None, None],
        [None, None, "男", "1991-07-01", None, None],
    ]
    path = xlsx(tmp_path / "p.xlsx", PATIENT_HEADERS_ZH, rows, merge="A4:A5")
    dry = dry_run(db, "patients", path.read_bytes())
    assert dry.counts == {"to create": 1, "with problems": 3}
    assert sorted((e["at"], e["error"]) for e in dry.errors) == [
        (3, "a formula instead of a value · 手机号"),
        (4, "merged cells · A4:A5"),
        (5, "merged cells · A4:A5"),
    ]
    assert confirm(db, dry).counts == {"created": 1, "with problems": 3}
    assert reloaded(db, dry.id).result is not None


def _sheet(job_id: int, name: str) -> list[tuple[object, ...]]:
    import io

    from openpyxl import load_workbook

    from backend.imports.reconcile import report_kind
    from backend.security.crypto import current_cipher

    data = current_cipher().unseal(report_kind(job_id), storage.report_path(job_id).read_bytes())
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [tuple(row) for row in book[name].iter_rows(min_row=2, values_only=True)]


def test_reconciliation_on_demand_lists_both_directions_and_imports_nothing(db: Session) -> None:
    from backend.imports.service import do_start_dry_run
    from backend.work import runs

    factories.department(db, code="0301")
    db.commit()
    confirm(db, dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH)))
    visits = [["P0001", "V1", "门诊", "0301", "2026-11-01 09:00", "", ""],
              ["P0002", "V2", "门诊", "0301", "2026-11-02 09:00", "", ""]]  # fmt: skip
    confirm(db, dry_run(db, "encounters", csv_bytes(ENCOUNTER_HEADERS, visits)))
    his = csv_bytes(["病案号", "姓名"], [["P0001", "王秀英"], ["P0404", "不在系统里"]])
    job = do_start_dry_run(
        db, kind="patients", file=stored(his), name="his.csv", source="HIS", encoding=None, staff_id=None,
        reconcile_only=True,
    )  # fmt: skip
    db.commit()
    runs.run_job(job.id)
    done = reloaded(db, job.id)
    assert done.state is WorkState.DONE and done.result == {
        "reconciliation": {"in the file only": 1, "in CareLoop only": 2}
    }
    assert _sheet(job.id, "In the file only") == [(3, "P0404", "HIS")]
    assert sorted(row[1] for row in _sheet(job.id, "In CareLoop only")) == ["P0002", "P0003"]
    assert _patients(db) == 3  # a reconciliation imports nothing
    his_visits = csv_bytes(
        ENCOUNTER_HEADERS, [visits[0], ["P0003", "V3", "门诊", "0301", "2026-11-03", "", ""]]
    )
    job = do_start_dry_run(
        db, kind="encounters", file=stored(his_visits), name="v.csv", source="HIS", encoding=None,
        staff_id=None,
        reconcile_only=True,
    )  # fmt: skip
    db.commit()
    runs.run_job(job.id)
    assert _sheet(job.id, "In the file only") == [(3, "V3", "HIS")]
    assert [row[1:] for row in _sheet(job.id, "In CareLoop only")] == [("V2", "HIS")]


def test_a_confirmed_file_is_not_kept_in_clear(db: Session) -> None:
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH))
    assert dry.result is not None and storage.file_path(dry.result["file"]).exists()
    confirm(db, dry)
    assert not storage.file_path(dry.result["file"]).exists()
    assert not storage.plan_path(dry.id).exists()


def test_an_email_column_is_imported_checked_and_updated(db: Session) -> None:
    headers = [*PATIENT_HEADERS_VI, "Địa chỉ email"]
    rows = [
        [*PATIENTS_VI[0], "Lan.Nguyen@Example.VN"],
        [*PATIENTS_VI[1], "hung at example.vn"],
    ]
    dry = dry_run(db, "patients", csv_bytes(headers, rows, encoding="utf-8"))
    assert dry.counts == {"to create": 1, "with problems": 1}
    assert {(e["at"], e["error"]) for e in dry.errors} == {(3, "invalid email address · Địa chỉ email")}
    assert confirm(db, dry).counts == {"created": 1, "with problems": 1}
    db.expire_all()
    lan = _named(db, "Nguyễn Thị Lan")
    assert lan.email == "lan.nguyen@example.vn" and lan.email_bidx == Patient.email_index(
        "lan.nguyen@example.vn"
    )
    lan.email_bounced = True  # her old address bounced; the hospital's system now sends a new one
    db.commit()
    same = dry_run(db, "patients", csv_bytes(headers, rows[:1], encoding="utf-8"))
    assert same.counts == {"unchanged": 1}
    moved = [[*PATIENTS_VI[0], "lan.n@example.vn"]]
    second = dry_run(db, "patients", csv_bytes(headers, moved, encoding="utf-8"))
    assert second.counts == {"to update": 1}
    assert confirm(db, second).counts == {"updated": 1}
    db.expire_all()
    lan = _named(db, "Nguyễn Thị Lan")
    assert lan.email == "lan.n@example.vn" and not lan.email_bounced

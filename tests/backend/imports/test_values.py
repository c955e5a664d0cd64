"""The pure parts of an import: cell values in three languages, column matching and saved mappings, a
row's problems all at once, and the decisions of the plan."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from backend.imports import values
from backend.imports.columns import ImportKind, match_columns, normalise_header
from backend.imports.plan import (
    Action,
    Codes,
    Decision,
    EncounterNow,
    ListedNow,
    PatientNow,
    consistent,
    decide_encounter,
    decide_exclusion,
    decide_patient,
)
from backend.imports.problems import Problem, RowProblem, split
from backend.imports.rows import (
    EncounterRecord,
    ExclusionRecord,
    PatientRecord,
    RowConfig,
    file_key,
    parse_row,
)
from backend.models.patients import EncounterKind, Sex

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    "cell",
    [
        "2024-03-05",
        "2024/3/5",
        "2024.03.05",
        "2024年3月5日",
        "20240305",
        "05/03/2024",
        "5-3-2024",
        "2024-03-05 00:00:00",
        date(2024, 3, 5),
        datetime(2024, 3, 5, 13, 0),
    ],
)
def test_dates_in_the_forms_hospitals_write(cell: values.Cell) -> None:
    assert values.parse_date(cell, today=TODAY) == date(2024, 3, 5)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("2024-13-01", Problem.BAD_DATE),
        ("31/02/2024", Problem.BAD_DATE),
        ("yesterday", Problem.BAD_DATE),
        ("2024-03-05 noon", Problem.BAD_DATE),
        ("1850-01-01", Problem.BAD_DATE),
        ("2027-01-01", Problem.FUTURE),
        (12, Problem.BAD_DATE),
    ],
)
def test_bad_dates_say_why(cell: values.Cell, problem: Problem) -> None:
    with pytest.raises(RowProblem) as raised:
        values.parse_date(cell, today=TODAY)
    assert raised.value.problem is problem


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-11-27 10:00", datetime(2026, 11, 27, 2, 0, tzinfo=UTC)),
        ("2026/11/27 10:00:30", datetime(2026, 11, 27, 2, 0, 30, tzinfo=UTC)),
        ("2026年11月27日 10时05分", datetime(2026, 11, 27, 2, 5, tzinfo=UTC)),
        ("2026-11-27T10:00", datetime(2026, 11, 27, 2, 0, tzinfo=UTC)),
        ("27/11/2026 10:00", datetime(2026, 11, 27, 2, 0, tzinfo=UTC)),
        ("2026-11-27", datetime(2026, 11, 26, 16, 0, tzinfo=UTC)),
        (datetime(2026, 11, 27, 10, 0), datetime(2026, 11, 27, 2, 0, tzinfo=UTC)),
        (date(2026, 11, 27), datetime(2026, 11, 26, 16, 0, tzinfo=UTC)),
    ],
)
def test_times_are_the_hospitals_local_time_stored_in_utc(cell: values.Cell, expected: datetime) -> None:
    assert values.parse_datetime(cell, zone=SHANGHAI, now=NOW) == expected


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("2026-11-27 25:00", Problem.BAD_DATETIME),
        ("2026-12-08 09:00", Problem.FUTURE),
        ("soon", Problem.BAD_DATETIME),
    ],
)
def test_bad_times_say_why(cell: str, problem: Problem) -> None:
    with pytest.raises(RowProblem) as raised:
        values.parse_datetime(cell, zone=SHANGHAI, now=NOW)
    assert raised.value.problem is problem


@pytest.mark.parametrize(
    ("cell", "sex"),
    [
        ("男", Sex.MALE),
        ("M", Sex.MALE),
        ("Nam", Sex.MALE),
        ("1", Sex.MALE),
        ("女", Sex.FEMALE),
        ("nữ", Sex.FEMALE),
        ("Female", Sex.FEMALE),
        ("未知", Sex.UNKNOWN),
        ("khác", Sex.OTHER),
    ],
)
def test_sex_in_three_languages(cell: str, sex: Sex) -> None:
    assert values.parse_sex(cell) is sex


@pytest.mark.parametrize(
    ("cell", "language"),
    [
        ("中文", "zh-CN"),
        ("zh", "zh-CN"),
        ("Tiếng Việt", "vi"),
        ("越南语", "vi"),
        ("English", "en"),
        ("tiếng anh", "en"),
    ],
)
def test_languages_in_three_languages(cell: str, language: str) -> None:
    assert values.parse_language(cell) == language


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("住院", EncounterKind.INPATIENT),
        ("门诊", EncounterKind.OUTPATIENT),
        ("急诊", EncounterKind.OUTPATIENT),
        ("nội trú", EncounterKind.INPATIENT),
        ("Physical exam", EncounterKind.PHYSICAL_EXAM),
    ],
)
def test_visit_types(cell: str, kind: EncounterKind) -> None:
    assert values.parse_kind(cell) is kind


@pytest.mark.parametrize(
    "parse", [values.parse_sex, values.parse_language, values.parse_kind, values.parse_list]
)
def test_unknown_words_are_problems(parse: object) -> None:
    with pytest.raises(RowProblem):
        parse("火星")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("cell", "region", "e164"),
    [
        ("13800138000", "CN", "+8613800138000"),
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+84 912 345 678", "CN", "+84912345678"),
        ("0912 345 678", "VN", "+84912345678"),
        ("１３８００１３８０００", "CN", "+8613800138000"),
        (13800138000.0, "CN", "+8613800138000"),
    ],
)
def test_valid_phones_for_the_region(cell: values.Cell, region: str, e164: str) -> None:
    assert values.parse_phone(cell, region) == e164


@pytest.mark.parametrize("cell", ["12345", "138001380001234", "abc", "+86 10", "0912 345 678"])
def test_invalid_phones(cell: str) -> None:
    with pytest.raises(RowProblem) as raised:
        values.parse_phone(cell, "CN")
    assert raised.value.problem is Problem.BAD_PHONE


def test_icd10_lists_keep_their_order_and_national_extensions() -> None:
    assert values.parse_icd_codes("I10, e11.9；J45.x01 | S72.001+W19") == (
        "I10",
        "E11.9",
        "J45.x01",
        "S72.001+W19",
    )
    for bad in ("II0", "I1", "高血压", "I10..1"):
        with pytest.raises(RowProblem):
            values.parse_icd_codes(bad)


def test_text_of_cells() -> None:
    assert values.text(100023.0) == "100023" and values.text(None) == "" and values.text(" Ｐ１ ") == "P1"


def test_headers_match_in_three_languages_and_a_saved_mapping_comes_first() -> None:
    assert normalise_header("\ufeff患者 姓名：") == normalise_header("患者姓名")
    zh = match_columns(ImportKind.PATIENTS, ["病案号", "姓名", "手机号码", "备注"])
    assert zh.columns == {"identifier": 0, "name": 1, "phone": 2} and zh.missing == ()
    vi = match_columns(ImportKind.PATIENTS, ["Mã BN", "Họ và tên", "Ngày sinh", "SĐT"])
    assert vi.columns == {"identifier": 0, "name": 1, "birth_date": 2, "phone": 3}
    en = match_columns(ImportKind.ENCOUNTERS, ["MRN", "Visit number", "Department code", "Admission time"])
    assert en.columns == {"patient_identifier": 0, "visit_number": 1, "department": 2, "admitted_at": 3}
    missing = match_columns(ImportKind.PATIENTS, ["编号", "名字"])
    assert missing.missing == ("identifier", "name")
    saved = match_columns(ImportKind.PATIENTS, ["编号", "名字"], {"identifier": "编号", "name": "名字"})
    assert saved.columns == {"identifier": 0, "name": 1} and saved.as_headers(["编号", "名字"]) == {
        "identifier": "编号",
        "name": "名字",
    }


CONFIG = RowConfig(authority="HIS", zone=SHANGHAI, region="CN", now=NOW)
HEADERS = ("病案号", "姓名", "性别", "出生日期", "手机号", "语言")
COLUMNS = match_columns(ImportKind.PATIENTS, HEADERS)


def test_a_row_reports_every_problem_at_once() -> None:
    parsed = parse_row(
        ImportKind.PATIENTS, ("", "", "X", "2024-99-01", "123", "火星语"), COLUMNS, HEADERS, CONFIG
    )
    assert parsed.record is None
    assert [split(p) for p in parsed.problems] == [
        ("required value missing", "病案号"),
        ("required value missing", "姓名"),
        ("not a date", "出生日期"),
        ("unknown sex", "性别"),
        ("invalid phone number", "手机号"),
        ("unknown language", "语言"),
    ]


def test_a_good_row_becomes_a_record_with_its_file_key() -> None:
    parsed = parse_row(
        ImportKind.PATIENTS, ("p 001", "王秀英", "女", "1956-03-12", "", ""), COLUMNS, HEADERS, CONFIG
    )
    assert parsed.record == PatientRecord("p 001", "HIS", "王秀英", date(1956, 3, 12), Sex.FEMALE, None, None)
    assert file_key(parsed.record) == ("patient", "HIS", "P001")
    too_long = parse_row(ImportKind.PATIENTS, ("P" * 65, "王", "", "", "", ""), COLUMNS, HEADERS, CONFIG)
    assert [split(p)[0] for p in too_long.problems] == ["value too long"]


def _patient_now(**changes: object) -> PatientNow:
    base = {
        "id": 7,
        "name": "王秀英",
        "birth_date": date(1956, 3, 12),
        "sex": Sex.FEMALE,
        "phone_bidx": "ph",
        "language": "zh-CN",
        "linked": True,
    }
    return PatientNow(**{**base, **changes})  # type: ignore[arg-type]


RECORD = PatientRecord("P1", "HIS", "王秀英", date(1956, 3, 12), Sex.FEMALE, "+8613800138000", "zh-CN")


def test_patient_decisions() -> None:
    assert decide_patient(RECORD, None, "ph").action is Action.CREATE
    assert decide_patient(RECORD, _patient_now(), "ph").action is Action.SKIP
    for change in (
        {"name": "王"},
        {"birth_date": None},
        {"sex": Sex.MALE},
        {"phone_bidx": "other"},
        {"language": "vi"},
        {"linked": False},
    ):
        decided = decide_patient(RECORD, _patient_now(**change), "ph")
        assert (decided.action, decided.target_id) == (Action.UPDATE, 7), change
    sparse = PatientRecord("P1", "HIS", "王秀英", None, None, None, None)  # only what the file sends counts
    assert decide_patient(sparse, _patient_now(), None).action is Action.SKIP


CODES = Codes(departments={"0301": 3}, wards={"W1": 11}, ward_department={11: 4})
ADMITTED = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
DISCHARGED = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def _visit(**changes: object) -> EncounterRecord:
    base = {
        "patient_identifier": "P1",
        "authority": "HIS",
        "visit_number": "V1",
        "kind": EncounterKind.INPATIENT,
        "department": "0301",
        "ward": None,
        "admitted_at": ADMITTED,
        "discharged_at": DISCHARGED,
        "diagnoses": ("I10",),
    }
    return EncounterRecord(**{**base, **changes})  # type: ignore[arg-type]


def _visit_now(**changes: object) -> EncounterNow:
    base = {
        "id": 5,
        "patient_id": 1,
        "kind": EncounterKind.DISCHARGE,
        "department_id": 3,
        "ward_id": None,
        "started_at": ADMITTED,
        "ended_at": DISCHARGED,
        "diagnoses": ("I10",),
    }
    return EncounterNow(**{**base, **changes})  # type: ignore[arg-type]


def test_visit_decisions_mirror_what_the_visit_verb_leaves() -> None:
    assert decide_encounter(_visit(), 1, None, CODES).action is Action.CREATE
    assert decide_encounter(_visit(), 1, _visit_now(), CODES).action is Action.SKIP  # inpatient discharged
    for change in (
        {"department_id": 9},
        {"started_at": DISCHARGED},
        {"ended_at": None},
        {"diagnoses": ()},
        {"kind": EncounterKind.INPATIENT},
    ):
        assert decide_encounter(_visit(), 1, _visit_now(**change), CODES).action is Action.UPDATE, change
    # as the verb does: an ended visit sent as an inpatient stay keeps the kind it has
    assert (
        decide_encounter(_visit(), 1, _visit_now(kind=EncounterKind.OUTPATIENT), CODES).action is Action.SKIP
    )
    by_ward = _visit(department=None, ward="W1")
    assert decide_encounter(by_ward, 1, _visit_now(department_id=4, ward_id=11), CODES).action is Action.SKIP
    open_stay = _visit(discharged_at=None)
    assert (
        decide_encounter(open_stay, 1, _visit_now(kind=EncounterKind.INPATIENT, ended_at=None), CODES).action
        is Action.SKIP
    )


@pytest.mark.parametrize(
    ("record", "patient", "now", "reasons"),
    [
        (_visit(), None, None, ["unknown patient"]),
        (_visit(department="X"), 1, None, ["unknown department"]),
        (_visit(ward="X"), 1, None, ["unknown ward"]),
        (_visit(), 2, _visit_now(), ["duplicate in database: the visit number belongs to another patient"]),
    ],
)
def test_visit_problems(
    record: EncounterRecord, patient: int | None, now: EncounterNow | None, reasons: list[str]
) -> None:
    decided = decide_encounter(record, patient, now, CODES)
    assert decided.action is Action.PROBLEM and [split(p)[0] for p in decided.problems] == reasons


def test_exclusion_decisions() -> None:
    record = ExclusionRecord("P1", "HIS", "deceased", None)
    assert decide_exclusion(record, None).action is Action.PROBLEM
    assert decide_exclusion(record, ListedNow(1, False)).action is Action.UPDATE
    assert decide_exclusion(record, ListedNow(1, True)).action is Action.SKIP


def test_a_plan_line_is_consistent_when_unchanged_or_already_applied_only() -> None:
    planned_create = Decision(Action.CREATE).line(4)
    assert consistent(planned_create, Decision(Action.CREATE), 4)
    assert consistent(planned_create, Decision(Action.SKIP, 3, "abc"), 4)  # applied by an earlier attempt
    assert not consistent(planned_create, Decision(Action.UPDATE, 3, "abc"), 4)
    planned_update = Decision(Action.UPDATE, 3, "abc").line(4)
    assert not consistent(planned_update, Decision(Action.UPDATE, 3, "def"), 4)  # the record changed
    planned_skip = Decision(Action.SKIP, 3, "abc").line(4)
    assert not consistent(planned_skip, Decision(Action.UPDATE, 3, "abc"), 4)
    problem = Decision(Action.PROBLEM, problems=("unknown department",))
    assert consistent(problem.line(4), problem, 4)
    assert not consistent(problem.line(4), Decision(Action.CREATE), 4)  # mapped meanwhile: a new dry run

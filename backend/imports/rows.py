"""One row of a file turned into a typed record of its kind, with every problem it has (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from backend.imports import values
from backend.imports.columns import FIELDS, ColumnMap, ImportKind
from backend.imports.problems import Problem, RowProblem, describe
from backend.imports.readers import Cell
from backend.models.org import ClinicianKind
from backend.models.patients import EncounterKind, Sex
from backend.security.identifiers import normalise_code
from bots.domain import LANGUAGES

MAX_CODE = 64  # identifiers, visit numbers and hospital codes (the columns' width)
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class RowConfig:
    authority: str  # whose identifiers they are when the file has no authority column
    zone: ZoneInfo
    region: str
    now: datetime
    language: str = "en"  # the hospital's default language: a plain "name" column is in it

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()


@dataclass(frozen=True, slots=True)
class PatientRecord:
    identifier: str
    authority: str
    name: str
    birth_date: date | None
    sex: Sex | None
    phone: str | None  # E.164
    language: str | None
    email: str | None = None  # normalised (identifiers.normalise_email)


@dataclass(frozen=True, slots=True)
class EncounterRecord:
    patient_identifier: str
    authority: str
    visit_number: str
    kind: EncounterKind | None
    department: str | None
    ward: str | None
    admitted_at: datetime
    discharged_at: datetime | None
    diagnoses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExclusionRecord:
    identifier: str
    authority: str
    flag: str
    date: date | None


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """A department, ward or clinician as the file gives it: the hospital's code, names by language."""

    kind: ImportKind
    code: str
    names: tuple[tuple[str, str], ...]  # (language, name), the languages the file gives
    department: str | None = None  # the department's code (wards and clinicians)
    clinician_kind: ClinicianKind | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class StaffRecord:
    """A staff account as the file gives it; an empty cell keeps what the account holds."""

    username: str
    names: tuple[tuple[str, str], ...]  # (language, display name), the languages the file gives
    role: str  # as written: a role's key or its name, resolved against the roles when decided
    departments: tuple[str, ...] | None  # department codes; None keeps the account's
    email: str | None
    phone: str | None  # E.164
    active: bool | None
    language: str | None


Record = PatientRecord | EncounterRecord | ExclusionRecord | OrgRecord | StaffRecord


@dataclass(frozen=True, slots=True)
class Parsed:
    record: Record | None
    problems: tuple[str, ...]


class _Reader:
    """Reads fields of one row, gathering every problem instead of stopping at the first."""

    def __init__(self, cells: tuple[Cell, ...], columns: ColumnMap, headers: tuple[str, ...]) -> None:
        self.cells = cells
        self.columns = columns
        self.headers = headers
        self.problems: list[str] = []

    def raw(self, name: str) -> Cell:
        index = self.columns.columns.get(name)
        if index is None or index >= len(self.cells):
            return None
        cell = self.cells[index]
        return None if isinstance(cell, str) and not cell.strip() else cell

    def column(self, name: str) -> str:
        index = self.columns.columns.get(name)
        return self.headers[index] if index is not None and index < len(self.headers) else name

    def get(self, name: str, parse: Callable[[Cell], Any], *, required: bool = False) -> Any:
        cell = self.raw(name)
        if cell is None:
            if required:
                self.problems.append(describe(Problem.MISSING, self.column(name)))
            return None
        try:
            return parse(cell)
        except RowProblem as problem:
            self.problems.append(describe(problem.problem, self.column(name)))
            return None

    def code(self, name: str, *, required: bool = False, limit: int = MAX_CODE) -> str | None:
        def parse(cell: Cell) -> str:
            value = values.text(cell)
            if len(value) > limit:
                raise RowProblem(Problem.TOO_LONG)
            return value

        return self.get(name, parse, required=required)  # type: ignore[no-any-return]


def parse_row(
    kind: ImportKind, cells: tuple[Cell, ...], columns: ColumnMap, headers: tuple[str, ...], config: RowConfig
) -> Parsed:
    reader = _Reader(cells, columns, headers)
    authority = reader.code("authority") or config.authority
    record: Record | None
    if kind is ImportKind.PATIENTS:
        record = PatientRecord(
            identifier=reader.code("identifier", required=True) or "",
            authority=authority,
            name=reader.code("name", required=True, limit=MAX_NAME) or "",
            birth_date=reader.get("birth_date", lambda c: values.parse_date(c, today=config.today)),
            sex=reader.get("sex", values.parse_sex),
            phone=reader.get("phone", lambda c: values.parse_phone(c, config.region)),
            language=reader.get("language", values.parse_language),
            email=reader.get("email", values.parse_email),
        )
    elif kind is ImportKind.ENCOUNTERS:
        at = lambda c: values.parse_datetime(c, zone=config.zone, now=config.now)  # noqa: E731
        admitted = reader.get("admitted_at", at, required=True)
        discharged = reader.get("discharged_at", at)
        if admitted is not None and discharged is not None and discharged < admitted:
            reader.problems.append(
                describe(Problem.DISCHARGE_BEFORE_ADMISSION, reader.column("discharged_at"))
            )
        record = EncounterRecord(
            patient_identifier=reader.code("patient_identifier", required=True) or "",
            authority=authority,
            visit_number=normalise_code(reader.code("visit_number", required=True) or ""),
            kind=reader.get("kind", values.parse_kind),
            department=reader.code("department"),
            ward=reader.code("ward"),
            admitted_at=admitted,
            discharged_at=discharged,
            diagnoses=reader.get("diagnoses", values.parse_icd_codes) or (),
        )
    elif kind.organisation:
        record = _org_record(kind, reader, config)
    elif kind is ImportKind.STAFF:
        record = _staff_record(reader, config)
    else:
        record = ExclusionRecord(
            identifier=reader.code("identifier", required=True) or "",
            authority=authority,
            flag=reader.get("list", values.parse_list) or "deceased",
            date=reader.get("date", lambda c: values.parse_date(c, today=config.today)),
        )
    if reader.problems:
        return Parsed(None, tuple(reader.problems))
    return Parsed(record, ())


def _names(reader: _Reader, config: RowConfig) -> dict[str, str]:
    """The names by language: a plain name column is in the hospital's language; a column naming its
    language wins over it."""
    names: dict[str, str] = {}
    plain = reader.code("name", limit=MAX_NAME)
    if plain:
        names[config.language] = plain
    for lang in LANGUAGES:
        given = reader.code(f"name_{lang}", limit=MAX_NAME)
        if given:
            names[lang] = given
    if not names:
        reader.problems.append(describe(Problem.NO_NAME))
    return names


def _staff_record(reader: _Reader, config: RowConfig) -> StaffRecord:
    names = _names(reader, config)
    return StaffRecord(
        username=reader.get("username", values.parse_username, required=True) or "",
        names=tuple(sorted(names.items())),
        role=reader.get("role", values.parse_role, required=True) or "",
        departments=reader.get("departments", values.parse_codes),
        email=reader.get("email", values.parse_email),
        phone=reader.get("phone", lambda c: values.parse_phone(c, config.region)),
        active=reader.get("active", values.parse_active),
        language=reader.get("language", values.parse_language),
    )


def _org_record(kind: ImportKind, reader: _Reader, config: RowConfig) -> OrgRecord:
    names = _names(reader, config)
    code = reader.get("code", values.parse_org_code, required=True) or ""
    department = None
    if kind is not ImportKind.DEPARTMENTS:
        department = reader.get("department", values.parse_org_code, required=True)
    clinician_kind = None
    title = None
    if kind is ImportKind.CLINICIANS:
        clinician_kind = reader.get("clinician_kind", values.parse_clinician_kind) or ClinicianKind.DOCTOR
        title = reader.code("title", limit=100)
    return OrgRecord(kind, code, tuple(sorted(names.items())), department, clinician_kind, title)


def file_key(record: Record) -> tuple[str, ...]:
    """What makes two rows the same thing: a second row with the key is a duplicate in the file."""
    if isinstance(record, PatientRecord):
        return ("patient", record.authority, normalise_code(record.identifier))
    if isinstance(record, EncounterRecord):
        return ("visit", record.authority, record.visit_number)
    if isinstance(record, OrgRecord):
        return ("org", record.kind.value, record.code.casefold())
    if isinstance(record, StaffRecord):
        return ("staff", record.username)
    return ("exclusion", record.authority, normalise_code(record.identifier), record.flag)


def field_names(kind: ImportKind) -> list[str]:
    return [f.name for f in FIELDS[kind]]

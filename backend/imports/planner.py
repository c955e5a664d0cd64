"""How an import reads its stored file and decides each row: the file opened and its columns matched, and
the planner that parses rows in order (the duplicate check needs every earlier row) and decides a chunk of
them against what CareLoop holds. The dry run, the confirm's check pass and its apply pass decide through
here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.imports import lookup, staff_apply, storage
from backend.imports.columns import ColumnMap, ImportKind, match_columns
from backend.imports.plan import (
    Action,
    Codes,
    Decision,
    decide_encounter,
    decide_exclusion,
    decide_org,
    decide_patient,
)
from backend.imports.problems import Problem, describe
from backend.imports.readers import ReadError, Row, Table, open_table
from backend.imports.rows import (
    EncounterRecord,
    ExclusionRecord,
    OrgRecord,
    PatientRecord,
    Record,
    RowConfig,
    StaffRecord,
    file_key,
    parse_row,
)
from backend.imports.spool import Parsed
from backend.imports.staff_plan import StaffContext, decide_staff
from backend.models import Patient
from backend.work.runs import WorkError


@dataclass(frozen=True, slots=True)
class FileParams:
    """What a dry run (and its confirm) reads: the stored file, its kind and source, how to read it."""

    kind: ImportKind
    file: str  # SHA-256: the stored file's name
    name: str  # as uploaded, for people
    source: str
    encoding: str | None
    columns: dict[str, str]  # field -> header: the saved mapping tried first

    @classmethod
    def of(cls, params: dict[str, Any]) -> FileParams:
        return cls(
            kind=ImportKind(params["kind"]),
            file=str(params["file"]),
            name=str(params.get("name", "")),
            source=str(params["source"]),
            encoding=params.get("encoding") or None,
            columns=dict(params.get("columns") or {}),
        )


def open_file(params: FileParams) -> tuple[Table, ColumnMap, int]:
    """The stored file opened, its columns matched, and an estimate of its rows for the bar."""
    try:
        path = storage.file_path(params.file)
    except ValueError:
        raise WorkError("the job names no stored file") from None
    if not path.exists():
        raise WorkError("the uploaded file is no longer stored: upload it again")
    try:
        table = open_table(path, params.encoding)
    except ReadError as exc:
        raise WorkError(str(exc)) from None
    columns = match_columns(params.kind, table.headers, params.columns)
    if columns.missing:
        raise WorkError("no column found for: " + ", ".join(columns.missing))
    estimate = table.size_hint if table.size_hint is not None else max(0, storage.count_lines(path) - 1)
    return table, columns, estimate


class Planner:
    """Parses each row of a file in order (the duplicate check needs every earlier row) and decides a chunk
    of parsed rows at a time against what CareLoop holds."""

    def __init__(self, params: FileParams, table: Table, columns: ColumnMap, now: datetime) -> None:
        settings = get_settings()
        self.params = params
        self.headers = table.headers
        self.columns = columns
        self.config = RowConfig(
            authority=params.source,
            zone=ZoneInfo(settings.default_timezone),
            region=settings.default_region,
            now=now,
            language=settings.default_language,
        )
        self.seen: dict[int, int] = {}  # hash of a row's key -> the first row with it
        self.codes: Codes | None = None
        self.staff: StaffContext | None = None
        self.admins: frozenset[int] = frozenset()  # active administrators after the rows decided so far

    def parse(self, chunk: list[Row]) -> Parsed:
        """The chunk's rows as records, or the decision a row's own content already settles (a problem, a
        repeat of an earlier row)."""
        parsed: Parsed = []
        for row in chunk:
            if row.problem:
                parsed.append((row.number, None, Decision(Action.PROBLEM, problems=(row.problem,))))
                continue
            result = parse_row(self.params.kind, row.cells, self.columns, self.headers, self.config)
            if result.record is None:
                parsed.append((row.number, None, Decision(Action.PROBLEM, problems=result.problems)))
                continue
            key = hash(file_key(result.record))
            first = self.seen.setdefault(key, row.number)
            if first != row.number:
                duplicate = describe(Problem.DUPLICATE_IN_FILE, first)
                parsed.append((row.number, None, Decision(Action.PROBLEM, problems=(duplicate,))))
                continue
            parsed.append((row.number, result.record, None))
        return parsed

    def decide(self, session: Session, parsed: Parsed) -> list[tuple[int, Record | None, Decision]]:
        """The parsed chunk's records decided against what CareLoop holds now."""
        if session.get_bind().dialect.name == "postgresql":
            # Plan the chunk's lookups for its own keys every time: psycopg prepares a statement after its
            # fifth run, and the generic plan PostgreSQL then keeps for "key among this array" (on
            # statistics taken before the import filled the visit tables) compared every held visit number
            # with the whole array, 0.2 s a query by 10,000 visits and growing with them.
            session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        records = [r for _n, r, d in parsed if d is None and r is not None]
        decide = self._deciders(session, records)
        return [(n, r, d if d is not None else decide(r)) for n, r, d in parsed]

    def _deciders(self, session: Session, records: list[Record]) -> Any:
        kind = self.params.kind
        if kind is ImportKind.PATIENTS:
            patients = [r for r in records if isinstance(r, PatientRecord)]
            now = lookup.patients(session, [(r.authority, r.identifier) for r in patients])
            return lambda r: decide_patient(
                r,
                now.get((r.authority, r.identifier)),
                Patient.phone_index(r.phone) if r.phone else None,
                Patient.email_index(r.email) if r.email else None,
            )
        if kind is ImportKind.ENCOUNTERS:
            if self.codes is None:
                self.codes = lookup.codes(session, self.params.source)
            codes = self.codes
            visits = [r for r in records if isinstance(r, EncounterRecord)]
            owners = lookup.owners(session, [(r.authority, r.patient_identifier) for r in visits])
            now_visits = lookup.encounters(session, [(r.authority, r.visit_number) for r in visits])
            return lambda r: decide_encounter(
                r,
                owners.get((r.authority, r.patient_identifier)),
                now_visits.get((r.authority, r.visit_number)),
                codes,
            )
        if kind.organisation:
            if self.codes is None:
                self.codes = lookup.codes(session, self.params.source)
            departments = self.codes.departments
            entries = [r for r in records if isinstance(r, OrgRecord)]
            held = lookup.org_entries(session, kind, [r.code for r in entries])
            return lambda r: decide_org(r, held.get(r.code), departments)
        if kind is ImportKind.STAFF:
            return self._staff_decider(session, records)
        exclusions = [r for r in records if isinstance(r, ExclusionRecord)]
        by_flag: dict[str, dict[lookup.Key, Any]] = {}
        for flag in {r.flag for r in exclusions}:
            by_flag[flag] = lookup.listed(
                session, [(r.authority, r.identifier) for r in exclusions if r.flag == flag], flag
            )
        return lambda r: decide_exclusion(r, by_flag[r.flag].get((r.authority, r.identifier)))

    def _staff_decider(self, session: Session, records: list[Record]) -> Any:
        if self.staff is None:
            self.staff = staff_apply.context(session, self.params.source, self.config.language)
            self.admins = staff_apply.active_admins(session)
        context = self.staff
        held = staff_apply.accounts(session, [r.username for r in records if isinstance(r, StaffRecord)])

        def decide(record: StaffRecord) -> Decision:
            decision, self.admins = decide_staff(record, held.get(record.username), context, self.admins)
            return decision

        return decide

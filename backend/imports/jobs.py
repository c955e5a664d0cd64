"""The import's long work: the dry run (every problem, the counts and a plan line per row, nothing
written), the confirm (checks the file and the affected records against the plan, then applies it in
chunks that commit with their progress) and the reconciliation, run as work jobs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.imports import lookup, staff_apply, storage
from backend.imports.apply import apply_chunk
from backend.imports.columns import ColumnMap, ImportKind, match_columns
from backend.imports.plan import (
    Action,
    Codes,
    Decision,
    consistent,
    decide_encounter,
    decide_exclusion,
    decide_org,
    decide_patient,
)
from backend.imports.problems import Problem, describe
from backend.imports.readers import ReadError, Row, Table, open_table
from backend.imports.reconcile import reconcile
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
from backend.imports.staff_plan import StaffContext, decide_staff
from backend.models import Patient, WorkJob, WorkState
from backend.models.base import utcnow
from backend.work.runs import Progress, Runner, WorkError, register

log = logging.getLogger(__name__)

DRY_RUN = "import.dry_run"
CONFIRM = "import.confirm"
RECONCILE = "import.reconcile"
CHUNK = 1000
DRY_COUNTS = {
    Action.CREATE: "to create",
    Action.UPDATE: "to update",
    Action.SKIP: "unchanged",
    Action.PROBLEM: "with problems",
}
DONE_COUNTS = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.SKIP: "unchanged",
    Action.PROBLEM: "with problems",
}


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


def _open(params: FileParams) -> tuple[Table, ColumnMap, int]:
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


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    except ReadError as exc:
        raise WorkError(str(exc)) from None
    if chunk:
        yield chunk


class Planner:
    """Decides each row of a file in order (the duplicate check needs every earlier row), a chunk at a
    time; the dry run, the confirm's check and its apply pass all decide through here."""

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

    def parse(self, chunk: list[Row]) -> list[tuple[int, Record | None, Decision | None]]:
        parsed: list[tuple[int, Record | None, Decision | None]] = []
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

    def decide(self, session: Session, chunk: list[Row]) -> list[tuple[int, Record | None, Decision]]:
        if session.get_bind().dialect.name == "postgresql":
            # Plan the chunk's lookups for its own keys every time: psycopg prepares a statement after its
            # fifth run, and the generic plan PostgreSQL then keeps for "key among this array" (on
            # statistics taken before the import filled the visit tables) compared every held visit number
            # with the whole array, 0.2 s a query by 10,000 visits and growing with them.
            session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        parsed = self.parse(chunk)
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


def _note(progress: Progress, number: int, decision: Decision) -> None:
    for problem in decision.problems:
        progress.error(number, problem)


def dry_run(progress: Progress) -> dict[str, Any]:
    """Every row decided, nothing written but the plan file and the source's column mapping. A resumed
    dry run starts again from the top: it has written nothing it could pick up from. A HIS source's
    pull is a dry run too: its rows are read from the source first (`his_runs`)."""
    from backend.imports import his_runs

    source_id = his_runs.source_of(progress.params)
    if source_id is not None:
        return his_runs.pulled_dry_run(progress, source_id, _dry_run)
    return _dry_run(progress, progress.params)


def _dry_run(progress: Progress, raw: dict[str, Any]) -> dict[str, Any]:
    params = FileParams.of(raw)
    table, columns, estimate = _open(params)
    progress.done, progress.counts, progress.errors, progress.error_count = 0, {}, [], 0
    progress.total = estimate
    planner = Planner(params, table, columns, utcnow())
    plan = storage.plan_path(progress.job_id)
    rows = 0
    with plan.open("w", encoding="utf-8") as out:
        for chunk in _chunks(table.rows):
            with session_scope() as session:
                decided = planner.decide(session, chunk)
                counts: dict[str, int] = {}
                for number, _record, decision in decided:
                    out.write(decision.line(number) + "\n")
                    name = DRY_COUNTS[decision.action]
                    counts[name] = counts.get(name, 0) + 1
                    _note(progress, number, decision)
                rows += len(decided)
                progress.advance(len(decided), **counts)
                progress.total = max(progress.total or 0, progress.done)
                progress.checkpoint(session)
    progress.total = progress.done
    from backend.imports.service import do_save_mapping

    with session_scope() as session:
        job = session.get(WorkJob, progress.job_id)
        do_save_mapping(
            session,
            params.source,
            params.kind,
            columns.as_headers(table.headers),
            staff_id=job.started_by_id if job else None,
        )
    return {
        "file": params.file,
        "plan": storage.hash_of(plan),
        "rows": rows,
        "columns": columns.as_headers(table.headers),
        "format": table.format,
        "encoding": table.encoding,
        "writes": sum(progress.counts.get(DRY_COUNTS[a], 0) for a in (Action.CREATE, Action.UPDATE)),
    }


def _dry_run_of(progress: Progress) -> tuple[FileParams, dict[str, Any], Path]:
    with session_scope() as session:
        job = session.get(WorkJob, int(progress.params["dry_run"]))
        if job is None or job.kind != DRY_RUN or job.state is not WorkState.DONE or not job.result:
            raise WorkError("the dry run this confirm names is not finished")
        params, result = dict(job.params), dict(job.result)
    params["columns"] = result["columns"]  # exactly the columns the dry run read
    params["file"] = result["file"]  # a HIS pull names the file it stored only in its result
    if params.get("encoding") is None and result.get("encoding"):
        params["encoding"] = result["encoding"]
    plan = storage.plan_path(int(progress.params["dry_run"]))
    file_params = FileParams.of(params)
    if storage.hash_of(storage.file_path(file_params.file)) != result["file"]:
        raise WorkError("the file changed since the dry run: nothing was applied; run a new dry run")
    if not plan.exists() or storage.hash_of(plan) != result["plan"]:
        raise WorkError("the dry run's plan is missing or changed: nothing was applied; run a new dry run")
    return file_params, result, plan


def confirm(progress: Progress) -> dict[str, Any]:
    """Apply exactly the dry run's plan: first check every row still decides as planned (or is already
    applied), refusing before any write if one does not; then apply chunk by chunk, each chunk checked
    again and committed with its checkpoint, so a killed run resumes where it stopped."""
    from backend.imports import his_runs

    params, result, plan = _dry_run_of(progress)
    try:
        return _confirm(progress, params, result, plan)
    except WorkError as exc:
        his_runs.confirm_failed(result, str(exc))
        raise


def _confirm(progress: Progress, params: FileParams, result: dict[str, Any], plan: Path) -> dict[str, Any]:
    from backend.imports import his_runs

    rows = int(result["rows"])
    progress.total = 2 * rows
    cursor = progress.cursor or {}
    if cursor.get("phase") != "apply":
        progress.done, progress.counts, progress.errors, progress.error_count = 0, {}, [], 0
        changed = _check(progress, params, plan)
        if changed:
            raise WorkError(
                f"{changed} rows changed since the dry run (listed as problems): nothing was applied; "
                "run a new dry run"
            )
        with session_scope() as session:
            progress.checkpoint(session, {"phase": "apply", "next": 0})
        cursor = progress.cursor or {}
    _apply(progress, params, plan, int(cursor.get("next", 0)), staff_id=progress.params.get("staff_id"))
    his_runs.after_confirm(result)  # every chunk committed: a HIS source's watermark moves past them
    table, columns, _estimate = _open(params)
    report = reconcile(progress.job_id, params.kind, params.source, table.rows, columns)
    storage.report_path(progress.job_id).write_bytes(report.sealed)
    # the file holds patients' data in clear: once applied, neither it nor the plan is needed again
    storage.file_path(params.file).unlink(missing_ok=True)
    plan.unlink(missing_ok=True)
    return {"dry_run": int(progress.params["dry_run"]), "rows": rows, "reconciliation": report.counts}


def _plan_lines(plan: Path) -> Iterator[str]:
    with plan.open(encoding="utf-8") as lines:
        for line in lines:
            yield line.rstrip("\n")


def _check(progress: Progress, params: FileParams, plan: Path) -> int:
    table, columns, _estimate = _open(params)
    planner = Planner(params, table, columns, utcnow())
    planned = _plan_lines(plan)
    changed = 0
    for chunk in _chunks(table.rows):
        with session_scope() as session:
            for number, _record, decision in planner.decide(session, chunk):
                if not consistent(next(planned, ""), decision, number):
                    changed += 1
                    progress.error(number, describe(Problem.CHANGED))
            progress.advance(len(chunk))
            progress.checkpoint(session)
    if next(planned, None) is not None:
        raise WorkError("the file has fewer rows than its dry run: nothing was applied; run a new dry run")
    return changed


def _apply(progress: Progress, params: FileParams, plan: Path, start: int, staff_id: int | None) -> None:
    table, columns, _estimate = _open(params)
    planner = Planner(params, table, columns, utcnow())
    planned = _plan_lines(plan)
    for index, chunk in enumerate(_chunks(table.rows)):
        lines = [next(planned, "") for _row in chunk]
        if index < start:
            planner.parse(chunk)  # the duplicate check still needs these rows' keys
            continue
        with session_scope() as session:
            decided = planner.decide(session, chunk)
            for line, (number, _record, decision) in zip(lines, decided, strict=True):
                if not consistent(line, decision, number):
                    raise WorkError(
                        f"row {number} changed while the import ran: the rows before row {chunk[0].number} "
                        "were applied, nothing after; run a new dry run"
                    )
            counts = apply_chunk(session, params.kind, params.source, decided, staff_id=staff_id)
            progress.advance(len(chunk), **{DONE_COUNTS[a]: n for a, n in counts.items() if n})
            for number, _record, decision in decided:
                _note(progress, number, decision)
            progress.checkpoint(session, {"phase": "apply", "next": index + 1})


def reconcile_file(progress: Progress) -> dict[str, Any]:
    """Reconciliation on demand against a file from the HIS (nothing imported)."""
    params = FileParams.of(progress.params)
    table, columns, estimate = _open(params)
    progress.total = estimate
    report = reconcile(progress.job_id, params.kind, params.source, _counted(progress, table.rows), columns)
    storage.report_path(progress.job_id).write_bytes(report.sealed)
    storage.file_path(params.file).unlink(missing_ok=True)
    progress.total = progress.done
    return {"reconciliation": report.counts}


def _counted(progress: Progress, rows: Iterator[Row]) -> Iterator[Row]:
    for n, row in enumerate(rows, start=1):
        progress.done += 1
        if n % 5000 == 0:
            progress.save()
        yield row


def _result_url(job: WorkJob) -> str:
    return f"/staff/imports/{job.id}"


register(Runner(kind=DRY_RUN, run=dry_run, title="Import dry run", result_url=_result_url))
register(Runner(kind=CONFIRM, run=confirm, title="Import", result_url=_result_url))
register(Runner(kind=RECONCILE, run=reconcile_file, title="Reconciliation", result_url=_result_url))

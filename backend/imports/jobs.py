"""The import's long work: the dry run (every problem, the counts and a plan line per row, nothing
written), the confirm (checks the file and the affected records against the plan, then applies it in
chunks that commit with their progress) and the reconciliation, run as work jobs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.app.db import session_scope
from backend.imports import spool, storage
from backend.imports.apply import apply_chunk
from backend.imports.plan import Action, Decision, consistent
from backend.imports.planner import FileParams, Planner, open_file
from backend.imports.problems import Problem, describe
from backend.imports.readers import ReadError, Row
from backend.imports.reconcile import reconcile
from backend.models import WorkJob, WorkState
from backend.models.base import utcnow
from backend.security.crypto import DecryptionError
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
    table, columns, estimate = open_file(params)
    progress.done, progress.counts, progress.errors, progress.error_count = 0, {}, [], 0
    progress.total = estimate
    planner = Planner(params, table, columns, utcnow())
    plan = storage.plan_path(progress.job_id)
    rows = 0
    with plan.open("w", encoding="utf-8") as out:
        for chunk in _chunks(table.rows):
            with session_scope() as session:
                decided = planner.decide(session, planner.parse(chunk))
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
    rows = int(result["rows"])
    progress.total = 2 * rows
    try:
        _check_and_apply(progress, params, plan)
    except Exception as exc:
        # a failed confirm is never resumed (confirming the dry run again checks anew and keeps its own
        # rows); only a worker that died mid-run (no exception reaches here) comes back to its kept rows
        spool.path(progress.job_id).unlink(missing_ok=True)
        if isinstance(exc, WorkError):
            his_runs.confirm_failed(result, str(exc))
        raise
    his_runs.after_confirm(result)  # every chunk committed: a HIS source's watermark moves past them
    table, columns, _estimate = open_file(params)
    report = reconcile(progress.job_id, params.kind, params.source, table.rows, columns)
    storage.report_path(progress.job_id).write_bytes(report.sealed)
    # the file holds patients' data in clear: once applied, neither it, the plan nor the rows the check pass
    # kept are needed again
    storage.file_path(params.file).unlink(missing_ok=True)
    plan.unlink(missing_ok=True)
    spool.path(progress.job_id).unlink(missing_ok=True)
    return {"dry_run": int(progress.params["dry_run"]), "rows": rows, "reconciliation": report.counts}


def _check_and_apply(progress: Progress, params: FileParams, plan: Path) -> None:
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


def _plan_lines(plan: Path) -> Iterator[str]:
    with plan.open(encoding="utf-8") as lines:
        for line in lines:
            yield line.rstrip("\n")


def _check(progress: Progress, params: FileParams, plan: Path) -> int:
    """Every row decided again and compared with its plan line; the parsed rows are kept (sealed) for the
    apply pass, which then reads no row of the file again."""
    table, columns, _estimate = open_file(params)
    planner = Planner(params, table, columns, utcnow())
    planned = _plan_lines(plan)
    changed = 0
    with spool.path(progress.job_id).open("wb") as out:
        kept = spool.Writer(progress.job_id, out)
        for chunk in _chunks(table.rows):
            parsed = planner.parse(chunk)
            kept.write(parsed)
            with session_scope() as session:
                for number, _record, decision in planner.decide(session, parsed):
                    if not consistent(next(planned, ""), decision, number):
                        changed += 1
                        progress.error(number, describe(Problem.CHANGED))
                progress.advance(len(chunk))
                progress.checkpoint(session)
    if next(planned, None) is not None:
        raise WorkError("the file has fewer rows than its dry run: nothing was applied; run a new dry run")
    return changed


def _parsed(progress: Progress, planner: Planner, params: FileParams) -> Iterator[spool.Parsed]:
    """The apply pass's chunks: as the check pass kept them, or parsed from the file again when they are
    gone (a confirm resumed from a copy of the data folder without them)."""
    if spool.path(progress.job_id).exists():
        try:
            yield from spool.chunks(progress.job_id)
        except (DecryptionError, ValueError) as exc:
            raise WorkError(
                f"the rows the check pass kept are unreadable ({exc}): the chunks committed so far are "
                "applied, nothing after; run a new dry run"
            ) from None
        return
    table, _columns, _estimate = open_file(params)
    for chunk in _chunks(table.rows):
        yield planner.parse(chunk)


def _apply(progress: Progress, params: FileParams, plan: Path, start: int, staff_id: int | None) -> None:
    """Each chunk decided again in its own transaction (the records it touches may have changed since the
    check pass), applied only if every row still decides as planned, and committed with its checkpoint."""
    table, columns, _estimate = open_file(params)
    planner = Planner(params, table, columns, utcnow())
    planned = _plan_lines(plan)
    for index, parsed in enumerate(_parsed(progress, planner, params)):
        lines = [next(planned, "") for _row in parsed]
        if index < start:
            continue  # committed before a resume (the parsed rows already carry the duplicate check)
        with session_scope() as session:
            decided = planner.decide(session, parsed)
            for line, (number, _record, decision) in zip(lines, decided, strict=True):
                if not consistent(line, decision, number):
                    raise WorkError(
                        f"row {number} changed while the import ran: the rows before row {decided[0][0]} "
                        "were applied, nothing after; run a new dry run"
                    )
            counts = apply_chunk(session, params.kind, params.source, decided, staff_id=staff_id)
            progress.advance(len(parsed), **{DONE_COUNTS[a]: n for a, n in counts.items() if n})
            for number, _record, decision in decided:
                _note(progress, number, decision)
            progress.checkpoint(session, {"phase": "apply", "next": index + 1})


def reconcile_file(progress: Progress) -> dict[str, Any]:
    """Reconciliation on demand against a file from the HIS (nothing imported)."""
    params = FileParams.of(progress.params)
    table, columns, estimate = open_file(params)
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

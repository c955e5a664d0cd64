"""`careloop import`: the same dry run and confirm jobs as the page, run in this process in the
foreground, with their progress printed as they go."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from backend.app.db import session_scope
from backend.imports import service, storage
from backend.models import WorkJob, WorkState
from backend.work.runs import run_job

POLL_SECONDS = 0.5


def _follow(job_id: int, say: Callable[[str], None]) -> WorkJob:
    worker = threading.Thread(target=run_job, args=(job_id,), name=f"import-{job_id}")
    worker.start()
    last = None
    while True:
        worker.join(POLL_SECONDS)
        with session_scope() as session:
            job = session.get_one(WorkJob, job_id)
            session.expunge(job)
        line = f"  {job.done}" + (f" / {job.total}" if job.total else "") + f" rows ({job.state.value})"
        if line != last:
            say(line)
            last = line
        if not worker.is_alive():
            return job


def _report(job: WorkJob, say: Callable[[str], None], problems: int) -> None:
    for name, value in sorted(job.counts.items()):
        say(f"  {name}: {value}")
    for entry in job.errors[:problems]:
        say(f"  row {entry['at']}: {entry['error']}")
    if job.error_count > problems:
        say(f"  … {job.error_count - problems} more problems (see /staff/imports/{job.id})")
    if job.failure:
        say(f"  failed: {job.failure}")


def run_import(
    kind: str,
    path: Path,
    *,
    source: str,
    encoding: str | None,
    columns: dict[str, str],
    confirm: bool,
    say: Callable[[str], None] = print,
    problems: int = 50,
) -> int:
    """Dry run (and with `confirm`, the confirm) of one file; 0 when every job asked for finished."""
    with path.open("rb") as upload:
        sha, _size = storage.store(upload)
    with session_scope() as session:
        job_id = service.do_start_dry_run(
            session, kind=kind, file=sha, name=path.name, source=source, encoding=encoding, staff_id=None,
            columns=columns,
        ).id  # fmt: skip
    say(f"dry run #{job_id} of {path.name}")
    dry = _follow(job_id, say)
    _report(dry, say, problems)
    if dry.state is not WorkState.DONE:
        return 1
    if not confirm:
        say(
            f"nothing written; to apply it: careloop import {kind} {path} --confirm"
            f" (or confirm job #{job_id} on /staff/imports)"
        )
        return 0
    with session_scope() as session:
        dry_run = session.get_one(WorkJob, job_id)
        try:
            confirm_id = service.do_start_confirm(session, dry_run, staff_id=None).id
        except service.ImportRefused as refused:
            say(f"not confirmed: {refused.reason}")
            return 0 if refused.reason is service.ImportReason.NOTHING_TO_APPLY else 1
    say(f"confirm #{confirm_id}")
    done = _follow(confirm_id, say)
    _report(done, say, problems)
    if done.result and done.result.get("reconciliation"):
        say(f"  reconciliation: {done.result['reconciliation']} (download on /staff/imports/{confirm_id})")
    return 0 if done.state is WorkState.DONE else 1

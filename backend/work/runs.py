"""Long work with progress: a job row per run, a registry of runners, and the loop that runs them.

A runner is a plain function of a `Progress`: it reads its parameters and resume point, does its work in
chunks, and after each chunk calls `checkpoint` in the chunk's own session, so the work and the
progress that records it commit together. After a crash the row's old heartbeat shows the run was lost;
the sweep launches it again and the runner resumes from the last checkpoint's cursor. Requests only
create the row and launch it: on RQ when Redis is configured, otherwise on a background thread of the
server process, never inside the request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.jobs import enqueue, runs_inline
from backend.models import WorkJob, WorkState
from backend.models.base import utcnow

log = logging.getLogger(__name__)

# A running job writes its heartbeat at every checkpoint; one silent this long has lost its worker.
STALE_AFTER = timedelta(minutes=5)
# A queued job nobody picked up this long after it was created was never launched (Redis down, crash).
UNLAUNCHED_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
# The row keeps the first errors only: enough to act on, bounded whatever the input.
MAX_ERRORS_KEPT = 200


class WorkError(Exception):
    """A runner's own failure, with a message safe to show staff (no patient data in it)."""


class WorkCancelled(Exception):
    """Raised at a checkpoint once staff asked for the job to stop."""


@dataclass(frozen=True)
class Runner:
    kind: str
    run: Callable[[Progress], dict[str, Any] | None]
    # a staff-UI string (translated through the catalogues) naming the work
    title: str
    # where the finished work's result is seen, if it has a page of its own
    result_url: Callable[[WorkJob], str | None] = lambda job: None


_RUNNERS: dict[str, Runner] = {}

# The modules whose import registers runners: a worker process (RQ) imports them before it looks a
# kind up, so a job runs wherever it lands. Each kind of long work adds its module here.
RUNNER_MODULES: tuple[str, ...] = (
    "backend.imports.jobs",
    "backend.outreach.sending",
    "backend.privacy.export",
)


def register(runner: Runner) -> Runner:
    existing = _RUNNERS.get(runner.kind)
    if existing is not None and existing.run is not runner.run:
        raise ValueError(f"two runners for work kind {runner.kind!r}")
    _RUNNERS[runner.kind] = runner
    return runner


def runner_for(kind: str) -> Runner:
    if kind not in _RUNNERS:
        for module in RUNNER_MODULES:
            importlib.import_module(module)
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise WorkError(f"no runner is registered for work kind {kind!r}") from None


def registered_kinds() -> list[str]:
    return sorted(_RUNNERS)


@dataclass
class Progress:
    """What a runner is given, and how it reports. Counts and errors gather here between checkpoints."""

    job_id: int
    params: dict[str, Any]
    cursor: dict[str, Any] | None
    done: int = 0
    total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def advance(self, n: int = 1, **counts: int) -> None:
        self.done += n
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def error(self, at: str | int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"at": at, "error": message[:300]})

    def checkpoint(self, session: Session, cursor: dict[str, Any] | None = None) -> None:
        """Record progress (and where to resume) in `session`, to commit with the chunk's own writes.
        Raises WorkCancelled, before anything more is done, if staff asked the job to stop."""
        if session.scalar(sa.select(WorkJob.cancel_requested).where(WorkJob.id == self.job_id)):
            raise WorkCancelled
        self.cursor = cursor if cursor is not None else self.cursor
        session.execute(
            sa.update(WorkJob)
            .where(WorkJob.id == self.job_id)
            .values(
                done=self.done,
                total=self.total,
                counts=dict(self.counts),
                errors=list(self.errors),
                error_count=self.error_count,
                cursor=self.cursor,
                heartbeat_at=utcnow(),
            )
        )

    def save(self, cursor: dict[str, Any] | None = None) -> None:
        """A checkpoint in a session of its own, for work that writes nothing to the database."""
        with session_scope() as session:
            self.checkpoint(session, cursor)


def start(session: Session, kind: str, params: dict[str, Any], started_by_id: int | None) -> WorkJob:
    """A queued job row (flushed, not committed). Call `launch` once the caller has committed it."""
    runner_for(kind)
    job = WorkJob(
        kind=kind,
        params=params,
        state=WorkState.QUEUED,
        started_by_id=started_by_id,
        counts={},
        errors=[],
    )
    session.add(job)
    session.flush()
    return job


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_futures: list[Future[None]] = []


def launch(job_id: int) -> None:
    """Hand a committed job to a worker: RQ with Redis, else the server's own background thread."""
    if not runs_inline():
        enqueue(run_job, job_id)
        return
    global _pool
    with _pool_lock:
        if _pool is None:
            # one at a time: long work must not starve the requests sharing this process
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="careloop-work")
        _futures[:] = [f for f in _futures if not f.done()]
        _futures.append(_pool.submit(run_job, job_id))


def wait_for_background(timeout: float = 60.0) -> None:
    """Block until the background thread has finished what it was given (tests and the CLI)."""
    with _pool_lock:
        pending = list(_futures)
    for future in pending:
        future.result(timeout=timeout)


def _claim(job_id: int) -> Progress | None:
    """Take the job if it is queued, or running with a stale heartbeat; None if another worker has it."""
    now = utcnow()
    with session_scope() as session:
        claimed = session.execute(
            sa.update(WorkJob)
            .where(
                WorkJob.id == job_id,
                sa.or_(
                    WorkJob.state == WorkState.QUEUED,
                    sa.and_(WorkJob.state == WorkState.RUNNING, WorkJob.heartbeat_at < now - STALE_AFTER),
                ),
            )
            .values(state=WorkState.RUNNING, attempts=WorkJob.attempts + 1, heartbeat_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        job = session.get(WorkJob, job_id)
        assert job is not None
        if job.started_at is None:
            job.started_at = now
        return Progress(
            job_id=job.id,
            params=dict(job.params or {}),
            cursor=job.cursor,
            done=job.done,
            total=job.total,
            counts=dict(job.counts or {}),
            errors=list(job.errors or []),
            error_count=job.error_count,
        )


def _finish(progress: Progress, state: WorkState, result: dict[str, Any] | None, failure: str | None) -> None:
    """The job's end. Only a finished run writes its progress here: a failed or cancelled one keeps what
    its last committed checkpoint recorded, which matches the work that was kept."""
    values: dict[str, Any] = {
        "state": state,
        "finished_at": utcnow(),
        "heartbeat_at": utcnow(),
        "failure": failure,
    }
    if state is WorkState.DONE:
        values |= {
            "done": progress.done,
            "total": progress.total,
            "counts": dict(progress.counts),
            "errors": list(progress.errors),
            "error_count": progress.error_count,
            "result": result,
        }
    with session_scope() as session:
        session.execute(sa.update(WorkJob).where(WorkJob.id == progress.job_id).values(**values))


def run_job(job_id: int) -> None:
    """Run one job to its end (done, failed or cancelled); a no-op when another worker holds it."""
    progress = _claim(job_id)
    if progress is None:
        return
    with session_scope() as session:
        kind = session.scalar(sa.select(WorkJob.kind).where(WorkJob.id == job_id))
    try:
        runner = runner_for(str(kind))
        result = runner.run(progress)
    except WorkCancelled:
        _finish(progress, WorkState.CANCELLED, None, None)
    except WorkError as exc:
        _finish(progress, WorkState.FAILED, None, str(exc)[:500])
    except Exception as exc:
        # the message of an unexpected error may quote input; staff see its type, the log has the rest
        log.exception("work job %s (%s) failed", job_id, kind)
        _finish(progress, WorkState.FAILED, None, f"internal error ({type(exc).__name__})")
    else:
        _finish(progress, WorkState.DONE, result, None)


def request_cancel(session: Session, job: WorkJob) -> None:
    """Ask a job to stop: a queued one stops at once, a running one at its next checkpoint."""
    if job.state.finished:
        return
    job.cancel_requested = True
    if job.state is WorkState.QUEUED:
        job.state = WorkState.CANCELLED
        job.finished_at = utcnow()


def lost_jobs(session: Session) -> list[int]:
    """Jobs whose worker is gone: queued and never picked up, or running with a stale heartbeat."""
    now = utcnow()
    return list(
        session.scalars(
            sa.select(WorkJob.id).where(
                sa.or_(
                    sa.and_(WorkJob.state == WorkState.QUEUED, WorkJob.created_at < now - UNLAUNCHED_AFTER),
                    sa.and_(WorkJob.state == WorkState.RUNNING, WorkJob.heartbeat_at < now - STALE_AFTER),
                )
            )
        )
    )


def resume_lost_work() -> int:
    """The periodic sweep: launch lost jobs again; one that keeps losing its worker is failed."""
    with session_scope() as session:
        ids = lost_jobs(session)
        gave_up = _give_up(session, ids)
    for job_id in ids:
        if job_id not in gave_up:
            launch(job_id)
    return len(ids) - len(gave_up)


def _give_up(session: Session, ids: Iterable[int]) -> set[int]:
    gave_up: set[int] = set()
    for job in session.scalars(sa.select(WorkJob).where(WorkJob.id.in_(list(ids)))):
        if job.attempts >= MAX_ATTEMPTS:
            job.state = WorkState.FAILED
            job.finished_at = utcnow()
            job.failure = f"the work was interrupted {job.attempts} times; it was not started again"
            gave_up.add(job.id)
    return gave_up

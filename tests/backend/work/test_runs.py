"""Long work: a job runs to the end with its counts and errors, stops when asked, fails with a message
staff may see, and after its worker is killed mid-work resumes from its last checkpoint, with every item
done exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AuditEvent, WorkJob, WorkState
from backend.models.base import utcnow
from backend.work import runs
from tests.backend.work import sample_runner

ROOT = Path(__file__).resolve().parents[3]


def _start(db: Session, **params: object) -> WorkJob:
    job = runs.start(db, sample_runner.KIND, dict(params), None)
    db.commit()
    return job


def _items_done(db: Session) -> Counter[int]:
    db.expire_all()
    rows = db.scalars(sa.select(AuditEvent.subject_id).where(AuditEvent.action == "test.item"))
    return Counter(int(n) for n in rows)


def test_a_job_runs_to_the_end_with_its_progress_counts_and_first_errors(db: Session) -> None:
    job = _start(db, items=45, chunk=10)
    runs.run_job(job.id)
    db.expire_all()
    job = db.get(WorkJob, job.id)
    assert job is not None
    assert (job.state, job.done, job.total, job.percent) == (WorkState.DONE, 45, 45, 100)
    assert job.counts == {"processed": 45}
    assert job.error_count == len([n for n in range(45) if n % 7 == 3]) == len(job.errors)
    assert job.errors[0] == {"at": 3, "error": "item 3 is odd"}
    assert job.result == {"items": 45} and job.finished_at is not None and job.attempts == 1
    assert _items_done(db) == Counter(range(45))


def test_a_job_started_twice_runs_once(db: Session) -> None:
    job = _start(db, items=5)
    runs.run_job(job.id)
    runs.run_job(job.id)  # a duplicate delivery of the same job: the claim refuses it
    assert _items_done(db) == Counter(range(5))
    assert db.get(WorkJob, job.id).attempts == 1  # type: ignore[union-attr]


def test_the_first_errors_are_kept_and_the_rest_only_counted(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "MAX_ERRORS_KEPT", 3)
    job = _start(db, items=70, chunk=25)
    runs.run_job(job.id)
    db.expire_all()
    job = db.get(WorkJob, job.id)  # type: ignore[assignment]
    assert len(job.errors) == 3 and job.error_count == 10


def test_a_cancelled_queued_job_never_runs_and_a_running_one_stops_at_its_next_checkpoint(
    db: Session,
) -> None:
    queued = _start(db, items=10)
    runs.request_cancel(db, queued)
    db.commit()
    runs.run_job(queued.id)
    assert db.get(WorkJob, queued.id).state is WorkState.CANCELLED  # type: ignore[union-attr]
    assert _items_done(db) == Counter()

    running = _start(db, items=30, chunk=10)
    db.execute(sa.update(WorkJob).where(WorkJob.id == running.id).values(cancel_requested=True))
    db.commit()
    runs.run_job(running.id)
    db.expire_all()
    stopped = db.get(WorkJob, running.id)
    assert stopped is not None and stopped.state is WorkState.CANCELLED
    # the chunk whose checkpoint saw the request was rolled back with it: nothing half-recorded
    assert _items_done(db) == Counter() and stopped.done == 0


def test_a_failure_says_what_staff_may_read_and_hides_the_input(db: Session) -> None:
    refused = _start(db, items=3, refuse=True)
    crashed = _start(db, items=3, crash=True)
    runs.run_job(refused.id)
    runs.run_job(crashed.id)
    db.expire_all()
    assert db.get(WorkJob, refused.id).failure == "the file is not a spreadsheet"  # type: ignore[union-attr]
    failure = db.get(WorkJob, crashed.id).failure  # type: ignore[union-attr]
    assert failure == "internal error (RuntimeError)" and "0912" not in failure
    assert db.get(WorkJob, crashed.id).state is WorkState.FAILED  # type: ignore[union-attr]


def test_an_unknown_kind_is_refused_before_any_row_is_written(db: Session) -> None:
    with pytest.raises(runs.WorkError, match="no runner"):
        runs.start(db, "no.such.work", {}, None)
    assert db.scalar(sa.select(sa.func.count()).select_from(WorkJob)) == 0


def test_a_worker_killed_mid_work_is_replaced_and_resumes_where_it_stopped(
    db: Session, database_url: str, tmp_path: Path
) -> None:
    flag = tmp_path / "paused"
    job = _start(db, items=50, chunk=10, pause_flag=str(flag))
    code = (
        f"import tests.backend.work.sample_runner\nfrom backend.work.runs import run_job\nrun_job({job.id})\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert worker.poll() is None and time.monotonic() < deadline, "the worker never reached its pause"
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    db.expire_all()
    lost = db.get(WorkJob, job.id)
    assert lost is not None and (lost.state, lost.done, lost.cursor) == (WorkState.RUNNING, 20, {"next": 20})
    assert runs.lost_jobs(db) == []  # its heartbeat is fresh: it may still be working
    # five minutes of silence later the sweep knows the worker is gone and starts the job again
    db.execute(
        sa.update(WorkJob)
        .where(WorkJob.id == job.id)
        .values(heartbeat_at=utcnow() - runs.STALE_AFTER - timedelta(seconds=1))
    )
    db.commit()
    assert runs.resume_lost_work() == 1
    runs.wait_for_background()
    db.expire_all()
    done = db.get(WorkJob, job.id)
    assert done is not None and (done.state, done.done, done.attempts) == (WorkState.DONE, 50, 2)
    assert _items_done(db) == Counter(range(50))  # each item once: none lost, none done twice


def test_a_job_never_launched_is_found_by_the_sweep_and_one_that_keeps_dying_is_failed(db: Session) -> None:
    forgotten = _start(db, items=4)
    db.execute(
        sa.update(WorkJob)
        .where(WorkJob.id == forgotten.id)
        .values(created_at=utcnow() - timedelta(minutes=2))
    )
    dying = _start(db, items=4)
    db.execute(
        sa.update(WorkJob)
        .where(WorkJob.id == dying.id)
        .values(
            state=WorkState.RUNNING, attempts=runs.MAX_ATTEMPTS, heartbeat_at=utcnow() - timedelta(hours=1)
        )
    )
    db.commit()
    assert runs.resume_lost_work() == 1
    runs.wait_for_background()
    db.expire_all()
    assert db.get(WorkJob, forgotten.id).state is WorkState.DONE  # type: ignore[union-attr]
    gave_up = db.get(WorkJob, dying.id)
    assert (
        gave_up is not None and gave_up.state is WorkState.FAILED and "interrupted" in (gave_up.failure or "")
    )

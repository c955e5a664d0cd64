"""A confirm that fails or whose worker dies part-way leaves whole chunks only: the chunks before the
failure are applied with their checkpoint, the one it died in is not at all, and finishing the import
(a resumed run, or a new confirm of the same dry run) applies every row exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import jobs
from backend.imports.service import do_start_confirm
from backend.models import AuditEvent, Patient, WorkJob, WorkState
from backend.models.base import utcnow
from backend.work import runs
from tests.backend.imports.files import PATIENT_HEADERS_ZH, csv_bytes
from tests.backend.imports.jobs_helpers import confirm, dry_run, reloaded

ROWS = [[f"P{n:04d}", f"病人{n}", "女", "1960-01-01", f"1380013{n:04d}", "中文"] for n in range(7)]


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing in the job loop catches it, as nothing survives a kill -9."""


def _failing_at(monkeypatch: pytest.MonkeyPatch, chunk: int, error: BaseException) -> None:
    real = jobs.apply_chunk
    calls = Counter[str]()

    def apply(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        counts = real(*args, **kwargs)  # the chunk's writes are made, then the failure strikes
        if calls["n"] == chunk:
            raise error
        return counts

    monkeypatch.setattr(jobs, "apply_chunk", apply)


def _created(db: Session) -> Counter[str]:
    db.expire_all()
    names = db.scalars(
        sa.select(Patient.name)
        .join(AuditEvent, AuditEvent.patient_id == Patient.id)
        .where(AuditEvent.action == "patient.created")
    )
    return Counter(names)


def test_a_failed_confirm_keeps_whole_chunks_and_a_new_confirm_finishes_the_rest(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 2)
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, ROWS))
    _failing_at(monkeypatch, 3, RuntimeError("disk full"))
    failed = confirm(db, dry)
    assert failed.state is WorkState.FAILED and failed.failure == "internal error (RuntimeError)"
    assert failed.cursor == {"phase": "apply", "next": 2} and failed.counts == {"created": 4}
    assert _created(db) == Counter(f"病人{n}" for n in range(4))  # rows 0-3; chunk 3 rolled back whole

    monkeypatch.undo()
    monkeypatch.setattr(jobs, "CHUNK", 2)
    finished = confirm(db, dry)  # the same plan: rows already applied count as done, not as changed
    assert finished.state is WorkState.DONE, finished.failure
    assert finished.counts == {"created": 3, "unchanged": 4}
    assert _created(db) == Counter(f"病人{n}" for n in range(7))


def test_a_confirm_whose_worker_died_resumes_from_its_last_checkpoint(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 2)
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, ROWS))
    job = do_start_confirm(db, dry, staff_id=None)
    db.commit()
    _failing_at(monkeypatch, 2, WorkerKilled())
    with pytest.raises(WorkerKilled):
        runs.run_job(job.id)
    lost = reloaded(db, job.id)
    assert lost.state is WorkState.RUNNING and lost.cursor == {"phase": "apply", "next": 1}
    assert _created(db) == Counter(f"病人{n}" for n in range(2))

    monkeypatch.undo()
    monkeypatch.setattr(jobs, "CHUNK", 2)
    db.execute(
        sa.update(WorkJob).where(WorkJob.id == job.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.commit()
    assert runs.resume_lost_work() == 1  # the sweep finds it and runs it again (inline here)
    runs.wait_for_background()
    resumed = reloaded(db, job.id)
    assert resumed.state is WorkState.DONE and resumed.attempts == 2
    assert resumed.counts == {"created": 7}
    assert _created(db) == Counter(f"病人{n}" for n in range(7))

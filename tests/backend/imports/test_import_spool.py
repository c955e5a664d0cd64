"""The rows a confirm's check pass parsed are kept, sealed, for its apply pass: the apply pass (and a resumed
one) reads no row of the file again, a missing spool falls back to the file, a spool that fails
authentication stops the import with the committed chunks kept, and nothing of it outlives the import."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import jobs, planner, spool
from backend.imports.plan import Action, Decision
from backend.imports.rows import ExclusionRecord
from backend.imports.service import do_start_confirm
from backend.models import AuditEvent, Patient, WorkJob, WorkState
from backend.models.base import utcnow
from backend.security.crypto import DecryptionError
from backend.work import runs
from tests.backend.imports.files import PATIENT_HEADERS_ZH, csv_bytes
from tests.backend.imports.jobs_helpers import dry_run, reloaded

ROWS = [[f"P{n:04d}", f"病人{n}", "女", "1960-01-01", f"1380013{n:04d}", "中文"] for n in range(5)]


class WorkerKilled(BaseException):
    """Stands for the process dying after its first chunk committed: nothing in the job loop catches it."""


def _killed_after_first_chunk(db: Session, monkeypatch: pytest.MonkeyPatch) -> int:
    """A confirm of five patients in chunks of two whose worker dies inside its second chunk."""
    monkeypatch.setattr(jobs, "CHUNK", 2)
    dry = dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, ROWS))
    job = do_start_confirm(db, dry, staff_id=None)
    db.commit()
    real, calls = jobs.apply_chunk, Counter[str]()

    def apply(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise WorkerKilled
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "apply_chunk", apply)
    with pytest.raises(WorkerKilled):
        runs.run_job(job.id)
    monkeypatch.setattr(jobs, "apply_chunk", real)
    assert reloaded(db, job.id).cursor == {"phase": "apply", "next": 1}
    return job.id


def _resume(db: Session, job_id: int) -> WorkJob:
    db.execute(
        sa.update(WorkJob).where(WorkJob.id == job_id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.commit()
    assert runs.resume_lost_work() == 1
    runs.wait_for_background()
    return reloaded(db, job_id)


def _created(db: Session) -> Counter[str]:
    db.expire_all()
    query = (
        sa.select(Patient.name)
        .join(AuditEvent, AuditEvent.patient_id == Patient.id)
        .where(AuditEvent.action == "patient.created")
    )
    return Counter(db.scalars(query))


def test_a_resumed_apply_pass_reads_the_kept_rows_not_the_file(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _killed_after_first_chunk(db, monkeypatch)
    kept = spool.path(job_id).read_bytes()
    assert kept and "病人".encode() not in kept and b"P0001" not in kept  # sealed, not in clear

    def no_parsing(*_args: Any) -> Any:
        raise AssertionError("the apply pass parsed the file again")

    monkeypatch.setattr(planner.Planner, "parse", no_parsing)
    resumed = _resume(db, job_id)
    assert resumed.state is WorkState.DONE, resumed.failure
    assert resumed.counts == {"created": 5}
    assert _created(db) == Counter(f"病人{n}" for n in range(5))  # each row once
    assert not spool.path(job_id).exists()  # removed with the file once applied


def test_a_resumed_apply_pass_without_its_kept_rows_parses_the_file_again(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _killed_after_first_chunk(db, monkeypatch)
    spool.path(job_id).unlink()
    resumed = _resume(db, job_id)
    assert resumed.state is WorkState.DONE, resumed.failure
    assert resumed.counts == {"created": 5}
    assert _created(db) == Counter(f"病人{n}" for n in range(5))


def test_kept_rows_that_fail_authentication_stop_the_import_with_the_committed_chunks_kept(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _killed_after_first_chunk(db, monkeypatch)
    data = bytearray(spool.path(job_id).read_bytes())
    data[-1] ^= 0x01  # the last chunk's seal no longer holds
    spool.path(job_id).write_bytes(bytes(data))
    resumed = _resume(db, job_id)
    assert resumed.state is WorkState.FAILED
    assert resumed.failure is not None and "the rows the check pass kept are unreadable" in resumed.failure
    # the first two chunks applied (the one committed before the kill, the next from intact kept rows),
    # nothing of the third
    assert _created(db) == Counter(f"病人{n}" for n in range(4))
    assert resumed.cursor == {"phase": "apply", "next": 2}
    assert not spool.path(job_id).exists()  # a failed confirm is not resumed: its kept rows go


def test_kept_rows_read_back_as_written_and_only_for_their_own_job() -> None:
    chunk: spool.Parsed = [
        (2, ExclusionRecord("P1", "HIS", "deceased", None), None),
        (3, None, Decision(Action.PROBLEM, problems=("no such patient",))),
    ]
    with spool.path(901).open("wb") as out:
        writer = spool.Writer(901, out)
        writer.write(chunk)
        writer.write(chunk[:1])
    assert list(spool.chunks(901)) == [chunk, chunk[:1]]
    spool.path(901).rename(spool.path(902))
    with pytest.raises(DecryptionError):
        next(spool.chunks(902))  # sealed for job 901: not accepted as another job's rows
    data = spool.path(902).read_bytes()
    spool.path(901).write_bytes(data[: len(data) - 3])
    with pytest.raises(ValueError, match="truncated"):
        list(spool.chunks(901))

"""A confirm that fails or whose worker dies part-way leaves whole chunks only: the chunks before the
failure are applied with their checkpoint, the one it died in is not at all, and finishing the import
(a resumed run, or a new confirm of the same dry run) applies every row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import jobs
from backend.imports.service import do_start_confirm
from backend.models import (
    AuditEvent,
    EncounterIdentifier,
    FollowUpPlan,
    OutreachTask,
    Patient,
    WorkJob,
    WorkState,
)
from backend.models.base import utcnow
from backend.work import runs
from tests import factories
from tests.backend.imports.files import ENCOUNTER_HEADERS_ZH, PATIENT_HEADERS_ZH, csv_bytes
from tests.backend.imports.jobs_helpers import confirm, dry_run, reloaded

ROOT = Path(__file__).resolve().parents[3]
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


# The confirm of a visit file in a process of its own, killed (SIGKILL) inside its second chunk: after the
# batched visit verb has sent that chunk's statements, before its commit.
KILLED_IN_CHUNK_TWO = """
import os, signal, sys
from backend.imports import apply, jobs
from backend.work import runs
jobs.CHUNK = 3
real, calls = apply.do_apply_visits, []
def dying(*args, **kwargs):
    ids = real(*args, **kwargs)
    calls.append(ids)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return ids
apply.do_apply_visits = dying
runs.run_job(int(sys.argv[1]))
"""


def _visit_rows() -> list[list[str]]:
    """Seven visits of the seven patients, every other one a stay discharged yesterday (planned)."""
    zone = ZoneInfo("Asia/Shanghai")
    yesterday = (utcnow() - timedelta(days=1)).astimezone(zone).date()
    rows = []
    for n in range(7):
        admitted = f"{yesterday - timedelta(days=3 + n)} 09:00"
        discharged = f"{yesterday} 10:00" if n % 2 == 0 else ""
        kind = "住院" if discharged else "门诊"
        rows.append([f"P{n:04d}", f"V{n}", kind, "0301", admitted, discharged, "I10"])
    return rows


def test_a_visit_import_killed_inside_a_chunk_keeps_whole_chunks_and_resumes_to_every_row_once(
    db: Session, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 3)  # as in the killed process: the checkpoint counts chunks
    factories.department(db, code="0301")
    db.add(FollowUpPlan(name="after discharge", questionnaire_id="post_discharge", offsets_days=[1, 7],
                        channels=["sms"]))  # fmt: skip
    db.commit()
    confirm(db, dry_run(db, "patients", csv_bytes(PATIENT_HEADERS_ZH, ROWS)))
    dry = dry_run(db, "encounters", csv_bytes(ENCOUNTER_HEADERS_ZH, _visit_rows()))
    assert dry.counts == {"to create": 7}
    job = do_start_confirm(db, dry, staff_id=None)
    db.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_CHUNK_TWO, str(job.id)], env=env, cwd=ROOT, timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL

    def visits() -> Counter[str]:
        db.expire_all()
        return Counter(db.scalars(sa.select(EncounterIdentifier.visit_number)))

    def audited() -> Counter[str]:
        query = sa.select(AuditEvent.action).where(AuditEvent.action.like("encounter.%"))
        return Counter(db.scalars(query))

    def tasks() -> Counter[int]:
        return Counter(db.scalars(sa.select(OutreachTask.encounter_id)))

    lost = reloaded(db, job.id)
    assert lost.state is WorkState.RUNNING and lost.cursor == {"phase": "apply", "next": 1}
    # the first chunk whole (visits, their audit rows and their follow-ups), nothing of the second
    assert visits() == Counter({"V0": 1, "V1": 1, "V2": 1})
    assert audited() == Counter({"encounter.discharged": 2, "encounter.created": 1})
    assert sorted(tasks().values()) == [2, 2]

    db.execute(
        sa.update(WorkJob).where(WorkJob.id == job.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.commit()
    assert runs.resume_lost_work() == 1
    runs.wait_for_background()
    resumed = reloaded(db, job.id)
    assert resumed.state is WorkState.DONE and resumed.attempts == 2
    assert resumed.counts == {"created": 7}
    assert visits() == Counter(f"V{n}" for n in range(7))  # each once
    assert audited() == Counter({"encounter.discharged": 4, "encounter.created": 3})
    assert sorted(tasks().values()) == [2, 2, 2, 2]

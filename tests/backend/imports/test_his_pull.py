"""Pulls from a read-only HIS source, against a real second database (a SQLite file beside a SQLite
CareLoop, a PostgreSQL database of its own beside a PostgreSQL one) holding a view with Chinese column
names: the same dry run and confirm as a file, the watermark moving only once rows are committed, rows
with problems held until they apply, a re-run changing nothing, a source that cannot be read reported
and nothing half-applied, and a scheduled pull that applies on its own when the source says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import his_runs, jobs, storage
from backend.imports.columns import ImportKind
from backend.imports.his_sources import HisForm, PullOutcome, do_save_source, do_start_pull, failing
from backend.imports.service import do_start_confirm
from backend.models import HisSource, Patient, WorkJob, WorkState
from backend.models.base import utcnow
from backend.work import runs
from tests.backend.imports import his_db
from tests.backend.imports.jobs_helpers import confirm, reloaded
from tests.conftest import reset_caches

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 12, 1, 8, 0)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


ROWS = [
    ("P0001", "王秀英", "女", date(1956, 3, 12), "13800138000", at(1)),
    ("P0002", "欧阳䶮", "男", date(1948, 11, 2), "12345", at(2)),  # a GB18030-only name; a bad phone: held
    ("P0003", "张伟", "男", date(1990, 7, 1), "13912345678", at(3)),
]


@pytest.fixture
def his(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The HIS's database: of the same kind as CareLoop's in this run, so both kinds are read."""
    monkeypatch.setenv("CARELOOP_DEFAULT_REGION", "CN")
    monkeypatch.setenv("CARELOOP_DEFAULT_TIMEZONE", "Asia/Shanghai")
    reset_caches()
    kind = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with his_db.his_database(kind, tmp_path) as url:
        yield url


def _source(db: Session, url: str, *, auto_apply: bool = False, query: str = his_db.QUERY) -> HisSource:
    form = HisForm(
        name="HIS-VIEW", url=url, query=query, kind=ImportKind.PATIENTS, columns=dict(his_db.COLUMNS),
        watermark_column="更新时间", watermark=None, interval_minutes=60, auto_apply=auto_apply, enabled=True,
    )  # fmt: skip
    source = do_save_source(db, source_id=None, version=0, form=form, by=None, ip=None)
    db.commit()
    return source


def _pull(db: Session, source: HisSource) -> WorkJob:
    job = do_start_pull(db, source, by=None)
    db.commit()
    runs.run_job(job.id)
    return reloaded(db, job.id)


def _state(db: Session, source_id: int) -> tuple[str | None, str | None]:
    db.expire_all()
    source = db.get(HisSource, source_id)
    assert source is not None
    return source.watermark, source.last_outcome


def _names(db: Session) -> list[str]:
    db.expire_all()
    return sorted(db.scalars(sa.select(Patient.name)))


def test_the_watermark_moves_only_after_commit_and_held_rows_come_back_until_they_apply(
    db: Session, his: str
) -> None:
    his_db.write(his, ROWS)
    source = _source(db, his)
    dry = _pull(db, source)
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 2, "with problems": 1}
    assert [(e["at"], e["error"]) for e in dry.errors] == [(3, "invalid phone number · 联系电话")]
    assert dry.result is not None and dry.result["pulled"] == 3
    assert _state(db, source.id) == (None, PullOutcome.AWAITING)  # a dry run moves nothing
    assert _names(db) == []

    done = confirm(db, dry)
    assert done.state is WorkState.DONE, done.failure
    assert done.counts == {"created": 2, "with problems": 1}
    assert _names(db) == ["张伟", "王秀英"]
    # the held row's time: the next pull reads it again (and the rows after it, found unchanged)
    assert _state(db, source.id) == (str(at(2)), PullOutcome.HELD)
    assert not storage.file_path(dry.result["file"]).exists()  # the pulled rows are not kept

    again = _pull(db, source)
    assert again.counts == {"unchanged": 1, "with problems": 1}  # a re-run changes nothing
    assert _state(db, source.id) == (str(at(2)), PullOutcome.HELD)

    his_db.write(
        his, [("P0002", "欧阳䶮", "男", date(1948, 11, 2), "13700137000", at(5))]
    )  # fixed in the HIS
    fixed = _pull(db, source)
    assert fixed.counts == {"to create": 1, "unchanged": 1}
    assert confirm(db, fixed).counts == {"created": 1, "unchanged": 1}
    assert _state(db, source.id) == (str(at(5)), PullOutcome.APPLIED)
    assert _names(db) == ["张伟", "欧阳䶮", "王秀英"]

    last = _pull(db, source)
    assert last.counts == {"unchanged": 1}
    assert _state(db, source.id) == (str(at(5)), PullOutcome.APPLIED)
    assert _names(db) == ["张伟", "欧阳䶮", "王秀英"]


def test_a_source_that_cannot_be_read_is_reported_and_nothing_is_applied(db: Session, his: str) -> None:
    his_db.write(his, ROWS)
    unreachable = _source(db, "postgresql+psycopg://careloop@127.0.0.1:1/his")
    failed = _pull(db, unreachable)
    assert failed.state is WorkState.FAILED
    assert failed.failure is not None and failed.failure.startswith("the HIS source could not be reached")
    assert _state(db, unreachable.id) == (None, PullOutcome.FAILED)
    assert [s.name for s in failing(db)] == ["HIS-VIEW"]  # the health page lists it

    unreachable.url, unreachable.query = his, "SELECT * FROM 不存在的视图 WHERE 更新时间 >= :since"
    db.commit()
    refused = _pull(db, unreachable)
    assert refused.state is WorkState.FAILED
    assert refused.failure is not None and refused.failure.startswith("the HIS source refused the query")
    # a SELECT that would write (PostgreSQL's data-modifying WITH) is refused by the read-only transaction
    unreachable.query = (
        "WITH gone AS (DELETE FROM 病人信息 RETURNING 病案号) SELECT * FROM v_患者 WHERE 更新时间 >= :since"
    )
    db.commit()
    assert _pull(db, unreachable).state is WorkState.FAILED
    assert len(his_rows(his)) == 3
    assert _names(db) == [] and _state(db, unreachable.id) == (None, PullOutcome.FAILED)


def his_rows(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT 病案号 FROM 病人信息"))]
    engine.dispose()
    return rows


def test_a_scheduled_source_that_applies_on_its_own_confirms_only_rows_without_problems(
    db: Session, his: str
) -> None:
    his_db.write(his, ROWS)
    source = _source(db, his, auto_apply=True)
    now = utcnow()
    [pull] = his_runs.due_pulls(db, now)
    db.commit()
    runs.run_job(pull)
    [auto] = his_runs.due_pulls(db, now)  # the pull found rows to apply: its confirm, unasked
    db.commit()
    runs.run_job(auto)
    assert reloaded(db, auto).counts == {"created": 2, "with problems": 1}
    assert _state(db, source.id) == (str(at(2)), PullOutcome.HELD)
    assert his_runs.due_pulls(db, now + timedelta(minutes=59)) == []  # not before its interval
    assert len(his_runs.due_pulls(db, now + timedelta(minutes=61))) == 1


# The confirm of a pull in a process of its own, killed (SIGKILL) in its second chunk after the patient
# verbs ran and before the chunk's commit.
KILLED_IN_CHUNK_TWO = """
import os, signal, sys
from backend.imports import jobs
from backend.work import runs
jobs.CHUNK = 2
real, calls = jobs.apply_chunk, []
def dying(*args, **kwargs):
    counts = real(*args, **kwargs)
    calls.append(counts)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return counts
jobs.apply_chunk = dying
runs.run_job(int(sys.argv[1]))
"""


def test_a_killed_confirm_keeps_whole_chunks_and_the_watermark_waits_for_the_last(
    db: Session, his: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 2)  # as in the killed process: the checkpoint counts chunks
    rows = [(f"P{n:04d}", f"病人{n}", "女", date(1960, 1, 1), f"1380013{n:04d}", at(n)) for n in range(1, 8)]
    his_db.write(his, rows)
    source = _source(db, his)
    dry = _pull(db, source)
    assert dry.counts == {"to create": 7}
    job = do_start_confirm(db, dry, staff_id=None)
    db.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_CHUNK_TWO, str(job.id)], env=env, cwd=ROOT, timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    lost = reloaded(db, job.id)
    assert lost.state is WorkState.RUNNING and lost.cursor == {"phase": "apply", "next": 1}
    assert _names(db) == ["病人1", "病人2"]  # the first chunk whole, nothing of the second
    assert _state(db, source.id) == (None, PullOutcome.AWAITING)  # not moved: rows are still to commit
    assert his_runs.due_pulls(db, utcnow() + timedelta(days=1)) == []  # its confirm is not finished

    db.execute(
        sa.update(WorkJob).where(WorkJob.id == job.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.commit()
    assert runs.resume_lost_work() == 1
    runs.wait_for_background()
    resumed = reloaded(db, job.id)
    assert resumed.state is WorkState.DONE and resumed.counts == {"created": 7}
    assert _names(db) == sorted(f"病人{n}" for n in range(1, 8))
    assert _state(db, source.id) == (str(at(7)), PullOutcome.APPLIED)

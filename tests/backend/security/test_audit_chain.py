"""The audit hash chain: rows inserted unsealed and sealed after commit by the sealer, tampering and
deletions named by verification (sealer first, then the tampering, then the walk), retention that leaves a
signed checkpoint, concurrent writers that never wait on each other or on the sealer, and a sealer killed
mid-batch that leaves the chain as it was."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.models import AuditChainHead, AuditCheckpoint, AuditEvent
from backend.models.base import utcnow
from backend.security.audit_chain import mac_of, run_sealer, seal_batch
from backend.security.audit_verify import Verdict, do_prune_audit, verify_chain
from backend.services import audit

ROOT = Path(__file__).resolve().parents[3]


def _write(count: int, *, days_ago: float = 0, per_commit: int = 1, seal: bool = True) -> list[int]:
    """Audit rows written as the product writes them, then (unless `seal` is false) the sealer run as
    the periodic job runs it."""
    ids: list[int] = []
    for start in range(0, count, per_commit):
        with session_scope() as session:
            events = []
            for n in range(start, min(count, start + per_commit)):
                event = audit.record(session, "test.write", subject=("thing", n), n=n, tags=("a", "b"))
                event.at = utcnow() - timedelta(days=days_ago)
                event.mac = mac_of(get_settings().audit_key_bytes, event)  # written then, as then
                events.append(event)
            session.flush()
            ids.extend(event.id for event in events)
    if seal:
        run_sealer()
    return ids


def _sql(db: Session, statement: str, params: dict[str, object] | None = None) -> None:
    """A change made behind the product's back, as someone with database access would."""
    db.execute(sa.text(statement), params or {})
    db.commit()


def _verdict(**kwargs: object) -> Verdict:
    with session_scope() as session:
        return verify_chain(session, get_settings().audit_key_bytes, **kwargs)  # type: ignore[arg-type]


def _verify() -> tuple[bool, str | None, int | None, int]:
    verdict = _verdict()
    return verdict.ok, verdict.problem, verdict.row_id, verdict.checked


def _seqs(db: Session) -> list[int | None]:
    return list(db.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.id)))


def test_rows_wait_unsealed_then_the_sealer_seals_them_in_order(database_url: str, db: Session) -> None:
    ids = _write(5, per_commit=2, seal=False)
    # committed but not sealed: pending, not a break, and no warning while they are fresh
    assert _seqs(db) == [None] * 5
    pending = _verdict()
    assert pending.ok and pending.checked == 0 and pending.pending == 5 and pending.warning is None
    assert db.get(AuditChainHead, 1) is None  # nothing was locked or written by the writers
    assert run_sealer(limit=2) == 5  # three short batches
    rows = db.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    # every row has its place, in commit order, each linked to the one before
    assert [row.id for row in rows] == ids
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert all(row.prev_hash == before.row_hash for before, row in itertools.pairwise(rows))
    head = db.get(AuditChainHead, 1)
    assert head is not None and head.seq == 5 and head.last_hash == rows[-1].row_hash
    assert _verify() == (True, None, None, 5)
    assert _verdict().pending == 0
    assert run_sealer() == 0  # nothing left: a second run seals nothing and moves nothing


def test_a_row_waiting_too_long_for_the_sealer_is_a_warning(database_url: str, db: Session) -> None:
    _write(2)
    _write(1, seal=False, days_ago=30 / 1440)  # written half an hour ago, the sealer not running since
    verdict = _verdict()
    # the chain holds (2 sealed rows); the stale pending row is a warning that the sealer is not running
    assert verdict.ok and verdict.checked == 2 and verdict.pending == 1
    assert verdict.oldest_pending_age is not None and verdict.oldest_pending_age >= timedelta(minutes=29)
    assert verdict.warning is not None and "sealer" in verdict.warning and "30 min" in verdict.warning
    assert _verdict(warn_after=timedelta(hours=1)).warning is None
    assert run_sealer() == 1
    assert _verdict().warning is None and _verify() == (True, None, None, 3)


def test_a_row_changed_with_plain_sql_is_named(database_url: str, db: Session) -> None:
    ids = _write(6)
    _sql(db, "UPDATE audit_events SET subject_id = 99 WHERE id = :id", {"id": ids[3]})
    ok, problem, row_id, checked = _verify()
    # the walk stops at the changed row and names it; the three before it were checked and hold
    assert not ok and row_id == ids[3] and checked == 3
    assert problem is not None and "content was changed" in problem


def test_a_rehashed_row_breaks_the_next_rows_link(database_url: str, db: Session) -> None:
    """Recomputing the changed row's own hash does not help: the next row still holds the old one."""
    from backend.security.audit_chain import digest_of

    ids = _write(4)
    row = db.get(AuditEvent, ids[1])
    assert row is not None and row.seq is not None and row.prev_hash is not None
    row.ip = "10.6.6.6"
    row.row_hash = digest_of(row, seq=row.seq, prev_hash=row.prev_hash)
    db.commit()
    ok, problem, row_id, _ = _verify()
    assert not ok and row_id == ids[2] and problem is not None and "link" in problem


def test_a_deleted_middle_row_is_named_by_the_row_after_it(database_url: str, db: Session) -> None:
    ids = _write(5)
    _sql(db, "DELETE FROM audit_events WHERE id = :id", {"id": ids[2]})
    ok, problem, row_id, _ = _verify()
    assert not ok and row_id == ids[3]
    assert problem is not None and "1 row(s) missing before it" in problem


def test_rows_cut_from_the_end_are_found_against_the_signed_head(database_url: str, db: Session) -> None:
    ids = _write(4)
    _sql(db, "DELETE FROM audit_events WHERE id = :id", {"id": ids[-1]})
    ok, problem, _, checked = _verify()
    assert not ok and checked == 3 and problem is not None and "does not match its signed head" in problem
    # moving the head back by hand is caught too: its signature no longer matches
    _sql(db, "UPDATE audit_chain_head SET seq = 3")
    ok, problem, _, _ = _verify()
    assert not ok and problem is not None and "not signed" in problem


def test_a_row_added_around_the_chain_with_a_place_is_named(database_url: str, db: Session) -> None:
    """A row inserted with plain SQL claiming a place in the middle of the chain is found. (One inserted
    unsealed looks like any writer's row and is sealed: docs/audit.md says why that trade was made.)"""
    ids = _write(3)
    _sql(db, "UPDATE audit_events SET seq = seq + 10 WHERE id = :id", {"id": ids[2]})
    _sql(
        db,
        "INSERT INTO audit_events (at, action, detail, seq, prev_hash, row_hash) "
        "VALUES (CURRENT_TIMESTAMP, 'x', '{}', 3, :h, :h)",
        {"h": "f" * 64},
    )
    forged = db.scalar(sa.select(sa.func.max(AuditEvent.id)))
    ok, problem, row_id, checked = _verify()
    # the two rows before it hold; the forged row's link to the second does not
    assert not ok and checked == 2 and row_id == forged and problem is not None and "link" in problem


def test_a_rolled_back_savepoint_leaves_no_gap(database_url: str, db: Session) -> None:
    with session_scope() as session:
        audit.record(session, "test.kept", n=1)
        nested = session.begin_nested()
        audit.record(session, "test.dropped", n=2)
        session.flush()
        nested.rollback()
        audit.record(session, "test.kept", n=3)
    run_sealer()
    actions = db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions == ["test.kept", "test.kept"]
    assert _verify()[0]


def test_retention_removes_an_old_segment_and_verification_passes(database_url: str, db: Session) -> None:
    key = get_settings().audit_key_bytes
    old = _write(4, days_ago=400)
    recent = _write(3, days_ago=1)
    with session_scope() as session:
        pruned = do_prune_audit(session, key, cutoff=utcnow() - timedelta(days=365))
    assert pruned.removed == 4 and pruned.through_seq == 4 and pruned.refused is None
    # the old rows are gone, the recent ones kept, a signed checkpoint stands where the old ones were
    left = db.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.seq)).all()
    assert left == recent and not set(old) & set(left)
    checkpoint = db.scalars(sa.select(AuditCheckpoint)).one()
    assert checkpoint.through_seq == 4 and checkpoint.removed == 4
    assert _verify() == (True, None, None, 3)
    # the chain goes on after the checkpoint, and a second retention chains a second checkpoint
    _write(2)
    with session_scope() as session:
        again = do_prune_audit(session, key, cutoff=utcnow() + timedelta(days=1))
    assert again.removed == 5 and db.scalar(sa.select(sa.func.count()).select_from(AuditCheckpoint)) == 2
    assert _verify() == (True, None, None, 0)
    _write(1)
    assert _verify() == (True, None, None, 1)


def test_retention_keeps_a_segment_whole_and_refuses_a_broken_chain(database_url: str, db: Session) -> None:
    key = get_settings().audit_key_bytes
    first = _write(2, days_ago=400)
    _write(1, days_ago=1)
    _write(2, days_ago=400)  # old times, but sealed after a recent row: kept with it
    with session_scope() as session:
        assert do_prune_audit(session, key, cutoff=utcnow() - timedelta(days=365)).removed == 2
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 3
    assert _verify()[0]
    remaining = db.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.seq)).all()
    _sql(db, "UPDATE audit_events SET action = 'forged' WHERE id = :id", {"id": remaining[-1]})
    with session_scope() as session:
        refused = do_prune_audit(session, key, cutoff=utcnow() + timedelta(days=1))
    # nothing removed: removing the broken segment would erase the evidence
    assert refused.removed == 0 and refused.refused is not None and str(remaining[-1]) in refused.refused
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 3
    assert set(first).isdisjoint(db.scalars(sa.select(AuditEvent.id)).all())


def test_a_forged_checkpoint_is_refused(database_url: str, db: Session) -> None:
    _write(3, days_ago=400)
    _write(1)
    with session_scope() as session:
        do_prune_audit(session, get_settings().audit_key_bytes, cutoff=utcnow() - timedelta(days=365))
    # hiding more rows by moving the checkpoint forward needs the audit key
    _sql(db, "UPDATE audit_checkpoints SET removed = 2")
    ok, problem, _, _ = _verify()
    assert not ok and problem is not None and "checkpoint" in problem


def test_concurrent_writers_and_sealers_keep_one_valid_chain(database_url: str, db: Session) -> None:
    writers, commits, per_commit = 6, 15, 2
    errors: list[BaseException] = []
    start = threading.Barrier(writers + 2)
    done = threading.Event()

    def write() -> None:
        try:
            start.wait()
            _write(commits * per_commit, per_commit=per_commit, seal=False)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def seal() -> None:  # two sealers at once, as two workers' periodic jobs may run
        try:
            start.wait()
            while not done.is_set():
                run_sealer(limit=7)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    sealers = [threading.Thread(target=seal) for _ in range(2)]
    for thread in threads + sealers:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    for thread in sealers:
        thread.join()
    run_sealer()
    assert errors == []
    total = writers * commits * per_commit
    seqs = db.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    # every row has a place, no place twice or skipped, and the whole chain verifies
    assert seqs == list(range(1, total + 1))
    assert _verify() == (True, None, None, total)


def test_the_periodic_retention_keeps_six_months_by_default(database_url: str, db: Session) -> None:
    from backend.app.periodic import apply_audit_retention

    assert get_settings().audit_retention_days >= 183
    _write(3, days_ago=400)
    kept = _write(2, days_ago=190)
    assert apply_audit_retention() == 3
    run_sealer()
    actions = db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    # the six-month-old rows stay, and the removal is itself on the record, sealed after them
    assert db.scalars(sa.select(AuditEvent.id).where(AuditEvent.action == "test.write")).all() == kept
    assert actions[-1] == "audit.retention"
    assert apply_audit_retention() == 0
    assert _verify()[0]


def test_a_retention_shorter_than_six_months_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CARELOOP_AUDIT_RETENTION_DAYS", "90")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="audit_retention_days"):
            get_settings()
    finally:
        monkeypatch.delenv("CARELOOP_AUDIT_RETENTION_DAYS")
        get_settings.cache_clear()


def test_rows_written_before_the_chain_are_sealed_by_the_migration(tmp_path: Path) -> None:
    from alembic import command

    from backend.app.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0025")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                sa.text("INSERT INTO audit_events (at, action, detail) VALUES (:at, 'old.write', :detail)"),
                {"at": f"2026-01-0{n + 1} 08:00:00.000000", "detail": json.dumps({"n": n, "t": [1, 2]})},
            )
    upgrade(url)
    with sa.orm.Session(engine) as session:
        verdict = verify_chain(session, get_settings().audit_key_bytes)
        seqs = session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.id)).all()
    engine.dispose()
    # the old rows are sealed in id order, the head signed: the chain verifies straight after the upgrade
    assert seqs == [1, 2, 3]
    assert verdict.ok and verdict.checked == 3


def test_a_long_segment_is_cut_in_short_steps_each_behind_its_checkpoint(
    database_url: str, db: Session
) -> None:
    key = get_settings().audit_key_bytes
    _write(7, days_ago=400, per_commit=7)
    cutoff = utcnow() - timedelta(days=365)
    steps = []
    while True:
        with session_scope() as session:
            pruned = do_prune_audit(session, key, cutoff=cutoff, limit=3)
        if not pruned.removed:
            break
        steps.append(pruned.removed)
        assert _verify()[0]  # the chain verifies after every step, not only at the end
    assert steps == [3, 3, 1]
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditCheckpoint)) == 3


def test_a_row_appended_with_a_made_up_hash_is_found(database_url: str, db: Session) -> None:
    """Someone who computes a correct hash for an added row still cannot sign the head."""
    from backend.security.audit_chain import row_digest

    _write(2)
    last = db.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last is not None and last.row_hash is not None
    forged = AuditEvent(action="staff.sign_in", detail={}, at=utcnow(), seq=3, prev_hash=last.row_hash)
    forged.row_hash = row_digest(
        seq=3,
        prev_hash=last.row_hash,
        at=forged.at,
        action="staff.sign_in",
        staff_id=None,
        patient_id=None,
        subject_type=None,
        subject_id=None,
        ip=None,
        detail={},
    )
    db.add(forged)
    db.commit()
    ok, problem, _, checked = _verify()
    # every row links and hashes correctly, but the chain now runs past its signed head
    assert not ok and checked == 3 and problem is not None and "does not match its signed head" in problem


def _postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        # SQLite takes one write lock for the whole database: its writers always commit one at a time
        pytest.skip("writers overlap only on PostgreSQL")


def _in_thread(work: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_writers_wait_neither_for_each_other_nor_for_the_sealer(database_url: str, db: Session) -> None:
    _postgres_only(database_url)
    _write(2)
    key = get_settings().audit_key_bytes
    with session_scope() as open_writer, session_scope() as sealer:
        audit.record(open_writer, "test.open", n=1)
        open_writer.flush()  # its row inserted, its transaction still open
        assert seal_batch(sealer, key) == 0  # the head locked, the transaction still open
        thread, errors = _in_thread(lambda: _write(3, seal=False))
        thread.join(timeout=15)
        # three audited commits went through while another writer and the sealer held their transactions
        finished = not thread.is_alive()
    thread.join()
    assert finished and errors == []
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.seq.is_(None))) == 4
    assert run_sealer() == 4 and _verify() == (True, None, None, 6)


def test_a_row_committed_late_with_a_lower_id_gets_a_later_place(database_url: str, db: Session) -> None:
    _postgres_only(database_url)
    with session_scope() as slow:
        late = audit.record(slow, "test.late")
        slow.flush()
        late_id = late.id
        early = _write(2)  # higher ids, committed and sealed while the slow transaction is open
        assert all(row_id > late_id for row_id in early)
        assert _verify() == (True, None, None, 2)
    assert _verdict().pending == 1
    assert run_sealer() == 1
    places = {row.id: row.seq for row in db.execute(sa.select(AuditEvent.id, AuditEvent.seq))}
    # the chain's order is the sealer's, not the ids': the late row comes after the rows sealed before it
    assert places == {early[0]: 1, early[1]: 2, late_id: 3}
    assert _verify() == (True, None, None, 3)


_KILLED_SEALER = """
import sys, time
from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.security.audit_chain import seal_batch

session = session_factory()()
sealed = seal_batch(session, get_settings().audit_key_bytes, limit=3)
session.flush()  # every row of the batch and the head updated, not committed
print(sealed, flush=True)
time.sleep(600)
"""


def test_a_sealer_killed_mid_batch_leaves_the_chain_as_it_was(database_url: str, db: Session) -> None:
    _write(2)
    _write(5, seal=False)
    head_before = db.get(AuditChainHead, 1)
    assert head_before is not None
    before = (head_before.seq, head_before.last_hash, head_before.signature)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SEALER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "3"
    finally:
        proc.kill()  # SIGKILL in the middle of the batch: no commit, no rollback from the process
        proc.wait(timeout=30)
    db.expire_all()
    head = db.get(AuditChainHead, 1)
    # its transaction rolled back: the head and the rows are as they were, the chain holds
    assert head is not None and (head.seq, head.last_hash, head.signature) == before
    assert _seqs(db).count(None) == 5
    verdict = _verdict()
    assert verdict.ok and verdict.checked == 2 and verdict.pending == 5
    # the next sealer takes the batch over from the same place
    assert run_sealer() == 5 and _verify() == (True, None, None, 7)


def test_the_sealer_runs_in_the_periodic_jobs_at_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.app.periodic import PERIODIC, intervals, seal_audit_rows

    assert seal_audit_rows in [func for func, _ in PERIODIC]
    monkeypatch.setenv("CARELOOP_AUDIT_SEAL_SECONDS", "2")
    get_settings.cache_clear()
    try:
        chosen = dict(intervals())
    finally:
        monkeypatch.delenv("CARELOOP_AUDIT_SEAL_SECONDS")
        get_settings.cache_clear()
    assert chosen[seal_audit_rows] == 2 and len(chosen) == len(PERIODIC)


def test_audit_verify_seals_first_and_warns_when_the_sealer_had_stopped(
    database_url: str, db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.app.cli import main

    _write(2)
    _write(1, seal=False, days_ago=30 / 1440)
    _write(1, seal=False)
    assert main(["audit", "verify"]) == 0
    out, err = capsys.readouterr()
    # the waiting rows were sealed and walked, and the operator is told the sealer had not been running
    assert "4 rows verified (2 sealed just now)" in out
    assert "warning: 2 audit row(s) not sealed, the oldest written 30 min ago" in err
    assert _seqs(db).count(None) == 0
    assert main(["audit", "verify"]) == 0
    out, err = capsys.readouterr()
    assert "4 rows verified (0 sealed just now)" in out and err == ""


def test_a_row_slipped_in_before_the_sealer_is_left_out_of_the_chain_and_named(
    database_url: str, db: Session
) -> None:
    """Someone with database access but not the audit key inserts a row in the seconds before the sealer
    comes (or copies a genuine row's MAC onto changed content): the sealer chains the genuine rows around
    it, never it, and verification names it."""
    _write(2)
    genuine = _write(1, seal=False)[0]
    _sql(
        db,
        "INSERT INTO audit_events (at, action, detail) VALUES (:at, 'staff.sign_in', '{}')",
        {"at": utcnow().replace(tzinfo=None) if db.get_bind().dialect.name == "sqlite" else utcnow()},
    )
    slipped = db.scalar(sa.select(sa.func.max(AuditEvent.id)))
    borrowed = _write(1, seal=False)[0]
    mac = db.scalar(sa.select(AuditEvent.mac).where(AuditEvent.id == genuine))
    _sql(
        db,
        "UPDATE audit_events SET mac = :mac, action = 'forged' WHERE id = :id",
        {"mac": mac, "id": borrowed},
    )
    after = _write(1, seal=False)[0]
    assert run_sealer() == 2  # the genuine waiting row and the one after the forgeries
    db.expire_all()
    sealed = {r.id: r.seq for r in db.scalars(sa.select(AuditEvent))}
    assert sealed[genuine] == 3 and sealed[after] == 4
    assert sealed[slipped] is None and sealed[borrowed] is None
    verdict = _verdict()
    assert not verdict.ok and verdict.row_id == slipped and "without the audit key" in (verdict.problem or "")
    assert verdict.checked == 4  # the chain itself holds
    _sql(db, "DELETE FROM audit_events WHERE id = :id", {"id": slipped})
    assert _verdict().row_id == borrowed
    assert run_sealer() == 0  # a second run seals nothing new and does not loop on them


def test_rows_waiting_at_the_upgrade_get_their_mac_from_the_migration(tmp_path: Path) -> None:
    from alembic import command

    from backend.app.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'before.db'}"
    command.upgrade(alembic_config(url), "0033")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO audit_events (at, action, detail) VALUES (:at, 'old.write', :detail)"),
            {"at": "2026-12-01 08:00:00.000000", "detail": json.dumps({"n": 1, "t": [1, 2]})},
        )
    upgrade(url)
    with sa.orm.Session(engine) as session:
        key = get_settings().audit_key_bytes
        seal_batch(session, key)
        session.commit()
        verdict = verify_chain(session, key)
        seqs = session.scalars(sa.select(AuditEvent.seq)).all()
    engine.dispose()
    assert seqs == [1] and verdict.ok and verdict.checked == 1

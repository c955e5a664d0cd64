"""The audit hash chain: rows sealed at commit, tampering and deletions named by verification, retention
that leaves a signed checkpoint, and concurrent writers that keep one unbroken chain."""

from __future__ import annotations

import itertools
import json
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
from backend.security.audit_verify import do_prune_audit, verify_chain
from backend.services import audit


def _write(count: int, *, days_ago: float = 0, per_commit: int = 1) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, per_commit):
        with session_scope() as session:
            events = []
            for n in range(start, min(count, start + per_commit)):
                event = audit.record(session, "test.write", subject=("thing", n), n=n, tags=("a", "b"))
                event.at = utcnow() - timedelta(days=days_ago)
                events.append(event)
            session.flush()
            ids.extend(event.id for event in events)
    return ids


def _sql(db: Session, statement: str, params: dict[str, object] | None = None) -> None:
    """A change made behind the product's back, as someone with database access would."""
    db.execute(sa.text(statement), params or {})
    db.commit()


def _verify() -> tuple[bool, str | None, int | None, int]:
    with session_scope() as session:
        verdict = verify_chain(session, get_settings().audit_key_bytes)
    return verdict.ok, verdict.problem, verdict.row_id, verdict.checked


def test_rows_are_sealed_in_order_at_commit_and_verify(database_url: str, db: Session) -> None:
    ids = _write(5, per_commit=2)
    rows = db.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    # every row has its place, in commit order, each linked to the one before
    assert [row.id for row in rows] == ids
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert all(row.prev_hash == before.row_hash for before, row in itertools.pairwise(rows))
    head = db.get(AuditChainHead, 1)
    assert head is not None and head.seq == 5 and head.last_hash == rows[-1].row_hash
    assert _verify() == (True, None, None, 5)


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


def test_a_row_added_around_the_chain_is_named(database_url: str, db: Session) -> None:
    _write(2)
    _sql(db, "INSERT INTO audit_events (at, action, detail) VALUES (CURRENT_TIMESTAMP, 'x', '{}')")
    forged = db.scalar(sa.select(sa.func.max(AuditEvent.id)))
    ok, problem, row_id, _ = _verify()
    assert not ok and row_id == forged and problem is not None and "never sealed" in problem


def test_a_rolled_back_savepoint_leaves_no_gap(database_url: str, db: Session) -> None:
    with session_scope() as session:
        audit.record(session, "test.kept", n=1)
        nested = session.begin_nested()
        audit.record(session, "test.dropped", n=2)
        session.flush()
        nested.rollback()
        audit.record(session, "test.kept", n=3)
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


def test_concurrent_writers_keep_one_valid_chain(database_url: str, db: Session) -> None:
    writers, commits, per_commit = 6, 15, 2
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write() -> None:
        try:
            start.wait()
            _write(commits * per_commit, per_commit=per_commit)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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

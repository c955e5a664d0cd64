"""Changing the audit key: with the old key in CARELOOP_AUDIT_KEYS_PREVIOUS, the chain verifies (its
retention checkpoint and head were signed with the old key), rows written just before the change still
seal, new signatures use the new key, and a tampered row or a row signed with no key of the ring is still
named. Without the old key in the ring, the old signatures are refused."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.models import AuditChainHead, AuditEvent
from backend.models.base import utcnow
from backend.security.audit_chain import head_signature, mac_holds, run_sealer
from backend.security.audit_verify import Verdict, do_prune_audit, verify_chain
from tests.backend.security.test_audit_chain import _sql, _write

OLD, NEW = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


def _keys(monkeypatch: pytest.MonkeyPatch, current: str, previous: str | None) -> None:
    monkeypatch.setenv("CARELOOP_AUDIT_KEY", current)
    if previous is None:
        monkeypatch.delenv("CARELOOP_AUDIT_KEYS_PREVIOUS", raising=False)
    else:
        monkeypatch.setenv("CARELOOP_AUDIT_KEYS_PREVIOUS", previous)
    get_settings.cache_clear()


def _verdict() -> Verdict:
    """Verification as `careloop audit verify` makes it: with the settings' whole ring."""
    with session_scope() as session:
        return verify_chain(session, get_settings().audit_keys)


def _history_under_the_old_key(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """A pruned segment (a checkpoint signed with OLD), sealed rows, and rows still waiting for the sealer
    when the key changes."""
    _keys(monkeypatch, OLD, None)
    _write(3, days_ago=400)
    kept = _write(2)
    with session_scope() as session:
        assert do_prune_audit(
            session, get_settings().audit_keys, cutoff=utcnow() - timedelta(days=365)
        ).removed
    waiting = _write(2, seal=False)
    return kept, waiting


def test_old_signatures_verify_with_the_old_key_in_the_ring_and_new_ones_use_the_new_key(
    database_url: str, db: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, waiting = _history_under_the_old_key(monkeypatch)
    _keys(monkeypatch, NEW, OLD)
    # the checkpoint and the head are OLD's; the chain holds
    verdict = _verdict()
    assert verdict.ok and verdict.checked == 2 and verdict.pending == 2
    # the rows written just before the change are sealed (their MACs are OLD's), then verified
    assert main(["audit", "verify"]) == 0
    assert "4 rows verified (2 sealed just now)" in capsys.readouterr().out
    db.expire_all()
    assert None not in db.scalars(sa.select(AuditEvent.seq).where(AuditEvent.id.in_(waiting))).all()
    # the head was re-signed with the new key when those rows were sealed
    head = db.get_one(AuditChainHead, 1)
    assert head.signature == head_signature(NEW.encode(), head.seq, head.last_hash)
    # rows written from now on carry NEW's MAC, which OLD does not make
    fresh = _write(1, seal=False)[0]
    row = db.get_one(AuditEvent, fresh)
    assert mac_holds(NEW.encode(), row) and not mac_holds(OLD.encode(), row)
    assert run_sealer() == 1 and _verdict().ok

    # a row changed behind the product's back is named, as with one key
    _sql(db, "UPDATE audit_events SET subject_id = 99 WHERE id = :id", {"id": kept[1]})
    tampered = _verdict()
    assert (
        not tampered.ok and tampered.row_id == kept[1] and "content was changed" in (tampered.problem or "")
    )


def test_without_the_old_key_its_signatures_are_refused_and_its_waiting_rows_are_named(
    database_url: str, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kept, waiting = _history_under_the_old_key(monkeypatch)
    _keys(monkeypatch, NEW, None)
    verdict = _verdict()
    assert (
        not verdict.ok and "checkpoint" in (verdict.problem or "") and "audit key" in (verdict.problem or "")
    )
    # the sealer leaves rows signed with no key of the ring out of the chain
    assert run_sealer() == 0
    db.expire_all()
    assert db.scalars(sa.select(AuditEvent.seq).where(AuditEvent.id.in_(waiting))).all() == [None, None]
    # another key in the ring is not the old one: still refused
    _keys(monkeypatch, NEW, secrets.token_urlsafe(32))
    assert not _verdict().ok and run_sealer() == 0


def test_a_short_previous_audit_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_AUDIT_KEY", NEW)
    monkeypatch.setenv("CARELOOP_AUDIT_KEYS_PREVIOUS", f"{OLD}, short")
    with pytest.raises(ValueError, match="CARELOOP_AUDIT_KEYS_PREVIOUS"):
        Settings()  # type: ignore[call-arg]
    monkeypatch.setenv("CARELOOP_AUDIT_KEYS_PREVIOUS", f"{OLD} , {NEW}")
    assert Settings().audit_keys.previous == (OLD.encode(), NEW.encode())  # type: ignore[call-arg]

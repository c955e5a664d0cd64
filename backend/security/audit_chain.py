"""The audit trail's hash chain: each row sealed, at its transaction's commit, to the row before it.

`backend.services.audit.record` notes each new row on its session; just before the session commits,
the chain head row is locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE already
serialises writers), the transaction's rows get the next places in the chain, their hashes, and the head
moves on. The lock is taken at commit rather than when the row is written so that a transaction holding
it never waits for another row lock afterwards: writers queue on the head for the length of a commit and
cannot deadlock on it. Verification and retention live in backend/security/audit_verify.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64  # the previous hash of the chain's first row
HEAD_ID = 1
_PENDING = "careloop.audit_unsealed"


def canonical_detail(detail: Any) -> Any:
    """The detail as it reads back from the JSON column (tuples become lists, keys strings)."""
    return json.loads(json.dumps(detail if detail is not None else {}))


def row_digest(
    *,
    seq: int,
    prev_hash: str,
    at: datetime,
    action: str,
    staff_id: int | None,
    patient_id: int | None,
    subject_type: str | None,
    subject_id: int | None,
    ip: str | None,
    detail: Any,
) -> str:
    """SHA-256 over the row's content, its place and the previous row's hash, in one fixed JSON form."""
    body = {
        "v": 1,
        "seq": seq,
        "prev": prev_hash,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "action": action,
        "staff_id": staff_id,
        "patient_id": patient_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "ip": ip,
        "detail": canonical_detail(detail),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def digest_of(row: AuditEvent | sa.Row[Any], *, seq: int, prev_hash: str) -> str:
    return row_digest(
        seq=seq,
        prev_hash=prev_hash,
        at=row.at,
        action=row.action,
        staff_id=row.staff_id,
        patient_id=row.patient_id,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        ip=row.ip,
        detail=row.detail,
    )


def sign(key: bytes, *parts: object) -> str:
    """HMAC-SHA256 of the parts joined by NUL: the head and the checkpoints carry these."""
    message = "\x00".join(str(part) for part in parts).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_signature(key: bytes, seq: int, last_hash: str) -> str:
    return sign(key, "head", seq, last_hash)


def note_unsealed(session: Session, row: AuditEvent) -> None:
    """Remember a new audit row of this session; it is sealed when the session commits."""
    session.info.setdefault(_PENDING, []).append(row)


def _starting_point(session: Session) -> tuple[int, str]:
    """Where a missing head starts: the newest sealed row, else the newest checkpoint, else genesis."""
    from backend.models import AuditCheckpoint

    last = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.row_hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if last is not None and last.row_hash is not None and last.seq is not None:
        return int(last.seq), str(last.row_hash)
    checkpoint = session.execute(
        sa.select(AuditCheckpoint.through_seq, AuditCheckpoint.through_hash)
        .order_by(AuditCheckpoint.through_seq.desc())
        .limit(1)
    ).first()
    if checkpoint is not None:
        return int(checkpoint.through_seq), str(checkpoint.through_hash)
    return 0, GENESIS


def locked_head(session: Session, key: bytes) -> AuditChainHead:
    """The head row, locked until this transaction ends; created on first use (a fresh or emptied
    database) where the chain stands."""
    query = (
        sa.select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = session.scalars(query).first()
    if head is not None:
        return head
    seq, last_hash = _starting_point(session)
    values = {
        "id": HEAD_ID,
        "seq": seq,
        "last_hash": last_hash,
        "signature": head_signature(key, seq, last_hash),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
    head = session.scalars(query).first()
    assert head is not None  # inserted just now, or by a writer that got there first
    return head


def seal_pending(session: Session) -> int:
    """Give this session's new audit rows their places and hashes; returns how many were sealed."""
    pending: list[AuditEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return 0
    session.flush()  # ids and defaults (the time) filled in; rows a savepoint rolled back drop out
    rows = sorted(
        (row for row in pending if sa.inspect(row).persistent and row.seq is None), key=lambda r: r.id
    )
    if not rows:
        return 0
    from backend.app.settings import get_settings

    key = get_settings().audit_key_bytes
    head = locked_head(session, key)
    seq, prev = head.seq, head.last_hash
    for row in rows:
        seq += 1
        row.seq, row.prev_hash = seq, prev
        row.row_hash = prev = digest_of(row, seq=seq, prev_hash=prev)
    head.seq, head.last_hash, head.signature = seq, prev, head_signature(key, seq, prev)
    return len(rows)


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    seal_pending(session)

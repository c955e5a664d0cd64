"""The audit trail's hash chain: committed audit rows sealed, after the fact, each to the row before it.

`backend.services.audit.record` inserts rows unsealed (`seq`, `prev_hash`, `row_hash` NULL), so a
transaction that writes audit rows takes no lock beyond its own rows and writers never wait on each
other. The sealer (`run_sealer`: the periodic job every CARELOOP_AUDIT_SEAL_SECONDS, and the start of
`careloop audit verify` and of retention) locks the chain head row (`SELECT ... FOR UPDATE` on
PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), gives the committed unsealed rows the
next places in id order, their hashes, moves the head on and commits, one short transaction per batch.
Verification and retention live in backend/security/audit_verify.py.

The audit key can change (CARELOOP_AUDIT_KEY, the earlier ones in CARELOOP_AUDIT_KEYS_PREVIOUS): new MACs
and signatures always use the current key, and a MAC or signature made under an earlier key of the ring
still holds. The chain's row hashes are plain SHA-256, so sealed rows need no key to verify; what the key
covers is the rows not sealed yet, the head and the retention checkpoints. A row whose content changed
still fails under every key, so a tampered row is named as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64  # the previous hash of the chain's first row
HEAD_ID = 1
SEAL_BATCH = 1000  # rows per sealer transaction: the head is locked for one batch's update and commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditKeys:
    """The audit key that signs, and earlier ones whose signatures still hold."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def __iter__(self) -> Iterator[bytes]:
        yield self.current
        yield from self.previous


Keys = bytes | AuditKeys  # a bare key is a ring of one


def ring(keys: Keys) -> AuditKeys:
    return keys if isinstance(keys, AuditKeys) else AuditKeys(keys)


def signing_key(keys: Keys) -> bytes:
    return ring(keys).current


def signed_by_ring(keys: Keys, signature: str | None, expected: Callable[[bytes], str]) -> bool:
    """Whether `signature` is `expected(key)` for some key of the ring (compared in constant time)."""
    return signature is not None and any(hmac.compare_digest(signature, expected(key)) for key in ring(keys))


def canonical_detail(detail: Any) -> Any:
    """The detail as it reads back from the JSON column (tuples become lists, keys strings)."""
    return json.loads(json.dumps(detail if detail is not None else {}))


def _content(
    *,
    at: datetime,
    action: str,
    staff_id: int | None,
    patient_id: int | None,
    subject_type: str | None,
    subject_id: int | None,
    ip: str | None,
    detail: Any,
) -> dict[str, Any]:
    return {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "action": action,
        "staff_id": staff_id,
        "patient_id": patient_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "ip": ip,
        "detail": canonical_detail(detail),
    }


def _fixed_form(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def row_digest(*, seq: int, prev_hash: str, **content: Any) -> str:
    """SHA-256 over the row's content (`_content`'s fields), its place and the previous row's hash, in one
    fixed JSON form."""
    body = {"v": 1, "seq": seq, "prev": prev_hash, **_content(**content)}
    return hashlib.sha256(_fixed_form(body)).hexdigest()


def row_mac(key: bytes, **content: Any) -> str:
    """HMAC-SHA256 of the row's content (`_content`'s fields) under the audit key, written with the row. A
    row inserted by someone without the key (plain SQL in the seconds before the sealer comes) cannot
    carry a valid one, and the sealer leaves it out of the chain, where verification names it."""
    body = {"v": 1, "mac": "row", **_content(**content)}
    return hmac.new(key, _fixed_form(body), hashlib.sha256).hexdigest()


def _row_content(row: AuditEvent | sa.Row[Any]) -> dict[str, Any]:
    return {
        "at": row.at,
        "action": row.action,
        "staff_id": row.staff_id,
        "patient_id": row.patient_id,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "ip": row.ip,
        "detail": row.detail,
    }


def mac_of(key: bytes, row: AuditEvent | sa.Row[Any]) -> str:
    return row_mac(key, **_row_content(row))


def mac_holds(keys: Keys, row: AuditEvent | sa.Row[Any]) -> bool:
    """The row's MAC was made by a key of the ring (a row written just before the key changed seals)."""
    return signed_by_ring(keys, None if row.mac is None else str(row.mac), lambda key: mac_of(key, row))


def digest_of(row: AuditEvent | sa.Row[Any], *, seq: int, prev_hash: str) -> str:
    return row_digest(seq=seq, prev_hash=prev_hash, **_row_content(row))


def sign(key: bytes, *parts: object) -> str:
    """HMAC-SHA256 of the parts joined by NUL: the head and the checkpoints carry these."""
    message = "\x00".join(str(part) for part in parts).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_signature(key: bytes, seq: int, last_hash: str) -> str:
    return sign(key, "head", seq, last_hash)


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


def locked_head(session: Session, keys: Keys) -> AuditChainHead:
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
        "signature": head_signature(signing_key(keys), seq, last_hash),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(AuditChainHead).values(**values).on_conflict_do_nothing())
    head = session.scalars(query).first()
    assert head is not None  # inserted just now, or by a sealer that got there first
    return head


@dataclass(frozen=True)
class Batch:
    read: int  # unsealed rows looked at
    sealed: int  # of them, those whose MAC holds, now in the chain
    last_id: int  # the highest id looked at: the next batch starts after it


def seal_batch(session: Session, key: Keys, *, limit: int = SEAL_BATCH) -> int:
    """Seal up to `limit` committed, unsealed rows in id order under the head lock, in the caller's
    transaction; returns how many it sealed (see `seal_next`)."""
    return seal_next(session, key, limit=limit).sealed


def seal_next(session: Session, key: Keys, *, limit: int = SEAL_BATCH, after_id: int = 0) -> Batch:
    """Seal the next `limit` committed, unsealed rows after `after_id`, in id order, under the head lock,
    in the caller's transaction. A row whose MAC does not hold is looked at and left out (unsealed, for
    verification to name). A row with a lower id that commits after higher ones were sealed simply gets a
    later place: the chain's order is `seq`, not `id`."""
    head = locked_head(session, key)
    table = cast(sa.Table, AuditEvent.__table__)
    # read after the lock is held: a sealer that waited sees what the one before it sealed
    rows = session.execute(
        sa.select(table).where(table.c.seq.is_(None), table.c.id > after_id).order_by(table.c.id).limit(limit)
    ).all()
    if not rows:
        return Batch(0, 0, after_id)
    genuine = [row for row in rows if mac_holds(key, row)]
    if len(genuine) < len(rows):
        left_out = sorted({r.id for r in rows} - {r.id for r in genuine})
        log.warning("audit rows without a valid MAC left out of the chain: %s", left_out)
    seq, prev = head.seq, head.last_hash
    places = []
    for row in genuine:
        seq += 1
        digest = digest_of(row, seq=seq, prev_hash=prev)
        places.append({"row_id": row.id, "new_seq": seq, "new_prev": prev, "new_hash": digest})
        prev = digest
    if not places:
        return Batch(len(rows), 0, rows[-1].id)
    if session.get_bind().dialect.name == "postgresql":
        # one UPDATE ... FROM (VALUES ...) for the batch: a statement per row made sealing the slow part
        batch = sa.values(
            sa.column("row_id", sa.BigInteger),
            sa.column("new_seq", sa.BigInteger),
            sa.column("new_prev", sa.String),
            sa.column("new_hash", sa.String),
            name="batch",
        ).data([(p["row_id"], p["new_seq"], p["new_prev"], p["new_hash"]) for p in places])
        result = session.execute(
            sa.update(table)
            .where(table.c.id == batch.c.row_id, table.c.seq.is_(None))
            .values(seq=batch.c.new_seq, prev_hash=batch.c.new_prev, row_hash=batch.c.new_hash)
        )
        if result.rowcount != len(places):  # type: ignore[attr-defined]
            # the head must never move past a row left unsealed: the caller's transaction rolls back
            raise RuntimeError(f"sealed {result.rowcount} of {len(places)} audit rows")  # type: ignore[attr-defined]
    else:
        session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"), table.c.seq.is_(None))
            .values(
                seq=sa.bindparam("new_seq"),
                prev_hash=sa.bindparam("new_prev"),
                row_hash=sa.bindparam("new_hash"),
            ),
            places,
        )
    head.seq, head.last_hash, head.signature = seq, prev, head_signature(signing_key(key), seq, prev)
    return Batch(len(rows), len(places), rows[-1].id)


def run_sealer(*, limit: int = SEAL_BATCH) -> int:
    """Seal every committed, unsealed row, one short transaction per batch (the head is locked only for
    one batch's update and commit); returns how many. Run by the periodic job, and before verification
    and retention."""
    from backend.app.db import session_scope
    from backend.app.settings import get_settings

    key = get_settings().audit_keys
    total, after_id = 0, 0
    while True:
        with session_scope() as session:
            batch = seal_next(session, key, limit=limit, after_id=after_id)
        total += batch.sealed
        after_id = batch.last_id
        if batch.read < limit:
            return total

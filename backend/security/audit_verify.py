"""Checking the audit hash chain (`careloop audit verify`) and removing old segments of it (retention).

Verification walks the chain in order from the newest checkpoint (or its start), recomputing every row's
hash, and names the first row where it breaks: a row whose content changed, a row whose link to the
previous one does not match, rows missing before a row, or rows missing at the end (against the signed
head). Rows the sealer has not reached yet are reported as pending (how many, and the oldest's age), not
as a break; pending longer than CARELOOP_AUDIT_UNSEALED_WARN_MINUTES is a warning that the sealer is not
running. Retention removes whole segments from the start of the chain, only where
every row in the segment is older than the cutoff and the segment itself verifies, and leaves a
checkpoint signed with the audit key in their place.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AuditChainHead, AuditCheckpoint, AuditEvent
from backend.security.audit_chain import (
    GENESIS,
    Keys,
    digest_of,
    head_signature,
    locked_head,
    mac_holds,
    sign,
    signed_by_ring,
    signing_key,
)

WALK_BATCH = 2000
PRUNE_BATCH = 50_000  # rows cut per transaction: the sealer waits on the head while a segment is cut


class Backlog(NamedTuple):
    """Committed rows the sealer has not reached: how many, the oldest's age, and a warning when that age
    says the sealer is not running."""

    pending: int
    oldest_age: timedelta | None
    warning: str | None


def unsealed_backlog(
    session: Session, *, now: datetime | None = None, warn_after: timedelta | None = None
) -> Backlog:
    """How many committed rows wait for the sealer and since when (their `at`, set when they were
    written: a transaction that ran longer than `warn_after` before committing looks stale too)."""
    from backend.app.settings import get_settings
    from backend.models.base import utcnow

    pending, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(AuditEvent.at)).where(AuditEvent.seq.is_(None))
    ).one()
    if not pending or oldest is None:
        return Backlog(int(pending or 0), None, None)
    if warn_after is None:
        warn_after = timedelta(minutes=get_settings().audit_unsealed_warn_minutes)
    if oldest.tzinfo is None:  # SQLite hands back naive UTC from an aggregate
        oldest = oldest.replace(tzinfo=UTC)
    age = max((now or utcnow()) - oldest, timedelta(0))
    warning = None
    if age > warn_after:
        minutes = int(age.total_seconds() // 60)
        warning = (
            f"{pending} audit row(s) not sealed, the oldest written {minutes} min ago: "
            "is the sealer (the periodic jobs) running?"
        )
    return Backlog(int(pending), age, warning)


@dataclass(frozen=True)
class Verdict:
    """What verification found: `problem` is None when the chain holds; `row_id` names the first bad row.
    `pending` rows were committed but not yet sealed (not a break); `warning` says they waited too long."""

    checked: int
    problem: str | None = None
    row_id: int | None = None
    pending: int = 0
    oldest_pending_age: timedelta | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def checkpoint_signature(
    key: bytes, *, through_seq: int, through_hash: str, cutoff: datetime, removed: int, previous: str | None
) -> str:
    at = cutoff.astimezone(UTC).isoformat(timespec="microseconds")
    return sign(key, "checkpoint", through_seq, through_hash, at, removed, previous or "")


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a, b)


def _check_checkpoints(session: Session, keys: Keys) -> tuple[AuditCheckpoint | None, str | None]:
    """The newest checkpoint, after checking every checkpoint's signature (any key of the ring: a
    checkpoint keeps the key it was signed with) and their order."""
    previous: AuditCheckpoint | None = None
    for checkpoint in session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq)):

        def expected(key: bytes, checkpoint: AuditCheckpoint = checkpoint) -> str:
            return checkpoint_signature(
                key,
                through_seq=checkpoint.through_seq,
                through_hash=checkpoint.through_hash,
                cutoff=checkpoint.cutoff,
                removed=checkpoint.removed,
                previous=checkpoint.previous_signature,
            )

        if not signed_by_ring(keys, checkpoint.signature, expected):
            return None, f"retention checkpoint {checkpoint.id} is not signed with the audit key"
        if not _same(checkpoint.previous_signature or "", previous.signature if previous else ""):
            return None, f"retention checkpoint {checkpoint.id} does not follow the checkpoint before it"
        previous = checkpoint
    return previous, None


def verify_chain(
    session: Session, key: Keys, *, through: int | None = None, warn_after: timedelta | None = None
) -> Verdict:
    """Walk the chain (the whole of it, or its start up to place `through`); stop at the first break and
    name it. Unsealed rows are counted as pending, not walked (the sealer has not given them a place)."""
    checkpoint, problem = _check_checkpoints(session, key)
    if problem:
        return Verdict(0, problem)
    backlog = unsealed_backlog(session, warn_after=warn_after)
    verdict = _walk(session, key, checkpoint, through)
    if verdict.ok and through is None:
        verdict = _unsigned_waiting(session, key, verdict.checked) or verdict
    return Verdict(
        verdict.checked,
        verdict.problem,
        verdict.row_id,
        pending=backlog.pending,
        oldest_pending_age=backlog.oldest_age,
        warning=backlog.warning,
    )


def _unsigned_waiting(session: Session, key: Keys, checked: int) -> Verdict | None:
    """The first row waiting outside the chain whose MAC does not hold: written by someone without the
    audit key (plain SQL), so the sealer will never chain it."""
    table = AuditEvent.__table__
    after = 0
    while True:
        rows = session.execute(
            sa.select(table)
            .where(table.c.seq.is_(None), table.c.id > after)
            .order_by(table.c.id)
            .limit(WALK_BATCH)
        ).all()
        for row in rows:
            if not mac_holds(key, row):
                return Verdict(
                    checked,
                    f"audit row {row.id}: written without the audit key (not by CareLoop), left unsealed",
                    row.id,
                )
        if len(rows) < WALK_BATCH:
            return None
        after = rows[-1].id


def _walk(session: Session, key: Keys, checkpoint: AuditCheckpoint | None, through: int | None) -> Verdict:
    expect = checkpoint.through_seq + 1 if checkpoint else 1
    prev = checkpoint.through_hash if checkpoint else GENESIS
    checked = 0
    last_seq = expect - 1
    while True:
        # plain rows, not ORM objects: the walk leaves the caller's session as it found it
        table = AuditEvent.__table__
        query = sa.select(table).where(table.c.seq >= last_seq + 1)
        if through is not None:
            query = query.where(table.c.seq <= through)
        rows = session.execute(query.order_by(table.c.seq).limit(WALK_BATCH)).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expect:
                missing = row.seq - expect
                return Verdict(
                    checked,
                    f"audit row {row.id}: {missing} row(s) missing before it "
                    f"(chain places {expect}-{row.seq - 1})",
                    row.id,
                )
            if not _same(row.prev_hash, prev):
                return Verdict(
                    checked, f"audit row {row.id}: its link to the row before it does not match", row.id
                )
            if not _same(row.row_hash, digest_of(row, seq=row.seq, prev_hash=prev)):
                return Verdict(
                    checked, f"audit row {row.id}: its content was changed after it was written", row.id
                )
            prev = row.row_hash or ""
            expect += 1
            checked += 1
        last_seq = rows[-1].seq
    if through is not None:
        if expect - 1 < through:
            return Verdict(checked, f"chain places {expect}-{through} are missing")
        return Verdict(checked)
    head = session.get(AuditChainHead, 1)
    if head is None:
        if checked or checkpoint:
            return Verdict(checked, "the chain head row is missing: rows cut from the end would not show")
        return Verdict(checked)
    if not signed_by_ring(key, head.signature, lambda k: head_signature(k, head.seq, head.last_hash)):
        return Verdict(checked, "the chain head is not signed with the audit key")
    if head.seq != expect - 1 or not _same(head.last_hash, prev):
        return Verdict(
            checked,
            f"the chain's end does not match its signed head: it ends at place {expect - 1}, the head "
            f"says {head.seq} (rows cut from or added at the end)",
        )
    return Verdict(checked)


@dataclass(frozen=True)
class Pruned:
    removed: int
    through_seq: int | None = None
    refused: str | None = None


def do_prune_audit(session: Session, key: Keys, *, cutoff: datetime, limit: int = PRUNE_BATCH) -> Pruned:
    """Remove the chain's oldest segment: every row from its start up to the first row at or after
    `cutoff` (a row written later but sealed earlier keeps everything after it), at most `limit` rows;
    call again until it removes nothing. Refused, removing nothing, when that segment does not verify:
    removing a broken segment would erase the evidence."""
    head = locked_head(session, key)  # no row is sealed while the segment is checked and cut
    first_kept = session.scalar(
        sa.select(sa.func.min(AuditEvent.seq)).where(AuditEvent.seq.is_not(None), AuditEvent.at >= cutoff)
    )
    through = (first_kept - 1) if first_kept is not None else head.seq
    previous = session.scalars(
        sa.select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc()).limit(1)
    ).first()
    start = previous.through_seq if previous else 0
    through = min(through, start + limit)
    if through <= start:
        return Pruned(0)
    # only the segment to be cut is walked (the sealer waits on the head meanwhile), not the whole chain
    verdict = verify_chain(session, key, through=through)
    if not verdict.ok:
        return Pruned(0, refused=verdict.problem)
    through_hash = session.scalar(sa.select(AuditEvent.row_hash).where(AuditEvent.seq == through))
    if through_hash is None:
        return Pruned(0, refused=f"chain place {through} is missing")
    doomed = sa.select(sa.func.count()).where(AuditEvent.seq.is_not(None), AuditEvent.seq <= through)
    removed = session.scalar(doomed) or 0
    session.execute(sa.delete(AuditEvent).where(AuditEvent.seq.is_not(None), AuditEvent.seq <= through))
    previous_signature = previous.signature if previous else None
    session.add(
        AuditCheckpoint(
            cutoff=cutoff,
            through_seq=through,
            through_hash=through_hash,
            removed=removed,
            previous_signature=previous_signature,
            signature=checkpoint_signature(
                signing_key(key),
                through_seq=through,
                through_hash=through_hash,
                cutoff=cutoff,
                removed=removed,
                previous=previous_signature,
            ),
        )
    )
    return Pruned(removed, through)


def do_apply_audit_retention(
    session: Session, key: Keys, *, retention_days: int, now: datetime | None = None
) -> Pruned:
    """One step of retention as the periodic job and `careloop audit retention` run it (call again
    until nothing is removed): a segment past `retention_days` removed, and the removal itself audited
    (sealed into the chain after the checkpoint)."""
    from backend.models.base import utcnow
    from backend.services import audit

    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    pruned = do_prune_audit(session, key, cutoff=cutoff)
    if pruned.removed:
        audit.record(session, "audit.retention", removed=pruned.removed, through=pruned.through_seq)
    return pruned

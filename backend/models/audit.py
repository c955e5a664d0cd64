"""The audit trail: who did or saw what, when, from where. Rows are only ever added.

Each committed row is sealed into a hash chain by the sealer (backend/security/audit_chain.py) within
seconds: `seq` is its place in the chain, `prev_hash` the previous row's `row_hash`, and `row_hash`
covers both and the row's content. Retention removes whole segments from the start of the chain and
leaves a signed checkpoint in their place, so the chain still verifies from there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(sa.String(64), index=True)  # e.g. "staff.sign_in", "patient.view"
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"))
    subject_type: Mapped[str | None] = mapped_column(sa.String(32))
    subject_id: Mapped[int | None]
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # never message bodies or phones
    # NULL until the sealer reaches the committed row (seconds, while the periodic jobs run)
    seq: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    row_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # HMAC of the content under the audit key, written with the row; the sealer chains only rows whose MAC
    # holds (NULL on rows sealed before MACs were written: the chain vouches for those)
    mac: Mapped[str | None] = mapped_column(sa.String(64))


class AuditChainHead(Base):
    """One row (id 1): the newest sealed row's place and hash, signed. The sealer locks it to extend
    the chain one batch at a time; verification compares the chain's end with it, so rows cut from the
    end show."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.String(64))


class AuditCheckpoint(Base):
    """Left by retention where it removed the start of the chain: the last removed row's place and hash,
    signed with the audit key, and chained to the checkpoint before it."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    through_seq: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    through_hash: Mapped[str] = mapped_column(sa.String(64))
    removed: Mapped[int]
    previous_signature: Mapped[str | None] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.String(64))

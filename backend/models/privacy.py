"""A patient's data rights: correction and erasure requests with their second-person decision, the
tombstones erasures leave (to re-apply after a restore), and break-glass access outside her departments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, enum_column, utcnow


class RightsKind(StrEnum):
    CORRECTION = "correction"  # change identity facts the patient says are wrong
    ANONYMISATION = "anonymisation"  # remove identity and free texts, keep de-identified statistics
    ERASURE = "erasure"  # remove every personal value, leave a tombstone


class RightsState(StrEnum):
    PENDING = "pending"  # waiting for a second staff member
    BLOCKED = "blocked"  # a legal hold stood when it was asked; nothing was changed
    APPLIED = "applied"  # approved and carried out
    REJECTED = "rejected"


class RightsRequest(Base):
    __tablename__ = "rights_requests"
    __table_args__ = (sa.Index("ix_rights_requests_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RightsKind] = mapped_column(enum_column(RightsKind))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    state: Mapped[RightsState] = mapped_column(enum_column(RightsState), default=RightsState.PENDING)
    # why the patient asked (what staff typed): patient data, so encrypted like the identifiers
    reason: Mapped[str] = mapped_column(EncryptedText("rights_reason"))
    # a correction's new values, JSON {field: value}; encrypted, as they are identity facts
    changes: Mapped[str | None] = mapped_column(EncryptedText("rights_changes"))
    # the legal holds that blocked it, as codes (backend.privacy.holds.Hold)
    holds: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.String(500))


class ErasureTombstone(Base):
    """An erasure or anonymisation that was carried out: replayed after a restore from an older backup.
    It holds no personal data: the patient's id and the MRN's blind index, to be sure it is the same row."""

    __tablename__ = "erasure_tombstones"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(index=True)  # no foreign key: it must outlive what it names
    mrn_bidx: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[RightsKind] = mapped_column(enum_column(RightsKind))
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rights_requests.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BreakGlass(Base):
    """A staff member's time-limited access to one patient outside her departments, with her reason."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (
        sa.Index("ix_break_glass_staff_patient_expires", "staff_id", "patient_id", "expires_at"),
        sa.Index("ix_break_glass_reviewed_at", "reviewed_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(EncryptedText("break_glass_reason"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(sa.String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

"""Linking WeChat followers to patients: one-time SMS codes, bind attempts (throttling), department links."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class BindMethod(StrEnum):
    BIRTH_DATE = "birth_date"  # phone number plus date of birth
    SMS_CODE = "sms_code"  # a one-time code sent to the phone on the record


class BindOutcome(StrEnum):
    BOUND = "bound"
    FAILED = "failed"  # no single match, wrong or stale code: counts against the follower
    CODE_REQUESTED = "code_requested"  # whether or not a code was actually sent


class BindCode(Base):
    """A one-time code sent by SMS. Only a keyed hash is kept; it binds the follower who asked for it."""

    __tablename__ = "wechat_bind_codes"
    __table_args__ = (sa.Index("ix_wechat_bind_codes_openid_created", "openid_bidx", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid_bidx: Mapped[str] = mapped_column(sa.String(40))  # the follower who asked (blind index)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(100))  # "<salt hex>$<hmac hex>"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # too many wrong guesses
    outbox_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox.id"))


class BindAttempt(Base):
    """Every bind try per follower, so failures can be throttled without saying which phones exist."""

    __tablename__ = "wechat_bind_attempts"
    __table_args__ = (sa.Index("ix_wechat_bind_attempts_openid_at", "openid_bidx", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid_bidx: Mapped[str] = mapped_column(sa.String(40))
    method: Mapped[BindMethod] = mapped_column(enum_column(BindMethod))
    outcome: Mapped[BindOutcome] = mapped_column(enum_column(BindOutcome))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DepartmentLink(Base):
    """A follower scanned a department's QR code: that department follows the patient up.

    Recorded at scan time with only the follower's blind index when they are not bound yet; the
    patient is filled in when they bind (`linked_at`).
    """

    __tablename__ = "department_links"
    __table_args__ = (sa.Index("ix_department_links_department_patient", "department_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    openid_bidx: Mapped[str] = mapped_column(sa.String(40), index=True)
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    scene: Mapped[str] = mapped_column(sa.String(64))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

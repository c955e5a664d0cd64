"""Follow-up results written back to the hospital: one delivery per completed response and endpoint."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class DeliveryTarget(StrEnum):
    """Where a result goes: an HL7 ORU^R01 over MLLP, or a FHIR transaction POSTed to a base URL."""

    HL7 = "hl7"
    FHIR = "fhir"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (first try, or a retry after a transient failure)
    SENDING = "sending"  # claimed by a worker; a claim older than the send timeout is taken again
    DELIVERED = "delivered"  # AA / CA, or HTTP 2xx
    FAILED = "failed"  # AE/AR, HTTP 4xx, or out of attempts: a person decides (retry on the page)
    NOT_SENT = "not_sent"  # the patient's data was anonymised or erased before it went: never sent

    @property
    def retryable(self) -> bool:
        return self is DeliveryStatus.FAILED


class ResultDelivery(Base):
    """Written in the transaction that completes the response, so no completed result is forgotten."""

    __tablename__ = "result_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("response_id", "target", name="uq_result_deliveries_response_target"),
        sa.Index("ix_result_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("questionnaire_responses.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    target: Mapped[DeliveryTarget] = mapped_column(enum_column(DeliveryTarget))
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[str] = mapped_column(sa.String(16), default="")  # "AA", "AE", "201", "timeout"
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")  # the peer's reason, no patient data
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

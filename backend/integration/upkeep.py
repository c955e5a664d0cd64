"""Periodic upkeep of the HL7 message log: messages past the retention period are deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Hl7Message, Hl7Status
from backend.models.base import utcnow

PURGE_BATCH = 5000  # short transactions: the listener keeps writing meanwhile


def purge_hl7_messages(session: Session, retention_days: int, now: datetime | None = None) -> int:
    """Delete one batch of messages older than the retention period, except held ones a person has not
    yet reviewed. Returns how many; call again until 0. A resend older than this is applied anew."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    ids = session.scalars(
        sa.select(Hl7Message.id)
        .where(Hl7Message.received_at < cutoff, Hl7Message.status != Hl7Status.HELD)
        .order_by(Hl7Message.id)
        .limit(PURGE_BATCH)
    ).all()
    if ids:
        session.execute(sa.delete(Hl7Message).where(Hl7Message.id.in_(ids)))
    return len(ids)

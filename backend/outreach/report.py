"""What became of a batch, from the outbox and message rows: delivered, failed, suppressed (by reason),
still waiting, and the patients who replied or opted out after it started."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    ConsentEvent,
    Conversation,
    Direction,
    Message,
    OutboxItem,
    OutboxStatus,
    OutreachBatch,
)


@dataclass
class BatchReport:
    queued: int = 0
    waiting: int = 0  # pending or being sent (deferred by quiet hours or caps, or retrying)
    sent: int = 0  # accepted by the provider, no delivery report yet
    delivered: int = 0  # delivered or read
    failed: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    replied: int = 0
    opted_out: int = 0

    def bars(self) -> list[tuple[str, int]]:
        """(label key, value) for the chart, in the order a reader follows the batch."""
        return [
            ("delivered", self.delivered),
            ("sent", self.sent),
            ("waiting", self.waiting),
            ("failed", self.failed),
            ("suppressed", sum(self.suppressed.values())),
            ("replied", self.replied),
            ("opted_out", self.opted_out),
        ]


def batch_report(session: Session, batch: OutreachBatch) -> BatchReport:
    report = BatchReport()
    key = batch.outbox_key
    for status, reason, n in session.execute(
        sa.select(OutboxItem.status, OutboxItem.reason, sa.func.count())
        .where(OutboxItem.batch_id == key)
        .group_by(OutboxItem.status, OutboxItem.reason)
    ):
        report.queued += n
        if status in (OutboxStatus.DELIVERED, OutboxStatus.READ):
            report.delivered += n
        elif status is OutboxStatus.SENT:
            report.sent += n
        elif status is OutboxStatus.FAILED:
            report.failed += n
        elif status is OutboxStatus.SUPPRESSED:
            report.suppressed[reason or ""] += n
        else:
            report.waiting += n
    if batch.send_started_at is None:
        return report
    patients = sa.select(OutboxItem.patient_id).where(OutboxItem.batch_id == key)
    report.replied = int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(Conversation.patient_id)))
            .select_from(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.patient_id.in_(patients),
                Message.direction == Direction.INBOUND,
                Message.channel == batch.channel,
                Message.created_at >= batch.send_started_at,
            )
        )
        or 0
    )
    report.opted_out = int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(ConsentEvent.patient_id))).where(
                ConsentEvent.patient_id.in_(patients),
                ConsentEvent.granted.is_(False),
                ConsentEvent.channel == batch.channel,
                ConsentEvent.purpose == batch.purpose.consent,
                ConsentEvent.at >= batch.send_started_at,
            )
        )
        or 0
    )
    return report

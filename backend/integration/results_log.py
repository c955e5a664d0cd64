"""The result delivery log as staff see it: filtered pages and the CSV of what a filter shows. Queries only.

Rows carry no patient data beyond the patient's id (the response is linked, not copied), so the list
and its export show codes, states and the receiver's reasons.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import DeliveryStatus, DeliveryTarget, ResultDelivery


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    status: DeliveryStatus | None = None
    target: DeliveryTarget | None = None
    response_id: int | None = None


def list_deliveries(
    session: Session, f: DeliveryFilter, *, limit: int = 50, before_id: int | None = None
) -> list[ResultDelivery]:
    """Newest first; page on with `before_id` (the last id shown)."""
    query = sa.select(ResultDelivery).order_by(ResultDelivery.id.desc())
    if f.status is not None:
        query = query.where(ResultDelivery.status == f.status)
    if f.target is not None:
        query = query.where(ResultDelivery.target == f.target)
    if f.response_id is not None:
        query = query.where(ResultDelivery.response_id == f.response_id)
    if before_id is not None:
        query = query.where(ResultDelivery.id < before_id)
    return list(session.scalars(query.limit(limit)))


def status_counts(session: Session) -> dict[str, int]:
    """How many deliveries are in each state (the bar above the list)."""
    rows = session.execute(sa.select(ResultDelivery.status, sa.func.count()).group_by(ResultDelivery.status))
    found = {status.value: 0 for status in DeliveryStatus}
    found.update({status.value: int(count) for status, count in rows})
    return found


COLUMNS = ("id", "response", "patient", "target", "status", "attempts", "last_result", "last_error",
           "created_at", "next_attempt_at", "delivered_at")  # fmt: skip


def export_csv(rows: list[ResultDelivery]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [row.id, row.response_id, row.patient_id, row.target.value, row.status.value, row.attempts,
             row.last_result, row.last_error, row.created_at.isoformat(), row.next_attempt_at.isoformat(),
             row.delivered_at.isoformat() if row.delivered_at else ""]
        )  # fmt: skip
    return out.getvalue()

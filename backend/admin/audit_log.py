"""The audit-log viewer's query: events filtered by staff, patient, action and time, newest first, a
page at a time (keyset on time and id), and the same rows for an export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import AuditEvent, StaffUser
from backend.services.message_log import (
    PAGE_SIZE,
    Cursor,
    InvalidFilter,
    Page,
    Period,
    before,
    parse_id,
    parse_period,
    text_value,
)

FIELDS = ("start", "end", "staff", "patient", "action")
EXPORT_LIMIT = 50_000  # a month of a busy hospital's staff activity is well under this


@dataclass(frozen=True)
class AuditFilters:
    period: Period = field(default_factory=Period)
    staff_id: int | None = None
    patient_id: int | None = None
    action: str = ""  # an exact action, or a prefix ending in "." ("staff." for every staff action)

    def audit_detail(self) -> dict[str, Any]:
        return {
            "start": self.period.start.isoformat() if self.period.start else None,
            "end": self.period.end.isoformat() if self.period.end else None,
            "staff": self.staff_id,
            "patient": self.patient_id,
            "action": self.action or None,
        }


def parse_audit_filters(values: Mapping[str, str]) -> AuditFilters:
    action = text_value(values, "action")
    if action and not all(c.isalnum() or c in "._:-" for c in action):
        raise InvalidFilter("action")
    return AuditFilters(
        period=parse_period(values),
        staff_id=parse_id(values, "staff"),
        patient_id=parse_id(values, "patient"),
        action=action,
    )


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    staff_name: str | None


def _query(filters: AuditFilters) -> sa.Select[Any]:
    query: sa.Select[Any] = (
        sa.select(AuditEvent, StaffUser.display_name)  # type: ignore[assignment]
        .outerjoin(StaffUser, StaffUser.id == AuditEvent.staff_id)
        .where(*filters.period.where(AuditEvent.at))
    )
    if filters.staff_id is not None:
        query = query.where(AuditEvent.staff_id == filters.staff_id)
    if filters.patient_id is not None:
        query = query.where(AuditEvent.patient_id == filters.patient_id)
    if filters.action.endswith("."):
        query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    elif filters.action:
        query = query.where(AuditEvent.action == filters.action)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def audit_page(
    session: Session, filters: AuditFilters, after: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page[AuditRow]:
    query = _query(filters).where(*before(after, AuditEvent.at, AuditEvent.id))
    found = session.execute(query.limit(limit + 1)).all()
    rows = [AuditRow(row[0], row[1]) for row in found[:limit]]
    more = len(found) > limit
    return Page(rows, Cursor(rows[-1].event.at, rows[-1].event.id) if more else None)


def audit_rows(session: Session, filters: AuditFilters, limit: int = EXPORT_LIMIT) -> list[AuditRow]:
    return [AuditRow(row[0], row[1]) for row in session.execute(_query(filters).limit(limit))]


def actions(session: Session) -> list[str]:
    """The actions recorded so far, for the filter's choices."""
    return list(session.scalars(sa.select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def staff_choices(session: Session) -> list[StaffUser]:
    return list(session.scalars(sa.select(StaffUser).order_by(StaffUser.display_name)))

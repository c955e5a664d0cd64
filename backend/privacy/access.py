"""'Who viewed my record': staff access to one patient, read from the audit trail, for the record page
and its CSV export (formula-safe: a staff display name is typed text)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from backend.models import AuditEvent, StaffUser
from backend.security.permissions import Permission, may
from backend.services.spreadsheet import formula_safe

# the actions that show the record's contents to someone (the others change it or were refused)
VIEW_ACTIONS = (
    "patient.view",
    "media.view",
    "case.view",
    "case.attachment_view",
    "task.view",
    "spot_check.item_view",
    "spot_check.recording_play",
    "voice.recording_play",
    "privacy.export_download",
)
EXPORT_COLUMNS = ("at", "staff", "role", "action", "break_glass", "ip")


def may_see_report(user: StaffUser) -> bool:
    """Who may read the report: by default the privacy officer, admins and managers, who answer patients'
    requests."""
    return may(user, Permission.PRIVACY_REPORT)


@dataclass(frozen=True)
class AccessFilters:
    since: date | None = None
    until: date | None = None
    views_only: bool = False

    @classmethod
    def parse(cls, since: str, until: str, views_only: str) -> AccessFilters:
        """Raises ValueError naming the field that is not a date."""
        parsed: dict[str, date | None] = {}
        for name, raw in (("since", since), ("until", until)):
            try:
                parsed[name] = date.fromisoformat(raw) if raw else None
            except ValueError:
                raise ValueError(name) from None
        return cls(since=parsed["since"], until=parsed["until"], views_only=views_only in {"1", "on", "true"})


@dataclass(frozen=True)
class AccessRow:
    event: AuditEvent
    staff_name: str
    role: str


def access_rows(
    session: Session, patient_id: int, filters: AccessFilters, zone: ZoneInfo, limit: int = 500
) -> list[AccessRow]:
    query = (
        sa.select(AuditEvent, StaffUser)
        .join(StaffUser, StaffUser.id == AuditEvent.staff_id)
        .options(selectinload(StaffUser.role_grants))
        .where(AuditEvent.patient_id == patient_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if filters.views_only:
        query = query.where(AuditEvent.action.in_(VIEW_ACTIONS))
    # dates are the hospital's days
    if filters.since is not None:
        query = query.where(AuditEvent.at >= datetime.combine(filters.since, time(), zone))
    if filters.until is not None:
        query = query.where(AuditEvent.at < datetime.combine(filters.until + timedelta(days=1), time(), zone))
    return [
        AccessRow(event, user.display_name, ", ".join(user.role_list()))
        for event, user in session.execute(query)
    ]


def export_csv(rows: list[AccessRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        values = (
            row.event.at.isoformat(),
            row.staff_name,
            row.role,
            row.event.action,
            (row.event.detail or {}).get("break_glass", ""),
            row.event.ip or "",
        )
        writer.writerow([formula_safe(v) for v in values])
    return out.getvalue()

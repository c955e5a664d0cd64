"""What the data-rights pages show: the record's section (its requests, holds, exports and recent
access) and the queries of the privacy officer's lists with their CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import RightsKind, RightsRequest, RightsState, StaffUser, WorkJob
from backend.privacy.access import AccessFilters, access_rows, may_see_report
from backend.privacy.break_glass import GrantRow
from backend.privacy.export import KIND as EXPORT_KIND
from backend.privacy.holds import holds_on
from backend.privacy.requests import CORRECTABLE, RequestRow, may_decide
from backend.services.spreadsheet import formula_safe

RECENT_ACCESS = 10


def hospital_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().default_timezone)


def record_section(session: Session, *, patient_id: int, user: StaffUser, now: datetime) -> dict[str, Any]:
    settings = get_settings()
    requests = list(
        session.scalars(
            sa.select(RightsRequest)
            .where(RightsRequest.patient_id == patient_id)
            .order_by(RightsRequest.created_at.desc(), RightsRequest.id.desc())
            .limit(20)
        )
    )
    exports = list(
        session.scalars(
            sa.select(WorkJob)
            .where(WorkJob.kind == EXPORT_KIND, WorkJob.started_by_id == user.id)
            .order_by(WorkJob.id.desc())
            .limit(50)
        )
    )
    exports = [job for job in exports if (job.params or {}).get("patient_id") == patient_id][:5]
    holds = {
        kind.value: [
            h.value
            for h in holds_on(
                session, patient_id, kind, now=now, retention_years=settings.medical_record_retention_years
            )
        ]
        for kind in (RightsKind.ANONYMISATION, RightsKind.ERASURE)
    }
    report = may_see_report(user)
    return {
        "requests": requests,
        "exports": exports,
        "holds": holds,
        "correctable": CORRECTABLE,
        "kinds": [k.value for k in RightsKind],
        "decides": may_decide(user),
        "report": report,
        "access": access_rows(session, patient_id, AccessFilters(), hospital_zone(), limit=RECENT_ACCESS)
        if report
        else [],
    }


def parse_list_filters(state: str, kind: str) -> tuple[RightsState | None, RightsKind | None]:
    """Raises ValueError naming the filter that is not one of its values."""
    try:
        parsed_state = RightsState(state) if state else None
    except ValueError:
        raise ValueError("state") from None
    try:
        parsed_kind = RightsKind(kind) if kind else None
    except ValueError:
        raise ValueError("kind") from None
    return parsed_state, parsed_kind


REQUEST_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "state",
    "patient_id",
    "requested_by",
    "decided_by",
    "decided_at",
    "holds",
)


def requests_csv(rows: list[RequestRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REQUEST_COLUMNS)
    for row in rows:
        r = row.request
        values = (
            r.id,
            r.created_at.isoformat(),
            r.kind.value,
            r.state.value,
            r.patient_id,
            row.requested_by,
            row.decided_by,
            r.decided_at.isoformat() if r.decided_at else "",
            " ".join(r.holds),
        )
        writer.writerow([formula_safe(v) for v in values])
    return out.getvalue()


GRANT_COLUMNS = (
    "id",
    "created_at",
    "expires_at",
    "staff",
    "patient_id",
    "reason",
    "views",
    "reviewed_by",
    "reviewed_at",
)


def grants_csv(rows: list[GrantRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(GRANT_COLUMNS)
    for row in rows:
        g = row.grant
        values = (
            g.id,
            g.created_at.isoformat(),
            g.expires_at.isoformat(),
            row.staff_name,
            g.patient_id,
            g.reason,
            row.views,
            row.reviewer_name,
            g.reviewed_at.isoformat() if g.reviewed_at else "",
        )
        writer.writerow([formula_safe(v) for v in values])
    return out.getvalue()

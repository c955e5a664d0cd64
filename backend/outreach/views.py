"""What the outreach pages read: the filtered batch list and its CSV, one batch's page data, and the new
batch form turned into an audience."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.audiences.filters import Audience, InvalidAudience
from backend.models import (
    BatchPurpose,
    BatchState,
    FollowUpPlan,
    OutreachBatch,
    OutreachPreview,
    StaffUser,
    WorkJob,
)
from backend.security.permissions import Permission, may
from backend.services.spreadsheet import formula_safe
from bots.domain import Channel

CHANNELS = (Channel.SMS, Channel.WECHAT, Channel.WHATSAPP, Channel.EMAIL)
EXPORT_COLUMNS = ("id", "name", "purpose", "channel", "state", "recipients", "created_by", "created_at")


def may_manage(user: StaffUser) -> bool:
    """Outreach batches are for managers and administrators (unless the roles say otherwise)."""
    return may(user, Permission.OUTREACH)


@dataclass(frozen=True)
class BatchFilters:
    state: BatchState | None = None
    purpose: BatchPurpose | None = None
    channel: Channel | None = None

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> BatchFilters:
        """Raises InvalidAudience naming the field whose value is not one of its choices."""
        parsed: dict[str, Any] = {}
        for name, kind in (("state", BatchState), ("purpose", BatchPurpose), ("channel", Channel)):
            value = values.get(name, "")
            if value:
                try:
                    parsed[name] = kind(value)
                except ValueError:
                    raise InvalidAudience(name) from None
        return cls(**parsed)


def batches(session: Session, filters: BatchFilters, limit: int = 200) -> list[OutreachBatch]:
    query = sa.select(OutreachBatch).order_by(OutreachBatch.id.desc()).limit(limit)
    if filters.state:
        query = query.where(OutreachBatch.state == filters.state)
    if filters.purpose:
        query = query.where(OutreachBatch.purpose == filters.purpose)
    if filters.channel:
        query = query.where(OutreachBatch.channel == filters.channel)
    return list(session.scalars(query))


def staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids)))
    return {staff_id: name for staff_id, name in rows}


def export_csv(rows: list[OutreachBatch], names: dict[int, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for batch in rows:
        recipients = "segment" if batch.audience is not None else len(batch.listed_patient_ids or [])
        writer.writerow(
            [
                formula_safe(value)
                for value in (
                    batch.id,
                    batch.name,
                    batch.purpose.value,
                    batch.channel.value,
                    batch.state.value,
                    recipients,
                    names.get(batch.created_by_id, ""),
                    batch.created_at.isoformat(),
                )
            ]
        )
    return out.getvalue()


def latest_preview(session: Session, batch_id: int, staff_id: int) -> OutreachPreview | None:
    """The viewer's own latest preview of the batch: the one her send or approval names."""
    return session.scalars(
        sa.select(OutreachPreview)
        .where(OutreachPreview.batch_id == batch_id, OutreachPreview.staff_id == staff_id)
        .order_by(OutreachPreview.id.desc())
        .limit(1)
    ).first()


def active_plans(session: Session) -> list[FollowUpPlan]:
    return list(
        session.scalars(
            sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.name)
        )
    )


def job_of(session: Session, batch: OutreachBatch) -> WorkJob | None:
    return session.get(WorkJob, batch.job_id) if batch.job_id else None


def audience_from_form(values: Mapping[str, str]) -> Audience:
    """The segment fields of the new batch form; raises InvalidAudience naming a field it cannot use."""

    def listed(name: str) -> list[str]:
        return [part.strip() for part in values.get(name, "").replace("，", ",").split(",") if part.strip()]

    data: dict[str, Any] = {
        "department_ids": listed("department"),
        "encounter_kinds": listed("encounter_kind"),
        "anchor": values.get("anchor") or "discharge",
        "date_from": values.get("date_from", ""),
        "date_to": values.get("date_to", ""),
        "diagnosis_prefixes": listed("diagnosis_prefixes"),
        "age_min": values.get("age_min", "").strip(),
        "age_max": values.get("age_max", "").strip(),
        "languages": listed("language"),
    }
    return Audience.from_json(data)

"""Break-glass: a staff member opens one record outside her departments after giving a reason. The
access lasts `break_glass_minutes`, every view in it is audited as usual (naming the grant), and an
admin (the privacy officer) reviews each grant afterwards. Lists and searches stay scoped: a grant
opens one record (and its parts: calls, media, case reports), never a department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import BreakGlass, Patient, StaffUser
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason

MAX_REASON = 500
MIN_REASON = 10  # "emergency" alone says nothing a reviewer can check


def active_grant(session: Session, staff_id: int, patient_id: int, now: datetime) -> int | None:
    """The id of her unexpired grant for this patient, if any."""
    return session.scalar(
        sa.select(BreakGlass.id)
        .where(
            BreakGlass.staff_id == staff_id,
            BreakGlass.patient_id == patient_id,
            BreakGlass.expires_at > now,
        )
        .order_by(BreakGlass.expires_at.desc())
        .limit(1)
    )


def do_break_glass(
    session: Session,
    *,
    user: StaffUser,
    patient: Patient,
    reason: str,
    now: datetime,
    in_scope: bool,
    ip: str | None = None,
) -> BreakGlass:
    """A grant for `user` on `patient`, audited with her reason. Refused without a real reason, and for
    a record her departments already open (`in_scope`): break-glass is not a way to leave a trace-free
    path, nor to pad the review list."""
    text = " ".join(reason.split())
    if len(text) < MIN_REASON:
        raise ActionRefused(Reason.REASON_REQUIRED)
    if len(text) > MAX_REASON:
        raise ActionRefused(Reason.REASON_LENGTH)
    if in_scope:
        raise ActionRefused(Reason.NOT_NEEDED)
    minutes = get_settings().break_glass_minutes
    grant = BreakGlass(
        staff_id=user.id,
        patient_id=patient.id,
        reason=text,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
        detail={"minutes": minutes},
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        "patient.break_glass",
        staff_id=user.id,
        patient_id=patient.id,
        subject=("break_glass", grant.id),
        ip=ip,
        reason=text,
        minutes=minutes,
    )
    return grant


def may_review(user: StaffUser) -> bool:
    return may(user, Permission.PRIVACY_DECIDE)


def do_review(
    session: Session, *, grant: BreakGlass, user: StaffUser, note: str, now: datetime, ip: str | None = None
) -> None:
    """Mark a grant reviewed (an admin, not the one who broke the glass)."""
    if not may_review(user):
        raise ActionRefused(Reason.NOT_A_PRIVACY_OFFICER)
    if grant.staff_id == user.id:
        raise ActionRefused(Reason.OWN_REQUEST)
    if grant.reviewed_at is not None:
        raise ActionRefused(Reason.NOT_PENDING)
    text = note.strip()
    if len(text) > 500:
        raise ActionRefused(Reason.NOTE_LENGTH)
    grant.reviewed_by_id, grant.reviewed_at, grant.review_note = user.id, now, text or None
    audit.record(
        session,
        "break_glass.reviewed",
        staff_id=user.id,
        patient_id=grant.patient_id,
        subject=("break_glass", grant.id),
        ip=ip,
    )


@dataclass(frozen=True)
class GrantRow:
    grant: BreakGlass
    staff_name: str
    patient_name: str
    reviewer_name: str
    views: int  # record views audited under this grant


def grant_rows(session: Session, *, pending_only: bool, limit: int = 500) -> list[GrantRow]:
    from backend.models import AuditEvent

    reviewer = sa.orm.aliased(StaffUser)
    query = (
        sa.select(BreakGlass, StaffUser.display_name, Patient.name, reviewer.display_name)
        .join(StaffUser, StaffUser.id == BreakGlass.staff_id)
        .join(Patient, Patient.id == BreakGlass.patient_id)
        .outerjoin(reviewer, reviewer.id == BreakGlass.reviewed_by_id)
        .order_by(BreakGlass.created_at.desc(), BreakGlass.id.desc())
        .limit(limit)
    )
    if pending_only:
        query = query.where(BreakGlass.reviewed_at.is_(None))
    found = list(session.execute(query))
    ids = [g.id for g, *_ in found]
    views: dict[int, int] = {}
    if ids:
        grant_id = AuditEvent.detail["break_glass"].as_integer()
        for gid, n in session.execute(
            sa.select(grant_id, sa.func.count())
            .where(AuditEvent.action == "patient.view", grant_id.in_(ids))
            .group_by(grant_id)
        ):
            views[int(gid)] = int(n)
    return [GrantRow(g, s or "", p or "", r or "", views.get(g.id, 0)) for g, s, p, r in found]

"""The clinical review of an authored item: whether it is clinical, who reviews it by when, and what it
rests on. Only an approver changes it (see do_set_review)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.revisions import MAX_NOTE, approves_clinical, may_edit
from backend.models import ContentItem, StaffUser
from backend.security.permissions import Permission, holders
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason


def do_set_review(
    session: Session,
    item: ContentItem,
    user: StaffUser,
    *,
    clinical: bool,
    review_owner_id: int | None,
    review_due: date | None,
    sources: str,
) -> ContentItem:
    """Whether an item is clinical, who reviews it by when, and what it rests on. Only an approver
    changes this: unflagging clinical content would let a single editor publish it."""
    if not may_edit(user) or not approves_clinical(user):
        raise ActionRefused(Reason.NOT_AN_APPROVER)
    if review_owner_id is not None:
        owner = session.get(StaffUser, review_owner_id)
        if owner is None or not may_edit(owner):
            raise ActionRefused(Reason.NOT_AN_EDITOR)
    if len(sources) > MAX_NOTE:
        raise ActionRefused(Reason.REJECT_NOTE)
    item.clinical, item.review_owner_id, item.review_due = clinical, review_owner_id, review_due
    item.sources = sources.strip() or None
    session.flush()
    audit.record(
        session,
        "content.review_set",
        staff_id=user.id,
        subject=("content_item", item.id),
        kind=item.kind,
        key=item.key,
        clinical=clinical,
        review_owner=review_owner_id,
        review_due=review_due.isoformat() if review_due else None,
    )
    return item


def editors(session: Session) -> list[StaffUser]:
    """Who may own a review."""
    query = sa.select(StaffUser).where(StaffUser.active.is_(True), holders(Permission.CONTENT_EDIT))
    return list(session.scalars(query.order_by(StaffUser.display_name)))

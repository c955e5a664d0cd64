"""Reading what the studio has published for a kind and key, for the parts that serve it to patients and
staff (one indexed read), with the files' content as the fallback before the studio holds the item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import ContentItem, ContentRevision


def published_body(
    session: Session, kind: str, key: str, files: Callable[[], dict[str, Any]]
) -> tuple[int | None, dict[str, Any] | None]:
    """(revision number, body) of the item's published revision; the files' body (`files()`, number None)
    while the studio has never published the item (none yet, or only a first draft: opening the editor
    must not silence the files); (None, None) once it was retired: the files no longer speak for it."""
    row = session.execute(
        sa.select(ContentItem.published_number, ContentRevision.body, ContentItem.id)
        .outerjoin(
            ContentRevision,
            sa.and_(
                ContentRevision.item_id == ContentItem.id,
                ContentRevision.number == ContentItem.published_number,
            ),
        )
        .where(ContentItem.kind == kind, ContentItem.key == key)
    ).first()
    if row is None:
        return None, files()
    number, body, item_id = row
    if number is not None and isinstance(body, dict):
        return number, dict(body)
    return (None, None) if ever_published(session, item_id) else (None, files())


def ever_published(session: Session, item_id: int) -> bool:
    """Whether a revision of the item was published once (a retired item was)."""
    query = sa.select(ContentRevision.id).where(
        ContentRevision.item_id == item_id, ContentRevision.published_at.is_not(None)
    )
    return session.scalar(query.limit(1)) is not None


def published_keys(session: Session, kind: str) -> list[str]:
    """The keys of the kind's items that have a published revision."""
    query = sa.select(ContentItem.key).where(
        ContentItem.kind == kind, ContentItem.published_number.is_not(None)
    )
    return list(session.scalars(query.order_by(ContentItem.key)))

"""Authored content under revision: one item per kind and key, its numbered revisions and their states."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class RevisionState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"  # approved, waiting for its scheduled publish time
    PUBLISHED = "published"  # the one revision in use; immutable from here on
    SUPERSEDED = "superseded"  # was published; a later revision replaced it
    RETIRED = "retired"  # withdrawn: the item has no published revision


class ContentItem(Base):
    """One authored thing (a message catalogue, a flow, a questionnaire …) whatever its revisions."""

    __tablename__ = "content_items"
    __table_args__ = (sa.UniqueConstraint("kind", "key", name="uq_content_items_kind_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))  # a registered kind (backend/content/kinds.py)
    key: Mapped[str] = mapped_column(sa.String(128))
    # The published revision's number, so the bot's lookup is one row by its unique key.
    published_number: Mapped[int | None]
    clinical: Mapped[bool] = mapped_column(default=False)
    review_owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    review_due: Mapped[date | None] = mapped_column(sa.Date)
    sources: Mapped[str | None] = mapped_column(sa.Text)  # references a clinical text rests on
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContentRevision(Base):
    __tablename__ = "content_revisions"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "number", name="uq_content_revisions_item_number"),
        sa.Index("ix_content_revisions_state_publish_at", "state", "publish_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("content_items.id"), index=True)
    number: Mapped[int]
    state: Mapped[RevisionState] = mapped_column(enum_column(RevisionState), default=RevisionState.DRAFT)
    body: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    based_on: Mapped[int | None]  # the number of the revision this one was edited from
    # Optimistic concurrency: each save of a draft names the version it edited; a stale one is refused.
    version: Mapped[int] = mapped_column(default=1)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    approver_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    changelog: Mapped[str] = mapped_column(sa.Text, default="")
    note: Mapped[str] = mapped_column(sa.Text, default="")  # the reviewer's note when sent back
    source: Mapped[str] = mapped_column(sa.String(32), default="studio")  # studio, files, import, rollback
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a scheduled publish
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

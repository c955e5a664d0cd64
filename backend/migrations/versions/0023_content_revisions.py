"""Content studio: authored items and their revisions, the approver grant on staff, and the text revision a
conversation is pinned to

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("draft", "in_review", "approved", "published", "superseded", "retired")


def upgrade() -> None:
    op.create_table(
        "content_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("published_number", sa.Integer(), nullable=True),
        sa.Column("clinical", sa.Boolean(), nullable=False),
        sa.Column("review_owner_id", sa.Integer(), nullable=True),
        sa.Column("review_due", sa.Date(), nullable=True),
        sa.Column("sources", sa.Text(), nullable=True),
        sa.Column("created_at", backend.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_owner_id"], ["staff_users.id"], name=op.f("fk_content_items_review_owner_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
        sa.UniqueConstraint("kind", "key", name="uq_content_items_kind_key"),
    )
    op.create_table(
        "content_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="revisionstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("approver_id", sa.Integer(), nullable=True),
        sa.Column("changelog", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("publish_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["content_items.id"], name=op.f("fk_content_revisions_item_id_content_items")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff_users.id"], name=op.f("fk_content_revisions_author_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["approver_id"], ["staff_users.id"], name=op.f("fk_content_revisions_approver_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_revisions")),
        sa.UniqueConstraint("item_id", "number", name="uq_content_revisions_item_number"),
    )
    with op.batch_alter_table("content_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_revisions_item_id"), ["item_id"], unique=False)
        batch_op.create_index("ix_content_revisions_state_publish_at", ["state", "publish_at"], unique=False)
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_approver", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("texts_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("texts_revision")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("content_approver")
    with op.batch_alter_table("content_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_content_revisions_state_publish_at")
        batch_op.drop_index(batch_op.f("ix_content_revisions_item_id"))
    op.drop_table("content_revisions")
    op.drop_table("content_items")

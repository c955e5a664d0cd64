"""Outreach batches scheduled for a later time: the time they start sending.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outreach_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_for", backend.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outreach_batches", schema=None) as batch_op:
        batch_op.drop_column("scheduled_for")

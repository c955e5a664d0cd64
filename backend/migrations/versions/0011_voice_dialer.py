"""voice dialer: when a queued call may be dialled, when it was, and why it was not

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("voice_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dial_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("skip_reason", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_voice_calls_placed_at", ["placed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("voice_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_calls_placed_at")
        batch_op.drop_column("skip_reason")
        batch_op.drop_column("placed_at")
        batch_op.drop_column("dial_after")

"""clinicians.names: a doctor's or nurse's name per language ({"zh-CN": "王丽", "en": "Dr Wang Li"}), as
departments and sites already have, so a patient never meets a name in another script than her own

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.drop_column("names")

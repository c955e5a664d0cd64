"""Patients' email addresses: encrypted, blind-indexed, and a flag a hard bounce sets.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("email", sa.Text(), nullable=True))
        batch.add_column(sa.Column("email_bidx", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("email_bounced", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_patients_email_bidx", ["email_bidx"])


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_index("ix_patients_email_bidx")
        batch.drop_column("email_bounced")
        batch.drop_column("email_bidx")
        batch.drop_column("email")

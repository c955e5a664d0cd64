"""Read-only HIS sources pulled on a schedule, and staff accounts' work email (from the staff import).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07 20:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("email", backend.models.base.EncryptedText("staff_email"), nullable=True))
    op.create_table(
        "his_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", backend.models.base.EncryptedText("his_source_url"), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("watermark_column", sa.String(length=100), nullable=False),
        sa.Column("watermark", sa.String(length=40), nullable=True),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("auto_apply", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_run_at", backend.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_job_id", sa.Integer(), nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["last_job_id"], ["work_jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["updated_by"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("his_sources")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("email")

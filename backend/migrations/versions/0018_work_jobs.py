"""work_jobs: long work staff start and watch (imports, batch sends, reports), with progress, counts,
errors and a resume point

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 11:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                "cancelled",
                name="workstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["staff_users.id"], name=op.f("fk_work_jobs_started_by_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_jobs")),
    )
    op.create_index(op.f("ix_work_jobs_kind"), "work_jobs", ["kind"], unique=False)
    op.create_index(op.f("ix_work_jobs_state"), "work_jobs", ["state"], unique=False)
    op.create_index(op.f("ix_work_jobs_started_by_id"), "work_jobs", ["started_by_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_work_jobs_started_by_id"), table_name="work_jobs")
    op.drop_index(op.f("ix_work_jobs_state"), table_name="work_jobs")
    op.drop_index(op.f("ix_work_jobs_kind"), table_name="work_jobs")
    op.drop_table("work_jobs")

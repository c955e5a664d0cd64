"""task_mentions: colleagues @mentioned in a task's notes, with whether they have read it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 11:15:00

A mention lets the colleague open that one task (even in another department) and lists it under
"mentioned me" and on her home page until she opens the task.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_mentions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_task_mentions_task_id_tasks")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["task_events.id"], name=op.f("fk_task_mentions_event_id_task_events")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_task_mentions_staff_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["by_id"], ["staff_users.id"], name=op.f("fk_task_mentions_by_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_mentions")),
        sa.UniqueConstraint("event_id", "staff_id", name=op.f("uq_task_mentions_event_id_staff_id")),
    )
    op.create_index("ix_task_mentions_staff_task", "task_mentions", ["staff_id", "task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_mentions_staff_task", table_name="task_mentions")
    op.drop_table("task_mentions")

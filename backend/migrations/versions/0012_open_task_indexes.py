"""partial indexes on open tasks for the inbox's most-urgent-first lists

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 10:20:00

bench/inbox.py: with 100,000 open tasks the service centre's first inbox page sorted every open task
(a parallel hash join and top-N sort, ~300 ms); these let it read the first 50 in due order, and count
the open tasks per queue (polled by every open inbox twice a second) from an index alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_CLOSED = "status <> 'closed'"


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_open_due",
            ["due_at", "id"],
            unique=False,
            postgresql_where=sa.text(NOT_CLOSED),
            sqlite_where=sa.text(NOT_CLOSED),
        )
        batch_op.create_index(
            "ix_tasks_open_kind_department",
            ["kind", "department_id"],
            unique=False,
            postgresql_where=sa.text(NOT_CLOSED),
            sqlite_where=sa.text(NOT_CLOSED),
        )
        batch_op.create_index(
            "ix_tasks_open_department_due",
            ["department_id", "due_at", "id"],
            unique=False,
            postgresql_where=sa.text(NOT_CLOSED),
            sqlite_where=sa.text(NOT_CLOSED),
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_open_department_due")
        batch_op.drop_index("ix_tasks_open_kind_department")
        batch_op.drop_index("ix_tasks_open_due")

"""Follow-up plans authored in the studio: the studio item a plan row materialises and the revision it is
at, age and visit-count criteria, and the plan revision each outreach task was created by.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("follow_up_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("age_min", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("age_max", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("min_visits", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_follow_up_plans_content_key", ["content_key"])
    with op.batch_alter_table("outreach_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outreach_tasks", schema=None) as batch_op:
        batch_op.drop_column("plan_revision")
    with op.batch_alter_table("follow_up_plans", schema=None) as batch_op:
        batch_op.drop_constraint("uq_follow_up_plans_content_key", type_="unique")
        batch_op.drop_column("min_visits")
        batch_op.drop_column("age_max")
        batch_op.drop_column("age_min")
        batch_op.drop_column("revision")
        batch_op.drop_column("content_key")

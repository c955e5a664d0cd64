"""Response times per task kind: the hospital's and each department's minutes for a kind and a priority
(a complaint 48 hours, a callback 4), consulted before the per-priority tables.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KIND = sa.Enum(
    "handoff",
    "abnormal_answer",
    "complaint",
    "callback",
    "loss_to_follow_up",
    "integration",
    name="taskkind",
    native_enum=False,
    length=32,
)
_PRIORITY = sa.Enum(
    "emergency", "urgent", "high", "normal", "low", name="taskpriority", native_enum=False, length=32
)


def upgrade() -> None:
    op.create_table(
        "sla_kind_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("kind", _KIND, nullable=False),
        sa.Column("priority", _PRIORITY, nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_sla_kind_policies_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_kind_policies")),
        sa.UniqueConstraint(
            "scope", "kind", "priority", name=op.f("uq_sla_kind_policies_scope_kind_priority")
        ),
    )


def downgrade() -> None:
    op.drop_table("sla_kind_policies")

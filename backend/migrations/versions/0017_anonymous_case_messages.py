"""messages.case_id: the feedback case a message belongs to (its outcome notice, or the chat message that
carried an anonymous complaint), so views can keep an anonymous case's messages from the departments

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_case_id_feedback_cases"), "feedback_cases", ["case_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_case_id_feedback_cases"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_messages_case_id"))
        batch_op.drop_column("case_id")

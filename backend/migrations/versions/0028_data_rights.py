"""A patient's data rights: correction/anonymisation/erasure requests, erasure tombstones, break-glass grants.

Revision ID: 0028
Revises: 0025
Create Date: 2026-12-07 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = sa.Enum("correction", "anonymisation", "erasure", name="rightskind", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", KINDS, nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "blocked", "applied", "rejected", name="rightsstate", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("holds", sa.JSON(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.ForeignKeyConstraint(["requested_by_id"], ["staff_users.id"]),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rights_requests_patient_id", "rights_requests", ["patient_id"])
    op.create_index("ix_rights_requests_state_created", "rights_requests", ["state", "created_at"])
    op.create_table(
        "erasure_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("mrn_bidx", sa.String(length=40), nullable=False),
        sa.Column("kind", KINDS, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["rights_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasure_tombstones_patient_id", "erasure_tombstones", ["patient_id"])
    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_break_glass_grants_patient_id", "break_glass_grants", ["patient_id"])
    op.create_index(
        "ix_break_glass_staff_patient_expires", "break_glass_grants", ["staff_id", "patient_id", "expires_at"]
    )
    op.create_index("ix_break_glass_reviewed_at", "break_glass_grants", ["reviewed_at", "created_at"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.drop_table("break_glass_grants")
    op.drop_table("erasure_tombstones")
    op.drop_table("rights_requests")

"""Follow-up results written back to the hospital: a delivery row per completed response and endpoint.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "result_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "target",
            sa.Enum("hl7", "fhir", name="deliverytarget", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "delivered",
                "failed",
                "not_sent",
                name="deliverystatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("claimed_at", backend.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_result", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", backend.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.ForeignKeyConstraint(["response_id"], ["questionnaire_responses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("response_id", "target", name="uq_result_deliveries_response_target"),
    )
    op.create_index("ix_result_deliveries_due", "result_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_result_deliveries_response_id", "result_deliveries", ["response_id"])
    op.create_index("ix_result_deliveries_patient_id", "result_deliveries", ["patient_id"])


def downgrade() -> None:
    op.drop_table("result_deliveries")

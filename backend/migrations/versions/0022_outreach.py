"""outreach batches and their previews; indexes for audiences (dates, diagnosis prefix, age, consent);
one outbox item per batch and patient

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("webchat", "wechat", "sms", "whatsapp", "voice")


def upgrade() -> None:
    op.create_table(
        "outreach_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "care",
                "education",
                "research",
                "marketing",
                name="batchpurpose",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel", sa.Enum(*CHANNELS, name="channel", native_enum=False, length=32), nullable=False
        ),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=True),
        sa.Column("listed_patient_ids", sa.JSON(), nullable=True),
        sa.Column("unmatched_rows", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("draft", "sending", "sent", "cancelled", name="batchstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_preview_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("send_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by_id"],
            ["staff_users.id"],
            name=op.f("fk_outreach_batches_approved_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_users.id"], name=op.f("fk_outreach_batches_created_by_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["work_jobs.id"], name=op.f("fk_outreach_batches_job_id_work_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_batches")),
    )
    op.create_index(op.f("ix_outreach_batches_state"), "outreach_batches", ["state"], unique=False)
    op.create_table(
        "outreach_previews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("counts_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["outreach_batches.id"], name=op.f("fk_outreach_previews_batch_id_outreach_batches")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_outreach_previews_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_previews")),
    )
    op.create_index(op.f("ix_outreach_previews_batch_id"), "outreach_previews", ["batch_id"], unique=False)
    op.create_index("uq_outbox_batch_patient", "outbox", ["batch_id", "patient_id"], unique=True)
    op.create_index(
        "ix_consent_events_purpose_channel",
        "consent_events",
        ["purpose", "channel", "patient_id", "id"],
        unique=False,
    )
    op.create_index("ix_encounters_ended_at", "encounters", ["ended_at"], unique=False)
    op.create_index("ix_encounters_started_at", "encounters", ["started_at"], unique=False)
    op.create_index(
        "ix_encounters_primary_diagnosis",
        "encounters",
        ["primary_diagnosis"],
        unique=False,
        postgresql_ops={"primary_diagnosis": "varchar_pattern_ops"},
    )
    op.create_index(op.f("ix_patients_birth_date"), "patients", ["birth_date"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_patients_birth_date"), table_name="patients")
    op.drop_index("ix_encounters_primary_diagnosis", table_name="encounters")
    op.drop_index("ix_encounters_started_at", table_name="encounters")
    op.drop_index("ix_encounters_ended_at", table_name="encounters")
    op.drop_index("ix_consent_events_purpose_channel", table_name="consent_events")
    op.drop_index("uq_outbox_batch_patient", table_name="outbox")
    op.drop_index(op.f("ix_outreach_previews_batch_id"), table_name="outreach_previews")
    op.drop_table("outreach_previews")
    op.drop_index(op.f("ix_outreach_batches_state"), table_name="outreach_batches")
    op.drop_table("outreach_batches")

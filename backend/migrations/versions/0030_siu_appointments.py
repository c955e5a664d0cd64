"""Appointments booked in the hospital's own system (HL7 SIU): their hospital ids, and the paused
per-facility schedules whose slots hold them.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(length=180), nullable=False),
        sa.Column("filler_id", sa.String(length=64), nullable=False),
        sa.Column("placer_id", sa.String(length=64), nullable=True),
        sa.Column("mapping_source", sa.String(length=180), nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=True),
        sa.Column("doctor_code", sa.String(length=64), nullable=True),
        sa.Column("site_code", sa.String(length=64), nullable=True),
        sa.Column("service_code", sa.String(length=64), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("last_event", sa.String(length=8), nullable=True),
        sa.Column("updated_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_identifiers_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_identifiers")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_appointment_identifiers_appointment_id")),
        sa.UniqueConstraint("authority", "filler_id", name="uq_appointment_identifiers_key"),
    )
    with op.batch_alter_table("doctor_schedules") as batch:
        batch.add_column(sa.Column("external_source", sa.String(length=180), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("doctor_schedules") as batch:
        batch.drop_column("external_source")
    op.drop_table("appointment_identifiers")

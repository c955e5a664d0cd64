"""Campuses as admin data (voice and SMS per site), working calendars per site, schedule exceptions,
withdrawn slots, and when a patient was told of a schedule change.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("voice_departments", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("voice_windows", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("voice_caller_id", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("sms_sender_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("updated_at", backend.models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table("sites") as batch:
        batch.alter_column("active", server_default=None)
    with op.batch_alter_table("slots") as batch:
        batch.add_column(sa.Column("withdrawn_at", backend.models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("change_notice_at", backend.models.base.UTCDateTime(), nullable=True))
    op.create_table(
        "site_calendar_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("holiday", "workday", name="calendardaykind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("as_weekday", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_site_calendar_days_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_calendar_days")),
        sa.UniqueConstraint("site_id", "day", name=op.f("uq_site_calendar_days_site_id_day")),
    )
    op.create_index(op.f("ix_site_calendar_days_site_id"), "site_calendar_days", ["site_id"])
    op.create_table(
        "schedule_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("leave", "closed", name="scheduleexceptionkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["doctor_schedules.id"],
            name=op.f("fk_schedule_exceptions_schedule_id_doctor_schedules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_exceptions")),
    )
    op.create_index(op.f("ix_schedule_exceptions_schedule_id"), "schedule_exceptions", ["schedule_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_schedule_exceptions_schedule_id"), table_name="schedule_exceptions")
    op.drop_table("schedule_exceptions")
    op.drop_index(op.f("ix_site_calendar_days_site_id"), table_name="site_calendar_days")
    op.drop_table("site_calendar_days")
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("change_notice_at")
    with op.batch_alter_table("slots") as batch:
        batch.drop_column("withdrawn_at")
    with op.batch_alter_table("sites") as batch:
        for column in (
            "updated_at",
            "sms_sender_id",
            "voice_caller_id",
            "voice_windows",
            "voice_departments",
        ):
            batch.drop_column(column)
        batch.drop_column("active")

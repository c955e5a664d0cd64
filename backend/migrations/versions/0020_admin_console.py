"""The admin console: staff edit versions, one-time password links, the scheduler's heartbeat, and
per-language names, hospital codes and an active flag on the organisation's departments, wards and
clinicians.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("wards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_unique_constraint(batch_op.f("uq_clinicians_code"), ["code"])
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", backend.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff_users.id"],
            name=op.f("fk_password_resets_created_by_staff_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_password_resets_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_staff_id"), ["staff_id"], unique=False)
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", backend.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_resets_staff_id"))
    op.drop_table("password_resets")
    with op.batch_alter_table("clinicians", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_clinicians_code"), type_="unique")
        batch_op.drop_column("active")
        batch_op.drop_column("code")
        batch_op.drop_column("names")
    with op.batch_alter_table("wards", schema=None) as batch_op:
        batch_op.drop_column("active")
        batch_op.drop_column("names")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("active")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("version")

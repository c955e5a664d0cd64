"""Configurable staff roles: a row per role (the built-in ones seeded) and the permissions each holds.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the built-in roles could do before roles were rows (the checks scattered through the code then).
BUILTIN = {
    "admin": [
        "admin.org",
        "admin.settings",
        "admin.staff",
        "audit.read",
        "content.edit",
        "flows.view",
        "imports.run",
        "integration.manage",
        "outreach.manage",
        "patients.all_departments",
        "patients.do_not_disturb",
        "patients.exclusions",
        "questionnaires.import",
        "safety.review",
        "sla.manage",
        "spot_checks.manage",
        "work.view_all",
    ],
    "service_agent": [
        "patients.all_departments",
        "patients.do_not_disturb",
        "patients.exclusions",
        "safety.review",
    ],
    "doctor": ["patients.do_not_disturb"],
    "nurse": ["patients.do_not_disturb"],
    "content_editor": ["content.edit", "flows.view", "questionnaires.import"],
    "manager": [
        "flows.view",
        "outreach.manage",
        "patients.all_departments",
        "patients.do_not_disturb",
        "patients.exclusions",
        "questionnaires.import",
        "safety.review",
        "sla.manage",
        "spot_checks.manage",
        "tasks.supervise",
        "work.view_all",
    ],
    "integration": ["imports.run", "integration.manage"],
}


def upgrade() -> None:
    roles = op.create_table(
        "staff_roles",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    permissions = op.create_table(
        "staff_role_permissions",
        sa.Column("role_key", sa.String(length=32), nullable=False),
        sa.Column("permission", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(["role_key"], ["staff_roles.key"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role_key", "permission"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        roles,
        [{"key": key, "name": key, "builtin": True, "created_at": now, "version": 1} for key in BUILTIN],
    )
    op.bulk_insert(
        permissions, [{"role_key": key, "permission": p} for key, held in BUILTIN.items() for p in held]
    )


def downgrade() -> None:
    op.drop_table("staff_role_permissions")
    op.drop_table("staff_roles")

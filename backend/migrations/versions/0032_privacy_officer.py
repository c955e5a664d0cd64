"""The privacy officer: a built-in role, and the two permissions the data-rights pages check.

Admins and managers keep what they could do (admins decide requests and review break-glass; managers read
access reports), now as rows an admin may move to any role.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {
    "admin": ["privacy.decide", "privacy.access_report"],
    "manager": ["privacy.access_report"],
    "privacy_officer": [
        "audit.read",
        "patients.all_departments",
        "patients.do_not_disturb",
        "privacy.access_report",
        "privacy.decide",
    ],
}

roles = sa.table(
    "staff_roles",
    sa.column("key", sa.String),
    sa.column("name", sa.String),
    sa.column("builtin", sa.Boolean),
    sa.column("created_at", sa.DateTime),
    sa.column("version", sa.Integer),
)
permissions = sa.table(
    "staff_role_permissions", sa.column("role_key", sa.String), sa.column("permission", sa.String)
)


def upgrade() -> None:
    bind = op.get_bind()
    present = set(bind.scalars(sa.select(roles.c.key)))
    if "privacy_officer" not in present:
        op.bulk_insert(
            roles,
            [
                {
                    "key": "privacy_officer",
                    "name": "privacy_officer",
                    "builtin": True,
                    "created_at": datetime.now(UTC),
                    "version": 1,
                }
            ],
        )
        present.add("privacy_officer")
    held = {(r, p) for r, p in bind.execute(sa.select(permissions.c.role_key, permissions.c.permission))}
    op.bulk_insert(
        permissions,
        [
            {"role_key": role, "permission": p}
            for role, granted in GRANTS.items()
            if role in present
            for p in granted
            if (role, p) not in held
        ],
    )


def downgrade() -> None:
    op.execute(
        permissions.delete().where(permissions.c.permission.in_(["privacy.decide", "privacy.access_report"]))
    )
    op.execute(permissions.delete().where(permissions.c.role_key == "privacy_officer"))
    op.execute(roles.delete().where(roles.c.key == "privacy_officer"))

"""Several roles per staff account: a link table (staff_user_roles) takes each account's one role, and
staff_users.role goes (one source of truth). A head nurse holds nurse and manager; her permissions are the
union of her roles'.

The downgrade keeps one role per account: the first that holds the permission to manage staff (so an
admin stays one), else the first by key. What else she held is lost; say so before running it.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

users = sa.table("staff_users", sa.column("id", sa.Integer), sa.column("role", sa.String))
links = sa.table("staff_user_roles", sa.column("staff_id", sa.Integer), sa.column("role_key", sa.String))
permissions = sa.table(
    "staff_role_permissions", sa.column("role_key", sa.String), sa.column("permission", sa.String)
)


def upgrade() -> None:
    op.create_table(
        "staff_user_roles",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("role_key", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_user_roles_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_key"], ["staff_roles.key"], name=op.f("fk_staff_user_roles_role_key_staff_roles")
        ),
        sa.PrimaryKeyConstraint("staff_id", "role_key", name=op.f("pk_staff_user_roles")),
    )
    op.create_index(op.f("ix_staff_user_roles_role_key"), "staff_user_roles", ["role_key"])
    op.execute(links.insert().from_select(["staff_id", "role_key"], sa.select(users.c.id, users.c.role)))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's own DROP COLUMN (3.35+), not a batch copy: rebuilding staff_users drops the old table,
        # and with foreign keys on that deletes every row pointing at it with ON DELETE CASCADE (these
        # roles, departments, home layouts) and fails on the audit rows
        op.execute("ALTER TABLE staff_users DROP COLUMN role")
    else:
        op.drop_column("staff_users", "role")


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("ALTER TABLE staff_users ADD COLUMN role VARCHAR(32)")  # no table copy: see upgrade
    else:
        op.add_column("staff_users", sa.Column("role", sa.String(length=32), nullable=True))
    keepers = set(
        bind.scalars(sa.select(permissions.c.role_key).where(permissions.c.permission == "admin.staff"))
    )
    held: dict[int, list[str]] = {}
    for staff_id, key in bind.execute(
        sa.select(links.c.staff_id, links.c.role_key).order_by(links.c.role_key)
    ):
        held.setdefault(staff_id, []).append(key)
    for staff_id, keys in held.items():
        chosen = next((k for k in keys if k in keepers), keys[0])
        bind.execute(users.update().where(users.c.id == staff_id).values(role=chosen))
    # an account left with no role at all (possible only after this revision) becomes a nurse, the least
    bind.execute(users.update().where(users.c.role.is_(None)).values(role="nurse"))
    if not sqlite:
        # SQLite keeps it nullable: NOT NULL there needs the table copy the upgrade avoids; every row has one
        op.alter_column("staff_users", "role", existing_type=sa.String(length=32), nullable=False)
    op.drop_index(op.f("ix_staff_user_roles_role_key"), table_name="staff_user_roles")
    op.drop_table("staff_user_roles")

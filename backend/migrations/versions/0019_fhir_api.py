"""FHIR API: clients, access tokens, used client assertions; versions on patients and encounters and
encounters.updated_at (FHIR's meta.versionId, meta.lastUpdated and If-Match)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("api_key_hash", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_fhir_clients_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_clients")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_fhir_clients_api_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_fhir_clients_name")),
    )
    op.create_table(
        "fhir_access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["fhir_clients.id"], name=op.f("fk_fhir_access_tokens_client_id_fhir_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_fhir_access_tokens_token_hash")),
    )
    op.create_index(op.f("ix_fhir_access_tokens_client_id"), "fhir_access_tokens", ["client_id"])
    op.create_index(op.f("ix_fhir_access_tokens_expires_at"), "fhir_access_tokens", ["expires_at"])
    op.create_table(
        "fhir_used_assertions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["fhir_clients.id"], name=op.f("fk_fhir_used_assertions_client_id_fhir_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_used_assertions")),
        sa.UniqueConstraint("client_id", "jti", name="uq_fhir_used_assertions_client_jti"),
    )
    op.create_index(op.f("ix_fhir_used_assertions_expires_at"), "fhir_used_assertions", ["expires_at"])
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # existing visits: last changed when they last ended or started, as good a guess as there is
    op.execute("UPDATE encounters SET updated_at = COALESCE(ended_at, started_at)")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("version")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("version")
    op.drop_index(op.f("ix_fhir_used_assertions_expires_at"), table_name="fhir_used_assertions")
    op.drop_table("fhir_used_assertions")
    op.drop_index(op.f("ix_fhir_access_tokens_expires_at"), table_name="fhir_access_tokens")
    op.drop_index(op.f("ix_fhir_access_tokens_client_id"), table_name="fhir_access_tokens")
    op.drop_table("fhir_access_tokens")
    op.drop_table("fhir_clients")

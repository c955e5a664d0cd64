"""The visits' `external_id` loses its unique index: no query reads the column by value (visit numbers are
looked up in `encounter_identifiers`, keyed by authority and number) and nothing writes it, yet every
inserted visit paid for the index (one of the nine an import's visit insert maintained).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 20:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("encounters") as batch:
        batch.drop_constraint("uq_encounters_external_id", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("encounters") as batch:
        batch.create_unique_constraint("uq_encounters_external_id", ["external_id"])

"""Audit rows carry an HMAC of their content under the audit key, written with the row, so the sealer
chains only rows CareLoop wrote. Rows waiting for the sealer at the upgrade get theirs here (sealed rows
need none: the chain vouches for them).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 18:10:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    _sign_waiting_rows()


def _sign_waiting_rows() -> None:
    from backend.app.settings import get_settings
    from backend.security.audit_chain import row_mac

    try:
        key = get_settings().audit_key_bytes
    except (
        ValueError
    ):  # pydantic's ValidationError: no keys in this environment (`careloop migrate` has them)
        return
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("action", sa.String()),
        sa.column("staff_id", sa.Integer()),
        sa.column("patient_id", sa.Integer()),
        sa.column("subject_type", sa.String()),
        sa.column("subject_id", sa.Integer()),
        sa.column("ip", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("seq", sa.BigInteger()),
        sa.column("mac", sa.String()),
    )
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.at,
            events.c.action,
            events.c.staff_id,
            events.c.patient_id,
            events.c.subject_type,
            events.c.subject_id,
            events.c.ip,
            events.c.detail,
        ).where(events.c.seq.is_(None))
    ).all()
    for row_id, at, action, staff_id, patient_id, subject_type, subject_id, ip, detail in rows:
        mac = row_mac(
            key,
            at=_utc(at),
            action=action,
            staff_id=staff_id,
            patient_id=patient_id,
            subject_type=subject_type,
            subject_id=subject_id,
            ip=ip,
            detail=json.loads(detail) if isinstance(detail, str) else detail,
        )
        bind.execute(events.update().where(events.c.id == row_id).values(mac=mac))


def _utc(value: datetime) -> datetime:
    """The stored time as the model reads it (SQLite keeps naive UTC; PostgreSQL an aware value)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("mac")

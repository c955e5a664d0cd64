"""Audit hash chain: each audit row's place, previous hash and own hash; the signed chain head; retention
checkpoints. Rows already written are sealed in id order.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("cutoff", backend.models.base.UTCDateTime(), nullable=False),
        sa.Column("through_seq", sa.BigInteger(), nullable=False),
        sa.Column("through_hash", sa.String(length=64), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("previous_signature", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("through_seq", name=op.f("uq_audit_checkpoints_through_seq")),
    )
    _seal_existing_rows()


def _seal_existing_rows() -> None:
    """Rows written before the chain existed are sealed in id order, and the head signed with the audit
    key when the settings can be read (`careloop migrate` always can); otherwise the sealer's first run
    makes the head where the chain stands."""
    from backend.security.audit_chain import GENESIS, row_digest

    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("at", backend.models.base.UTCDateTime()),
        sa.column("action", sa.String()),
        sa.column("staff_id", sa.Integer()),
        sa.column("patient_id", sa.Integer()),
        sa.column("subject_type", sa.String()),
        sa.column("subject_id", sa.Integer()),
        sa.column("ip", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("row_hash", sa.String()),
    )
    seq, prev, after = 0, GENESIS, 0
    while True:
        rows = bind.execute(
            sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            seq += 1
            digest = row_digest(
                seq=seq,
                prev_hash=prev,
                at=row.at,
                action=row.action,
                staff_id=row.staff_id,
                patient_id=row.patient_id,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                ip=row.ip,
                detail=row.detail,
            )
            updates.append({"row_id": row.id, "seq": seq, "prev_hash": prev, "row_hash": digest})
            prev = digest
        bind.execute(
            events.update()
            .where(events.c.id == sa.bindparam("row_id"))
            .values(
                seq=sa.bindparam("seq"),
                prev_hash=sa.bindparam("prev_hash"),
                row_hash=sa.bindparam("row_hash"),
            ),
            updates,
        )
        after = rows[-1].id
    if seq:
        _sign_head(bind, seq, prev)


def _sign_head(bind: sa.Connection, seq: int, last_hash: str) -> None:
    from backend.app.settings import get_settings
    from backend.security.audit_chain import HEAD_ID, head_signature

    try:
        key = get_settings().audit_key_bytes
    except ValueError:  # pydantic's ValidationError: no keys in this environment
        return
    head = sa.table(
        "audit_chain_head",
        sa.column("id", sa.Integer()),
        sa.column("seq", sa.BigInteger()),
        sa.column("last_hash", sa.String()),
        sa.column("signature", sa.String()),
    )
    bind.execute(
        head.insert().values(
            id=HEAD_ID, seq=seq, last_hash=last_hash, signature=head_signature(key, seq, last_hash)
        )
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")

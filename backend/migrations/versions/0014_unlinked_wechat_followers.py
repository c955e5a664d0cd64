"""conversations.reply_to and patient-less outbox replies: the bot answers WeChat followers not yet
linked to a patient

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:30:00

A follower who writes to the official account before being linked gets the bot's replies inside
WeChat's 48-hour window (a customer-service message to the openid, kept encrypted on the conversation),
so registration in chat can identify the patient and bind the openid. Consent answers the follower
gives before that wait on the conversation and are recorded on the patient at binding.

WeChat event ids stored before this ("<openid>:<CreateTime>:<Event>") get the openid replaced by its
digest, as channels/wechat_inbound.event_id now writes them: they sit in plain text.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _event_id(sender: str, create_time: str, event: str) -> str:
    """channels/wechat_inbound.event_id as of this revision (kept here: a migration must not change)."""
    digest = hashlib.sha256(sender.encode()).hexdigest()[:24]
    return f"{'start:' if event.lower() == 'subscribe' else ''}{digest}:{create_time}:{event}"


def _digest_event_ids() -> None:
    messages = sa.table(
        "messages",
        sa.column("id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("provider_message_id", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(messages.c.id, messages.c.provider_message_id).where(
            messages.c.channel == "wechat", messages.c.provider_message_id.like("%:%:%")
        )
    ).all()
    for message_id, old in rows:
        sender, create_time, event = str(old).rsplit(":", 2)
        if sender.startswith("start:") or (len(sender) == 24 and set(sender) <= set("0123456789abcdef")):
            continue  # a digest already
        bind.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(provider_message_id=_event_id(sender, create_time, event))
        )


def upgrade() -> None:
    _digest_event_ids()
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("pending_consents", sa.JSON(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("patient_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE patient_id IS NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("patient_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("pending_consents")
        batch_op.drop_column("reply_to")

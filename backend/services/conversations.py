"""Conversations and messages: finding a patient's conversation and storing an inbound exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.models import Conversation, Direction, Message, MessageStatus
from bots.domain import Channel
from bots.messages import Inbound


def get_or_create_conversation(
    session: Session, *, patient_id: int, channel: Channel, address: str, lock: bool = False
) -> Conversation:
    """The patient's latest conversation on the channel, or a new one. `lock=True` takes the
    conversation's turn lock for this transaction, as lock_conversation does."""
    query = _LATEST_LOCKED if lock else _LATEST
    found = session.scalars(query, {"patient": patient_id, "channel": channel}).first()
    if found is not None:
        return found
    conversation = Conversation(patient_id=patient_id, channel=channel, address=address)
    session.add(conversation)
    session.flush()
    return conversation


def _turn_lock(query: sa.Select[Conversation]) -> sa.Select[Conversation]:
    """Lock the conversation for this transaction and read it afresh (a copy already in the session
    may predate another turn that committed while we waited for the lock).

    PostgreSQL: a row lock per conversation. SQLite: the transaction already holds the database
    write lock (BEGIN IMMEDIATE), which serialises turns just the same."""
    return query.with_for_update().execution_options(populate_existing=True)


def lock_conversation(session: Session, conversation_id: int) -> Conversation | None:
    """The conversation, with its turn lock held for this transaction (see _turn_lock)."""
    return session.scalars(_BY_ID_LOCKED, {"id": conversation_id}).first()


# Built once: building and cache-keying a statement per call costs about as much as running it.
_LATEST = (
    sa.select(Conversation)
    .where(
        Conversation.patient_id == sa.bindparam("patient"), Conversation.channel == sa.bindparam("channel")
    )
    .order_by(Conversation.id.desc())
    .limit(1)
)
_LATEST_LOCKED = _turn_lock(_LATEST)
_BY_ID_LOCKED = _turn_lock(sa.select(Conversation).where(Conversation.id == sa.bindparam("id")))


def do_store_inbound(session: Session, conversation: Conversation, inbound: Inbound) -> tuple[Message, bool]:
    """Store the inbound once per provider message id; returns (message, newly stored).

    No lookup first: the unique (channel, provider message id) constraint refuses a second copy
    inside a savepoint, which costs nothing on the common path of a new message."""
    message = Message(
        conversation_id=conversation.id,
        channel=inbound.channel,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        provider_message_id=inbound.provider_message_id,
        text=inbound.text,
        choice=inbound.choice,
        media=[{"url": m.url, "mime_type": m.mime_type, "media_id": m.media_id} for m in inbound.media]
        or None,
        created_at=inbound.received_at,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # stored before, or the same delivery raced us in another transaction: that is the copy
        existing = find_by_provider_id(session, inbound.channel, inbound.provider_message_id)
        if existing is None:
            raise
        return existing, False
    conversation.last_message_at = inbound.received_at
    return message, True


def find_by_provider_id(session: Session, channel: Channel, provider_message_id: str) -> Message | None:
    return session.scalars(
        sa.select(Message).where(
            Message.channel == channel, Message.provider_message_id == provider_message_id
        )
    ).first()


def messages_after(session: Session, conversation_id: int, after_id: int) -> list[MessageView]:
    """The conversation's messages after `after_id`, oldest first, as plain rows (no ORM objects: the
    web chat reads these on every post). Pending ORM changes are flushed first, as a query would."""
    session.flush()
    rows = session.connection().execute(_MESSAGES_AFTER, {"conversation": conversation_id, "after": after_id})
    return [MessageView(*row) for row in rows]


# Built once: building and cache-keying a statement per call costs about as much as running it.
_MESSAGES_AFTER = (
    sa.select(Message.id, Message.direction, Message.text, Message.parts, Message.provider_message_id)
    .where(Message.conversation_id == sa.bindparam("conversation"), Message.id > sa.bindparam("after"))
    .order_by(Message.id)
)


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: Direction
    text: str
    parts: list[dict[str, Any]] | None
    provider_message_id: str | None

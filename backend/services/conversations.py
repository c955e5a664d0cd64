"""Conversations and messages: finding a patient's conversation and storing an inbound exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.models import Conversation, Direction, Message, MessageStatus, Role, StaffUserRole
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
# The role a patient is told wrote a staff message: her clinical role when she holds one (doctor before
# nurse, which is also their order by key), else "staff"; None for the bot's messages.
_CLINICAL_ROLE = (
    sa.select(sa.func.min(StaffUserRole.role_key))
    .where(
        StaffUserRole.staff_id == Message.sent_by_staff_id,
        StaffUserRole.role_key.in_([Role.DOCTOR.value, Role.NURSE.value]),
    )
    .scalar_subquery()
)
_MESSAGES_AFTER = (
    sa.select(
        Message.id,
        Message.direction,
        Message.text,
        Message.parts,
        Message.provider_message_id,
        sa.case(
            (Message.sent_by_staff_id.is_(None), sa.null()),
            else_=sa.func.coalesce(_CLINICAL_ROLE, "staff"),
        ),
    )
    .where(Message.conversation_id == sa.bindparam("conversation"), Message.id > sa.bindparam("after"))
    .order_by(Message.id)
)


def messages_after(session: Session, conversation_id: int, after_id: int) -> list[MessageView]:
    """The conversation's messages after `after_id`, oldest first, as plain rows (no ORM objects: the
    web chat reads these on every post). Pending ORM changes are flushed first, as a query would."""
    session.flush()
    rows = session.connection().execute(_MESSAGES_AFTER, {"conversation": conversation_id, "after": after_id})
    return [MessageView(*row) for row in rows]


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: Direction
    text: str
    parts: list[dict[str, Any]] | None
    provider_message_id: str | None
    staff_role: str | None  # doctor, nurse or staff when a staff member wrote it, so the page can say so


def store_inbound_row(
    session: Session, conversation_id: int, inbound: Inbound, status: MessageStatus, *, touch: bool = True
) -> tuple[int, bool]:
    """Store the inbound once per (channel, provider message id), for every channel, in one statement
    and without ORM objects: returns (message id, newly stored).

    `INSERT ... ON CONFLICT (channel, provider_message_id) DO NOTHING RETURNING id` (PostgreSQL and
    SQLite alike) answers no row for a copy stored before, or by a concurrent delivery that committed
    while we waited on its row. Only a new message moves the conversation's last_message_at
    (`touch=False`: the caller has just created the conversation with last_message_at =
    inbound.received_at). The statements are built once (see _inbound_statements)."""
    connection = session.connection()
    insert, update, find = _inbound_statements(connection.dialect.name)
    new_id = connection.execute(
        insert,
        {
            "conversation_id": conversation_id,
            "channel": inbound.channel,
            "direction": Direction.INBOUND,
            "status": status,
            "provider_message_id": inbound.provider_message_id,
            "text": inbound.text,
            "choice": inbound.choice,
            "media": [{"url": m.url, "mime_type": m.mime_type, "media_id": m.media_id} for m in inbound.media]
            or None,
            "created_at": inbound.received_at,
        },
    ).scalar()
    if new_id is not None:
        if touch:
            connection.execute(update, {"conversation": conversation_id, "at": inbound.received_at})
        return int(new_id), True
    existing = connection.execute(
        find, {"channel": inbound.channel, "provider_id": inbound.provider_message_id}
    ).scalar()
    if existing is None:  # a conflict on the provider id, yet no such row: cannot be, so do not hide it
        raise LookupError("inbound message conflicted with a row that is not there")
    return int(existing), False


@cache
def _inbound_statements(dialect: str) -> tuple[Any, sa.Update, sa.Select[Any]]:
    """(insert unless stored, move last_message_at, find the stored copy) for the dialect: building and
    cache-keying a statement costs more than running it on this path. Both of our dialects have
    ON CONFLICT."""
    messages = cast(sa.Table, Message.__table__)
    conversations = cast(sa.Table, Conversation.__table__)
    unless_stored = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(messages)
    insert = unless_stored.on_conflict_do_nothing(
        index_elements=["channel", "provider_message_id"]
    ).returning(messages.c.id)
    touch = (
        sa.update(conversations)
        .where(conversations.c.id == sa.bindparam("conversation"))
        .values(last_message_at=sa.bindparam("at"))
    )
    find = sa.select(messages.c.id).where(
        messages.c.channel == sa.bindparam("channel"),
        messages.c.provider_message_id == sa.bindparam("provider_id"),
    )
    return insert, touch, find

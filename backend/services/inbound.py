"""Receiving a provider's inbound message: find the patient by blind index, store it once, apply keywords.

Routes call `do_receive` after the adapter verified and parsed the request, commit, then call
`after_commit` to start the turn job or send the keyword reply, so nothing runs on uncommitted data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.catalogue import current_catalog
from backend.models import Conversation, MessageStatus, OutboxKind, Patient
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.services import audit
from backend.services.binding import do_record_scan
from backend.services.consents import (
    UNFOLLOW_SOURCE,
    do_grant_consent,
    do_restore_after_unfollow,
    do_revoke_consent,
)
from backend.services.conversations import store_inbound_row
from backend.services.patients import address_column, address_index
from bots.domain import Channel, ConsentPurpose, pick_language
from bots.messages import Inbound, InboundKind, Outbound, Text
from channels.keywords import Keyword, keyword_of


@dataclass(frozen=True, slots=True)
class Received:
    conversation_id: int
    message_id: int | None
    new: bool  # False: a duplicate delivery, already stored
    run_turn: bool  # hand the message to the bot
    reply_item_id: int | None = None  # an outbox item to send right away (HELP, START)
    has_media: bool = False  # images / voice notes to copy from the provider


def _find(session: Session, channel: Channel, address: str) -> tuple[int | None, int | None]:
    """(patient id, id of the latest conversation on the channel) in one query: the patient bound to the
    sender's blind index and that patient's conversation; an unknown sender's by its address."""
    connection = session.connection()
    known, unknown, _ = _statements(channel)
    row = connection.execute(known, {"address": address, "channel": channel}).first()
    if row is not None:
        return row[0], row[1]
    return None, connection.execute(unknown, {"address": address, "channel": channel}).scalar()


def _new_conversation(session: Session, inbound: Inbound, address: str, patient_id: int | None) -> int:
    """A new conversation whose last message is this inbound (so storing it need not update the row)."""
    _, _, insert = _statements(inbound.channel)
    params = {
        "patient_id": patient_id,
        "channel": inbound.channel,
        "address": address,
        "reply_to": _reply_to(inbound, patient_id),
        "last_message_at": inbound.received_at,
    }
    return int(session.connection().execute(insert, params).scalar_one())


def _reply_to(inbound: Inbound, patient_id: int | None) -> str | None:
    """The address the bot may answer an unlinked sender at: WeChat followers only (they wrote to the
    account and WeChat allows replies for 48 hours). An unknown phone number gets no answer: SMS costs
    the hospital money per message and a sender's number is easily forged."""
    return inbound.sender if inbound.channel is Channel.WECHAT and patient_id is None else None


_KEEP_REPLY_TO = (
    sa.update(Conversation)
    .where(Conversation.id == sa.bindparam("conversation"), Conversation.reply_to.is_(None))
    .values(reply_to=sa.bindparam("openid"))
)


@cache
def _statements(channel: Channel) -> tuple[sa.Select[Any], sa.Select[Any], sa.Insert]:
    """Built once per channel (building and cache-keying them cost more than running them here)."""
    conversations = cast(sa.Table, Conversation.__table__)
    on_channel = conversations.c.channel == sa.bindparam("channel")
    latest = (
        sa.select(conversations.c.id)
        .where(on_channel, conversations.c.patient_id == Patient.id)
        .order_by(conversations.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    known = (
        sa.select(Patient.id, latest)
        .where(address_column(channel) == sa.bindparam("address"))
        .order_by(Patient.id)
        .limit(1)
    )
    unknown = (
        sa.select(conversations.c.id)
        .where(
            on_channel,
            conversations.c.patient_id.is_(None),
            conversations.c.address == sa.bindparam("address"),
        )
        .order_by(conversations.c.id.desc())
        .limit(1)
    )
    return known, unknown, sa.insert(conversations).returning(conversations.c.id)


_CHANNEL_EVENTS = (InboundKind.UNFOLLOWED, InboundKind.FOLLOWED, InboundKind.SCANNED)


def do_receive(session: Session, inbound: Inbound) -> Received:
    """Store the inbound exactly once; STOP/START change consent in this same transaction.

    The common case (an ordinary message from a known number) costs three statements: find the patient
    and conversation, insert the message unless stored before, move the conversation's last_message_at
    (a first message instead creates the conversation with it). ORM objects are loaded only for what
    needs them (keywords, follows)."""
    address = address_index(inbound.channel, inbound.sender)
    event = inbound.kind in _CHANNEL_EVENTS
    keyword = None
    if not event and inbound.channel in (Channel.SMS, Channel.WHATSAPP):
        keyword = keyword_of(inbound.text)
    # scans, unfollows and keywords are handled here and now; the rest waits for the bot, a follow too
    # (the bot greets a new follower: the welcome flow)
    greet = inbound.kind is InboundKind.FOLLOWED
    handled_here = (event and not greet) or keyword is not None
    status = MessageStatus.PROCESSED if handled_here else MessageStatus.RECEIVED
    patient_id, conversation_id = _find(session, inbound.channel, address)
    created = conversation_id is None
    if conversation_id is None:
        conversation_id = _new_conversation(session, inbound, address, patient_id)
    elif (reply_to := _reply_to(inbound, patient_id)) is not None:  # a follower's conversation of before 0014
        session.connection().execute(_KEEP_REPLY_TO, {"conversation": conversation_id, "openid": reply_to})
    message_id, new = store_inbound_row(session, conversation_id, inbound, status, touch=not created)
    if not new:
        return Received(conversation_id, message_id, new=False, run_turn=False)
    if not event and keyword is None:
        return Received(conversation_id, message_id, new=True, run_turn=True, has_media=bool(inbound.media))
    conversation = session.get(Conversation, conversation_id)
    patient = session.get(Patient, patient_id) if patient_id is not None else None
    assert conversation is not None
    source = f"{inbound.channel.value}:keyword"
    evidence = {"message_id": message_id}
    if inbound.kind is InboundKind.UNFOLLOWED:
        if patient is not None:  # the follower left: nothing more may be sent on WeChat
            for purpose in ConsentPurpose:
                do_revoke_consent(
                    session,
                    patient_id=patient.id,
                    purpose=purpose,
                    channel=inbound.channel,
                    source=UNFOLLOW_SOURCE,
                    evidence=evidence,
                )
        return Received(conversation.id, message_id, new=True, run_turn=False)
    if inbound.kind in (InboundKind.FOLLOWED, InboundKind.SCANNED):
        if inbound.scene:  # a department's QR code: that department follows this patient up
            do_record_scan(session, openid=inbound.sender, scene=inbound.scene)
        if greet and patient is not None:
            do_restore_after_unfollow(session, patient.id, inbound.channel, evidence)
        audit.record(
            session,
            "channel.follow" if inbound.kind is InboundKind.FOLLOWED else "channel.scan",
            patient_id=patient.id if patient else None,
            subject=("conversation", conversation.id),
            scene=inbound.scene,
        )
        return Received(conversation.id, message_id, new=True, run_turn=greet)
    assert keyword is not None  # the rest went to the bot above
    if patient is None:
        return Received(conversation.id, message_id, new=True, run_turn=False)
    if keyword is Keyword.STOP:
        for purpose in ConsentPurpose:
            do_revoke_consent(
                session,
                patient_id=patient.id,
                purpose=purpose,
                channel=inbound.channel,
                source=source,
                evidence=evidence,
            )
        return Received(conversation.id, message_id, new=True, run_turn=False)
    if keyword is Keyword.START:
        do_grant_consent(
            session,
            patient_id=patient.id,
            purpose=ConsentPurpose.CARE,
            channel=inbound.channel,
            source=source,
            evidence=evidence,
        )
    catalog = current_catalog(session)
    key = "channel.help" if keyword is Keyword.HELP else "channel.started"
    text = catalog.text(pick_language(patient.language), key)
    item = do_enqueue(
        session,
        conversation=conversation,
        outbound=Outbound((Text(text),)),
        kind=OutboxKind.REPLY,
        now=utcnow(),
    )
    return Received(conversation.id, message_id, new=True, run_turn=False, reply_item_id=item.id)


def after_commit(received: Received) -> None:
    """Start what the stored message needs, once its transaction has committed."""
    from backend.app.jobs import enqueue
    from backend.dialogue.turns import queue_turn
    from backend.outbox.sender import kick

    if received.has_media and received.message_id is not None:
        from backend.messaging.media import fetch_inbound_media

        enqueue(fetch_inbound_media, received.message_id)
    if received.run_turn:
        queue_turn(received.conversation_id)
    if received.reply_item_id is not None:
        kick(received.reply_item_id)

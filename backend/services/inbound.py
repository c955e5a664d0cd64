"""Receiving a provider's inbound message: find the patient by blind index, store it once, apply keywords.

Routes call `do_receive` after the adapter verified and parsed the request, commit, then call
`after_commit` to start the turn job or send the keyword reply, so nothing runs on uncommitted data.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content import load_catalog
from backend.models import Conversation, MessageStatus, OutboxKind, Patient
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.services import audit
from backend.services.binding import do_record_scan
from backend.services.consents import do_grant_consent, do_revoke_consent
from backend.services.conversations import do_store_inbound
from backend.services.patients import address_index, find_patient
from backend.settings import get_settings
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


def _conversation(session: Session, channel: Channel, address: str, patient: Patient | None) -> Conversation:
    query = sa.select(Conversation).where(Conversation.channel == channel)
    query = (
        query.where(Conversation.patient_id == patient.id)
        if patient is not None
        else query.where(Conversation.patient_id.is_(None), Conversation.address == address)
    )
    found = session.scalars(query.order_by(Conversation.id.desc()).limit(1)).first()
    if found is not None:
        return found
    conversation = Conversation(patient_id=patient.id if patient else None, channel=channel, address=address)
    session.add(conversation)
    session.flush()
    return conversation


def do_receive(session: Session, inbound: Inbound) -> Received:
    """Store the inbound exactly once; STOP/START change consent in this same transaction."""
    patient = find_patient(session, inbound.channel, inbound.sender)
    address = address_index(inbound.channel, inbound.sender)
    conversation = _conversation(session, inbound.channel, address, patient)
    message, new = do_store_inbound(session, conversation, inbound)
    if not new:
        return Received(conversation.id, message.id, new=False, run_turn=False)
    source = f"{inbound.channel.value}:keyword"
    evidence = {"message_id": message.id}
    if inbound.kind is InboundKind.UNFOLLOWED:
        message.status = MessageStatus.PROCESSED
        if patient is not None:  # the follower left: nothing more may be sent on WeChat
            for purpose in ConsentPurpose:
                do_revoke_consent(
                    session,
                    patient_id=patient.id,
                    purpose=purpose,
                    channel=inbound.channel,
                    source=f"{inbound.channel.value}:unfollow",
                    evidence=evidence,
                )
        return Received(conversation.id, message.id, new=True, run_turn=False)
    if inbound.kind in (InboundKind.FOLLOWED, InboundKind.SCANNED):
        message.status = MessageStatus.PROCESSED
        if inbound.scene:  # a department's QR code: that department follows this patient up
            do_record_scan(session, openid=inbound.sender, scene=inbound.scene)
        audit.record(
            session,
            "channel.follow" if inbound.kind is InboundKind.FOLLOWED else "channel.scan",
            patient_id=patient.id if patient else None,
            subject=("conversation", conversation.id),
            scene=inbound.scene,
        )
        return Received(conversation.id, message.id, new=True, run_turn=False)
    keyword = keyword_of(inbound.text) if inbound.channel in (Channel.SMS, Channel.WHATSAPP) else None
    if keyword is None:
        return Received(conversation.id, message.id, new=True, run_turn=True, has_media=bool(inbound.media))
    message.status = MessageStatus.PROCESSED
    if patient is None:
        return Received(conversation.id, message.id, new=True, run_turn=False)
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
        return Received(conversation.id, message.id, new=True, run_turn=False)
    if keyword is Keyword.START:
        do_grant_consent(
            session,
            patient_id=patient.id,
            purpose=ConsentPurpose.CARE,
            channel=inbound.channel,
            source=source,
            evidence=evidence,
        )
    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    key = "channel.help" if keyword is Keyword.HELP else "channel.started"
    text = catalog.text(pick_language(patient.language), key)
    item = do_enqueue(
        session,
        conversation=conversation,
        outbound=Outbound((Text(text),)),
        kind=OutboxKind.REPLY,
        now=utcnow(),
    )
    return Received(conversation.id, message.id, new=True, run_turn=False, reply_item_id=item.id)


def after_commit(received: Received) -> None:
    """Start what the stored message needs, once its transaction has committed."""
    from backend.jobs import enqueue
    from backend.outbox.sender import kick
    from backend.turns import run_turn

    if received.has_media and received.message_id is not None:
        from backend.media import fetch_inbound_media

        enqueue(fetch_inbound_media, received.message_id)
    if received.run_turn:
        enqueue(run_turn, received.conversation_id)
    if received.reply_item_id is not None:
        kick(received.reply_item_id)

"""Putting messages into the outbox: one at a time (replies, flows, staff) or as a batch (thousands)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    StaffUser,
)
from backend.models.base import utcnow
from backend.services import audit
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text

EXTERNAL = frozenset({Channel.WECHAT, Channel.SMS, Channel.WHATSAPP, Channel.EMAIL})
STAFF_ALERT_TEMPLATE = "staff_alert"  # content/channels/templates.yaml
STAFF_ALERT_CHANNELS = (Channel.SMS, Channel.WECHAT)  # where a staff member's own alerts can reach her


def do_enqueue(
    session: Session,
    *,
    conversation: Conversation,
    outbound: Outbound,
    kind: OutboxKind,
    purpose: ConsentPurpose = ConsentPurpose.CARE,
    not_before: datetime | None = None,
    template_key: str | None = None,
    template_vars: dict[str, str] | None = None,
    batch_id: str | None = None,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> OutboxItem:
    """Store the message in the conversation (status queued) and its outbox row. The caller commits and
    then calls `backend.outbox.sender.kick(item.id)` for an immediate send."""
    if conversation.channel not in EXTERNAL:
        raise ValueError(f"{conversation.channel.value} does not go through the outbox")
    answers = kind in (OutboxKind.REPLY, OutboxKind.EMERGENCY)
    if conversation.patient_id is None and not (answers and conversation.reply_to):
        raise ValueError("cannot send to a conversation with no known patient")
    now = now or utcnow()
    message = _message(conversation.id, conversation.channel, outbound, staff_id, now)
    session.add(message)
    session.flush()
    item = OutboxItem(
        message_id=message.id,
        patient_id=conversation.patient_id,
        channel=conversation.channel,
        kind=kind,
        purpose=purpose,
        status=OutboxStatus.PENDING,
        not_before=not_before or now,
        template_key=template_key,
        template_vars=template_vars,
        batch_id=batch_id,
        created_by_staff_id=staff_id,
        created_at=now,
    )
    session.add(item)
    session.flush()
    conversation.last_message_at = now
    return item


def do_enqueue_staff_alert(
    session: Session,
    *,
    staff: StaffUser,
    text: str,
    channel: Channel = Channel.SMS,
    url: str | None = None,
    now: datetime | None = None,
) -> OutboxItem:
    """An alert to a staff member's own phone (an emergency nobody has taken): an SMS, or on WeChat the
    `staff_alert` template to her bound openid (a staff member rarely writes to the official account, so
    its 48-hour window is taken as closed). It lives in a conversation of its own per channel, addressed
    to her, so the outbox records it like every other message."""
    now = now or utcnow()
    address = f"staff:{staff.id}"
    conversation = session.scalars(
        sa.select(Conversation).where(
            Conversation.patient_id.is_(None),
            Conversation.channel == channel,
            Conversation.address == address,
        )
    ).first()
    if conversation is None:
        conversation = Conversation(patient_id=None, channel=channel, address=address)
        session.add(conversation)
        session.flush()
    message = _message(conversation.id, channel, Outbound((Text(text),)), None, now)
    session.add(message)
    session.flush()
    wechat = channel is Channel.WECHAT
    item = OutboxItem(
        message_id=message.id,
        patient_id=None,
        to_staff_id=staff.id,
        channel=channel,
        kind=OutboxKind.STAFF_ALERT,
        purpose=ConsentPurpose.CARE,
        status=OutboxStatus.PENDING,
        not_before=now,
        created_at=now,
        template_key=STAFF_ALERT_TEMPLATE if wechat else None,
        template_vars={"text": text, "url": url or ""} if wechat else None,
    )
    session.add(item)
    session.flush()
    conversation.last_message_at = now
    return item


def _message(
    conversation_id: int, channel: Channel, outbound: Outbound, staff_id: int | None, now: datetime
) -> Message:
    """The conversation's record of an outbound message, queued until the sender hands it over."""
    return Message(
        conversation_id=conversation_id,
        channel=channel,
        direction=Direction.OUTBOUND,
        status=MessageStatus.QUEUED,
        text=outbound.text,
        parts=outbound.to_json(),
        sent_by_staff_id=staff_id,
        created_at=now,
    )


def do_enqueue_batch(
    session: Session,
    *,
    patient_ids: Iterable[int],
    channel: Channel,
    outbound_for: Callable[[Patient], Outbound],
    address_for: Callable[[Patient], str | None],
    batch_id: str,
    purpose: ConsentPurpose = ConsentPurpose.CARE,
    template_key: str | None = None,
    not_before: datetime | None = None,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Queue one outreach message per patient. Eligibility is not decided here: the sender checks consent,
    exclusions, quiet hours and caps when each item is due, so the batch stays right if they change.
    Patients with no address on the channel are queued too and end up suppressed as unreachable, so the
    batch report accounts for everyone. Returns how many were queued."""
    if channel not in EXTERNAL:
        raise ValueError(f"{channel.value} does not go through the outbox")
    now = now or utcnow()
    ids = sorted(set(patient_ids))
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        patients = session.scalars(sa.select(Patient).where(Patient.id.in_(chunk))).all()
        conversations = _conversations(session, patients, channel, address_for)
        messages, items = [], []
        for patient in patients:
            outbound = outbound_for(patient)
            messages.append(_message(conversations[patient.id].id, channel, outbound, staff_id, now))
        session.add_all(messages)
        session.flush()
        for patient, message in zip(patients, messages, strict=True):
            items.append(
                OutboxItem(
                    message_id=message.id,
                    patient_id=patient.id,
                    channel=channel,
                    kind=OutboxKind.OUTREACH,
                    purpose=purpose,
                    status=OutboxStatus.PENDING,
                    not_before=not_before or now,
                    template_key=template_key,
                    template_vars={"text": message.text},
                    batch_id=batch_id,
                    created_by_staff_id=staff_id,
                    created_at=now,
                )
            )
        session.add_all(items)
        session.flush()
    audit.record(
        session,
        "outbox.batch",
        staff_id=staff_id,
        batch_id=batch_id,
        channel=channel.value,
        purpose=purpose.value,
        queued=len(ids),
    )
    return len(ids)


def _conversations(
    session: Session,
    patients: Sequence[Patient],
    channel: Channel,
    address_for: Callable[[Patient], str | None],
) -> dict[int, Conversation]:
    """Each patient's latest conversation on the channel, created where there is none (one query)."""
    found: dict[int, Conversation] = {}
    for conversation in session.scalars(
        sa.select(Conversation)
        .where(Conversation.patient_id.in_([p.id for p in patients]), Conversation.channel == channel)
        .order_by(Conversation.id)
    ):
        assert conversation.patient_id is not None
        found[conversation.patient_id] = conversation
    missing = [
        Conversation(patient_id=p.id, channel=channel, address=address_for(p) or f"none:{p.id}")
        for p in patients
        if p.id not in found
    ]
    session.add_all(missing)
    session.flush()
    found.update({c.patient_id: c for c in missing if c.patient_id is not None})
    return found

"""One verb for every message a staff member sends a patient: inbox replies, outcome notices, record messages.

`do_staff_message` checks now what the outbox's gates will check when the item is due (consent per
purpose and channel, deceased/dispute/do-not-disturb, reachability) plus the channel's free-form window
for replies, so a refusal comes back at once with its reason while the caller keeps the draft. A message
that may go is stored in the patient's conversation: on WeChat, SMS and WhatsApp as an outbox item (the
caller commits, then kicks `outbox_id`), on the web chat as a sent message (the page is its delivery).
Staff-started contact (outreach) carries the approved `notice` template, so it still goes outside
WeChat's and WhatsApp's window; a reply outside the window is refused instead. Either way one audit row
is written (codes and ids, never the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.followup.eligibility import channel_address
from backend.models import (
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    Patient,
)
from backend.models.base import utcnow
from backend.outbox import gates
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.services import audit
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text

MAX_TEXT = 1600  # one Twilio message body
NOTICE_TEMPLATE = "notice"  # content/channels/templates.yaml: for staff-started contact outside a window
STAFF_CHANNELS = (Channel.WEBCHAT, Channel.SMS, Channel.WECHAT, Channel.WHATSAPP, Channel.EMAIL)


@dataclass(frozen=True)
class StaffMessage:
    """What happened: a message stored (and the outbox id to kick), or the reason nothing was."""

    message: Message | None = None
    outbox_id: int | None = None
    refused: str | None = None  # a code the pages translate; nothing was stored but the audit row
    deferred: str | None = None  # queued, but the gates will hold it (quiet hours, daily cap)


def preflight(
    session: Session,
    patient: Patient,
    channel: Channel,
    now: datetime,
    kind: OutboxKind = OutboxKind.OUTREACH,
    purpose: ConsentPurpose = ConsentPurpose.CARE,
) -> gates.Verdict:
    """What the outbox's gates would say about this message now (they check again when it is due)."""
    probe = OutboxItem(patient_id=patient.id, channel=channel, kind=kind, purpose=purpose)
    verdict = gates.judge(probe, patient, gates.load_facts(session, [probe], now), now)
    if verdict.action is not gates.Action.SUPPRESS and kind is OutboxKind.REPLY:
        from backend.outbox.sender import window_open  # the sender imports the web-free parts only

        if not window_open(session, patient.id, channel, now):
            return gates.Verdict(gates.Action.SUPPRESS, "window_closed")
    return verdict


def follower_preflight(
    session: Session, conversation: Conversation, channel: Channel, now: datetime
) -> gates.Verdict:
    """The same for a reply to an unlinked WeChat follower (`gates.judge_unlinked`)."""
    from backend.outbox.sender import conversation_window_open

    probe = OutboxItem(patient_id=None, channel=channel, kind=OutboxKind.REPLY, purpose=ConsentPurpose.CARE)
    return gates.judge_unlinked(probe, conversation_window_open(session, conversation.id, channel, now))


def do_staff_message(
    session: Session,
    *,
    patient: Patient | None,
    channel: Channel,
    outbound: Outbound | str,
    kind: OutboxKind,
    staff_id: int,
    action: str | None,
    refused_action: str,
    subject: tuple[str, int] | None = None,
    conversation: Conversation | None = None,
    template_vars: dict[str, str] | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> StaffMessage:
    """Send (or queue) the message, or say why not. `action` names the audit row of a message that goes
    (None: the caller writes its own, e.g. the task event of a reply); `refused_action` that of a refusal.
    `conversation` is the one to answer in (a reply); otherwise the patient's conversation on `channel`.
    The caller commits either way."""
    now = now or utcnow()
    if isinstance(outbound, str):
        outbound = Outbound((Text(outbound.strip()),))
    text = outbound.text.strip()
    extra = detail or {}

    def refuse(reason: str) -> StaffMessage:
        audit.record(
            session,
            refused_action,
            staff_id=staff_id,
            patient_id=patient.id if patient else None,
            subject=subject,
            ip=ip,
            reason=reason,
            channel=channel.value,
            **extra,
        )
        return StaffMessage(refused=reason)

    if not text or len(text) > MAX_TEXT:
        return refuse("message_length")
    if channel not in STAFF_CHANNELS:
        return refuse("channel_not_supported")
    if patient is None:  # only a reply to a WeChat follower not linked yet, as the bot's own replies
        if conversation is None or not conversation.reply_to or kind is not OutboxKind.REPLY:
            return refuse("no_patient")
        verdict = follower_preflight(session, conversation, channel, now)
    else:
        verdict = preflight(session, patient, channel, now, kind)
    if verdict.action is gates.Action.SUPPRESS:
        return refuse(verdict.reason or "suppressed")
    if conversation is None:
        assert patient is not None
        address = channel_address(patient, channel)
        assert address is not None  # the gates refuse an unreachable patient
        conversation = get_or_create_conversation(
            session, patient_id=patient.id, channel=channel, address=address
        )
    item_id: int | None = None
    if channel in EXTERNAL:
        outreach = kind is OutboxKind.OUTREACH
        item = do_enqueue(
            session,
            conversation=conversation,
            outbound=outbound,
            kind=kind,
            template_key=NOTICE_TEMPLATE if outreach else None,
            template_vars=(template_vars or {"text": text}) if outreach else None,
            staff_id=staff_id,
            now=now,
        )
        item_id, message = item.id, session.get_one(Message, item.message_id)
    else:  # the web chat page is its own delivery
        message = Message(
            conversation_id=conversation.id,
            channel=channel,
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,  # the chat page shows it as soon as it exists
            text=outbound.text,
            parts=outbound.to_json(),
            sent_by_staff_id=staff_id,
            created_at=now,
        )
        session.add(message)
        session.flush()
        conversation.last_message_at = now
    deferred = verdict.reason if verdict.action is gates.Action.DEFER else None
    if action is not None:
        audit.record(
            session,
            action,
            staff_id=staff_id,
            patient_id=patient.id if patient else None,
            subject=subject,
            ip=ip,
            channel=channel.value,
            message_id=message.id,
            outbox_id=item_id,
            deferred=deferred,
            **extra,
        )
    return StaffMessage(message=message, outbox_id=item_id, deferred=deferred)

"""Telling the patient the outcome of their case, through the outbox, when staff choose to (可选通知).

Consent, exclusions and reachability are checked before anything is queued, with the same gates the
sender applies (`backend.outbox.gates.judge`), so a refusal is shown at once with its reason and the
draft is kept on the case. The sender checks again when the item is due (quiet hours defer it; outside
WeChat's or WhatsApp's window it goes as the approved "notice" template).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from backend.content import load_catalog
from backend.followup.eligibility import channel_address
from backend.models import (
    Direction,
    FeedbackCase,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    Patient,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.outbox.gates import Action, judge, load_facts
from backend.services import audit
from backend.services.conversations import get_or_create_conversation
from backend.settings import Settings
from bots.domain import Channel, ConsentPurpose, pick_language
from bots.messages import Outbound, Text
from channels import webchat

MAX_NOTICE = 1600  # one Twilio message body
NOTICE_TEMPLATE = "notice"  # content/channels/templates.yaml


@dataclass(frozen=True)
class NoticeResult:
    outbox_id: int | None = None  # queued on an external channel: kick it after the commit
    message_id: int | None = None
    refused: str | None = None  # why nothing was queued; the draft is on the case


def default_notice(settings: Settings, case: FeedbackCase, patient: Patient | None) -> str:
    """A starting text in the patient's language, with the closing summary."""
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    lang = pick_language(patient.language if patient else settings.default_language)
    return catalog.text(lang, "case.outcome_notice", summary=case.summary or "")


def _refuse(
    session: Session,
    case: FeedbackCase,
    staff_id: int,
    text: str,
    reason: str,
    channel: Channel,
    ip: str | None,
) -> NoticeResult:
    case.notice_draft = text
    audit.record(
        session,
        "case.notice_refused",
        staff_id=staff_id,
        patient_id=case.patient_id,
        subject=("case", case.id),
        ip=ip,
        reason=reason,
        channel=channel.value,
    )
    return NoticeResult(refused=reason)


def do_notify_outcome(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    channel: Channel,
    text: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> NoticeResult:
    """Queue the notice, or keep the draft and say why not. The caller commits either way."""
    now = now or utcnow()
    text = text.strip()
    if not text or len(text) > MAX_NOTICE:
        return _refuse(session, case, staff_id, text, "notice_length", channel, ip)
    patient = session.get(Patient, case.patient_id) if case.patient_id else None
    if patient is None:
        return _refuse(session, case, staff_id, text, "no_patient", channel, ip)
    if channel not in EXTERNAL and channel is not Channel.WEBCHAT:
        return _refuse(session, case, staff_id, text, "channel_not_supported", channel, ip)
    probe = OutboxItem(
        patient_id=patient.id, channel=channel, kind=OutboxKind.OUTREACH, purpose=ConsentPurpose.CARE
    )
    verdict = judge(probe, patient, load_facts(session, [probe], now), now)
    if verdict.action is Action.SUPPRESS:
        return _refuse(session, case, staff_id, text, verdict.reason or "not_allowed", channel, ip)
    outbound = Outbound((Text(text),))
    result: NoticeResult
    if channel in EXTERNAL:
        conversation = get_or_create_conversation(
            session, patient_id=patient.id, channel=channel, address=channel_address(patient, channel) or ""
        )
        item = do_enqueue(
            session,
            conversation=conversation,
            outbound=outbound,
            kind=OutboxKind.OUTREACH,
            template_key=NOTICE_TEMPLATE,
            template_vars={"text": text},
            staff_id=staff_id,
            now=now,
        )
        case.notice_outbox_id = item.id
        result = NoticeResult(outbox_id=item.id, message_id=item.message_id)
    else:
        conversation = get_or_create_conversation(
            session, patient_id=patient.id, channel=channel, address=webchat.address_for(patient.id)
        )
        message = Message(
            conversation_id=conversation.id,
            channel=channel,
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,  # the chat page shows it as soon as it exists
            text=text,
            parts=outbound.to_json(),
            sent_by_staff_id=staff_id,
            created_at=now,
        )
        session.add(message)
        session.flush()
        conversation.last_message_at = now
        result = NoticeResult(message_id=message.id)
    case.notice_draft = None
    audit.record(
        session,
        "case.notify",
        staff_id=staff_id,
        patient_id=patient.id,
        subject=("case", case.id),
        ip=ip,
        channel=channel.value,
        outbox=result.outbox_id,
        message=result.message_id,
        deferred=verdict.reason if verdict.action is Action.DEFER else None,
    )
    return result

"""What comes back from email: bounce reports that fail an item (and a hard one stops the address), and
unsubscribe requests (the one-click link and the mailto) that revoke email consent for a purpose.

Both arrive with a token we signed (`backend.messaging.email_tokens`): a bounce at
`bounces+<item token>@` (else through the Message-ID the report quotes), an unsubscribe at
`unsubscribe+<token>@` or `/m/u/<token>`. A token that does not verify changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.messaging.email_tokens import item_from_message_id, read_item_token, read_unsubscribe_token
from backend.messaging.links import LinkInvalid
from backend.models import Message, OutboxItem, OutboxStatus, Patient
from backend.outbox.sender import _set_status, do_mark_contact_invalid
from backend.services import audit
from backend.services.consents import current_consents, do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from channels.email_inbound import Dsn, envelope_recipient, parse_dsn, parse_mail, route

UNSUBSCRIBE_LINK = "email:unsubscribe_link"  # the consent event's source for each way in
UNSUBSCRIBE_MAIL = "email:unsubscribe_mail"


@dataclass(frozen=True, slots=True)
class BounceOutcome:
    item_id: int
    status: str
    hard: bool


def do_record_bounce(session: Session, item_id: int, dsn: Dsn) -> BounceOutcome | None:
    """Fail the item with the report's status; a hard bounce (5.1.x, 5.2.1) marks the patient's email
    unreachable, so the gates suppress email until staff edit the address. A `delayed` report changes
    nothing (the remote MTA is still trying); `delivered` moves a sent item forward."""
    item = session.get(OutboxItem, item_id)
    if item is None or item.channel is not Channel.EMAIL:
        return None
    failed = [r for r in dsn.recipients if r.failed]
    if not failed:
        if any(r.action == "delivered" for r in dsn.recipients) and item.status is OutboxStatus.SENT:
            _set_status(item, session.get(Message, item.message_id), OutboxStatus.DELIVERED, None)
        return BounceOutcome(item.id, dsn.recipients[0].status, hard=False)
    report = next((r for r in failed if r.hard), failed[0])
    if item.status in (OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.DELIVERED, OutboxStatus.PENDING):
        item.last_error = f"dsn {report.status}"[:300]  # the status code only: diagnostics quote addresses
        _set_status(item, session.get(Message, item.message_id), OutboxStatus.FAILED, "bounced")
    audit.record(
        session, "outbox.bounced", patient_id=item.patient_id, outbox_id=item.id, status=report.status
    )
    if report.hard and item.patient_id is not None:
        do_mark_contact_invalid(session, item.patient_id, Channel.EMAIL, reason=f"dsn {report.status}")
    return BounceOutcome(item.id, report.status, report.hard)


def do_unsubscribe(
    session: Session, settings: Settings, token: str, *, source: str
) -> tuple[Patient, ConsentPurpose]:
    """Revoke email consent for the token's purpose (audited through the consents verb). Raises
    `LinkInvalid` for a token we did not sign. Asking twice records nothing more."""
    found = unsubscribe_subject(session, settings, token)
    if found is None:
        raise LinkInvalid
    patient, purpose = found
    if not unsubscribed(session, patient.id, purpose):
        do_revoke_consent(
            session, patient_id=patient.id, purpose=purpose, channel=Channel.EMAIL, source=source
        )
    return patient, purpose


def unsubscribe_subject(
    session: Session, settings: Settings, token: str
) -> tuple[Patient, ConsentPurpose] | None:
    """The patient and purpose a signed unsubscribe token names, or None (forged, or no such patient)."""
    try:
        patient_id, purpose = read_unsubscribe_token(settings, token)
    except LinkInvalid:
        return None
    patient = session.get(Patient, patient_id)
    return None if patient is None else (patient, purpose)


def unsubscribed(session: Session, patient_id: int, purpose: ConsentPurpose) -> bool:
    latest = current_consents(session, patient_id).get((purpose, Channel.EMAIL))
    return latest is not None and not latest.granted


def do_take_mail(session: Session, settings: Settings, raw: bytes, recipient: str | None) -> str:
    """A mail our MTA handed to the hook: a DSN to a bounce address, or an unsubscribe request. Returns
    what was done, for the hook's answer. Raises `channels.base.MalformedPayload` (400) or `LinkInvalid`
    (404)."""
    mail = parse_mail(raw)
    routed = route(recipient or envelope_recipient(mail) or "")
    if routed.kind == "unsubscribe":
        do_unsubscribe(session, settings, routed.token, source=UNSUBSCRIBE_MAIL)
        return "unsubscribed"
    dsn = parse_dsn(mail)
    try:
        item_id = read_item_token(settings, routed.token)
    except LinkInvalid:
        if dsn.original_message_id is None:
            raise
        item_id = item_from_message_id(settings, dsn.original_message_id)
    outcome = do_record_bounce(session, item_id, dsn)
    if outcome is None:
        raise LinkInvalid
    return "hard_bounce" if outcome.hard else "bounce"

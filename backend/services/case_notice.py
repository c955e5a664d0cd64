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

from backend.app.settings import Settings, get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, link_ref
from backend.models import CaseProgress, FeedbackCase, OutboxKind, Patient
from backend.services.staff_message import MAX_TEXT, do_staff_message
from bots.domain import Channel, pick_language
from bots.messages import Link, Outbound, Text

MAX_NOTICE = MAX_TEXT


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


def _with_rating_link(
    case: FeedbackCase, patient: Patient | None, channel: Channel, text: str
) -> tuple[Outbound, dict[str, str] | None]:
    """The notice, and for a closed case the patient has not rated yet, a link to rate its handling on
    their feedback page (short on SMS; the tap target of a WeChat template outside the window)."""
    outbound = Outbound((Text(text.strip()),))
    if patient is None or case.progress is not CaseProgress.CLOSED or case.satisfaction is not None:
        return outbound, None
    settings = get_settings()
    url = link_ref(LinkKind.FEEDBACK, patient.id, days=settings.feedback_link_days)  # minted when sent
    label = load_catalog(settings.content_dir, settings.hospital_name).text(
        pick_language(patient.language), "case.rate_link"
    )
    return Outbound((*outbound.parts, Link(url, label))), {"text": f"{text.strip()} {url}", "url": url}


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
    patient = session.get(Patient, case.patient_id) if case.patient_id else None
    outbound, link_vars = _with_rating_link(case, patient, channel, text)
    sent = do_staff_message(
        session,
        patient=patient,
        channel=channel,
        outbound=outbound,
        template_vars=link_vars,
        kind=OutboxKind.OUTREACH,
        staff_id=staff_id,
        action="case.notify",
        refused_action="case.notice_refused",
        subject=("case", case.id),
        ip=ip,
        now=now,
    )
    if sent.refused is not None or sent.message is None:
        case.notice_draft = text.strip()
        return NoticeResult(refused=sent.refused)
    case.notice_draft = None
    sent.message.case_id = case.id  # an anonymous case's notice stays out of the departments' views
    if sent.outbox_id is not None:
        case.notice_outbox_id = sent.outbox_id
    return NoticeResult(outbox_id=sent.outbox_id, message_id=sent.message.id)

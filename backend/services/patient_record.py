"""A patient's record for staff: one timeline of every conversation, flags staff may set, quick actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import latest_version
from backend.followup.eligibility import channel_address
from backend.followup.exclusions import do_set_exclusion
from backend.followup.invite import do_send_form_invite
from backend.followup.responses import do_start_response
from backend.models import (
    Conversation,
    Encounter,
    Message,
    MissedEscalation,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    QuestionnaireVersion,
    StaffUser,
)
from backend.models.base import utcnow
from backend.models.patients import EXCLUSION_FLAGS
from backend.outbox import gates
from backend.security.identifiers import InvalidEmail, normalise_email
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.anonymity import visible_messages
from backend.services.conversations import get_or_create_conversation
from backend.services.patients import department_ids
from backend.services.refusal import ActionRefused, NotSent, Reason
from backend.services.staff_message import MAX_TEXT, STAFF_CHANNELS, do_staff_message, preflight
from bots.domain import Channel, pick_language

TIMELINE_LIMIT = 200
MAX_MESSAGE = MAX_TEXT
__all__ = ["STAFF_CHANNELS", "ActionRefused", "preflight"]  # re-exported for the record's pages
# The permission each exclusion list needs. Deceased and dispute are the service centre's and managers'
# call (by default); any clinician may record that a patient asked not to be disturbed.
FLAG_PERMISSIONS: dict[str, Permission] = {
    "deceased": Permission.PATIENTS_EXCLUSIONS,
    "dispute": Permission.PATIENTS_EXCLUSIONS,
    "do_not_disturb": Permission.PATIENTS_DO_NOT_DISTURB,
    "invalid_contact": Permission.PATIENTS_EXCLUSIONS,
    "frequent_visitor": Permission.PATIENTS_EXCLUSIONS,
}


def may_set_flag(user: StaffUser, flag: str) -> bool:
    needed = FLAG_PERMISSIONS.get(flag)
    return needed is not None and may(user, needed)


def settable_flags(user: StaffUser) -> list[str]:
    """The exclusion lists `user` may change, in the record's order."""
    return [flag for flag in FLAG_PERMISSIONS if may_set_flag(user, flag)]


def do_set_flag(
    session: Session, *, patient: Patient, user: StaffUser, flag: str, value: bool, ip: str | None = None
) -> int:
    """Through the follow-up exclusion verb (which closes open follow-ups and writes the audit row)."""
    if flag not in EXCLUSION_FLAGS:
        raise ActionRefused(Reason.UNKNOWN_FLAG)
    if not may_set_flag(user, flag):
        audit.record(
            session, "patient.exclusion_denied", staff_id=user.id, patient_id=patient.id, flag=flag, ip=ip
        )
        raise ActionRefused(Reason.FLAG_NOT_PERMITTED)
    return do_set_exclusion(session, patient, flag, value, staff_id=user.id)


def may_edit_contact(user: StaffUser) -> bool:
    """Contact details are the exclusion lists' business: who may mark a contact invalid may correct it."""
    return may(user, Permission.PATIENTS_EXCLUSIONS)


def do_set_email(
    session: Session, *, patient: Patient, user: StaffUser, email: str, ip: str | None = None
) -> None:
    """Set, correct or (empty) clear the patient's email address. A new address is tried afresh: a hard
    bounce stopped the old one only. The audit row says what changed, never the address."""
    if not may_edit_contact(user):
        audit.record(session, "patient.email_denied", staff_id=user.id, patient_id=patient.id, ip=ip)
        raise ActionRefused(Reason.CONTACT_NOT_PERMITTED)
    try:
        address = normalise_email(email) if email.strip() else None
    except InvalidEmail as exc:
        raise ActionRefused(Reason.EMAIL_INVALID) from exc
    had, bounced = patient.email is not None, patient.email_bounced
    patient.email = address
    audit.record(
        session,
        "patient.email_set" if address else "patient.email_cleared",
        staff_id=user.id,
        patient_id=patient.id,
        replaced=had,
        was_bounced=bounced,
        ip=ip,
    )


# --- the timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    message: Message
    channel: Channel
    outbox_status: OutboxStatus | None
    outbox_reason: str | None
    marked_missed: bool = False  # in the safety review queue ("the bot should have escalated this")


def timeline(
    session: Session, patient_id: int, *, user: StaffUser, limit: int = TIMELINE_LIMIT
) -> list[TimelineEntry]:
    """Every message in and out on every channel the viewer may see beside the patient's name (not an
    anonymous case's), newest first, with the outbox's word on sending and whether staff marked it for
    the safety review. One statement: the newest
    `limit` messages are chosen first (the messages (conversation_id, id) index per conversation), and
    only those are joined to their outbox rows."""
    newest = (
        sa.select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.patient_id == patient_id, *visible_messages(user))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        sa.select(Message, OutboxItem.status, OutboxItem.reason, MissedEscalation.id)
        .join(newest, newest.c.id == Message.id)
        .outerjoin(OutboxItem, OutboxItem.message_id == Message.id)
        .outerjoin(MissedEscalation, MissedEscalation.message_id == Message.id)  # unique per message
        .order_by(Message.created_at.desc(), Message.id.desc())
    )
    return [
        TimelineEntry(m, m.channel, status, reason, marked is not None) for m, status, reason, marked in rows
    ]


# --- quick actions --------------------------------------------------------------------------------


def latest_visit(session: Session, patient_id: int, departments: set[int] | None) -> Encounter | None:
    query = sa.select(Encounter).where(Encounter.patient_id == patient_id)
    if departments is not None:
        query = query.where(Encounter.department_id.in_(departments))
    found: Encounter | None = session.scalars(
        query.order_by(Encounter.started_at.desc(), Encounter.id.desc()).limit(1)
    ).first()
    return found


def _conversation(session: Session, patient: Patient, channel: Channel, now: datetime) -> Conversation:
    if channel not in STAFF_CHANNELS:
        raise ActionRefused(Reason.CHANNEL_NOT_SUPPORTED)
    verdict = preflight(session, patient, channel, now)
    if verdict.action is gates.Action.SUPPRESS:
        raise NotSent(verdict.reason or "suppressed")
    address = channel_address(patient, channel)
    assert address is not None  # the gates refuse an unreachable patient
    return get_or_create_conversation(session, patient_id=patient.id, channel=channel, address=address)


def do_send_message(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    text: str,
    staff_id: int,
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[Message, int | None]:
    """Staff start contact: outreach through `do_staff_message` (the gates are checked now, so a refusal
    is shown at once, and again when it goes). Returns the message and the outbox id to kick."""
    sent = do_staff_message(
        session,
        patient=patient,
        channel=channel,
        outbound=text,
        kind=OutboxKind.OUTREACH,
        staff_id=staff_id,
        action="patient.message",
        refused_action="patient.message_refused",
        ip=ip,
        now=now,
    )
    if sent.refused is not None or sent.message is None:
        raise NotSent(sent.refused or "suppressed")
    return sent.message, sent.outbox_id


def published_questionnaires(session: Session) -> list[QuestionnaireVersion]:
    """The latest published version of each questionnaire."""
    latest = (
        sa.select(QuestionnaireVersion.questionnaire_id, sa.func.max(QuestionnaireVersion.version).label("v"))
        .group_by(QuestionnaireVersion.questionnaire_id)
        .subquery()
    )
    return list(
        session.scalars(
            sa.select(QuestionnaireVersion)
            .join(
                latest,
                sa.and_(
                    QuestionnaireVersion.questionnaire_id == latest.c.questionnaire_id,
                    QuestionnaireVersion.version == latest.c.v,
                ),
            )
            .order_by(QuestionnaireVersion.questionnaire_id)
        )
    )


def do_send_questionnaire(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    questionnaire_id: str,
    user: StaffUser,
    ip: str | None = None,
    now: datetime | None = None,
) -> int | None:
    """Start a response and send its form link, as the follow-up dispatcher does. The response belongs to
    the patient's latest visit in the sender's departments, so its findings reach that department's inbox.
    Returns the outbox id."""
    now = now or utcnow()
    staff_id = user.id
    version = latest_version(session, questionnaire_id)
    if version is None:
        raise ActionRefused(Reason.NOT_PUBLISHED)
    conversation = _conversation(session, patient, channel, now)
    lang = pick_language(patient.language)
    response = do_start_response(
        session, version=version, patient_id=patient.id, channel=channel, language=lang, now=now
    )
    visit = latest_visit(session, patient.id, department_ids(user))
    if visit is not None:
        response.encounter_id, response.department_id = visit.id, visit.department_id
    item_id = do_send_form_invite(
        session,
        response=response,
        channel=channel,
        address=conversation.address,
        lang=lang,
        now=now,
        staff_id=staff_id,
    )
    audit.record(
        session,
        "patient.questionnaire_sent",
        staff_id=staff_id,
        patient_id=patient.id,
        subject=("response", response.id),
        ip=ip,
        channel=channel.value,
        questionnaire=questionnaire_id,
        outbox_id=item_id,
    )
    return item_id

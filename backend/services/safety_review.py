"""The safety review queue: inbound messages staff say the bot should have escalated.

Anyone who may open the conversation marks a message; reviewers (roles that see every department) list
the queue, mark entries reviewed, and export it as the next cases for the safety evaluation set
(nlu/: the bench reads text, language and the category the reviewer expected).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Conversation, Direction, Message, MissedEscalation, StaffUser
from backend.models.base import utcnow
from backend.security.permissions import Permission, may
from backend.services import audit, patients
from backend.services.refusal import ActionRefused, Reason
from nlu.language_id import detect
from nlu.safety import Emergency

MAX_NOTE = 1000
# What can refuse the plain button beside a message (it sends no category and no note); the pages that
# show it translate these.
BUTTON_REFUSALS = frozenset({Reason.NOT_A_PATIENT_MESSAGE, Reason.OUTSIDE_DEPARTMENTS, Reason.ALREADY_MARKED})
EXPORT_COLUMNS = (
    "id",
    "message_id",
    "channel",
    "language",
    "text",
    "expected",
    "note",
    "marked_at",
    "reviewed",
)


def may_review(user: StaffUser) -> bool:
    return may(user, Permission.SAFETY_REVIEW)


def do_mark_missed(
    session: Session,
    *,
    message_id: int,
    user: StaffUser,
    category: str | None,
    note: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MissedEscalation:
    """Put a patient's message in the review queue. Refused: not a patient's message, outside her
    departments, an unknown category, a note too long, or already in the queue."""
    message = session.get(Message, message_id)
    if message is None or message.direction is not Direction.INBOUND:
        raise ActionRefused(Reason.NOT_A_PATIENT_MESSAGE)
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    if conversation.patient_id is not None:
        if not patients.may_view(session, user, conversation.patient_id):
            raise ActionRefused(Reason.OUTSIDE_DEPARTMENTS)
    elif not may_review(user):
        raise ActionRefused(Reason.OUTSIDE_DEPARTMENTS)
    if category and category not in {e.value for e in Emergency}:
        raise ActionRefused(Reason.CATEGORY)
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ActionRefused(Reason.NOTE_LENGTH)
    entry = MissedEscalation(
        message_id=message_id,
        marked_by=user.id,
        category=category or None,
        note=note or None,
        created_at=now or utcnow(),
    )
    # the unique message id stops a second copy marked at the same instant
    if session.scalar(sa.select(MissedEscalation.id).where(MissedEscalation.message_id == message_id)):
        raise ActionRefused(Reason.ALREADY_MARKED)
    session.add(entry)
    session.flush()
    audit.record(
        session,
        "safety.missed_marked",
        staff_id=user.id,
        patient_id=conversation.patient_id,
        subject=("message", message_id),
        category=category or None,
        ip=ip,
    )
    return entry


def do_mark_reviewed(
    session: Session, *, entry_id: int, user: StaffUser, ip: str | None = None, now: datetime | None = None
) -> None:
    if not may_review(user):
        raise ActionRefused(Reason.NOT_A_REVIEWER)
    entry = session.get(MissedEscalation, entry_id)
    if entry is None:
        raise ActionRefused(Reason.MISSING)
    if entry.reviewed_at is None:
        entry.reviewed_by, entry.reviewed_at = user.id, now or utcnow()
        audit.record(
            session,
            "safety.missed_reviewed",
            staff_id=user.id,
            subject=("missed_escalation", entry.id),
            ip=ip,
        )


@dataclass(frozen=True)
class ReviewRow:
    entry: MissedEscalation
    message: Message
    marked_by: str

    @property
    def language(self) -> str:
        found = detect(self.message.text)
        return found.lang if found.confident and found.lang else ""


def queue(session: Session, *, pending_only: bool = True, limit: int = 500) -> list[ReviewRow]:
    """The queue, newest first (reviewers only: the caller checks may_review)."""
    query = (
        sa.select(MissedEscalation, Message, StaffUser.display_name)
        .join(Message, Message.id == MissedEscalation.message_id)
        .join(StaffUser, StaffUser.id == MissedEscalation.marked_by)
        .order_by(MissedEscalation.created_at.desc(), MissedEscalation.id.desc())
        .limit(limit)
    )
    if pending_only:
        query = query.where(MissedEscalation.reviewed_at.is_(None))
    return [ReviewRow(entry, message, name) for entry, message, name in session.execute(query)]


def export_csv(rows: list[ReviewRow]) -> str:
    """The rows the page shows, as CSV: what the evaluation set needs (text, language, expected)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.entry.id,
                row.message.id,
                row.message.channel.value,
                row.language,
                row.message.text,
                row.entry.category or "",
                row.entry.note or "",
                row.entry.created_at.isoformat(),
                "yes" if row.entry.reviewed_at else "no",
            )
        )
    return out.getvalue()

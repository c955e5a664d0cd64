"""Patients' replies on external channels for staff triage: the filtered list and marking them handled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from backend.models import (
    Conversation,
    Direction,
    Encounter,
    EncounterKind,
    Message,
    OutboxItem,
    Patient,
    StaffUser,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import EXTERNAL
from backend.security.identifiers import mask_phone
from backend.services import audit
from backend.services.message_log import (
    PAGE_SIZE,
    Cursor,
    InvalidFilter,
    Page,
    before,
    latest_encounter,
    parse_choice,
    parse_id,
    text_value,
)
from backend.services.patients import scoped_to_user

# a content search decrypts replies newest first, this many per statement, and no more than the bound
CONTENT_SCAN_CHUNK = 500
CONTENT_SCAN_BOUND = 20_000

FLAGS = {"": None, "yes": True, "no": False}


@dataclass(frozen=True)
class ReplyFilters:
    patient_type: EncounterKind | None = None  # kind of the patient's latest encounter
    department_id: int | None = None  # of the patient's latest encounter
    content: str = ""  # part of the reply's text
    template_key: str | None = None  # of the last outbox item in the conversation before the reply
    handled: bool | None = None
    invalid: bool | None = None

    def audit_detail(self) -> dict[str, Any]:
        """What the audit row may say about the search: never the searched text."""
        return {
            "patient_type": self.patient_type.value if self.patient_type else None,
            "department": self.department_id,
            "content_search": bool(self.content),
            "template": self.template_key,
            "handled": self.handled,
            "invalid": self.invalid,
        }


@dataclass(frozen=True)
class ReplyRow:
    message: Message
    patient_id: int | None  # None: a sender no patient record matches
    patient_name: str
    phone: str  # masked
    patient_type: EncounterKind | None
    department_id: int | None
    template_key: str | None
    handled_by: str | None = None  # the name of who handled it


def _flag(values: Mapping[str, str], name: str) -> bool | None:
    text = text_value(values, name)
    if text not in FLAGS:
        raise InvalidFilter(name)
    return FLAGS[text]


def parse_reply_filters(values: Mapping[str, str]) -> ReplyFilters:
    """The reply list's filters from form or query values; raises InvalidFilter naming the bad one."""
    return ReplyFilters(
        patient_type=parse_choice(values, "patient_type", EncounterKind),
        department_id=parse_id(values, "department"),
        content=text_value(values, "content"),
        template_key=text_value(values, "template") or None,
        handled=_flag(values, "handled"),
        invalid=_flag(values, "invalid"),
    )


def _is_reply() -> list[ColumnElement[bool]]:
    return [Message.direction == Direction.INBOUND, Message.channel.in_(EXTERNAL)]


def _template_before_reply() -> Any:
    """The template key of the conversation's last outbox item before the reply, correlated to it."""
    earlier = aliased(Message)
    return (
        sa.select(OutboxItem.template_key)
        .join(earlier, earlier.id == OutboxItem.message_id)
        .where(earlier.conversation_id == Message.conversation_id, earlier.id < Message.id)
        .order_by(earlier.id.desc())
        .limit(1)
        .correlate(Message)
        .scalar_subquery()
    )


def replies(
    session: Session,
    *,
    user: StaffUser,
    filters: ReplyFilters,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> Page[ReplyRow]:
    """Newest first, one SQL statement whatever the page size."""
    handler = aliased(StaffUser)
    template = _template_before_reply()
    kind = latest_encounter(Encounter.kind)
    department = latest_encounter(Encounter.department_id)
    query = (
        sa.select(
            Message,
            Conversation.patient_id,
            Patient.name,
            Patient.phone,
            kind,
            department,
            template,
            handler.display_name,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Patient, Patient.id == Conversation.patient_id)
        .outerjoin(handler, handler.id == Message.handled_by_staff_id)
        .where(*_is_reply())
        .where(*before(after, Message.created_at, Message.id))
    )
    if filters.patient_type is not None:
        query = query.where(kind == filters.patient_type)
    if filters.department_id is not None:
        query = query.where(department == filters.department_id)
    if filters.template_key is not None:
        query = query.where(template == filters.template_key)
    if filters.handled is not None:
        query = query.where(
            Message.handled_at.is_not(None) if filters.handled else Message.handled_at.is_(None)
        )
    if filters.invalid is not None:
        query = query.where(Message.invalid_reply == filters.invalid)
    query = scoped_to_user(query, user).order_by(Message.created_at.desc(), Message.id.desc())
    if filters.content:
        found = _containing(session, query, filters.content, limit + 1)
    else:
        found = list(session.execute(query.limit(limit + 1)).all())
    rows = [
        ReplyRow(
            message=message,
            patient_id=patient_id,
            patient_name=name or "",
            phone=mask_phone(phone) if phone else "",
            patient_type=EncounterKind(kind_value) if kind_value else None,
            department_id=department_id,
            template_key=template_key,
            handled_by=handled_by,
        )
        for message, patient_id, name, phone, kind_value, department_id, template_key, handled_by in found[
            :limit
        ]
    ]
    more = len(found) > limit
    return Page(rows, Cursor(rows[-1].message.created_at, rows[-1].message.id) if more else None)


def _containing(session: Session, query: sa.Select[Any], content: str, wanted: int) -> list[Any]:
    """Rows of `query` whose message contains `content` (any case). Message texts are encrypted, so the
    match is made here on chunks of the newest rows, scanning at most CONTENT_SCAN_BOUND of them: a
    search reaches that far back in one page, and the next page scans on from where this one stopped."""
    needle = content.casefold()
    found: list[Any] = []
    for offset in range(0, CONTENT_SCAN_BOUND, CONTENT_SCAN_CHUNK):
        chunk = session.execute(query.offset(offset).limit(CONTENT_SCAN_CHUNK)).all()
        found.extend(row for row in chunk if needle in row[0].text.casefold())
        if len(found) >= wanted or len(chunk) < CONTENT_SCAN_CHUNK:
            break
    return found[:wanted]


def reply_for(session: Session, *, user: StaffUser, message_id: int) -> Message | None:
    """The reply, if it is one and its patient is within the staff member's departments."""
    query = (
        sa.select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Patient, Patient.id == Conversation.patient_id)
        .where(Message.id == message_id, *_is_reply())
    )
    found: Message | None = session.scalar(scoped_to_user(query, user))
    return found


def _patient_of(session: Session, message: Message) -> int | None:
    return session.scalar(
        sa.select(Conversation.patient_id).where(Conversation.id == message.conversation_id)
    )


def do_mark_handled(
    session: Session, *, message: Message, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> bool:
    """Record who dealt with the reply. A reply already handled keeps its first handler; returns False."""
    if message.handled_at is not None:
        return False
    message.handled_at = now or utcnow()
    message.handled_by_staff_id = staff_id
    audit.record(
        session,
        "reply.handled",
        staff_id=staff_id,
        patient_id=_patient_of(session, message),
        subject=("message", message.id),
        ip=ip,
    )
    return True


def do_mark_invalid(session: Session, *, message: Message, staff_id: int, ip: str | None = None) -> bool:
    """Flag the reply as not a valid answer (noise, wrong number, unparseable); returns False if it was."""
    if message.invalid_reply:
        return False
    message.invalid_reply = True
    audit.record(
        session,
        "reply.invalid",
        staff_id=staff_id,
        patient_id=_patient_of(session, message),
        subject=("message", message.id),
        ip=ip,
    )
    return True

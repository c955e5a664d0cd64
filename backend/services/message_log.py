"""The staff message log: outbox items filtered, limited to the viewer's departments, a page at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.models import Encounter, Message, OutboxAttempt, OutboxItem, OutboxStatus, Patient, StaffUser
from backend.outbox.enqueue import EXTERNAL
from backend.security.identifiers import InvalidPhoneNumber, mask_phone
from backend.services.anonymity import visible_messages
from backend.services.ids import parse_id as parse_ids
from backend.services.patients import name_matches, scoped_to_user
from bots.domain import Channel

PAGE_SIZE = 50
MAX_TEXT = 100  # longest free-text filter accepted
SYSTEM: Literal["system"] = "system"
# Filters that may identify a patient: only ever sent in a POST body, never read from a URL.
SENSITIVE_FIELDS = frozenset({"patient", "phone", "content"})
CHANNELS = tuple(sorted(EXTERNAL))

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


class InvalidFilter(ValueError):
    """A filter value the page cannot use; `field` is the form field, to tell staff which one."""

    def __init__(self, field: str) -> None:
        super().__init__(f"invalid value for {field}")
        self.field = field


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the page after it starts with rows older than (at, id)."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.at.isoformat()}|{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            at, ident = text.split("|")
            when = datetime.fromisoformat(at)
            if when.tzinfo is None:
                raise ValueError("naive")
            return cls(when, int(ident))
        except ValueError as exc:
            raise InvalidFilter("after") from exc


@dataclass(frozen=True)
class Period:
    """From the start of `start` to the end of `end` (inclusive dates, UTC); either may be open."""

    start: datetime | None = None
    end: datetime | None = None  # exclusive instant

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions


@dataclass(frozen=True)
class LogFilters:
    period: Period = field(default_factory=Period)
    patient: str = ""  # part of a name, or a whole MRN
    phone_index: str | None = None  # blind index of the typed number; the number itself is not kept
    channel: Channel | None = None
    department_id: int | None = None  # of the patient's latest encounter
    template_key: str | None = None
    sender: int | Literal["system"] | None = None  # a staff id, or queued by the system
    status: OutboxStatus | None = None

    def audit_detail(self) -> dict[str, Any]:
        """What the audit row may say about the search: no names, MRNs or phone numbers."""
        return {
            "start": self.period.start.isoformat() if self.period.start else None,
            "end": self.period.end.isoformat() if self.period.end else None,
            "patient_search": bool(self.patient),
            "phone_search": self.phone_index is not None,
            "channel": self.channel.value if self.channel else None,
            "department": self.department_id,
            "template": self.template_key,
            "sender": self.sender,
            "status": self.status.value if self.status else None,
        }


@dataclass(frozen=True)
class LogRow:
    item: OutboxItem
    patient_name: str
    phone: str  # masked
    sender: str | None  # the staff member's name; None when the system queued it
    history: list[OutboxAttempt] = field(default_factory=list)  # oldest first: time, outcome, code, ms

    @property
    def error_code(self) -> str:
        """`last_error` is "<code> <reason>"; the list shows the code, the reason goes in a tooltip."""
        return (self.item.last_error or "").split(" ", 1)[0]


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_cursor: Cursor | None


# --- parsing form values --------------------------------------------------------------------------


def text_value(values: Mapping[str, str], name: str) -> str:
    text = values.get(name, "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidFilter(name)
    return text


def parse_period(values: Mapping[str, str]) -> Period:
    def day(name: str) -> date | None:
        text = text_value(values, name)
        try:
            return date.fromisoformat(text) if text else None
        except ValueError as exc:
            raise InvalidFilter(name) from exc

    start, end = day("start"), day("end")
    return Period(
        start=datetime.combine(start, time(), UTC) if start else None,
        end=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
    )


def parse_choice(
    values: Mapping[str, str], name: str, enum: type[E], allowed: tuple[E, ...] = ()
) -> E | None:
    text = text_value(values, name)
    if not text:
        return None
    try:
        chosen = enum(text)
    except ValueError as exc:
        raise InvalidFilter(name) from exc
    if allowed and chosen not in allowed:
        raise InvalidFilter(name)
    return chosen


def parse_id(values: Mapping[str, str], name: str) -> int | None:
    text = text_value(values, name)
    if not text:
        return None
    value = parse_ids(text)
    if value is None:
        raise InvalidFilter(name)
    return value


def parse_cursor(values: Mapping[str, str]) -> Cursor | None:
    text = text_value(values, "after")
    return Cursor.decode(text) if text else None


def parse_log_filters(values: Mapping[str, str]) -> LogFilters:
    """The log's filters from form or query values; raises InvalidFilter naming the first bad one."""
    phone = text_value(values, "phone")
    try:
        phone_index = Patient.phone_index(phone) if phone else None
    except InvalidPhoneNumber as exc:
        raise InvalidFilter("phone") from exc
    sender_text = text_value(values, "sender")
    sender: int | Literal["system"] | None = SYSTEM if sender_text == SYSTEM else parse_id(values, "sender")
    return LogFilters(
        period=parse_period(values),
        patient=text_value(values, "patient"),
        phone_index=phone_index,
        channel=parse_choice(values, "channel", Channel, CHANNELS),
        department_id=parse_id(values, "department"),
        template_key=text_value(values, "template") or None,
        sender=sender,
        status=parse_choice(values, "status", OutboxStatus),
    )


# --- queries -------------------------------------------------------------------------------------


def latest_encounter(column: Any) -> Any:
    """A column of the patient's latest encounter, correlated to `Patient` in the enclosing query."""
    return (
        sa.select(column)
        .where(Encounter.patient_id == Patient.id)
        .order_by(Encounter.started_at.desc(), Encounter.id.desc())
        .limit(1)
        .correlate(Patient)
        .scalar_subquery()
    )


def patient_matches(text: str) -> ColumnElement[bool]:
    """A patient by name tokens or exact MRN, both through blind indexes (names are encrypted)."""
    by_name = name_matches(text)
    return sa.or_(
        *([by_name] if by_name is not None else []),
        Patient.mrn_bidx == Patient.code_index("mrn", text),
    )


def phone_matches(phone_index: str) -> ColumnElement[bool]:
    return sa.or_(Patient.phone_bidx == phone_index, Patient.whatsapp_bidx == phone_index)


def before(cursor: Cursor | None, at: Any, ident: Any) -> list[ColumnElement[bool]]:
    if cursor is None:
        return []
    return [sa.or_(at < cursor.at, sa.and_(at == cursor.at, ident < cursor.id))]


def message_log(
    session: Session,
    *,
    user: StaffUser,
    filters: LogFilters,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> Page[LogRow]:
    """Newest first, two SQL statements whatever the page size (the rows, then their attempts)."""
    query = cast(
        "sa.Select[Any]",  # the scoping helper takes any select over patients
        sa.select(OutboxItem, Patient.name, Patient.phone, StaffUser.display_name)
        .join(Patient, Patient.id == OutboxItem.patient_id)
        .outerjoin(StaffUser, StaffUser.id == OutboxItem.created_by_staff_id)
        .where(*filters.period.where(OutboxItem.created_at))
        .where(*before(after, OutboxItem.created_at, OutboxItem.id)),
    )
    if filters.patient:
        query = query.where(patient_matches(filters.patient))
    if filters.phone_index is not None:
        query = query.where(phone_matches(filters.phone_index))
    if filters.channel is not None:
        query = query.where(OutboxItem.channel == filters.channel)
    if filters.department_id is not None:
        query = query.where(latest_encounter(Encounter.department_id) == filters.department_id)
    if filters.template_key is not None:
        query = query.where(OutboxItem.template_key == filters.template_key)
    if filters.sender == SYSTEM:
        query = query.where(OutboxItem.created_by_staff_id.is_(None))
    elif filters.sender is not None:
        query = query.where(OutboxItem.created_by_staff_id == filters.sender)
    if filters.status is not None:
        query = query.where(OutboxItem.status == filters.status)
    hidden = visible_messages(user)
    if hidden:
        query = query.join(Message, Message.id == OutboxItem.message_id).where(*hidden)
    query = scoped_to_user(query, user).order_by(OutboxItem.created_at.desc(), OutboxItem.id.desc())
    found = session.execute(query.limit(limit + 1)).all()
    rows = [
        LogRow(item=item, patient_name=name, phone=mask_phone(phone) if phone else "", sender=sender)
        for item, name, phone, sender in found[:limit]
    ]
    attach_history(session, rows)
    more = len(found) > limit
    return Page(rows, Cursor(rows[-1].item.created_at, rows[-1].item.id) if more else None)


def attach_history(session: Session, rows: list[LogRow]) -> None:
    """Each row's attempts to hand the item to its provider, in one query for the page."""
    by_item = {row.item.id: row for row in rows}
    if not by_item:
        return
    attempts = session.scalars(
        sa.select(OutboxAttempt).where(OutboxAttempt.outbox_id.in_(by_item)).order_by(OutboxAttempt.id)
    )
    for attempt in attempts:
        by_item[attempt.outbox_id].history.append(attempt)


def template_keys(session: Session) -> list[str]:
    column = OutboxItem.template_key
    return list(session.scalars(sa.select(column).where(column.is_not(None)).distinct().order_by(column)))


def senders(session: Session) -> list[StaffUser]:
    """Staff members who have queued at least one message, for the sender filter."""
    queued = sa.select(OutboxItem.created_by_staff_id).where(OutboxItem.created_by_staff_id.is_not(None))
    return list(
        session.scalars(sa.select(StaffUser).where(StaffUser.id.in_(queued)).order_by(StaffUser.display_name))
    )

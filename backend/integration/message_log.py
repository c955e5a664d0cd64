"""The HL7 message log as staff with the integration role see it: filtered lists and one message parsed.

Queries only; the staff pages (list with filters, parsed view, "reprocess" on held messages through
`Receiver.reprocess`) call these. Opening a message's content is audited: it holds patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.integration.hl7_parse import Unparseable, decode, normalise_segments, sniff_header
from backend.models import Hl7Message, Hl7Status
from backend.services import audit


@dataclass(frozen=True, slots=True)
class LogFilter:
    status: Hl7Status | None = None
    message_type: str | None = None  # "ADT^A03", or a prefix such as "ADT"
    sending_facility: str | None = None
    control_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_messages(
    session: Session, f: LogFilter, *, limit: int = 50, before_id: int | None = None
) -> list[Hl7Message]:
    """Newest first; page on with `before_id` (the last id shown). The payload column is not loaded."""
    query = sa.select(Hl7Message).options(sa.orm.defer(Hl7Message.payload)).order_by(Hl7Message.id.desc())
    if f.status is not None:
        query = query.where(Hl7Message.status == f.status)
    if f.message_type:
        query = query.where(Hl7Message.message_type.startswith(f.message_type, autoescape=True))
    if f.sending_facility:
        query = query.where(Hl7Message.sending_facility == f.sending_facility)
    if f.control_id:
        query = query.where(Hl7Message.control_id == f.control_id)
    if f.since is not None:
        query = query.where(Hl7Message.received_at >= f.since)
    if f.until is not None:
        query = query.where(Hl7Message.received_at < f.until)
    if before_id is not None:
        query = query.where(Hl7Message.id < before_id)
    return list(session.scalars(query.limit(limit)))


@dataclass(frozen=True, slots=True)
class ParsedSegment:
    name: str
    fields: tuple[tuple[str, str], ...]  # ("PID-3", "MRN0001^^^HOSP^MR"), empty fields left out


def parsed_view(
    session: Session, message_id: int, *, staff_id: int, fallback_charset: str = "gb18030"
) -> tuple[Hl7Message, list[ParsedSegment] | None]:
    """The message and its segments field by field (None when it could not be read); audited."""
    row = session.get_one(Hl7Message, message_id)
    audit.record(
        session,
        "integration.message_view",
        staff_id=staff_id,
        patient_id=row.patient_id,
        subject=("hl7_message", row.id),
    )
    try:
        text, _ = decode(row.payload, sniff_header(row.payload), fallback_charset)
    except Unparseable:
        return row, None
    segments = []
    for line in normalise_segments(text).split("\r"):
        separator = line[3:4] if line.startswith("MSH") else "|"
        parts = line.split(separator)
        name = parts[0]
        offset = 1 if name == "MSH" else 0  # MSH-1 is the separator itself
        fields = tuple(
            (f"{name}-{index + offset}", value) for index, value in enumerate(parts[1:], start=1) if value
        )
        segments.append(ParsedSegment(name=name, fields=fields))
    return row, segments

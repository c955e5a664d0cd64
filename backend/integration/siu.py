"""HL7 v2 SIU scheduling messages (S12 booked, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted,
S26 no-show) read into appointment facts and applied through the HIS appointment verbs, in the
receiver's transaction.

Fields read: SCH-1/SCH-2 (placer and filler appointment ids; the filler id with its namespace is the
key), the start from TQ1-7 or SCH-11.4, the end from TQ1-8 or SCH-11.5, else the start plus a duration
(TQ1-6, SCH-9/SCH-10, SCH-11.3, AIS-7/AIS-8), SCH-6/SCH-7 reasons, PID as ADT reads it, AIL-3 (clinic
location: department code and facility), AIP-3 (doctor code) and AIS-3 (service). Each required or
malformed field raises InvalidField naming it, for the ACK's ERR segment.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.integration.adt import Applied, ApplyConfig, do_upsert_message_patient
from backend.integration.adt_content import adt_content
from backend.integration.facts import AppointmentFacts, CodedValue, Identifier
from backend.integration.his_appointments import (
    do_apply_his_appointment,
    do_cancel_his_appointment,
    do_mark_his_no_show,
)
from backend.integration.hl7_parse import ErrorCode, Header, InvalidField, parse_timestamp, segments, value_at
from backend.integration.records import Notes
from backend.models import Hl7Status
from backend.models.base import utcnow
from backend.services.booking import HOSPITAL_SOURCE

log = logging.getLogger(__name__)
BOOKED, RESCHEDULED, MODIFIED, CANCELLED = "S12", "S13", "S14", "S15"
DELETED, NO_SHOW = "S17", "S26"
EVENTS = {BOOKED, RESCHEDULED, MODIFIED, CANCELLED, DELETED, NO_SHOW}
CANCEL_REASONS = {CANCELLED: "hospital", DELETED: "deleted"}  # S17: the booking was made in error
DEFAULT_MINUTES = 15  # when the message gives neither an end nor a duration
UNIT_MINUTES = {
    "S": 1 / 60, "SEC": 1 / 60, "SECOND": 1 / 60, "SECONDS": 1 / 60,
    "M": 1, "MIN": 1, "MINUTE": 1, "MINUTES": 1,
    "H": 60, "HR": 60, "HOUR": 60, "HOURS": 60,
    "D": 1440, "DAY": 1440, "DAYS": 1440,
}  # fmt: skip
_TQ_DURATION = re.compile(r"^([SMHD])(\d+)$")  # TQ-3 as in "M30" (thirty minutes)


def handled(header: Header) -> bool:
    return header.message_code == "SIU" and header.trigger in EVENTS


def _coded(segment: Any, position: int) -> CodedValue | None:
    code = value_at(segment, position, 1, 1)[:64]
    if not code:
        return None
    return CodedValue(
        code=code, text=value_at(segment, position, 1, 2)[:200], system=value_at(segment, position, 1, 3)
    )


def _minutes(amount: str, units: str, segment: str, position: int) -> timedelta | None:
    if not amount:
        return None
    factor = UNIT_MINUTES.get((units or "MIN").upper())
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if factor is None or value <= 0:
        raise InvalidField(
            segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is not a duration"
        )
    return timedelta(minutes=value * factor)


def _duration(sch: Any, tq1: Any | None, ais: Any | None) -> timedelta | None:
    if tq1 is not None:
        found = _minutes(value_at(tq1, 6, 1, 1), value_at(tq1, 6, 1, 2), "TQ1", 6)
        if found is not None:
            return found
    found = _minutes(value_at(sch, 9), value_at(sch, 10, 1, 1), "SCH", 9)
    if found is not None:
        return found
    tq = value_at(sch, 11, 1, 3).upper()
    if tq:
        match = _TQ_DURATION.match(tq)
        if match is None:
            raise InvalidField("SCH", 11, ErrorCode.DATA_TYPE_ERROR, "SCH-11.3 is not a duration such as M30")
        return _minutes(match.group(2), match.group(1), "SCH", 11)
    if ais is not None:
        return _minutes(value_at(ais, 7), value_at(ais, 8, 1, 1), "AIS", 7)
    return None


def _timing(sch: Any, tq1: Any | None, ais: Any | None, config: ApplyConfig) -> tuple[datetime, datetime]:
    start = end = None
    if tq1 is not None:
        start = parse_timestamp(value_at(tq1, 7), config.zone, "TQ1", 7)
        end = parse_timestamp(value_at(tq1, 8), config.zone, "TQ1", 8)
    if start is None:
        start = parse_timestamp(value_at(sch, 11, 1, 4), config.zone, "SCH", 11)
        end = end or parse_timestamp(value_at(sch, 11, 1, 5), config.zone, "SCH", 11)
    if start is None:
        raise InvalidField(
            "SCH", 11, ErrorCode.REQUIRED_FIELD_MISSING, "no appointment start time (SCH-11.4 or TQ1-7)"
        )
    if end is None:
        end = start + (_duration(sch, tq1, ais) or timedelta(minutes=DEFAULT_MINUTES))
    if end <= start:
        raise InvalidField("SCH", 11, ErrorCode.DATA_TYPE_ERROR, "the appointment ends before it starts")
    return start, end


def _first(message: Any, name: str) -> Any | None:
    found = segments(message, name)
    return found[0] if found else None


def _sch(message: Any) -> Any:
    sch = _first(message, "SCH")
    if sch is None:
        raise InvalidField("SCH", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no SCH segment")
    return sch


def filler_id(message: Any, header: Header) -> Identifier:
    """SCH-2 with its namespace (SCH-2.2, else SCH-2.3, else the sending facility): the appointment's key."""
    sch = _sch(message)
    filler = value_at(sch, 2, 1, 1)[:64]
    if not filler:
        raise InvalidField(
            "SCH", 2, ErrorCode.REQUIRED_FIELD_MISSING, "SCH-2 (filler appointment id) is empty"
        )
    authority = value_at(sch, 2, 1, 2) or value_at(sch, 2, 1, 3) or header.sending_facility
    return Identifier(value=filler, authority=(authority or header.sending_application)[:180])


def siu_facts(message: Any, header: Header, config: ApplyConfig) -> AppointmentFacts:
    """The appointment facts of a booking, move or change (pure)."""
    filler = filler_id(message, header)
    sch = _sch(message)
    tq1, ais, ail, aip = (_first(message, name) for name in ("TQ1", "AIS", "AIL", "AIP"))
    starts_at, ends_at = _timing(sch, tq1, ais, config)
    department = None
    if ail is not None and value_at(ail, 3, 1, 1):
        department = CodedValue(code=value_at(ail, 3, 1, 1)[:64], text=value_at(ail, 3, 1, 9)[:200])
    doctor = None
    if aip is not None and value_at(aip, 3, 1, 1):
        family, given = value_at(aip, 3, 1, 2), value_at(aip, 3, 1, 3)
        doctor = CodedValue(code=value_at(aip, 3, 1, 1)[:64], text=f"{family} {given}".strip()[:200])
    return AppointmentFacts(
        filler=filler,
        starts_at=starts_at,
        ends_at=ends_at,
        placer_id=value_at(sch, 1, 1, 1)[:64],
        department=department,
        facility=value_at(ail, 3, 1, 4)[:64] if ail is not None else "",
        doctor=doctor,
        service=_coded(ais, 3) if ais is not None else None,
        reason=_coded(sch, 7),
    )


def apply_siu(session: Session, message: Any, header: Header, config: ApplyConfig) -> Applied:
    """Apply one parsed SIU message in the caller's transaction. Raises InvalidField (AE),
    IdentityConflict or UnknownAppointment (held)."""
    if not handled(header):
        return Applied(Hl7Status.IGNORED, f"{header.message_type} ignored: not an event CareLoop uses")
    # a cancellation, deletion or no-show needs only the key; a booking, move or change is checked whole
    # before anything is written
    facts = (
        None
        if header.trigger in CANCEL_REASONS or header.trigger == NO_SHOW
        else siu_facts(message, header, config)
    )
    filler = filler_id(message, header)
    content = adt_content(
        message, header, zone=config.zone, needs_visit=False, mrn_authorities=config.mrn_authorities
    )
    source = f"{HOSPITAL_SOURCE}{header.trigger}"  # what marks the appointment as the hospital's
    notes = Notes()
    patient = do_upsert_message_patient(session, content, source, config, notes)
    now = utcnow()
    if header.trigger == NO_SHOW:
        appointment = do_mark_his_no_show(
            session, patient, filler, event=header.trigger, notes=notes, now=now
        )
    elif facts is None:
        appointment = do_cancel_his_appointment(
            session, patient, filler, event=header.trigger, notes=notes, now=now,
            reason=CANCEL_REASONS[header.trigger],
        )  # fmt: skip
    else:
        appointment = do_apply_his_appointment(
            session,
            patient,
            facts,
            event=header.trigger,
            moved=header.trigger == RESCHEDULED,
            source=source,
            mapping_source=header.sending_facility or header.sending_application,
            zone=config.default_timezone,
            notes=notes,
            now=now,
        )
    log.info("hl7 %s: appointment %s %s", header.control_id, appointment.id, header.trigger)
    return Applied(Hl7Status.APPLIED, str(notes), patient_id=patient.id)

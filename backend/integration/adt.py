"""ADT trigger events mapped to the shared verbs: which event touches the patient, the visit, or both."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from backend.integration.adt_content import AdtContent, adt_content
from backend.integration.facts import Identifier, VisitEvent
from backend.integration.hl7_parse import ErrorCode, Header, InvalidField
from backend.integration.merges import do_merge_patients
from backend.integration.records import (
    Notes,
    do_apply_visit,
    do_cancel_visit,
    do_record_death,
    do_upsert_patient,
    find_patient,
)
from backend.models import Hl7Status, Patient

log = logging.getLogger(__name__)

# Events about a visit need PV1-19; A28/A31 are about the person only; A08 may be either.
VISIT_EVENTS: dict[str, VisitEvent] = {
    "A01": VisitEvent.ADMIT,
    "A04": VisitEvent.ADMIT,
    "A05": VisitEvent.ADMIT,
    "A02": VisitEvent.TRANSFER,
    "A06": VisitEvent.UPDATE,
    "A07": VisitEvent.UPDATE,
    "A12": VisitEvent.UPDATE,  # cancel transfer: PV1-3 carries the location the patient is back in
    "A03": VisitEvent.DISCHARGE,
    "A13": VisitEvent.CANCEL_DISCHARGE,
}
PERSON_EVENTS = {"A28", "A31"}
CANCEL_ADMIT = "A11"  # cancel admit / visit notification
MERGE = "A40"  # merge patient: patient identifier list
EITHER_EVENTS = {"A08": VisitEvent.UPDATE}


@dataclass(frozen=True, slots=True)
class ApplyConfig:
    zone: ZoneInfo
    default_language: str
    default_timezone: str
    region: str
    death_dispositions: frozenset[str]
    mrn_authorities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Applied:
    status: Hl7Status
    outcome: str
    patient_id: int | None = None
    encounter_id: int | None = None


def handled(header: Header) -> bool:
    trigger = header.trigger
    return header.message_code == "ADT" and (
        trigger in VISIT_EVENTS
        or trigger in PERSON_EVENTS
        or trigger in EITHER_EVENTS
        or trigger in {CANCEL_ADMIT, MERGE}
    )


def do_upsert_message_patient(
    session: Session, content: AdtContent, source: str, config: ApplyConfig, notes: Notes
) -> Patient:
    """The patient a message's PID names, created or updated (ADT and SIU alike)."""
    if content.patient is None:  # adt_content raises first; kept for the type checker
        raise InvalidField("PID", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no PID segment")
    return do_upsert_patient(
        session,
        content.patient,
        source=source,
        default_language=config.default_language,
        default_timezone=config.default_timezone,
        region=config.region,
        notes=notes,
    )


def apply_adt(session: Session, message: Any, header: Header, config: ApplyConfig) -> Applied:
    """Apply one parsed message in the caller's transaction. Raises InvalidField (AE) or IdentityConflict."""
    if not handled(header):
        log.info("hl7 %s from %s ignored", header.message_type, header.sending_facility)
        return Applied(Hl7Status.IGNORED, f"{header.message_type} ignored: not an event CareLoop uses")
    trigger = header.trigger
    event = VISIT_EVENTS.get(trigger) or EITHER_EVENTS.get(trigger)
    needs_visit = trigger in VISIT_EVENTS or trigger == CANCEL_ADMIT
    content = adt_content(
        message, header, zone=config.zone, needs_visit=needs_visit, mrn_authorities=config.mrn_authorities
    )
    source = f"hl7:{trigger}"
    mapping_source = header.sending_facility or header.sending_application
    notes = Notes()
    patient = do_upsert_message_patient(session, content, source, config, notes)
    encounter = None
    if trigger == CANCEL_ADMIT and content.encounter is not None:
        do_cancel_visit(session, patient, content.encounter.visit, source=source, notes=notes)
        return Applied(Hl7Status.APPLIED, str(notes), patient_id=patient.id)
    if trigger == MERGE:
        _merge(session, patient, content.merge_from, source, notes)
        return Applied(Hl7Status.APPLIED, str(notes), patient_id=patient.id)
    if event is not None and content.encounter is not None and trigger not in PERSON_EVENTS:
        at = content.event_time or content.encounter.started_at
        if at is None:
            raise InvalidField("EVN", 2, ErrorCode.REQUIRED_FIELD_MISSING, "no event time (EVN-2, MSH-7)")
        encounter = do_apply_visit(
            session,
            patient,
            content.encounter,
            event,
            at=at,
            source=source,
            mapping_source=mapping_source,
            notes=notes,
        )
    died = (content.patient is not None and content.patient.deceased) or (
        event is VisitEvent.DISCHARGE
        and content.encounter is not None
        and content.encounter.disposition in config.death_dispositions
    )
    if died:
        do_record_death(session, patient, source=source, notes=notes)
    return Applied(
        Hl7Status.APPLIED,
        str(notes),
        patient_id=patient.id,
        encounter_id=encounter.id if encounter is not None else None,
    )


def _merge(
    session: Session, survivor: Patient, prior: tuple[Identifier, ...], source: str, notes: Notes
) -> None:
    if not prior:
        raise InvalidField(
            "MRG", 1, ErrorCode.REQUIRED_FIELD_MISSING, "MRG-1 (prior patient identifiers) is empty"
        )
    old = find_patient(session, prior)
    if old is None:
        notes.add("prior patient unknown: nothing to merge")
    elif old.id == survivor.id:
        notes.add("already one patient")
    else:
        merge = do_merge_patients(session, old, survivor, source=source)
        notes.add(f"patient merged ({sum(merge.moved.values())} rows moved)")

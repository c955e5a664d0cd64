"""What outside facts do to a visit and its visit-number link, without I/O: the one copy of the rules the
single visit verb (`records.do_apply_visit`) and the batched one (`visits.do_apply_visits`) both apply, so
a visit from an HL7 message and the same visit from an import file end alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.integration.facts import CodedValue, EncounterFacts, VisitEvent
from backend.models import CodeKind, Encounter, EncounterIdentifier, EncounterKind


def sent_codes(facts: EncounterFacts) -> dict[CodeKind, CodedValue]:
    """The hospital codes a visit came with, by kind."""
    return {
        kind: coded
        for kind, coded in (
            (CodeKind.WARD, facts.ward),
            (CodeKind.DEPARTMENT, facts.department),
            (CodeKind.DOCTOR, facts.attending_doctor),
        )
        if coded is not None
    }


@dataclass(slots=True)
class NewVisit:
    """A visit to insert in bulk (the batched verb): the fields of `Encounter` its insert writes, without
    the ORM's instrumentation, which cost more than the rules themselves for a file's chunk."""

    patient_id: int
    kind: EncounterKind
    started_at: datetime
    diagnoses: list[dict[str, str]] = field(default_factory=list)
    id: int | None = None
    external_id: str | None = None
    department_id: int | None = None
    ward_id: int | None = None
    ended_at: datetime | None = None
    primary_diagnosis: str | None = None
    procedure_code: str | None = None
    attending_doctor_id: int | None = None
    responsible_nurse_id: int | None = None


@dataclass(slots=True)
class NewLink:
    """A visit-number link to insert in bulk, as `NewVisit` is to `Encounter`."""

    authority: str
    visit_number: str
    placeholder: bool
    encounter_id: int | None = None
    mapping_source: str = ""
    department_code: str | None = None
    ward_code: str | None = None
    doctor_code: str | None = None
    patient_class: str | None = None
    last_event: str | None = None


AnyVisit = Encounter | NewVisit
AnyLink = EncounterIdentifier | NewLink


def _new_values(
    patient_id: int, facts: EncounterFacts, event: VisitEvent, at: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A visit not seen before and its link. Anything but an admission makes a placeholder that the
    admission later fills in."""
    visit = {
        "patient_id": patient_id,
        "kind": facts.kind or EncounterKind.OUTPATIENT,
        "started_at": facts.started_at or at,
        "diagnoses": [],
    }
    link = {
        "authority": facts.visit.authority,
        "visit_number": facts.visit.value,
        "placeholder": event is not VisitEvent.ADMIT,
    }
    return visit, link


def new_visit(
    patient_id: int, facts: EncounterFacts, event: VisitEvent, at: datetime
) -> tuple[Encounter, EncounterIdentifier]:
    """A visit not seen before and its link, unsaved (see `_new_values`)."""
    visit, link = _new_values(patient_id, facts, event, at)
    return Encounter(**visit), EncounterIdentifier(**link)


def new_plain_visit(
    patient_id: int, facts: EncounterFacts, event: VisitEvent, at: datetime
) -> tuple[NewVisit, NewLink]:
    """The same new visit and link as `new_visit`, as plain rows for a bulk insert."""
    visit, link = _new_values(patient_id, facts, event, at)
    return NewVisit(**visit), NewLink(**link)


def reconcile_placeholder(link: AnyLink, event: VisitEvent) -> bool:
    """The admission of a visit first seen through a later event: no longer a placeholder."""
    if link.placeholder and event is VisitEvent.ADMIT:
        link.placeholder = False
        return True
    return False


def place(
    encounter: AnyVisit,
    link: AnyLink,
    facts: EncounterFacts,
    mapping_source: str,
    targets: dict[CodeKind, int | None],
    ward_department: Callable[[int], int],
    holding: Callable[[], int],
) -> None:
    """The resolved codes onto the visit; the codes as sent onto its link. An unknown department (pending
    mapping) puts the visit in the holding department until an admin maps it."""
    link.mapping_source = mapping_source
    ward_id = targets.get(CodeKind.WARD)
    if facts.ward:
        link.ward_code = facts.ward.code
        encounter.ward_id = ward_id
    department_id = None
    if facts.department:
        link.department_code = facts.department.code
        department_id = targets.get(CodeKind.DEPARTMENT)
    if department_id is None and ward_id is not None:
        department_id = ward_department(ward_id)
    if department_id is not None:
        encounter.department_id = department_id
    elif facts.department or encounter.department_id is None:
        encounter.department_id = holding()
    if facts.attending_doctor:
        link.doctor_code = facts.attending_doctor.code
        encounter.attending_doctor_id = targets.get(CodeKind.DOCTOR)


def fill(
    encounter: AnyVisit,
    link: AnyLink,
    facts: EncounterFacts,
    event: VisitEvent,
    at: datetime,
    action: str,
) -> tuple[str, datetime | None]:
    """The facts' fields and the event onto the visit. Returns the audit action and the discharge time the
    visit had before."""
    link.patient_class = facts.patient_class or link.patient_class
    link.last_event = event.value[:8]
    if facts.kind is not None and not (
        facts.kind is EncounterKind.INPATIENT and encounter.ended_at is not None
    ):
        encounter.kind = facts.kind
    if facts.diagnoses:
        encounter.diagnoses = [
            {"system": d.system or "ICD-10", "code": d.code, "text": d.text} for d in facts.diagnoses
        ]
        encounter.primary_diagnosis = facts.diagnoses[0].code[:16]
    if facts.procedures:
        encounter.procedure_code = facts.procedures[0].code[:16]
    previous_end = encounter.ended_at
    if event is VisitEvent.DISCHARGE:
        encounter.ended_at = facts.ended_at or at
        if encounter.kind is EncounterKind.INPATIENT:
            encounter.kind = EncounterKind.DISCHARGE
        action = "encounter.discharged"
    elif event is VisitEvent.CANCEL_DISCHARGE:
        encounter.ended_at = None
        if encounter.kind is EncounterKind.DISCHARGE:
            encounter.kind = EncounterKind.INPATIENT
        action = "encounter.discharge_cancelled"
    elif facts.ended_at is not None and previous_end is not None:
        encounter.ended_at = facts.ended_at  # a corrected discharge time
    return action, previous_end


def times_moved(
    encounter: AnyVisit, event: VisitEvent, previous_start: datetime | None, previous_end: datetime | None
) -> bool:
    """Follow-ups not yet sent move with a corrected admission or discharge time (a discharge moves them
    when it changes an earlier discharge time; a cancelled discharge cancels them instead)."""
    if event is VisitEvent.DISCHARGE:
        return previous_end is not None and previous_end != encounter.ended_at
    if event is VisitEvent.CANCEL_DISCHARGE:
        return False
    return (previous_end is not None and encounter.ended_at != previous_end) or (
        previous_start is not None and encounter.started_at != previous_start
    )

"""Patient and Encounter writes from FHIR: create, update, conditional create (If-None-Exist) and
conditional update (by identifier), If-Match version checks. Every write ends in the verbs the HL7
listener uses (backend/integration/records.py), so exclusions, planning on discharge and deaths follow
the same rules whatever the source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.fhir.clients import Caller
from backend.fhir.outcome import FhirError, IssueType
from backend.fhir.params import Criteria
from backend.fhir.search import query
from backend.fhir.wire import (
    CANCELLED_STATUSES,
    DEATH_DISPOSITIONS,
    encounter_input,
    patient_facts,
    validate,
)
from backend.integration.facts import VisitEvent
from backend.integration.records import (
    IdentityConflict,
    Notes,
    do_apply_visit,
    do_cancel_visit,
    do_record_death,
    do_upsert_patient,
    find_patient,
)
from backend.models import Encounter, EncounterIdentifier, Patient
from backend.services.ids import parse_id

SOURCE = "fhir"


@dataclass(frozen=True, slots=True)
class Written:
    resource_type: str
    row_id: int | None  # None: the write removed the resource (a cancelled visit without history)
    patient_id: int
    created: bool
    notes: str


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header names (`W/"3"` or `"3"`); 400 when it names none."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise FhirError(
            400, IssueType.VALUE, f'If-Match {if_match!r}: expected W/"<versionId>"', expression="If-Match"
        )
    return int(text)


def check_version(resource_type: str, current: int, if_match: str | None) -> None:
    wanted = expected_version(if_match)
    if wanted is not None and wanted != current:
        raise FhirError(
            412, IssueType.CONFLICT,
            f"{resource_type} is at version {current}, not {wanted}: read it again and reapply your change",
        )  # fmt: skip


def matches(session: Session, resource_type: str, criteria: Criteria, caller: Caller) -> list[int]:
    """Ids matching a conditional create's or update's search (at most three: two already mean 412)."""
    spec_query = query(resource_type, criteria, caller.department_id).with_only_columns(
        Patient.id if resource_type == "Patient" else Encounter.id
    )
    return list(session.scalars(spec_query.limit(3)))


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.default_timezone)


def _check_body_id(data: Mapping[str, Any], row_id: int | None, resource_type: str) -> None:
    body_id = data.get("id")
    if row_id is not None and body_id is not None and str(body_id) != str(row_id):
        raise FhirError(
            400, IssueType.INVALID, f"the body's id {body_id!r} is not {resource_type}/{row_id}",
            expression=f"{resource_type}.id",
        )  # fmt: skip


def write_patient(
    session: Session,
    caller: Caller,
    data: Mapping[str, Any],
    *,
    settings: Settings,
    target_id: int | None,
    if_match: str | None,
    create_only: bool,
) -> Written:
    """Create (target_id None) or update one patient. `create_only`: a plain POST, refused (409) when the
    identifiers already name a patient, since CareLoop keys patients on them."""
    validate(data, "Patient")
    _check_body_id(data, target_id, "Patient")
    facts = patient_facts(data, default_authority=caller.name, zone=_zone(settings))
    target = None
    if target_id is not None:
        # locked until the commit: the If-Match check and the write see the same version
        target = session.get(Patient, target_id, with_for_update=True)
        if target is None or not _patient_visible(session, caller, target_id):
            raise FhirError(404, IssueType.NOT_FOUND, f"Patient/{target_id} is not known")
        check_version("Patient", target.version, if_match)
    elif if_match is not None:
        raise FhirError(412, IssueType.CONFLICT, "If-Match given for a resource that does not exist yet")
    try:
        if create_only and find_patient(session, facts.identifiers) is not None:
            raise FhirError(
                409, IssueType.DUPLICATE,
                "a patient with these identifiers exists: use If-None-Exist, or PUT to update it",
                expression="Patient.identifier",
            )  # fmt: skip
        notes = Notes()
        patient = do_upsert_patient(
            session,
            facts,
            source=f"{SOURCE}:{caller.name}",
            default_language=settings.default_language,
            default_timezone=settings.default_timezone,
            region=settings.default_region,
            notes=notes,
            target=target,
        )
    except IdentityConflict as conflict:
        raise FhirError(409, IssueType.CONFLICT, conflict.reason, expression="Patient.identifier") from None
    created = "patient created" in notes.lines
    if not created and not _patient_visible(session, caller, patient.id):
        # a department's client may add patients, but not change one it cannot see (rolled back)
        raise FhirError(
            403, IssueType.FORBIDDEN, "the identifiers name a patient outside this client's department",
            expression="Patient.identifier",
        )  # fmt: skip
    if facts.deceased:
        do_record_death(session, patient, source=f"{SOURCE}:{caller.name}", notes=notes)
    session.flush()
    return Written("Patient", patient.id, patient.id, created, str(notes))


def _patient_visible(session: Session, caller: Caller, patient_id: int) -> bool:
    if caller.department_id is None:
        return True
    return patient_id in matches(session, "Patient", Criteria(ids=[patient_id]), caller)


def _visit_event(status: str, existing: Encounter | None, placeholder: bool) -> VisitEvent:
    """What the status says happened, given what is stored (a discharge only once; a finished visit
    reopened is a cancelled discharge)."""
    if status == "finished":
        if existing is None or existing.ended_at is None:
            return VisitEvent.DISCHARGE
        return VisitEvent.UPDATE
    if existing is not None and existing.ended_at is not None:
        return VisitEvent.CANCEL_DISCHARGE
    return VisitEvent.ADMIT if existing is None or placeholder else VisitEvent.UPDATE


def _subject(session: Session, caller: Caller, reference: str | None, identifier: Any) -> Patient:
    patient = None
    if reference is not None:
        found = parse_id(reference.removeprefix("Patient/"))
        patient = session.get(Patient, found) if found is not None else None
    elif identifier is not None:
        try:
            patient = find_patient(session, (identifier,))
        except IdentityConflict as conflict:
            raise FhirError(
                409, IssueType.CONFLICT, conflict.reason, expression="Encounter.subject"
            ) from None
    if patient is None:
        raise FhirError(
            422, IssueType.NOT_FOUND, "the subject is not a known patient: create the Patient first",
            expression="Encounter.subject",
        )  # fmt: skip
    return patient


def write_encounter(
    session: Session,
    caller: Caller,
    data: Mapping[str, Any],
    *,
    settings: Settings,
    target_id: int | None,
    if_match: str | None,
    create_only: bool,
    now: datetime,
) -> Written:
    validate(data, "Encounter")
    _check_body_id(data, target_id, "Encounter")
    given = encounter_input(data, default_authority=caller.name, zone=_zone(settings))
    patient = _subject(session, caller, given.patient_reference, given.patient_identifier)
    link = session.scalars(
        sa.select(EncounterIdentifier).where(
            EncounterIdentifier.authority == given.facts.visit.authority,
            EncounterIdentifier.visit_number == given.facts.visit.value,
        )
    ).first()
    existing = session.get(Encounter, link.encounter_id, with_for_update=True) if link is not None else None
    if target_id is not None:
        target = session.get(Encounter, target_id, with_for_update=True)
        visible = target is not None and (
            caller.department_id is None or target.department_id == caller.department_id
        )
        if target is None or not visible:
            raise FhirError(404, IssueType.NOT_FOUND, f"Encounter/{target_id} is not known")
        if existing is None or existing.id != target.id:
            raise FhirError(
                422, IssueType.BUSINESS_RULE,
                f"the first identifier is not one of Encounter/{target_id}'s visit numbers",
                expression="Encounter.identifier[0]",
            )  # fmt: skip
        check_version("Encounter", target.version, if_match)
    elif existing is not None and create_only:
        raise FhirError(
            409, IssueType.DUPLICATE,
            "an encounter with this visit number exists: use If-None-Exist, or PUT to update it",
            expression="Encounter.identifier[0]",
        )  # fmt: skip
    elif if_match is not None:
        if existing is None:
            raise FhirError(412, IssueType.CONFLICT, "If-Match given for a resource that does not exist yet")
        check_version("Encounter", existing.version, if_match)
    source = f"{SOURCE}:{caller.name}"
    notes = Notes()
    try:
        if given.status in CANCELLED_STATUSES:
            if existing is None:
                raise FhirError(
                    422,
                    IssueType.BUSINESS_RULE,
                    f"no visit to mark {given.status}",
                    expression="Encounter.status",
                )
            do_cancel_visit(session, patient, given.facts.visit, source=source, notes=notes)
            session.flush()
            kept = session.get(Encounter, existing.id) is not None
            return Written("Encounter", existing.id if kept else None, patient.id, False, str(notes))
        event = _visit_event(given.status, existing, bool(link and link.placeholder))
        encounter = do_apply_visit(
            session,
            patient,
            given.facts,
            event,
            at=(given.facts.ended_at or now)
            if event is VisitEvent.DISCHARGE
            else (given.facts.started_at or now),
            source=source,
            mapping_source=f"{SOURCE}:{caller.name}",
            notes=notes,
            now=now,
        )
    except IdentityConflict as conflict:
        raise FhirError(
            409, IssueType.CONFLICT, conflict.reason, expression="Encounter.identifier[0]"
        ) from None
    if caller.department_id is not None and encounter.department_id != caller.department_id:
        raise FhirError(
            403, IssueType.FORBIDDEN, "this client may only write visits of its own department",
            expression="Encounter.serviceProvider",
        )  # fmt: skip
    deaths = DEATH_DISPOSITIONS | set(settings.hl7_death_dispositions)
    if event is VisitEvent.DISCHARGE and given.facts.disposition in deaths:
        do_record_death(session, patient, source=source, notes=notes)
    session.flush()
    return Written("Encounter", encounter.id, patient.id, existing is None, str(notes))

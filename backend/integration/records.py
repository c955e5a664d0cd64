"""The verbs every inbound source ends in: patients and visits created or updated from outside facts,
discharges (planned at once), cancelled discharges, deaths. Each writes its audit row in the caller's
transaction; HL7 today, FHIR writes and file imports next.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.exclusions import do_set_exclusion
from backend.followup.planner import plan_encounter, reschedule_for_encounter
from backend.integration import visit_rules
from backend.integration.codes import holding_department, resolve_all
from backend.integration.facts import EncounterFacts, Identifier, PatientFacts, VisitEvent
from backend.models import (
    Anchor,
    Encounter,
    EncounterIdentifier,
    FollowUpPlan,
    Hl7Message,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    OutreachStatus,
    OutreachTask,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    Ward,
)
from backend.models.base import among, utcnow
from backend.security.identifiers import (
    InvalidEmail,
    InvalidPhoneNumber,
    normalise_code,
    normalise_email,
    normalise_phone,
)
from backend.services import audit

log = logging.getLogger(__name__)


class IdentityConflict(Exception):
    """The facts name two different records (two patients, or a visit of another patient): held for review."""

    def __init__(self, reason: str, *, about: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.about = about  # "patient" or "encounter"


@dataclass
class Notes:
    """What a verb did that the message log should say (no identifying values)."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def __str__(self) -> str:
        return "; ".join(self.lines)


# The per-message lookups, built once (building them cost about as much CPU as running them).
_BY_IDENTIFIERS = (
    sa.select(Patient, PatientIdentifier.authority, PatientIdentifier.value_bidx)
    .join(PatientIdentifier, PatientIdentifier.patient_id == Patient.id)
    .where(
        sa.tuple_(PatientIdentifier.authority, PatientIdentifier.value_bidx).in_(
            sa.bindparam("keys", expanding=True)
        )
    )
)
_VISIT = (
    sa.select(EncounterIdentifier, Encounter)
    .join(Encounter, Encounter.id == EncounterIdentifier.encounter_id)
    .where(
        EncounterIdentifier.authority == sa.bindparam("authority"),
        EncounterIdentifier.visit_number == sa.bindparam("number"),
    )
)


def _find_by_identifiers(
    session: Session, identifiers: tuple[Identifier, ...]
) -> tuple[Patient | None, set[tuple[str, str]]]:
    """The patient the identifiers name, loaded in the same query, and which of the (authority, blind
    index) keys are already stored (for anyone: a key not found is known to no patient)."""
    keys = [(i.authority, PatientIdentifier.index(i.value)) for i in identifiers]
    rows = session.execute(_BY_IDENTIFIERS, {"keys": keys}).all()
    patients = {row[0].id: row[0] for row in rows}
    if len(patients) > 1:
        raise IdentityConflict("the identifiers belong to different patients", about="patient")
    found = {(row.authority, row.value_bidx) for row in rows}
    return (next(iter(patients.values())) if patients else None), found


def find_patient(session: Session, identifiers: tuple[Identifier, ...]) -> Patient | None:
    """The patient these outside identifiers name (IdentityConflict when they name two)."""
    return _find_by_identifiers(session, identifiers)[0]


def _find_by_record_number(session: Session, facts: PatientFacts) -> tuple[Patient | None, bool]:
    """A patient CareLoop already has (seeded, imported, typed in) under the same MRN and not known to
    this authority under another number: the same person. Also says whether the MRN is taken."""
    record = facts.record_number
    patient = session.scalars(
        sa.select(Patient).where(Patient.mrn_bidx == Patient.code_index("mrn", record.value))
    ).first()
    if patient is None:
        return None, False
    other = session.scalar(
        sa.select(PatientIdentifier.id).where(
            PatientIdentifier.patient_id == patient.id, PatientIdentifier.authority == record.authority
        )
    )
    return (None if other is not None else patient), True


def _apply_demographics(patient: Patient, facts: PatientFacts, region: str, notes: Notes) -> None:
    """Only what the source sent is changed: an empty field in HL7 means "not sent", not "erase"."""
    if facts.name:
        patient.name = facts.name
    if facts.birth_date is not None:
        patient.birth_date = facts.birth_date
    if facts.sex is not None:
        patient.sex = facts.sex
    if facts.language is not None:
        patient.language = facts.language
    if facts.phone:
        try:
            normalise_phone(facts.phone, region)
        except InvalidPhoneNumber:
            notes.add("phone not stored: not a valid phone number")
        else:
            patient.phone = facts.phone
    if facts.email:
        try:
            normalise_email(facts.email)
        except InvalidEmail:
            notes.add("email not stored: not an email address")
        else:
            patient.email = facts.email  # the same address again keeps its bounce mark; a new one clears it


def do_upsert_patient(
    session: Session,
    facts: PatientFacts,
    *,
    source: str,
    default_language: str,
    default_timezone: str,
    region: str,
    notes: Notes,
    target: Patient | None = None,
) -> Patient:
    """The patient these identifiers name, created or updated; identifiers not yet known are added.
    With `target` (a FHIR update addressed to one patient) that patient is updated, and identifiers that
    name another patient are an IdentityConflict."""
    patient, known = _find_by_identifiers(session, facts.identifiers)
    mrn_taken = False
    if target is not None:
        if patient is not None and patient.id != target.id:
            raise IdentityConflict("the identifiers belong to another patient", about="patient")
        patient = target
    if patient is None:
        patient, mrn_taken = _find_by_record_number(session, facts)
    created = patient is None
    if patient is None:
        record = facts.record_number
        patient = Patient(
            # the MRN as sent, or qualified by its authority when another patient already holds it
            mrn=f"{record.authority}:{record.value}" if mrn_taken else record.value,
            name=facts.name or "?",
            language=facts.language or default_language,
            timezone=default_timezone,
        )
        session.add(patient)
    _apply_demographics(patient, facts, region, notes)
    if patient.id is None:
        session.flush()  # its id, for the identifiers; an update of a known patient waits for the next flush
    for identifier in facts.identifiers:
        index = PatientIdentifier.index(identifier.value)
        if (identifier.authority, index) in known:
            continue
        known.add((identifier.authority, index))
        session.add(
            PatientIdentifier(
                patient_id=patient.id,
                authority=identifier.authority,
                type_code=identifier.type_code,
                value=normalise_code(identifier.value),
                value_bidx=index,
            )
        )
    audit.record(
        session, "patient.created" if created else "patient.updated", patient_id=patient.id, source=source
    )
    notes.add("patient created" if created else "patient updated")
    return patient


def _visit(session: Session, visit: Identifier) -> tuple[EncounterIdentifier, Encounter] | None:
    """The visit number's link and its encounter, in one query."""
    row = session.execute(_VISIT, {"authority": visit.authority, "number": visit.value}).first()
    return None if row is None else (row[0], row[1])


def _apply_codes(
    session: Session,
    encounter: Encounter,
    link: EncounterIdentifier,
    facts: EncounterFacts,
    mapping_source: str,
) -> None:
    """Hospital codes through the mapping table; an unknown one is recorded as pending and the visit kept
    (in the holding department when its department is unknown) until an admin maps it."""
    targets = resolve_all(session, mapping_source, visit_rules.sent_codes(facts))
    visit_rules.place(
        encounter, link, facts, mapping_source, targets,
        ward_department=lambda ward_id: session.get_one(Ward, ward_id).department_id,
        holding=lambda: holding_department(session),
    )  # fmt: skip


def _discharge_plan_ids(session: Session) -> sa.Select[Any]:
    return sa.select(FollowUpPlan.id).where(FollowUpPlan.anchor == Anchor.DISCHARGE)


def do_apply_visit(
    session: Session,
    patient: Patient,
    facts: EncounterFacts,
    event: VisitEvent,
    *,
    at: datetime,
    source: str,
    mapping_source: str,
    notes: Notes,
    now: datetime | None = None,
) -> Encounter:
    """A visit created or updated from outside facts, keyed by its visit number and authority. An update
    or discharge before the admission makes a placeholder that the admission later fills in. Many visits
    at once (a file): `visits.do_apply_visits`, the same rules in a few statements per table."""
    now = now or utcnow()
    # Nothing pending needs writing before these lookups: the patient's changes go out with the visit's
    # in one flush (fewer statements per message).
    with session.no_autoflush:
        found = _visit(session, facts.visit)
        previous_start: datetime | None = None
        if found is None:
            encounter, link = visit_rules.new_visit(patient.id, facts, event, at)
            _apply_codes(session, encounter, link, facts, mapping_source)
            notes.add("placeholder visit created" if link.placeholder else "visit created")
            action = "encounter.created"
        else:
            link, encounter = found
            if encounter.patient_id != patient.id:
                raise IdentityConflict("the visit number belongs to another patient", about="encounter")
            if visit_rules.reconcile_placeholder(link, event):
                notes.add("placeholder visit reconciled with its admission")
            else:
                notes.add("visit updated")
            _apply_codes(session, encounter, link, facts, mapping_source)
            previous_start = encounter.started_at
            if facts.started_at is not None:
                encounter.started_at = facts.started_at
            action = "encounter.updated"
    action, previous_end = visit_rules.fill(encounter, link, facts, event, at, action)
    if found is None:  # inserted with every field set, then linked
        session.add(encounter)
        session.flush()
        link.encounter_id = encounter.id
        session.add(link)
    detail: dict[str, Any] = {"source": source, "event": event.value}
    if visit_rules.times_moved(encounter, event, previous_start, previous_end):
        detail["follow_ups_moved"] = reschedule_for_encounter(session, encounter)
    if event is VisitEvent.DISCHARGE:
        planned = plan_encounter(session, encounter.id, now)
        detail["follow_ups_planned"] = planned
        notes.add(f"discharged; {planned} follow-ups planned")
    elif event is VisitEvent.CANCEL_DISCHARGE:
        cancelled = cancel_discharge_follow_ups(session, [encounter.id], now)
        detail["follow_ups_cancelled"] = cancelled[encounter.id]
        notes.add(f"discharge cancelled; {cancelled[encounter.id]} follow-ups cancelled")
    audit.record(session, action, patient_id=patient.id, subject=("encounter", encounter.id), **detail)
    return encounter


def cancel_discharge_follow_ups(
    session: Session, encounter_ids: Sequence[int], now: datetime
) -> Counter[int]:
    """Follow-ups counted from the discharge that are not yet sent go with it. Returns how many, by visit."""
    result = session.execute(
        sa.update(OutreachTask)
        .where(
            among(session, OutreachTask.encounter_id, encounter_ids),
            OutreachTask.status == OutreachStatus.SCHEDULED,
            OutreachTask.plan_id.in_(_discharge_plan_ids(session)),
        )
        .values(status=OutreachStatus.CANCELLED, closed_reason="discharge_cancelled", closed_at=now)
        .returning(OutreachTask.encounter_id)
        .execution_options(synchronize_session="fetch")
    )
    return Counter(result.scalars())


def do_record_death(session: Session, patient: Patient, *, source: str, notes: Notes) -> int:
    """On the deceased list, with every pending outreach (follow-ups, queued outbox messages) cancelled in
    this same transaction. Returns how many were cancelled; nothing when already recorded."""
    if patient.deceased:
        return 0
    closed = do_set_exclusion(session, patient, "deceased", True, staff_id=None)
    suppressed = session.execute(
        sa.update(OutboxItem)
        .where(
            OutboxItem.patient_id == patient.id,
            OutboxItem.kind == OutboxKind.OUTREACH,
            OutboxItem.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.SUPPRESSED, reason="excluded:deceased")
    )
    suppressed_count = int(suppressed.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        session,
        "patient.death_recorded",
        patient_id=patient.id,
        source=source,
        outbox_suppressed=suppressed_count,
    )
    notes.add(f"death recorded; {closed + suppressed_count} pending outreach cancelled")
    return closed + suppressed_count


def do_cancel_visit(
    session: Session, patient: Patient, visit: Identifier, *, source: str, notes: Notes
) -> None:
    """An admission or registration entered in error (A11): follow-ups not yet sent are cancelled; the visit
    is removed when it has no follow-up history at all, otherwise kept (marked cancelled) for the record."""
    found = _visit(session, visit)
    if found is None:
        notes.add("no such visit: nothing to cancel")
        return
    link, encounter = found
    if encounter.patient_id != patient.id:
        raise IdentityConflict("the visit number belongs to another patient", about="encounter")
    tasks = session.scalar(
        sa.select(sa.func.count()).select_from(OutreachTask).where(OutreachTask.encounter_id == encounter.id)
    )
    cancelled = session.execute(
        sa.update(OutreachTask)
        .where(OutreachTask.encounter_id == encounter.id, OutreachTask.status == OutreachStatus.SCHEDULED)
        .values(status=OutreachStatus.CANCELLED, closed_reason="visit_cancelled", closed_at=utcnow())
    )
    removed = int(cancelled.rowcount or 0)  # type: ignore[attr-defined]
    answered = session.scalar(
        sa.select(sa.func.count())
        .select_from(QuestionnaireResponse)
        .where(QuestionnaireResponse.encounter_id == encounter.id)
    )
    if tasks or answered:
        notes.add(f"visit cancelled; kept for its follow-up history; {removed} unsent follow-ups cancelled")
        link.last_event = "cancel"
        audit.record(
            session, "encounter.cancelled", patient_id=patient.id, subject=("encounter", encounter.id),
            source=source, kept=True, follow_ups_cancelled=removed,
        )  # fmt: skip
        return
    session.execute(
        sa.update(Hl7Message).where(Hl7Message.encounter_id == encounter.id).values(encounter_id=None)
    )
    session.delete(link)
    session.delete(encounter)
    audit.record(
        session, "encounter.cancelled", patient_id=patient.id, subject=("encounter", encounter.id),
        source=source, kept=False,
    )  # fmt: skip
    notes.add("visit cancelled and removed")

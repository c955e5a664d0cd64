"""A chunk of decided rows applied through the same verbs as the HL7 listener (patients, visits,
deaths and exclusion lists), in the caller's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import org
from backend.admin.org import OrgForm, OrgKind
from backend.app.settings import get_settings
from backend.followup.exclusions import do_set_exclusion
from backend.imports.columns import ImportKind
from backend.imports.plan import Action, Decision, OrgNow, org_names
from backend.imports.rows import EncounterRecord, ExclusionRecord, OrgRecord, PatientRecord, Record
from backend.integration.facts import CodedValue, EncounterFacts, Identifier, PatientFacts, VisitEvent
from backend.integration.records import Notes, do_record_death, do_upsert_patient
from backend.integration.visits import Visit, do_apply_visits
from backend.models import Patient


def _patient_facts(record: PatientRecord) -> PatientFacts:
    return PatientFacts(
        identifiers=(Identifier(record.identifier, record.authority, "MR"),),
        name=record.name,
        birth_date=record.birth_date,
        sex=record.sex,
        phone=record.phone,
        email=record.email,
        language=record.language,
    )


def _encounter_facts(record: EncounterRecord) -> EncounterFacts:
    return EncounterFacts(
        visit=Identifier(record.visit_number, record.authority),
        kind=record.kind,
        department=CodedValue(record.department) if record.department else None,
        ward=CodedValue(record.ward) if record.ward else None,
        started_at=record.admitted_at,
        ended_at=record.discharged_at,
        diagnoses=tuple(CodedValue(code, system="ICD-10") for code in record.diagnoses),
    )


def apply_chunk(
    session: Session,
    kind: ImportKind,
    source: str,
    decided: Sequence[tuple[int, Record | None, Decision]],
    *,
    staff_id: int | None,
) -> Counter[Action]:
    """Rows to create or update go through the verbs; the others are counted. Returns counts by action."""
    settings = get_settings()
    counts: Counter[Action] = Counter(decision.action for _n, _r, decision in decided)
    writes = [(r, d) for _n, r, d in decided if d.action.writes and r is not None]
    origin = f"import:{kind.value}"
    if kind is ImportKind.PATIENTS:
        for record, _decision in writes:
            assert isinstance(record, PatientRecord)
            do_upsert_patient(
                session, _patient_facts(record), source=origin, default_language=settings.default_language,
                default_timezone=settings.default_timezone, region=settings.default_region, notes=Notes(),
            )  # fmt: skip
        return counts
    if kind is ImportKind.ENCOUNTERS:
        visits = []
        for record, decision in writes:
            assert isinstance(record, EncounterRecord) and decision.owner_id is not None
            event = VisitEvent.DISCHARGE if record.discharged_at is not None else VisitEvent.ADMIT
            at = record.discharged_at or record.admitted_at
            visits.append(Visit(decision.owner_id, _encounter_facts(record), event, at))
        do_apply_visits(session, visits, source=origin, mapping_source=source)
        return counts
    if kind is ImportKind.STAFF:
        from backend.imports import staff_apply

        context = staff_apply.context(session, source, settings.default_language)
        staff_apply.apply_staff(session, writes, context, staff_id=staff_id)
        return counts
    if kind.organisation:
        _apply_org(session, kind, source, [r for r, _d in writes if isinstance(r, OrgRecord)], staff_id)
        return counts
    patients = _by_id(session, [d.target_id for _r, d in writes if d.target_id is not None])
    for record, decision in writes:
        assert isinstance(record, ExclusionRecord) and decision.target_id is not None
        patient = patients[decision.target_id]
        if record.flag == "deceased":
            do_record_death(session, patient, source=origin, notes=Notes())
        else:
            do_set_exclusion(session, patient, record.flag, True, staff_id=staff_id)
    return counts


ORG_KINDS = {
    ImportKind.DEPARTMENTS: OrgKind.DEPARTMENT,
    ImportKind.WARDS: OrgKind.WARD,
    ImportKind.CLINICIANS: OrgKind.CLINICIAN,
}


def _apply_org(
    session: Session, kind: ImportKind, source: str, records: list[OrgRecord], staff_id: int | None
) -> None:
    """Through the admin console's verbs, so an imported entry is audited and checked as a typed one."""
    from backend.imports import lookup

    org_kind = ORG_KINDS[kind]
    held = lookup.org_entries(session, kind, [r.code for r in records])
    departments = lookup.codes(session, source).departments
    for record in records:
        now: OrgNow | None = held.get(record.code)
        form = OrgForm(
            code=record.code,
            names=org_names(record, now),
            department_id=departments[record.department] if record.department is not None else None,
            clinician_kind=record.clinician_kind or (now.clinician_kind if now is not None else None),
            title=record.title if record.title is not None else (now.title if now is not None else None),
        )
        if now is None:
            org.do_create(session, org_kind, form, by=staff_id)
            continue
        entry = org.find(session, org_kind, now.id)
        assert entry is not None
        org.do_update(session, org_kind, entry, form, by=staff_id)


def _by_id(session: Session, ids: list[int]) -> dict[int, Patient]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(sa.select(Patient).where(Patient.id.in_(ids)))}

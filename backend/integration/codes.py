"""Hospital code tables (departments, wards, doctors) mapped per sending facility; unknown codes pending.

A code seen for the first time is matched to a department, ward or clinician with the same code when
CareLoop has one; otherwise a pending mapping is recorded for an admin to resolve, and the message is
still applied: a visit whose department is unknown sits in the holding department meanwhile.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.integration.facts import CodedValue
from backend.models import Clinician, CodeKind, CodeMapping, Department, Ward
from backend.models.base import utcnow
from backend.services import audit

log = logging.getLogger(__name__)
HOLDING_DEPARTMENT = "UNMAPPED"
SEEN_RESOLUTION = timedelta(hours=1)


def holding_department(session: Session) -> int:
    """Where visits wait while their department code is pending (created on first need)."""
    found = session.scalar(sa.select(Department.id).where(Department.code == HOLDING_DEPARTMENT))
    if found is not None:
        return found
    department = Department(
        code=HOLDING_DEPARTMENT,
        name="Unmapped department",
        names={"zh-CN": "未映射科室", "vi": "Khoa chưa ánh xạ", "en": "Unmapped department"},
    )
    session.add(department)
    session.flush()
    return department.id


def _same_code(session: Session, kind: CodeKind, code: str) -> int | None:
    if kind is CodeKind.DEPARTMENT:
        return session.scalar(sa.select(Department.id).where(Department.code == code))
    if kind is CodeKind.WARD:
        return session.scalar(sa.select(Ward.id).where(Ward.code == code))
    # a doctor's code is the hospital's staff number, set on the admin console's clinician page
    return session.scalar(sa.select(Clinician.id).where(Clinician.code == code))


# Built once: constructing the statement per message cost more CPU than running it.
_KNOWN = sa.select(CodeMapping).where(
    CodeMapping.source == sa.bindparam("source"),
    sa.tuple_(CodeMapping.kind, CodeMapping.code).in_(sa.bindparam("pairs", expanding=True)),
)


def resolve_all(
    session: Session, source: str, codes: dict[CodeKind, CodedValue]
) -> dict[CodeKind, int | None]:
    """Several codes of one message (department, ward, doctor) in one query for those already known."""
    if not codes:
        return {}
    pairs = [(kind, coded.code) for kind, coded in codes.items()]
    known = {
        mapping.kind: mapping
        for mapping in session.scalars(_KNOWN, {"source": source, "pairs": pairs})
        if mapping.code == codes[mapping.kind].code
    }
    return {kind: _resolved(session, kind, source, coded, known.get(kind)) for kind, coded in codes.items()}


def resolve_many(
    session: Session, source: str, codes: dict[tuple[CodeKind, str], CodedValue]
) -> dict[tuple[CodeKind, str], int | None]:
    """The codes of many messages (a file's chunk) in one query for those already known; each code
    resolved as `resolve_all` resolves it the first time a message brings it."""
    if not codes:
        return {}
    known = {
        (mapping.kind, mapping.code): mapping
        for mapping in session.scalars(_KNOWN, {"source": source, "pairs": list(codes)})
    }
    return {key: _resolved(session, key[0], source, coded, known.get(key)) for key, coded in codes.items()}


def resolve(session: Session, kind: CodeKind, source: str, coded: CodedValue) -> int | None:
    """The id the code maps to, or None while its mapping is pending."""
    return resolve_all(session, source, {kind: coded})[kind]


def _resolved(
    session: Session, kind: CodeKind, source: str, coded: CodedValue, mapping: CodeMapping | None
) -> int | None:
    now = utcnow()
    if mapping is not None:
        if now - mapping.last_seen > SEEN_RESOLUTION:  # not a write per message: hourly is enough to tell
            mapping.last_seen = now
            mapping.seen_count += 1
        return mapping.target_id
    target = _same_code(session, kind, coded.code)
    mapping = CodeMapping(
        kind=kind, source=source, code=coded.code, description=coded.text[:200], target_id=target,
        first_seen=now, last_seen=now,
    )  # fmt: skip
    session.add(mapping)
    session.flush()
    if target is None:
        log.warning("hl7 %s code %r from %r is not mapped: pending", kind.value, coded.code, source)
        audit.record(
            session, "integration.code_pending", subject=("code_mapping", mapping.id), kind=kind.value
        )
    return target


def do_resolve_mapping(
    session: Session, mapping: CodeMapping, target_id: int, *, staff_id: int | None
) -> int:
    """An admin maps a hospital code: visits that came with it move to the department, ward or doctor
    (from the holding department, for departments) and are planned under their real department's plans;
    the coming appointments booked in the HIS with it are placed and get their reminders.
    Returns how many visits changed."""
    from backend.app.settings import get_settings
    from backend.followup.planner import plan_encounter
    from backend.integration.his_appointments import do_place_waiting
    from backend.models import Encounter, EncounterIdentifier

    target_model = {CodeKind.DEPARTMENT: Department, CodeKind.WARD: Ward, CodeKind.DOCTOR: Clinician}[
        mapping.kind
    ]
    if session.get(target_model, target_id) is None:
        raise ValueError(f"no {mapping.kind.value} with id {target_id}")
    mapping.target_id = target_id
    code_column = {
        CodeKind.DEPARTMENT: EncounterIdentifier.department_code,
        CodeKind.WARD: EncounterIdentifier.ward_code,
        CodeKind.DOCTOR: EncounterIdentifier.doctor_code,
    }[mapping.kind]
    visits = sa.select(EncounterIdentifier.encounter_id).where(
        EncounterIdentifier.mapping_source == mapping.source, code_column == mapping.code
    )
    changed = list(session.scalars(sa.select(Encounter).where(Encounter.id.in_(visits))))
    holding = session.scalar(sa.select(Department.id).where(Department.code == HOLDING_DEPARTMENT))
    for encounter in changed:
        if mapping.kind is CodeKind.DEPARTMENT:
            encounter.department_id = target_id
        elif mapping.kind is CodeKind.WARD:
            encounter.ward_id = target_id
            if encounter.department_id == holding:
                encounter.department_id = session.get_one(Ward, target_id).department_id
        else:
            encounter.attending_doctor_id = target_id
    session.flush()
    planned = sum(
        plan_encounter(session, encounter.id) for encounter in changed if encounter.ended_at is not None
    )
    appointments = do_place_waiting(session, mapping, zone=get_settings().default_timezone, now=utcnow())
    audit.record(
        session,
        "integration.code_mapped",
        staff_id=staff_id,
        subject=("code_mapping", mapping.id),
        kind=mapping.kind.value,
        target_id=target_id,
        visits=len(changed),
        follow_ups_planned=planned,
        appointments_placed=appointments,
    )
    return len(changed)

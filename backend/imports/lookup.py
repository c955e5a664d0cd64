"""What CareLoop holds for a chunk of rows, loaded in a few queries (the blind indexes of the chunk's
identifiers, then one query per table), so the decisions in `plan.py` stay pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports.columns import ImportKind
from backend.imports.plan import Codes, EncounterNow, ListedNow, OrgNow, PatientNow
from backend.models import (
    Clinician,
    CodeKind,
    CodeMapping,
    Department,
    Encounter,
    EncounterIdentifier,
    Patient,
    PatientIdentifier,
    StaffUser,
    Ward,
)
from backend.models.base import among, pairs_among
from backend.security.crypto import current_cipher

Key = tuple[str, str]  # (authority, identifier as written)


def _index(keys: Iterable[Key]) -> dict[Key, tuple[str, str]]:
    cipher = current_cipher()
    return {key: (key[0], PatientIdentifier.index(key[1], cipher)) for key in keys}


def patient_ids(session: Session, keys: Sequence[Key]) -> dict[Key, int]:
    """The patients the (authority, identifier) pairs name, by the identifiers' blind index."""
    if not keys:
        return {}
    indexed = _index(keys)
    rows = session.execute(
        sa.select(
            PatientIdentifier.authority, PatientIdentifier.value_bidx, PatientIdentifier.patient_id
        ).where(
            pairs_among(
                session, PatientIdentifier.authority, PatientIdentifier.value_bidx, set(indexed.values())
            )
        )
    ).all()
    found = {(r.authority, r.value_bidx): r.patient_id for r in rows}
    return {key: found[pair] for key, pair in indexed.items() if pair in found}


def _found(session: Session, keys: Sequence[Key]) -> tuple[dict[Key, int], dict[Key, int]]:
    """The patients the rows name: by identifier (linked), else (as the patient verb does) by the same MRN
    when that patient is not known to the authority under another number (unlinked)."""
    linked = patient_ids(session, keys)
    by_mrn: dict[str, Key] = {Patient.code_index("mrn", key[1]): key for key in keys if key not in linked}
    unlinked: dict[Key, int] = {}
    if by_mrn:
        rows = session.execute(
            sa.select(Patient.id, Patient.mrn_bidx).where(Patient.mrn_bidx.in_(by_mrn))
        ).all()
        candidates = {r.id: by_mrn[r.mrn_bidx] for r in rows}
        if candidates:
            query = sa.select(PatientIdentifier.patient_id, PatientIdentifier.authority).where(
                PatientIdentifier.patient_id.in_(candidates)
            )
            other = {(pid, authority) for pid, authority in session.execute(query)}
            unlinked = {key: pid for pid, key in candidates.items() if (pid, key[0]) not in other}
    return linked, unlinked


def patients(session: Session, keys: Sequence[Key]) -> dict[Key, PatientNow]:
    """Snapshots of the patients the rows name (see `_found`)."""
    linked, unlinked = _found(session, keys)
    ids = set(linked.values()) | set(unlinked.values())
    if not ids:
        return {}
    columns = (
        Patient.id,
        Patient.name,
        Patient.birth_date,
        Patient.sex,
        Patient.phone_bidx,
        Patient.language,
        Patient.email_bidx,
    )
    rows_by_id = {r.id: r for r in session.execute(sa.select(*columns).where(Patient.id.in_(ids)))}
    result: dict[Key, PatientNow] = {}
    for source, is_linked in ((linked, True), (unlinked, False)):
        for key, pid in source.items():
            r = rows_by_id[pid]
            result[key] = PatientNow(
                r.id, r.name, r.birth_date, r.sex, r.phone_bidx, r.language, is_linked, r.email_bidx
            )
    return result


def owners(session: Session, keys: Sequence[Key]) -> dict[Key, int]:
    """The patients a visit file's rows belong to, found as a patient file's rows are (identifier, MRN),
    without loading (and decrypting) the patients themselves."""
    linked, unlinked = _found(session, keys)
    return {**unlinked, **linked}


def listed(session: Session, keys: Sequence[Key], flag: str) -> dict[Key, ListedNow]:
    ids = owners(session, keys)
    if not ids:
        return {}
    column = getattr(Patient, flag)
    query = sa.select(Patient.id, column).where(Patient.id.in_(set(ids.values())))
    flags: dict[int, bool] = {pid: bool(value) for pid, value in session.execute(query)}
    return {key: ListedNow(pid, bool(flags[pid])) for key, pid in ids.items()}


def encounters(session: Session, visits: Sequence[Key]) -> dict[Key, EncounterNow]:
    """Snapshots of the visits the (authority, visit number) pairs name: the numbers first, then their
    visits by id (one join of both let PostgreSQL's prepared plan scan every visit once a chunk)."""
    if not visits:
        return {}
    links = session.execute(
        sa.select(
            EncounterIdentifier.authority, EncounterIdentifier.visit_number, EncounterIdentifier.encounter_id
        ).where(
            pairs_among(session, EncounterIdentifier.authority, EncounterIdentifier.visit_number, set(visits))
        )
    ).all()
    if not links:
        return {}
    rows = session.execute(
        sa.select(
            Encounter.id, Encounter.patient_id, Encounter.kind, Encounter.department_id, Encounter.ward_id,
            Encounter.started_at, Encounter.ended_at, Encounter.diagnoses,
        ).where(among(session, Encounter.id, [link.encounter_id for link in links]))
    ).all()  # fmt: skip
    by_id = {
        r.id: EncounterNow(
            r.id, r.patient_id, r.kind, r.department_id, r.ward_id, r.started_at, r.ended_at,
            tuple(d.get("code", "") for d in r.diagnoses or ()),
        )
        for r in rows
    }  # fmt: skip
    return {(link.authority, link.visit_number): by_id[link.encounter_id] for link in links}


def visit_keys(session: Session, visits: Sequence[Key]) -> set[Key]:
    """Which of the (authority, visit number) pairs CareLoop holds (nothing loaded, nothing decrypted)."""
    if not visits:
        return set()
    query = sa.select(EncounterIdentifier.authority, EncounterIdentifier.visit_number).where(
        pairs_among(session, EncounterIdentifier.authority, EncounterIdentifier.visit_number, set(visits))
    )
    return {(authority, number) for authority, number in session.execute(query)}


def codes(session: Session, source: str) -> Codes:
    """The source's mapped codes, and CareLoop's own department and ward codes for the codes it has not
    mapped (the same rule the HL7 path applies); a pending mapping resolves to nothing."""
    departments = {code: id_ for code, id_ in session.execute(sa.select(Department.code, Department.id))}
    wards = {code: id_ for code, id_ in session.execute(sa.select(Ward.code, Ward.id))}
    ward_department = {id_: dept for id_, dept in session.execute(sa.select(Ward.id, Ward.department_id))}
    for mapping in session.scalars(sa.select(CodeMapping).where(CodeMapping.source == source)):
        table = {CodeKind.DEPARTMENT: departments, CodeKind.WARD: wards}.get(mapping.kind)
        if table is None:
            continue
        if mapping.target_id is None:
            table.pop(mapping.code, None)
        else:
            table[mapping.code] = mapping.target_id
    return Codes(departments, wards, ward_department)


ORG_MODELS: dict[ImportKind, type[Department] | type[Ward] | type[Clinician]] = {
    ImportKind.DEPARTMENTS: Department,
    ImportKind.WARDS: Ward,
    ImportKind.CLINICIANS: Clinician,
}


def org_entries(session: Session, kind: ImportKind, codes: Sequence[str]) -> dict[str, OrgNow]:
    """Snapshots of the departments, wards or clinicians holding the codes."""
    if not codes:
        return {}
    model = ORG_MODELS[kind]
    result: dict[str, OrgNow] = {}
    found = session.scalars(sa.select(model).where(model.code.in_(set(codes))))
    for entry in cast("Iterable[Department | Ward | Clinician]", found):
        assert entry.code is not None
        result[entry.code] = OrgNow(
            entry.id,
            tuple(sorted((entry.names or {}).items())),
            department_id=entry.department_id if isinstance(entry, Ward | Clinician) else None,
            clinician_kind=entry.kind if isinstance(entry, Clinician) else None,
            title=entry.title if isinstance(entry, Clinician) else None,
        )
    return result


def org_codes(session: Session, kind: ImportKind) -> list[tuple[int, str]]:
    """Every (id, code) of the kind, for reconciliation against a file."""
    model = ORG_MODELS[kind]
    query = sa.select(model.id, model.code).where(model.code.is_not(None)).order_by(model.id)
    return [(id_, code) for id_, code in session.execute(query) if code is not None]


def usernames(session: Session) -> list[tuple[int, str]]:
    """Every (id, username) of the staff accounts, for reconciliation against a staff file."""
    return [(id_, name) for id_, name in session.execute(sa.select(StaffUser.id, StaffUser.username))]

"""What a row would do to CareLoop's records, decided from the row and a snapshot of what CareLoop holds
(pure). The dry run writes one plan line per row; the confirm decides again and compares, so it applies
exactly the plan, and notices when the affected records changed in between."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from backend.imports.problems import Problem, describe
from backend.imports.rows import EncounterRecord, ExclusionRecord, OrgRecord, PatientRecord
from backend.models.org import ClinicianKind
from backend.models.patients import EncounterKind, Sex


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"  # already as the file says
    PROBLEM = "problem"

    @property
    def writes(self) -> bool:
        return self in {Action.CREATE, Action.UPDATE}


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    target_id: int | None = None  # the patient (patients, exclusions) or encounter (visits) touched
    state: str = "-"  # a digest of the record as it was when decided
    problems: tuple[str, ...] = ()
    owner_id: int | None = None  # a visit's patient, as found when decided (not part of the plan line)

    def line(self, row: int) -> str:
        """The plan line of a row: what was decided and on which state of the record."""
        detail = self.state if self.action is not Action.PROBLEM else digest(self.problems)
        return f"{row}\t{self.action.value}\t{self.target_id or ''}\t{detail}"


def digest(value: object) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()


def parse_line(line: str) -> tuple[int, Action, str]:
    row, action, _target, detail = line.rstrip("\n").split("\t")
    return int(row), Action(action), detail


def consistent(planned: str, now: Decision, row: int) -> bool:
    """The confirm may go on with this row: decided as in the dry run, or already applied (by an earlier
    run of this same confirm) so that nothing is left to write."""
    if planned == now.line(row):
        return True
    _row, action, _detail = parse_line(planned)
    return action.writes and now.action is Action.SKIP


@dataclass(frozen=True, slots=True)
class PatientNow:
    id: int
    name: str
    birth_date: date | None
    sex: Sex
    phone_bidx: str | None
    language: str
    linked: bool  # known under this identifier and authority (else found by its MRN)
    email_bidx: str | None = None


def decide_patient(
    record: PatientRecord, now: PatientNow | None, phone_bidx: str | None, email_bidx: str | None = None
) -> Decision:
    if now is None:
        return Decision(Action.CREATE)
    changed = (
        not now.linked
        or record.name != now.name
        or (record.birth_date is not None and record.birth_date != now.birth_date)
        or (record.sex is not None and record.sex != now.sex)
        or (phone_bidx is not None and phone_bidx != now.phone_bidx)
        or (email_bidx is not None and email_bidx != now.email_bidx)
        or (record.language is not None and record.language != now.language)
    )
    return Decision(Action.UPDATE if changed else Action.SKIP, now.id, digest(now))


@dataclass(frozen=True, slots=True)
class EncounterNow:
    id: int
    patient_id: int
    kind: EncounterKind
    department_id: int
    ward_id: int | None
    started_at: datetime
    ended_at: datetime | None
    diagnoses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Codes:
    """The hospital codes of one source resolved: code -> department or ward id, ward -> department."""

    departments: dict[str, int]
    wards: dict[str, int]
    ward_department: dict[int, int]


def decide_encounter(
    record: EncounterRecord, patient_id: int | None, now: EncounterNow | None, codes: Codes
) -> Decision:
    problems = []
    if patient_id is None:
        problems.append(describe(Problem.UNKNOWN_PATIENT))
    department = codes.departments.get(record.department) if record.department else None
    if record.department and department is None:
        problems.append(describe(Problem.UNKNOWN_DEPARTMENT))
    ward = codes.wards.get(record.ward) if record.ward else None
    if record.ward and ward is None:
        problems.append(describe(Problem.UNKNOWN_WARD))
    if now is not None and patient_id is not None and now.patient_id != patient_id:
        problems.append(describe(Problem.DUPLICATE_IN_DATABASE))
    if problems:
        return Decision(Action.PROBLEM, problems=tuple(problems))
    if now is None:
        return Decision(Action.CREATE, owner_id=patient_id)
    if department is None and ward is not None:
        department = codes.ward_department.get(ward)
    # the kind as the visit verb leaves it: an inpatient stay already ended keeps its kind, and a
    # discharged inpatient stay becomes a discharge
    kind = record.kind or now.kind
    if record.kind is EncounterKind.INPATIENT and now.ended_at is not None:
        kind = now.kind
    if record.discharged_at is not None and kind is EncounterKind.INPATIENT:
        kind = EncounterKind.DISCHARGE
    changed = (
        kind != now.kind
        or (department is not None and department != now.department_id)
        or (ward is not None and ward != now.ward_id)
        or record.admitted_at != now.started_at
        or (record.discharged_at is not None and record.discharged_at != now.ended_at)
        or (bool(record.diagnoses) and record.diagnoses != now.diagnoses)
    )
    return Decision(Action.UPDATE if changed else Action.SKIP, now.id, digest(now), owner_id=patient_id)


@dataclass(frozen=True, slots=True)
class ListedNow:
    patient_id: int
    flagged: bool


def decide_exclusion(record: ExclusionRecord, now: ListedNow | None) -> Decision:
    if now is None:
        return Decision(Action.PROBLEM, problems=(describe(Problem.UNKNOWN_PATIENT),))
    action = Action.SKIP if now.flagged else Action.UPDATE
    return Decision(action, now.patient_id, digest(now))


@dataclass(frozen=True, slots=True)
class OrgNow:
    """A department, ward or clinician as CareLoop holds it."""

    id: int
    names: tuple[tuple[str, str], ...]
    department_id: int | None = None
    clinician_kind: ClinicianKind | None = None
    title: str | None = None


def org_names(record: OrgRecord, now: OrgNow | None) -> dict[str, str]:
    """The names after the row: the file's languages replace CareLoop's, the others are kept."""
    return {**dict(now.names if now is not None else ()), **dict(record.names)}


def decide_org(record: OrgRecord, now: OrgNow | None, departments: dict[str, int]) -> Decision:
    """Create a code CareLoop does not hold, update one whose names, department, kind or title differ.
    Whether an entry is active is the admin console's to say: a file does not reactivate one."""
    department = None
    if record.department is not None:
        department = departments.get(record.department)
        if department is None:
            return Decision(Action.PROBLEM, problems=(describe(Problem.UNKNOWN_DEPARTMENT),))
    if now is None:
        return Decision(Action.CREATE)
    changed = (
        org_names(record, now) != dict(now.names)
        or (department is not None and department != now.department_id)
        or (record.clinician_kind is not None and record.clinician_kind != now.clinician_kind)
        or (record.title is not None and record.title != now.title)
    )
    return Decision(Action.UPDATE if changed else Action.SKIP, now.id, digest(now))

"""FHIR JSON in: a Patient or Encounter body checked against fhir.resources' models and read into the
same facts the HL7 parser produces (backend/integration/facts.py), with the path of anything wrong.

fhir.resources has no plain R4 package; its R4B models are R4's for Patient and Encounter (the elements
read here did not change between 4.0.1 and 4.3.0)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from backend.fhir.outcome import FhirError, IssueType
from backend.integration.facts import CodedValue, EncounterFacts, Identifier, PatientFacts
from backend.models import EncounterKind, Sex

AUTHORITY_PREFIX = "urn:careloop:authority:"  # HL7 assigning authorities that are names, not URIs
ICD10 = "http://hl7.org/fhir/sid/icd-10"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INPATIENT_CLASSES = {"IMP", "ACUTE", "NONAC"}
# http://terminology.hl7.org/CodeSystem/discharge-disposition: "exp" is expired (died)
DEATH_DISPOSITIONS = {"exp"}
# what a status says happened; the writer turns it into the visit event given what is stored
OPEN_STATUSES = {"planned", "arrived", "triaged", "in-progress", "onleave"}
CANCELLED_STATUSES = {"cancelled", "entered-in-error"}
ENCOUNTER_STATUSES = OPEN_STATUSES | CANCELLED_STATUSES | {"finished"}


def system_of(authority: str) -> str:
    """The FHIR identifier system of an assigning authority (HL7's are names like `HOSP`)."""
    return authority if ":" in authority else AUTHORITY_PREFIX + authority


def authority_of(system: str) -> str:
    return system.removeprefix(AUTHORITY_PREFIX)


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirError(400, IssueType.STRUCTURE, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FhirError(400, IssueType.STRUCTURE, "the body must be a JSON object (a FHIR resource)")
    return data


def validate(data: Mapping[str, Any], resource_type: str) -> None:
    """400 with the first offending element's path when fhir.resources' model refuses the resource."""
    from pydantic import ValidationError

    if data.get("resourceType") != resource_type:
        raise FhirError(
            400, IssueType.INVALID, f"expected a {resource_type}, got {data.get('resourceType')!r}",
            expression="resourceType",
        )  # fmt: skip
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.patient import Patient

    model: Any = Patient if resource_type == "Patient" else Encounter
    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part).removesuffix("__ext") for part in first["loc"]
        ).replace(".[", "[")
        count = len(exc.errors())
        more = f" (and {count - 1} more)" if count > 1 else ""
        raise FhirError(
            400, IssueType.INVALID, f"{resource_type}.{path}: {first['msg']}{more}",
            expression=f"{resource_type}.{path}",
        ) from None  # fmt: skip


def _identifiers(
    data: Mapping[str, Any], resource_type: str, default_authority: str
) -> tuple[Identifier, ...]:
    found = []
    for index, item in enumerate(data.get("identifier") or []):
        value = str(item.get("value") or "").strip()
        if not value:
            raise FhirError(
                422, IssueType.REQUIRED, "an identifier needs a value",
                expression=f"{resource_type}.identifier[{index}].value",
            )  # fmt: skip
        codings = (item.get("type") or {}).get("coding") or []
        type_code = next((str(c.get("code") or "") for c in codings if c.get("code")), "")
        authority = authority_of(str(item.get("system") or "")) or default_authority
        found.append(Identifier(value=value, authority=authority[:180], type_code=type_code[:16]))
    if not found:
        raise FhirError(
            422, IssueType.REQUIRED,
            f"a {resource_type} needs an identifier (system and value): CareLoop keys records on them",
            expression=f"{resource_type}.identifier",
        )  # fmt: skip
    return tuple(found)


def _name(data: Mapping[str, Any]) -> str | None:
    for name in data.get("name") or []:
        if name.get("text"):
            return str(name["text"]).strip()[:200]
        family, given = str(name.get("family") or ""), " ".join(name.get("given") or [])
        if family or given:
            cjk = any("\u3400" <= ch <= "\u9fff" for ch in family + given)
            return (family + given if cjk else f"{given} {family}".strip())[:200]
    return None


def _language(data: Mapping[str, Any]) -> str | None:
    for item in data.get("communication") or []:
        for coding in (item.get("language") or {}).get("coding") or []:
            code = str(coding.get("code") or "").lower()
            if code.startswith("zh"):
                return "zh-CN"
            if code.startswith("vi"):
                return "vi"
            if code.startswith("en"):
                return "en"
    return None


def _moment(value: str | None, zone: ZoneInfo, path: str) -> datetime | None:
    """A FHIR dateTime; a date alone is midnight in the hospital's zone, a time without zone is local."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), zone)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, IssueType.VALUE, f"{value!r} is not a dateTime", expression=path) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def patient_facts(data: Mapping[str, Any], *, default_authority: str, zone: ZoneInfo) -> PatientFacts:
    phone = next(
        (str(t["value"]) for t in data.get("telecom") or [] if t.get("system") == "phone" and t.get("value")),
        None,
    )
    death_time = _moment(data.get("deceasedDateTime"), zone, "Patient.deceasedDateTime")
    gender = data.get("gender")
    if gender is not None and gender not in {s.value for s in Sex}:  # the models leave codes unchecked
        raise FhirError(
            400, IssueType.VALUE, f"gender {gender!r}: one of male, female, other, unknown",
            expression="Patient.gender",
        )  # fmt: skip
    birth = data.get("birthDate")
    return PatientFacts(
        identifiers=_identifiers(data, "Patient", default_authority),
        name=_name(data),
        birth_date=date.fromisoformat(birth) if isinstance(birth, str) and len(birth) == 10 else None,
        sex=Sex(gender) if gender is not None else None,
        phone=phone,
        language=_language(data),
        deceased=bool(data.get("deceasedBoolean")) or death_time is not None,
        death_time=death_time,
    )


@dataclass(frozen=True, slots=True)
class EncounterInput:
    facts: EncounterFacts
    status: str
    patient_reference: str | None  # "Patient/12"
    patient_identifier: Identifier | None


def _coded(reference: Mapping[str, Any] | None) -> CodedValue | None:
    """A department, ward or doctor named by a reference's identifier (the hospital's own code)."""
    identifier = (reference or {}).get("identifier") or {}
    code = str(identifier.get("value") or "").strip()
    return CodedValue(code=code[:64], text=str((reference or {}).get("display") or "")) if code else None


def _diagnoses(data: Mapping[str, Any]) -> tuple[CodedValue, ...]:
    found = []
    for concept in data.get("reasonCode") or []:
        codings = concept.get("coding") or []
        coding = next((c for c in codings if c.get("system") == ICD10), codings[0] if codings else None)
        if coding and coding.get("code"):
            found.append(
                CodedValue(
                    str(coding["code"]),
                    str(coding.get("display") or ""),
                    "ICD-10" if coding.get("system") == ICD10 else str(coding.get("system") or ""),
                )
            )
    return tuple(found)


def encounter_input(data: Mapping[str, Any], *, default_authority: str, zone: ZoneInfo) -> EncounterInput:
    identifiers = _identifiers(data, "Encounter", default_authority)
    status = str(data.get("status") or "")
    if status not in ENCOUNTER_STATUSES:
        raise FhirError(
            400 if status else 422, IssueType.VALUE,
            f"status {status!r}: one of " + ", ".join(sorted(ENCOUNTER_STATUSES)),
            expression="Encounter.status",
        )  # fmt: skip
    klass = str((data.get("class") or {}).get("code") or "").upper()
    period = data.get("period") or {}
    doctor = next(
        (
            _coded(p.get("individual"))
            for p in data.get("participant") or []
            if any(c.get("code") == "ATND" for t in p.get("type") or [] for c in t.get("coding") or [])
        ),
        None,
    )
    locations = data.get("location") or []
    disposition = ((data.get("hospitalization") or {}).get("dischargeDisposition") or {}).get("coding") or []
    subject = data.get("subject") or {}
    subject_identifier = subject.get("identifier") or {}
    if not subject.get("reference") and not subject_identifier.get("value"):
        raise FhirError(
            422, IssueType.REQUIRED, "the subject must name the patient (reference or identifier)",
            expression="Encounter.subject",
        )  # fmt: skip
    facts = EncounterFacts(
        visit=identifiers[0],
        kind=EncounterKind.INPATIENT
        if klass in INPATIENT_CLASSES
        else EncounterKind.OUTPATIENT
        if klass
        else None,
        patient_class=klass[:8],
        department=_coded(data.get("serviceProvider")),
        ward=_coded(locations[0].get("location")) if locations else None,
        attending_doctor=doctor,
        started_at=_moment(period.get("start"), zone, "Encounter.period.start"),
        ended_at=_moment(period.get("end"), zone, "Encounter.period.end"),
        disposition=str(disposition[0].get("code") or "") if disposition else "",
        diagnoses=_diagnoses(data),
    )
    return EncounterInput(
        facts=facts,
        status=status,
        patient_reference=str(subject["reference"]) if subject.get("reference") else None,
        patient_identifier=Identifier(
            str(subject_identifier["value"]),
            authority_of(str(subject_identifier.get("system") or "")) or default_authority,
        )
        if subject_identifier.get("value")
        else None,
    )

"""CareLoop's rows as FHIR R4 resources (JSON): Patient, Encounter, Questionnaire, QuestionnaireResponse,
Task, Communication, Consent. Each function takes the rows it needs, already loaded (see search.py)."""

from __future__ import annotations

from typing import Any

from backend.fhir.wire import ACT_CODE, ICD10, V2_0203, instant, system_of
from backend.models import (
    ConsentEvent,
    Department,
    Encounter,
    EncounterIdentifier,
    EncounterKind,
    Message,
    MessageStatus,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
    Task,
    TaskPriority,
    TaskStatus,
    Ward,
)
from questionnaires.fhir import to_fhir_questionnaire, to_fhir_response
from questionnaires.loader import parse_questionnaire
from questionnaires.values import from_json

MRN_SYSTEM = "urn:careloop:mrn"
DEPARTMENT_SYSTEM = "urn:careloop:department"
WARD_SYSTEM = "urn:careloop:ward"
CHANNEL_SYSTEM = "urn:careloop:channel"
PURPOSE_SYSTEM = "urn:careloop:consent-purpose"
TASK_KIND_SYSTEM = "urn:careloop:task-kind"

TASK_STATUS = {
    TaskStatus.OPEN: "requested",
    TaskStatus.CLAIMED: "in-progress",
    TaskStatus.CLOSED: "completed",
}
TASK_PRIORITY = {
    TaskPriority.EMERGENCY: "stat",
    TaskPriority.URGENT: "asap",
    TaskPriority.HIGH: "urgent",
    TaskPriority.NORMAL: "routine",
    TaskPriority.LOW: "routine",
}
COMMUNICATION_STATUS = {
    MessageStatus.QUEUED: "preparation",
    MessageStatus.SENT: "completed",
    MessageStatus.DELIVERED: "completed",
    MessageStatus.FAILED: "not-done",
    MessageStatus.NOT_SENT: "not-done",
    MessageStatus.RECEIVED: "completed",
    MessageStatus.PROCESSED: "completed",
}
ENCOUNTER_CLASS = {
    EncounterKind.INPATIENT: ("IMP", "inpatient encounter"),
    EncounterKind.DISCHARGE: ("IMP", "inpatient encounter"),
    EncounterKind.OUTPATIENT: ("AMB", "ambulatory"),
    EncounterKind.PHYSICAL_EXAM: ("AMB", "ambulatory"),
}


def reference(resource_type: str, row_id: int) -> dict[str, str]:
    return {"reference": f"{resource_type}/{row_id}"}


def patient(row: Patient, identifiers: list[PatientIdentifier]) -> dict[str, Any]:
    listed = [
        {
            "system": system_of(i.authority),
            "value": i.value,
            **({"type": {"coding": [{"system": V2_0203, "code": i.type_code}]}} if i.type_code else {}),
        }
        for i in identifiers
    ]
    data: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row.id),
        "meta": {"versionId": str(row.version), "lastUpdated": instant(row.updated_at)},
        "identifier": [{"system": MRN_SYSTEM, "value": row.mrn}, *listed],
        "active": True,
        "name": [{"text": row.name}],
        "gender": row.sex.value,
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": row.language}]}, "preferred": True}
        ],
    }
    if row.birth_date:
        data["birthDate"] = row.birth_date.isoformat()
    if row.phone:
        data["telecom"] = [{"system": "phone", "value": row.phone}]
    if row.deceased:
        data["deceasedBoolean"] = True
    return data


def _encounter_status(row: Encounter, links: list[EncounterIdentifier]) -> str:
    if any(link.last_event == "cancel" for link in links):
        return "cancelled"
    if row.ended_at is not None:
        return "finished"
    if links and all(link.placeholder for link in links):
        return "unknown"  # an update or discharge came before its admission
    return "in-progress"


def encounter(
    row: Encounter, links: list[EncounterIdentifier], department: Department, ward: Ward | None
) -> dict[str, Any]:
    code, display = ENCOUNTER_CLASS[row.kind]
    data: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(row.id),
        "meta": {"versionId": str(row.version), "lastUpdated": instant(row.updated_at)},
        "identifier": [{"system": system_of(link.authority), "value": link.visit_number} for link in links],
        "status": _encounter_status(row, links),
        "class": {"system": ACT_CODE, "code": code, "display": display},
        "subject": reference("Patient", row.patient_id),
        "period": {"start": instant(row.started_at)},
        "serviceProvider": {
            "identifier": {"system": DEPARTMENT_SYSTEM, "value": department.code},
            "display": department.name,
        },
    }
    if row.ended_at is not None:
        data["period"]["end"] = instant(row.ended_at)
    if ward is not None:
        data["location"] = [
            {"location": {"identifier": {"system": WARD_SYSTEM, "value": ward.code}, "display": ward.name}}
        ]
    if row.diagnoses:
        data["reasonCode"] = [
            {
                "coding": [
                    {
                        "system": ICD10
                        if d.get("system") in ("ICD-10", "I10", ICD10)
                        else system_of(d.get("system") or "local"),
                        "code": d.get("code", ""),
                        **({"display": d["text"]} if d.get("text") else {}),
                    }
                ]
            }
            for d in row.diagnoses
            if d.get("code")
        ]
    return data


def questionnaire(row: QuestionnaireVersion, lang: str) -> dict[str, Any]:
    data = to_fhir_questionnaire(parse_questionnaire(row.definition), lang)
    data["id"] = str(row.id)
    data["meta"] = {"versionId": "1", "lastUpdated": instant(row.published_at)}
    return data


def questionnaire_response(row: QuestionnaireResponse, version: QuestionnaireVersion) -> dict[str, Any]:
    q = parse_questionnaire(version.definition)
    answers = {key: from_json(q.item(key), raw) for key, raw in row.answers.items()}
    completed = row.status is ResponseStatus.COMPLETED
    data = to_fhir_response(
        q,
        answers,
        lang=row.language,
        subject_ref=f"Patient/{row.patient_id}",
        authored=row.completed_at or row.updated_at,
        status="completed" if completed else "in-progress",
    )
    data["id"] = str(row.id)
    data["meta"] = {"versionId": "1", "lastUpdated": instant(row.updated_at)}
    if row.encounter_id is not None:
        data["encounter"] = reference("Encounter", row.encounter_id)
    return data


def task(row: Task) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": instant(row.closed_at or row.created_at)},
        "status": TASK_STATUS[row.status],
        "intent": "order",
        "priority": TASK_PRIORITY[row.priority],
        "code": {"coding": [{"system": TASK_KIND_SYSTEM, "code": row.kind.value}]},
        "description": row.title,
        "authoredOn": instant(row.created_at),
        "lastModified": instant(row.closed_at or row.created_at),
        "restriction": {"period": {"end": instant(row.due_at)}},
    }
    if row.patient_id is not None:
        data["for"] = reference("Patient", row.patient_id)
    if row.source_type == "response":
        data["focus"] = reference("QuestionnaireResponse", row.source_id)
    return data


def communication(row: Message, patient_id: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Communication",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": instant(row.created_at)},
        "status": COMMUNICATION_STATUS[row.status],
        "subject": reference("Patient", patient_id),
        "recipient": [reference("Patient", patient_id)],
        "sent": instant(row.created_at),
        "medium": [{"coding": [{"system": CHANNEL_SYSTEM, "code": row.channel.value}]}],
    }
    if row.text:
        data["payload"] = [{"contentString": row.text}]
    return data


def consent(row: ConsentEvent, current: bool) -> dict[str, Any]:
    """One grant or revocation; the latest for its purpose and channel is `active`, earlier ones
    `inactive` (kept: the history is the evidence)."""
    return {
        "resourceType": "Consent",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": instant(row.at)},
        "status": "active" if current else "inactive",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": reference("Patient", row.patient_id),
        "dateTime": instant(row.at),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN" if row.granted else "OPTOUT"}]},
        "provision": {
            "type": "permit" if row.granted else "deny",
            "purpose": [{"system": PURPOSE_SYSTEM, "code": row.purpose.value}],
            "code": [{"coding": [{"system": CHANNEL_SYSTEM, "code": row.channel.value}]}],
        },
    }

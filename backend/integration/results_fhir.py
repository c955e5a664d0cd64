"""A completed follow-up response as a FHIR R4 transaction Bundle: the QuestionnaireResponse and one
Observation per score (its band as the interpretation) and per finding. Pure.

The receiving server has its own ids, so the patient is a logical reference (the identifier the
hospital sent, with its assigning authority as the system) and the visit likewise. Each entry is a
conditional create on CareLoop's identifier of the response (`ifNoneExist`), so a delivery retried
after a lost answer creates nothing twice; the Observations point at the response by its fullUrl,
which the server rewrites to the id it assigns.
"""

from __future__ import annotations

from typing import Any

from backend.fhir.wire import instant, system_of
from backend.integration.oru import ResultFacts

RESPONSE_SYSTEM = "urn:careloop:questionnaire-response"
OBSERVATION_SYSTEM = "urn:careloop:observation"
CODE_SYSTEM = "urn:careloop:questionnaire"
SEVERITY_INTERPRETATION = {"emergency": "AA", "urgent": "AA", "high": "A", "normal": "A", "low": "A"}
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _logical(identifier_value: str, authority: str) -> dict[str, Any]:
    return {"identifier": {"system": system_of(authority), "value": identifier_value}}


def build_bundle(facts: ResultFacts, response: dict[str, Any]) -> dict[str, Any]:
    """`response` is the QuestionnaireResponse as `questionnaires.fhir.to_fhir_response` writes it."""
    record = facts.identifiers[0]
    subject = _logical(record.value, record.authority)
    key = str(facts.response_id)
    qr = dict(response)
    qr.pop("id", None)
    qr.pop("meta", None)
    qr["identifier"] = {"system": RESPONSE_SYSTEM, "value": key}
    qr["subject"] = subject
    if facts.visit is not None:
        qr["encounter"] = _logical(facts.visit.value, facts.visit.authority)
    qr_url = f"urn:uuid:careloop-response-{key}"
    entries: list[dict[str, Any]] = [_entry(qr_url, qr, RESPONSE_SYSTEM, key)]
    observations: list[tuple[str, dict[str, Any]]] = []
    for score in facts.scores:
        observation: dict[str, Any] = {
            "code": {
                "coding": [
                    {
                        "system": CODE_SYSTEM,
                        "code": f"{facts.questionnaire_id}.score.{score.score_id}",
                        "display": score.text,
                    }
                ],
                "text": score.text,
            },
            "valueInteger": score.value,
        }
        if score.band:
            observation["interpretation"] = [
                {"coding": [{"system": CODE_SYSTEM, "code": score.band, "display": score.band_text}]}
            ]
        observations.append((f"score.{score.score_id}", observation))
    for finding in facts.findings:
        flag = SEVERITY_INTERPRETATION.get(finding.severity, "A")
        observation = {
            "code": {
                "coding": [{"system": CODE_SYSTEM, "code": f"{facts.questionnaire_id}.finding"}],
                "text": "finding",
            },
            "valueCodeableConcept": {
                "coding": [{"system": CODE_SYSTEM, "code": finding.code, "display": finding.text}],
                "text": finding.text,
            },
            "interpretation": [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": flag}]}],
        }
        observations.append((f"finding.{finding.code}", observation))
    for suffix, observation in observations:
        value = f"{key}.{suffix}"
        resource = {
            "resourceType": "Observation",
            "identifier": [{"system": OBSERVATION_SYSTEM, "value": value}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                        }
                    ]
                }
            ],
            **observation,
            "subject": subject,
            "effectiveDateTime": instant(facts.completed_at),
            "derivedFrom": [{"reference": qr_url}],
        }
        if facts.visit is not None:
            resource["encounter"] = qr["encounter"]
        entries.append(_entry(f"urn:uuid:careloop-observation-{value}", resource, OBSERVATION_SYSTEM, value))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _entry(full_url: str, resource: dict[str, Any], system: str, value: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource.get("resourceType", "QuestionnaireResponse"),
            "ifNoneExist": f"identifier={system}|{value}",
        },
    }

"""Patient and Encounter through the FHIR API: create, read, search, conditional create and update,
If-Match, discharge planning as with an A03, department scoping, and every error an OperationOutcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    Encounter,
    EncounterKind,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    Patient,
    PatientIdentifier,
)
from tests import factories
from tests.backend.fhir.conftest import BASE, SigningKey, fhir_valid, register

Headers = Callable[..., dict[str, str]]
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
SYSTEM = "urn:oid:1.2.156.112604.1.2.1"  # a hospital's MRN namespace
ALL = [
    "system/Patient.cruds",
    "system/Encounter.cruds",
    "system/QuestionnaireResponse.rs",
    "system/Questionnaire.rs",
    "system/Task.rs",
    "system/Communication.rs",
    "system/Consent.rs",
]


def patient_body(mrn: str = "M001", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": SYSTEM,
                "value": mrn,
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
            }
        ],
        "name": [{"family": "王", "given": ["小明"]}],
        "gender": "male",
        "birthDate": "1958-03-02",
        "telecom": [{"system": "phone", "value": "+8613900001234"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "zh-CN"}]}}],
        **extra,
    }


def encounter_body(visit: str, patient_id: int, department: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": "urn:oid:1.2.156.112604.1.4", "value": visit}],
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": (datetime.now(UTC) - timedelta(days=4)).isoformat()},
        "serviceProvider": {"identifier": {"value": department}},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}],
        **extra,
    }


def _setup(
    db: Session, rsa_key: SigningKey, bearer: Headers, scopes: list[str] | None = None
) -> dict[str, str]:
    register(db, "his", scopes or ALL, [rsa_key])
    return bearer("his")


def test_create_read_and_search_a_patient(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    created = client.post(f"{BASE}/Patient", headers=headers, json=patient_body())
    assert created.status_code == 201, created.text
    body = fhir_valid(created.json())
    assert created.headers["etag"] == 'W/"1"' and body["meta"]["versionId"] == "1"
    assert created.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert body["name"] == [{"text": "王小明"}] and body["gender"] == "male"
    assert {k: body["identifier"][1][k] for k in ("system", "value")} == {"system": SYSTEM, "value": "M001"}
    read = client.get(f"{BASE}/Patient/{body['id']}", headers=headers)
    assert fhir_valid(read.json())["birthDate"] == "1958-03-02"
    found = fhir_valid(
        client.get(f"{BASE}/Patient", params={"identifier": f"{SYSTEM}|M001"}, headers=headers).json()
    )
    assert [e["resource"]["id"] for e in found["entry"]] == [body["id"]]
    none = client.get(f"{BASE}/Patient", params={"identifier": "urn:other|M001"}, headers=headers).json()
    assert none["total"] == 0
    stored = db.scalars(sa.select(PatientIdentifier)).one()
    assert (stored.authority, stored.type_code) == (SYSTEM, "MR")
    actions = [e.action for e in db.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert {"patient.created", "fhir.create", "fhir.read", "fhir.search"} <= set(actions)


def test_conditional_create_twice_makes_one_patient(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = {**_setup(db, rsa_key, bearer), "If-None-Exist": f"identifier={SYSTEM}|M7"}
    first = client.post(f"{BASE}/Patient", headers=headers, json=patient_body("M7"))
    second = client.post(f"{BASE}/Patient", headers=headers, json=patient_body("M7", gender="female"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == fhir_valid(second.json())["id"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1
    assert db.scalars(sa.select(Patient)).one().sex.value == "male"  # the second was not applied
    plain = client.post(
        f"{BASE}/Patient", headers={"Authorization": headers["Authorization"]}, json=patient_body("M7")
    )
    assert plain.status_code == 409
    assert fhir_valid(plain.json())["issue"][0]["code"] == "duplicate"


def test_if_match_mismatch_is_412_and_changes_nothing(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    created = client.post(f"{BASE}/Patient", headers=headers, json=patient_body()).json()
    url = f"{BASE}/Patient/{created['id']}"
    stale = client.put(
        url, headers={**headers, "If-Match": 'W/"7"'}, json=patient_body(name=[{"text": "Other"}])
    )
    assert stale.status_code == 412
    assert fhir_valid(stale.json())["issue"][0]["code"] == "conflict"
    db.expire_all()
    assert db.scalars(sa.select(Patient)).one().name == "王小明"
    updated = client.put(
        url,
        headers={**headers, "If-Match": 'W/"1"'},
        json=patient_body(id=created["id"], name=[{"text": "Wang"}]),
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"' and fhir_valid(updated.json())["name"] == [{"text": "Wang"}]
    again = client.put(
        url, headers={**headers, "If-Match": 'W/"1"'}, json=patient_body(name=[{"text": "Late"}])
    )
    assert again.status_code == 412
    changed_elsewhere = db.get(Patient, int(created["id"]))  # e.g. a staff page or an HL7 A08
    assert changed_elsewhere is not None
    changed_elsewhere.do_not_disturb = True
    db.commit()
    third = client.put(
        url, headers={**headers, "If-Match": 'W/"2"'}, json=patient_body(name=[{"text": "Late"}])
    )
    assert third.status_code == 412
    assert client.get(url, headers=headers).headers["etag"] == 'W/"3"'
    by_identifier = client.put(
        f"{BASE}/Patient",
        params={"identifier": f"{SYSTEM}|M001"},
        headers=headers,
        json=patient_body(gender="other"),
    )
    assert by_identifier.status_code == 200 and by_identifier.json()["gender"] == "other"
    new = client.put(
        f"{BASE}/Patient", params={"identifier": f"{SYSTEM}|M002"}, headers=headers, json=patient_body("M002")
    )
    assert new.status_code == 201
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 2


def test_a_fhir_discharge_starts_follow_up_planning_like_an_a03(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    department = factories.department(db, code="CARD")
    db.add(
        FollowUpPlan(
            name="discharge", questionnaire_id="recovery", encounter_kinds=["discharge"],
            department_ids=[department.id], offsets_days=[1, 7], channels=["webchat"], send_hour=10,
        )
    )  # fmt: skip
    db.commit()
    patient = client.post(f"{BASE}/Patient", headers=headers, json=patient_body()).json()
    admitted = client.post(
        f"{BASE}/Encounter", headers=headers, json=encounter_body("V1", int(patient["id"]), "CARD")
    )
    assert admitted.status_code == 201, admitted.text
    encounter = fhir_valid(admitted.json())
    assert encounter["status"] == "in-progress" and encounter["class"]["code"] == "IMP"
    assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 0
    finished = encounter_body(
        "V1", int(patient["id"]), "CARD", status="finished",
        period={"start": encounter["period"]["start"], "end": datetime.now(UTC).isoformat()},
    )  # fmt: skip
    discharged = client.put(
        f"{BASE}/Encounter/{encounter['id']}",
        headers={**headers, "If-Match": admitted.headers["etag"]},
        json=finished,
    )
    assert discharged.status_code == 200, discharged.text
    assert fhir_valid(discharged.json())["status"] == "finished"
    tasks = db.scalars(sa.select(OutreachTask).order_by(OutreachTask.offset_days)).all()
    assert [(t.offset_days, t.status) for t in tasks] == [
        (1, OutreachStatus.SCHEDULED),
        (7, OutreachStatus.SCHEDULED),
    ]
    assert db.scalars(sa.select(Encounter)).one().kind is EncounterKind.DISCHARGE
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "encounter.discharged")).one()
    assert audit.detail["source"] == "fhir:his" and audit.detail["follow_ups_planned"] == 2
    reopened = client.put(
        f"{BASE}/Encounter/{encounter['id']}",
        headers=headers,
        json=encounter_body("V1", int(patient["id"]), "CARD"),
    )
    assert reopened.status_code == 200 and reopened.json()["status"] == "in-progress"
    db.expire_all()
    assert {t.status for t in db.scalars(sa.select(OutreachTask))} == {OutreachStatus.CANCELLED}
    search = client.get(
        f"{BASE}/Encounter", params={"patient": patient["id"], "status": "in-progress"}, headers=headers
    )
    assert fhir_valid(search.json())["total"] == 1


def test_a_death_disposition_records_the_death(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    factories.department(db, code="ICU")
    db.commit()
    patient = client.post(f"{BASE}/Patient", headers=headers, json=patient_body()).json()
    body = encounter_body(
        "V9", int(patient["id"]), "ICU", status="finished",
        hospitalization={"dischargeDisposition": {"coding": [{"system": DISPOSITION, "code": "exp"}]}},
    )  # fmt: skip
    assert client.post(f"{BASE}/Encounter", headers=headers, json=body).status_code == 201
    db.expire_all()
    assert db.scalars(sa.select(Patient)).one().deceased is True
    assert fhir_valid(client.get(f"{BASE}/Patient/{patient['id']}", headers=headers).json())[
        "deceasedBoolean"
    ]


def test_bad_input_gets_an_operation_outcome_and_stores_nothing(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    cases: list[tuple[Any, int, str | None]] = [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (patient_body(gender="robot"), 400, "Patient.gender"),
        (patient_body(birthDate="1958-13-45"), 400, "Patient.birthDate"),
        ({"resourceType": "Encounter"}, 400, "resourceType"),
        ({"resourceType": "Patient", "name": [{"text": "No id"}]}, 422, "Patient.identifier"),
    ]
    for sent, status, path in cases:
        raw = sent if isinstance(sent, bytes) else __import__("json").dumps(sent).encode()
        answer = client.post(
            f"{BASE}/Patient", headers={**headers, "Content-Type": "application/fhir+json"}, content=raw
        )
        assert answer.status_code == status, (sent, answer.text)
        outcome = fhir_valid(answer.json())
        assert "Traceback" not in answer.text
        if path:
            assert outcome["issue"][0]["expression"][0].startswith(path), outcome
    too_big = b'{"resourceType": "Patient", "text": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = client.post(f"{BASE}/Patient", headers=headers, content=too_big)
    assert answer.status_code == 413 and fhir_valid(answer.json())["issue"][0]["code"] == "too-long"
    unknown_subject = encounter_body("V2", 999, "CARD")
    answer = client.post(f"{BASE}/Encounter", headers=headers, json=unknown_subject)
    assert answer.status_code == 422 and fhir_valid(answer.json())["issue"][0]["expression"] == [
        "Encounter.subject"
    ]
    for url in (
        "/Patient/999",
        "/Patient/abc",
        "/Observation/1",
        "/Patient/1/_history/1",
        "/Patient/99999999999",
    ):
        missing = client.get(BASE + url, headers=headers)
        assert missing.status_code == 404, url
        fhir_valid(missing.json())
    assert client.put(f"{BASE}/Task/1", headers=headers, json={}).status_code in (403, 405)
    huge = client.get(f"{BASE}/Encounter", params={"patient": "Patient/１２"}, headers=headers)
    assert huge.status_code == 400 and fhir_valid(huge.json())["issue"][0]["expression"] == ["patient"]
    bad_param = client.get(f"{BASE}/Patient", params={"name": "x"}, headers=headers)
    assert bad_param.status_code == 400 and "name" in bad_param.json()["issue"][0]["diagnostics"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
    refused = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "fhir.refused")).all()
    assert {e.detail["status"] for e in refused} >= {400, 404, 422} and {
        e.detail["client"] for e in refused
    } == {"his"}


def test_paging_follows_next_links(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    headers = _setup(db, rsa_key, bearer)
    for n in range(5):
        factories.patient(db, mrn=f"P{n}")
    db.commit()
    url: str | None = f"{BASE}/Patient?_count=2&_lastUpdated=ge2020-01-01"
    seen: list[str] = []
    pages = 0
    while url:
        bundle = fhir_valid(client.get(url, headers=headers).json())
        assert bundle["total"] == 5
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    future = client.get(f"{BASE}/Patient", params={"_lastUpdated": "gt2100-01-01"}, headers=headers).json()
    assert future["total"] == 0


def test_a_department_client_sees_and_writes_only_its_department(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    cardiology, surgery = factories.department(db, code="CARD"), factories.department(db, code="SURG")
    mine = factories.patient(db, dept=cardiology)
    other = factories.patient(db, dept=surgery)
    register(db, "ward-app", ALL, [rsa_key], department=cardiology)
    headers = bearer("ward-app")
    listed = fhir_valid(client.get(f"{BASE}/Patient", headers=headers).json())
    assert [e["resource"]["id"] for e in listed["entry"]] == [str(mine.id)]
    assert client.get(f"{BASE}/Patient/{other.id}", headers=headers).status_code == 404
    encounters = client.get(f"{BASE}/Encounter", headers=headers).json()
    assert {e["resource"]["subject"]["reference"] for e in encounters["entry"]} == {f"Patient/{mine.id}"}
    elsewhere = client.post(f"{BASE}/Encounter", headers=headers, json=encounter_body("S1", mine.id, "SURG"))
    assert elsewhere.status_code == 403
    other.mrn = "OTHER1"
    db.commit()
    hidden = client.put(
        f"{BASE}/Patient", params={"identifier": "OTHER1"}, headers=headers, json=patient_body("OTHER1")
    )
    assert hidden.status_code == 403  # the MRN names a patient of another department: not changed
    db.expire_all()
    assert db.get(Patient, other.id).name != "王小明"  # type: ignore[union-attr]
    assert client.post(f"{BASE}/Patient", headers=headers, json=patient_body("NEW1")).status_code == 201
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 2


def test_a_search_page_costs_the_same_queries_however_many_rows(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers, statements: list[str]
) -> None:
    headers = _setup(db, rsa_key, bearer)
    department = factories.department(db)

    def queries_for(patients: int) -> int:
        for _ in range(patients):
            factories.patient(db, dept=department)
        db.commit()
        statements.clear()
        for resource in ("Patient", "Encounter"):
            assert client.get(f"{BASE}/{resource}", headers=headers).status_code == 200
        return len(statements)

    assert queries_for(2) == queries_for(10)

"""The read-only resources: Questionnaire, QuestionnaireResponse, Task (raised from findings),
Communication (messages sent) and Consent, read and searched with the common parameters."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.followup.catalog import do_publish
from backend.followup.responses import do_complete_response, do_save_answers, do_start_response
from backend.models import Direction, Message, MessageStatus
from backend.services.consents import do_grant_consent, do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from questionnaires.loader import parse_questionnaire
from tests import factories
from tests.backend.fhir.conftest import BASE, SigningKey, fhir_valid, register
from tests.backend.fhir.test_patients_encounters import ALL
from tests.backend.followup.test_followup import DEFINITION

Headers = Callable[..., dict[str, str]]


def _records(db: Session) -> dict[str, int]:
    """One patient with an abnormal completed response (so a task), a sent message and consent history;
    another patient in another department with a message of their own."""
    cardiology, surgery = factories.department(db, code="CARD"), factories.department(db, code="SURG")
    person = factories.patient(db, dept=cardiology)
    other = factories.patient(db, dept=surgery)
    version = do_publish(db, DEFINITION)
    response = do_start_response(
        db, version=version, patient_id=person.id, channel=Channel.WEBCHAT, language="en"
    )
    response.department_id = cardiology.id
    do_save_answers(db, response, parse_questionnaire(version.definition), {"pain": 8, "fever": "no"})
    findings = do_complete_response(db, response)
    for who in (person, other):
        conv = factories.conversation(db, who)
        db.add(
            Message(
                conversation_id=conv.id, channel=conv.channel, direction=Direction.OUTBOUND,
                status=MessageStatus.DELIVERED, text="Please answer your follow-up",
            )
        )  # fmt: skip
        factories.reply(db, conv, "ok")  # inbound: not a Communication sent
    do_grant_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    do_revoke_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    db.commit()
    return {
        "patient": person.id,
        "other": other.id,
        "version": version.id,
        "response": response.id,
        "task": findings[0].task_id,
        "cardiology": cardiology.id,
    }


def test_read_only_resources_read_and_search(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    ids = _records(db)
    register(db, "his", ALL, [rsa_key])
    headers = bearer("his")

    def search(resource: str, **params: str) -> list[dict[str, object]]:
        answer = client.get(f"{BASE}/{resource}", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [e["resource"] for e in fhir_valid(answer.json())["entry"]]

    questionnaire = fhir_valid(client.get(f"{BASE}/Questionnaire/{ids['version']}", headers=headers).json())
    assert questionnaire["identifier"][0]["value"] == "recovery" and questionnaire["item"]
    assert [q["id"] for q in search("Questionnaire", identifier="recovery")] == [str(ids["version"])]

    response = fhir_valid(
        client.get(f"{BASE}/QuestionnaireResponse/{ids['response']}", headers=headers).json()
    )
    assert response["status"] == "completed" and response["subject"] == {
        "reference": f"Patient/{ids['patient']}"
    }
    assert len(search("QuestionnaireResponse", patient=str(ids["patient"]), status="completed")) == 1
    assert search("QuestionnaireResponse", status="in-progress") == []

    tasks = search("Task", patient=f"Patient/{ids['patient']}", status="requested")
    assert [t["id"] for t in tasks] == [str(ids["task"])]
    assert tasks[0]["focus"] == {"reference": f"QuestionnaireResponse/{ids['response']}"}
    assert tasks[0]["priority"] == "urgent"  # a "high" finding

    sent = search("Communication", patient=str(ids["patient"]))
    assert len(sent) == 1 and sent[0]["payload"] == [{"contentString": "Please answer your follow-up"}]
    assert len(search("Communication", date="ge2020-01-01", status="completed")) == 2
    assert search("Communication", date="lt2020-01-01") == []

    consents = search("Consent", patient=str(ids["patient"]))
    assert [(c["status"], c["provision"]["type"]) for c in consents] == [
        ("inactive", "permit"),
        ("active", "deny"),
    ]
    assert [c["provision"]["type"] for c in search("Consent", status="active")] == ["deny"]


def test_a_department_client_reads_only_its_department(
    client: TestClient, db: Session, rsa_key: SigningKey, bearer: Headers
) -> None:
    ids = _records(db)
    from backend.models import Department

    register(db, "ward-app", ALL, [rsa_key], department=db.get(Department, ids["cardiology"]))
    headers = bearer("ward-app")
    sent = client.get(f"{BASE}/Communication", headers=headers).json()["entry"]
    assert {c["resource"]["subject"]["reference"] for c in sent} == {f"Patient/{ids['patient']}"}
    assert client.get(f"{BASE}/Task/{ids['task']}", headers=headers).status_code == 200
    assert client.get(f"{BASE}/Patient/{ids['other']}", headers=headers).status_code == 404

"""Follow-up results written back: an ORU^R01 to a real MLLP peer that ACKs, NAKs and drops, and a FHIR
transaction to a local FHIR server; retries with backoff, permanent refusals kept with their reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import hl7
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.followup.catalog import do_publish
from backend.followup.responses import do_complete_response, do_save_answers, do_start_response
from backend.integration.facts import Identifier
from backend.integration.mllp import Frame
from backend.integration.oru import AnswerFact, FindingFact, ResultFacts, ScoreFact, build_oru
from backend.integration.receiver import Receiver, ReceiverConfig
from backend.integration.results import backoff, deliver_due, do_retry_delivery
from backend.integration.results_fhir import build_bundle
from backend.models import (
    AuditEvent,
    DeliveryStatus,
    DeliveryTarget,
    Encounter,
    Patient,
    ResultDelivery,
    Role,
)
from bots.domain import Channel
from questionnaires.loader import parse_questionnaire
from tests import factories
from tests.backend.fhir.conftest import fhir_valid
from tests.backend.followup.test_followup import DEFINITION
from tests.backend.integration.results_peers import FakeFhirServer, FakeMllpReceiver
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.conftest import reset_caches

CORPUS = Path(__file__).parent / "corpus"
T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
def his() -> Iterator[FakeMllpReceiver]:
    with FakeMllpReceiver() as peer:
        yield peer


@pytest.fixture
def fhir_server() -> Iterator[FakeFhirServer]:
    with FakeFhirServer() as server:
        yield server


def _configure(
    monkeypatch: pytest.MonkeyPatch, *, mllp: int | None = None, fhir: str | None = None, **more: str
) -> None:
    if mllp is not None:
        monkeypatch.setenv("CARELOOP_RESULTS_HL7_HOST", "127.0.0.1")
        monkeypatch.setenv("CARELOOP_RESULTS_HL7_PORT", str(mllp))
    if fhir is not None:
        monkeypatch.setenv("CARELOOP_RESULTS_FHIR_BASE_URL", fhir)
        monkeypatch.setenv("CARELOOP_RESULTS_FHIR_TOKEN", "token-for-tests")
    monkeypatch.setenv("CARELOOP_RESULTS_TIMEOUT_SECONDS", "5")
    for key, value in more.items():
        monkeypatch.setenv(f"CARELOOP_RESULTS_{key.upper()}", value)
    reset_caches()


def _complete(db: Session, *, pain: int = 8) -> int:
    """The patient and visit from an HL7 A04 (PID-3 with 身份证, passport, MR, PI), one completed response."""
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    receiver.handle(Frame((CORPUS / "pid3_many_identifier_types.hl7").read_bytes()), "127.0.0.1")
    db.expire_all()
    patient = db.scalars(sa.select(Patient)).one()
    encounter = db.scalars(sa.select(Encounter)).one()
    version = do_publish(db, DEFINITION)
    response = do_start_response(
        db, version=version, patient_id=patient.id, channel=Channel.WEBCHAT, language="zh-CN", now=T0
    )
    response.encounter_id = encounter.id
    do_save_answers(
        db,
        response,
        parse_questionnaire(version.definition),
        {"pain": pain, "fever": "yes", "temperature": 39.5},
    )
    do_complete_response(db, response, now=T0)
    db.commit()
    return response.id


def _deliveries(db: Session) -> dict[DeliveryTarget, ResultDelivery]:
    db.expire_all()
    return {row.target: row for row in db.scalars(sa.select(ResultDelivery))}


def test_nothing_is_queued_when_no_endpoint_is_configured(database_url: str, db: Session) -> None:
    _complete(db)
    assert _deliveries(db) == {}


def test_oru_and_fhir_bundle_delivered_with_identifiers_as_received(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    db: Session,
    his: FakeMllpReceiver,
    fhir_server: FakeFhirServer,
) -> None:
    _configure(monkeypatch, mllp=his.port, fhir=fhir_server.base_url, hl7_charset="GB 18030")
    response_id = _complete(db)
    assert set(_deliveries(db)) == {DeliveryTarget.HL7, DeliveryTarget.FHIR}  # queued with the completion
    sweep = deliver_due(now=T0 + timedelta(seconds=1))
    assert (sweep.delivered, sweep.retrying, sweep.failed) == (2, 0, 0)
    rows = _deliveries(db)
    assert all(row.status is DeliveryStatus.DELIVERED for row in rows.values())
    assert (rows[DeliveryTarget.HL7].last_result, rows[DeliveryTarget.FHIR].last_result) == ("AA", "200")

    (sent,) = his.messages
    text = sent.decode("gb18030")  # written in the character set MSH-18 names
    message = hl7.parse(text.replace("\r", "\r"))
    msh = message.segment("MSH")
    assert (str(msh(9)), str(msh(12)), str(msh(18)), str(msh(10))) == (
        "ORU^R01^ORU_R01", "2.5.1", "GB 18030", f"CLR{rows[DeliveryTarget.HL7].id}"
    )  # fmt: skip
    pid = message.segment("PID")
    assert str(pid(3)).split("~") == [
        "0012345^^^HOSP^MR", "110101199003077578^^^CHN^NI", "E12345678^^^CHN^PPN", "P998^^^HOSP^PI"
    ]  # fmt: skip
    assert str(pid(5)) == "李娜"
    assert str(message.segment("PV1")(19)) == "OV1^^^HOSP"
    obr = message.segment("OBR")
    assert (
        str(obr(3)) == f"R{response_id}^CARELOOP"
        and str(obr(4)).startswith("recovery^")
        and str(obr(25)) == "F"
    )
    obx = {str(s(3)).split("^")[0]: s for s in message.segments("OBX")}
    assert str(obx["pain"](2)) == "NM" and str(obx["pain"](5)) == "8"
    assert str(obx["fever"](2)) == "CWE" and str(obx["fever"](5)).startswith("yes^")
    assert str(obx["temperature"](5)) == "39.5"
    findings = [s for s in message.segments("OBX") if str(s(3)).startswith("finding^")]
    assert sorted((str(s(5)).split("^")[0], str(s(8))) for s in findings) == [
        ("pain_high", "A"),
        ("very_hot", "AA"),
    ]

    (request,) = fhir_server.requests
    assert request.headers["Authorization"] == "Bearer token-for-tests"
    bundle = fhir_valid(request.json)
    assert bundle["type"] == "transaction"
    qr = bundle["entry"][0]["resource"]
    assert qr["resourceType"] == "QuestionnaireResponse" and qr["status"] == "completed"
    assert (
        qr["subject"] == {"identifier": {"system": "urn:careloop:authority:HOSP", "value": "0012345"}}
        or qr["subject"]["identifier"]["value"] == "0012345"
    )
    assert (
        bundle["entry"][0]["request"]["ifNoneExist"]
        == f"identifier=urn:careloop:questionnaire-response|{response_id}"
    )
    observations = [e["resource"] for e in bundle["entry"][1:]]
    assert {o["valueCodeableConcept"]["coding"][0]["code"] for o in observations} == {"pain_high", "very_hot"}
    assert all(o["derivedFrom"] == [{"reference": bundle["entry"][0]["fullUrl"]}] for o in observations)

    # delivered rows are not sent again
    assert deliver_due(now=T0 + timedelta(hours=1)).delivered == 0 and len(his.messages) == 1
    actions = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "results.delivery")).all()
    assert len(actions) == 2


def test_a_nak_is_permanent_with_its_reason_and_staff_retry_delivers(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, his: FakeMllpReceiver
) -> None:
    _configure(monkeypatch, mllp=his.port)
    _complete(db)
    his.plan("AE")
    assert deliver_due(now=T0).failed == 1
    row = _deliveries(db)[DeliveryTarget.HL7]
    assert (row.status, row.last_result, row.attempts) == (DeliveryStatus.FAILED, "AE", 1)
    assert "Patient not found" in row.last_error and "PID^1^3" in row.last_error
    assert deliver_due(now=T0 + timedelta(days=1)).failed == 0  # a failed row waits for a person
    assert len(his.messages) == 1
    staff = factories.staff(db, username="feed", role=Role.INTEGRATION)
    do_retry_delivery(db, row.id, staff_id=staff.id, now=T0 + timedelta(days=1))
    db.commit()
    assert deliver_due(now=T0 + timedelta(days=1)).delivered == 1
    assert _deliveries(db)[DeliveryTarget.HL7].status is DeliveryStatus.DELIVERED
    with pytest.raises(ValueError, match="delivered"):
        do_retry_delivery(db, row.id, staff_id=staff.id, now=T0)


def test_a_dropped_connection_is_retried_with_backoff_then_given_up(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, his: FakeMllpReceiver
) -> None:
    _configure(monkeypatch, mllp=his.port, max_attempts="3", retry_seconds="60")
    _complete(db)
    his.plan("drop", "drop")
    assert deliver_due(now=T0).retrying == 1
    row = _deliveries(db)[DeliveryTarget.HL7]
    assert (row.status, row.attempts, row.last_result) == (DeliveryStatus.PENDING, 1, "connection")
    assert row.next_attempt_at == T0 + timedelta(seconds=60)
    assert deliver_due(now=T0 + timedelta(seconds=59)).retrying == 0 and len(his.messages) == 1  # not yet due
    assert deliver_due(now=T0 + timedelta(seconds=60)).retrying == 1
    assert _deliveries(db)[DeliveryTarget.HL7].next_attempt_at == T0 + timedelta(seconds=180)  # 60 + 2 x 60
    his.plan("drop")
    assert deliver_due(now=T0 + timedelta(seconds=180)).failed == 1
    row = _deliveries(db)[DeliveryTarget.HL7]
    assert row.status is DeliveryStatus.FAILED and row.last_error.startswith("gave up after 3 tries")
    assert len(his.messages) == 3
    # the same control id on every try, so the receiver can tell a resend
    assert len({m.split(b"\r")[0].split(b"|")[9] for m in his.messages}) == 1


def test_an_unreachable_listener_is_retried(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session
) -> None:
    with FakeMllpReceiver() as gone:
        port = gone.port
    _configure(monkeypatch, mllp=port)
    _complete(db)
    assert deliver_due(now=T0).retrying == 1
    assert _deliveries(db)[DeliveryTarget.HL7].last_error.startswith("connection failed")


def test_fhir_4xx_is_permanent_and_5xx_retried(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, fhir_server: FakeFhirServer
) -> None:
    _configure(monkeypatch, fhir=fhir_server.base_url)
    _complete(db)
    fhir_server.plan(503, 422)
    assert deliver_due(now=T0).retrying == 1
    assert _deliveries(db)[DeliveryTarget.FHIR].last_result == "503"
    assert deliver_due(now=T0 + timedelta(minutes=1)).failed == 1
    row = _deliveries(db)[DeliveryTarget.FHIR]
    assert (row.status, row.last_result) == (DeliveryStatus.FAILED, "422")
    assert "Patient identifier not known" in row.last_error
    # the retried POST is the same conditional create: a server that did apply the first creates nothing new
    assert fhir_server.requests[0].json == fhir_server.requests[1].json


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 60).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(30, 60) == timedelta(hours=6)


FACTS = ResultFacts(
    response_id=7, questionnaire_id="phq2", questionnaire_version=1, title="PHQ-2 | mood", language="en",
    completed_at=T0, identifiers=(Identifier("M&1", "HOSP", "MR"),), name="O^Brien",
    birth_date=date(1960, 1, 2), sex="female", visit=None, inpatient=False,
    answers=(AnswerFact("note", "Anything else?", "TX", (("line|one~two\\", ""),)),
             AnswerFact("symptoms", "Which?", "CWE", (("a", "Ache"), ("b", "Burn"))),
             AnswerFact("interest", "Little interest?", "CWE", (("1", "Several days"),),
                        standard=("44250-9", "Little interest or pleasure in doing things"))),
    scores=(ScoreFact("total", "Total", 5, "moderate", "Moderate"),),
    findings=(FindingFact("mood_low", "urgent", "Low mood"),),
)  # fmt: skip


def test_oru_escapes_text_and_writes_scores_and_bands() -> None:
    text = build_oru(FACTS, control_id="C1", charset="UNICODE UTF-8", receiver=("HIS", "H"), now=T0)
    message = hl7.parse(text)
    assert str(message.segment("PID")(3)) == "M\\T\\1^^^HOSP^MR"
    assert message.segment("PID").extract_field(1, 5) == "O^Brien"  # escaped, read back whole
    assert "PV1" not in text.split("\r")[2][:3]  # no visit, no PV1
    note = next(s for s in message.segments("OBX") if str(s(3)).startswith("note"))
    assert note.extract_field(1, 5) == "line|one~two\\"
    assert [str(s(3)).split("^")[0] for s in message.segments("OBX")] == [
        "note", "symptoms", "interest", "score.total", "band.total", "finding"
    ]  # fmt: skip
    interest = next(s for s in message.segments("OBX") if str(s(3)).startswith("interest"))
    assert str(interest(3)).split("^")[3:] == ["44250-9", "Little interest or pleasure in doing things", "LN"]
    symptoms = next(s for s in message.segments("OBX") if str(s(3)).startswith("symptoms"))
    assert str(symptoms(5)) == "a^Ache^CARELOOP~b^Burn^CARELOOP"


def test_fhir_bundle_with_scores_is_valid_fhir() -> None:
    response = {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "urn:q|1"}
    bundle = fhir_valid(build_bundle(FACTS, response))
    score = bundle["entry"][1]["resource"]
    assert score["valueInteger"] == 5 and score["interpretation"][0]["coding"][0]["code"] == "moderate"
    assert bundle["entry"][2]["resource"]["interpretation"][0]["coding"][0]["code"] == "AA"


def test_delivery_log_page_filters_exports_and_retries(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, client: TestClient, his: FakeMllpReceiver
) -> None:
    _configure(monkeypatch, mllp=his.port)
    response_id = _complete(db)
    his.plan("AR")
    deliver_due(now=T0)
    factories.staff(db, username="feed", role=Role.INTEGRATION)
    db.commit()
    assert sign_in(client, "feed").status_code == 303
    page = client.get("/staff/integration/results")
    assert (
        page.status_code == 200 and 'data-status="failed"' in page.text and "Patient not found" in page.text
    )
    assert "data-status" not in client.get("/staff/integration/results", params={"status": "delivered"}).text
    exported = client.get("/staff/integration/results.csv", params={"status": "failed"})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert len(lines) == 2 and f",{response_id}," in lines[1] and ",failed," in lines[1]
    row = _deliveries(db)[DeliveryTarget.HL7]
    done = client.post(
        f"/staff/integration/results/{row.id}/retry",
        data={"csrf_token": _csrf(page.text)},
        follow_redirects=True,
    )
    assert done.status_code == 200 and 'id="done"' in done.text
    assert _deliveries(db)[DeliveryTarget.HL7].status is DeliveryStatus.PENDING


def test_a_claim_left_by_a_dead_worker_is_taken_again_and_a_fresh_one_is_not(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, his: FakeMllpReceiver
) -> None:
    _configure(monkeypatch, mllp=his.port)
    _complete(db)
    row = _deliveries(db)[DeliveryTarget.HL7]
    row.status, row.claimed_at, row.attempts = DeliveryStatus.SENDING, T0, 1
    db.commit()
    assert deliver_due(now=T0 + timedelta(seconds=30)).delivered == 0  # another worker may be sending it
    assert his.messages == []
    assert deliver_due(now=T0 + timedelta(minutes=5)).delivered == 1
    assert _deliveries(db)[DeliveryTarget.HL7].attempts == 2


def test_an_unknown_character_set_setting_fails_the_delivery_with_a_clear_reason(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, his: FakeMllpReceiver
) -> None:
    _configure(monkeypatch, mllp=his.port, hl7_charset="KLINGON-8")
    _complete(db)
    assert deliver_due(now=T0).failed == 1
    row = _deliveries(db)[DeliveryTarget.HL7]
    assert (row.last_result, row.last_error) == (
        "config",
        "CARELOOP_RESULTS_HL7_CHARSET names no known character set",
    )
    assert his.messages == []


def test_a_result_not_yet_sent_is_never_sent_once_the_patient_is_anonymised(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session, his: FakeMllpReceiver
) -> None:
    from backend.models import RightsKind
    from backend.privacy.erasure import wipe_patient

    _configure(monkeypatch, mllp=his.port)
    _complete(db)
    wipe_patient(db, db.scalars(sa.select(Patient)).one(), RightsKind.ANONYMISATION)
    db.commit()
    assert deliver_due(now=T0) == deliver_due(now=T0 + timedelta(days=1))  # nothing due, nothing sent
    assert his.messages == []
    row = _deliveries(db)[DeliveryTarget.HL7]
    assert row.status is DeliveryStatus.NOT_SENT
    staff = factories.staff(db, username="feed", role=Role.INTEGRATION)
    with pytest.raises(ValueError, match="not_sent"):
        do_retry_delivery(db, row.id, staff_id=staff.id, now=T0)

"""The patient record: search (POST, blind indexes), visit-type lists with filters, scoping, exclusion
flags by role, the sectioned page with one timeline, quick actions through the outbox gates; both DBs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.followup.catalog import do_publish
from backend.models import (
    AuditEvent,
    Clinician,
    ClinicianKind,
    Conversation,
    Department,
    Direction,
    EncounterKind,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    OutreachStatus,
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    Role,
    StaffUser,
    Ward,
)
from backend.models.base import utcnow
from backend.services.consents import do_revoke_consent
from backend.services.message_log import InvalidFilter
from backend.services.patient_lists import FollowUpState, PatientFilters, parse_patient_filters, patient_rows
from backend.web.record_sections import SECTIONS
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.channels.fake_twilio import FakeTwilio


def _audits(db: Session, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _staff_world(db: Session) -> tuple[Department, Department, StaffUser, StaffUser]:
    cardio, ortho = factories.department(db), factories.department(db)
    agent = factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    return cardio, ortho, agent, nurse


def _search(client: TestClient, **values: str) -> Any:
    token = _csrf(client.get("/staff/patients").text)
    return client.post("/staff/patients", data={"csrf_token": token, **values})


# --- search ----------------------------------------------------------------------------------------


def test_search_by_name_phone_mrn_and_id_number_is_a_post_and_audited(
    client: TestClient, db: Session
) -> None:
    cardio, _, agent, _ = _staff_world(db)
    alice = factories.patient(
        db,
        name="Alice Wang",
        phone="+8613800138000",
        mrn="MRN777",
        id_number="44010119800101123X",
        dept=cardio,
    )
    factories.patient(db, name="Bob Li", dept=cardio)
    db.commit()
    sign_in(client, "agent1")
    for text in ("alice", "138 0013 8000", "mrn777", "44010119800101123x"):
        page = _search(client, q=text)
        assert page.status_code == 200
        assert re.findall(r'data-patient="(\d+)"', page.text) == [str(alice.id)], text
        assert "13800138000" not in page.text and "+86138****8000" in page.text  # masked
        assert "Bob Li" not in page.text
    searches = _audits(db, "patient.search")
    assert len(searches) == 4 and all(a.detail["patients"] == [alice.id] for a in searches)
    assert all(a.detail["filters"]["text"] is True for a in searches)  # that a text was searched, not which
    assert "13800138000" not in str([a.detail for a in searches])
    assert agent.id == searches[0].staff_id


def test_a_nurse_finds_only_her_departments_patients(client: TestClient, db: Session) -> None:
    cardio, ortho, _, _ = _staff_world(db)
    factories.patient(db, name="Alice Wang", dept=cardio)
    factories.patient(db, name="Anna Wang", dept=ortho)
    db.commit()
    sign_in(client, "nurse1")
    # names match by whole words (blind-indexed tokens): both are Wang, only one is in her department
    page = _search(client, q="wang")
    assert "Alice Wang" in page.text and "Anna Wang" not in page.text
    page = _search(client, q="Anna", visit="discharge")
    assert "Anna Wang" not in page.text


# --- lists by visit type ---------------------------------------------------------------------------


def _visits(db: Session) -> dict[str, Any]:
    cardio, ortho, agent, nurse = _staff_world(db)
    ward = Ward(department_id=cardio.id, code="C3", name="Cardio 3")
    doctor = Clinician(kind=ClinicianKind.DOCTOR, department_id=cardio.id, name="Dr Zhou")
    nurse_c = Clinician(kind=ClinicianKind.NURSE, department_id=cardio.id, name="Nurse Lin")
    db.add_all([ward, doctor, nurse_c])
    db.flush()
    now = utcnow()
    alice = factories.patient(db, name="Alice Wang")
    out = factories.encounter(
        db, alice, cardio, kind=EncounterKind.OUTPATIENT, started=now - timedelta(days=2)
    )
    bob = factories.patient(db, name="Bob Li")
    dis = factories.encounter(db, bob, cardio, kind=EncounterKind.DISCHARGE, started=now - timedelta(days=10))
    dis.ward_id, dis.attending_doctor_id, dis.responsible_nurse_id = ward.id, doctor.id, nurse_c.id
    dis.primary_diagnosis = "I21.9"
    carol = factories.patient(db, name="Carol Wu", deceased=True)
    dis2 = factories.encounter(
        db, carol, cardio, kind=EncounterKind.DISCHARGE, started=now - timedelta(days=40)
    )
    dis2.primary_diagnosis = "J18.9"
    dan = factories.patient(db, name="Dan Ortho")
    factories.encounter(db, dan, ortho, kind=EncounterKind.DISCHARGE, started=now - timedelta(days=10))
    plan_task = _follow_up(db, bob, dis, OutreachStatus.COMPLETED)
    db.commit()
    return {
        "now": now,
        "cardio": cardio,
        "ortho": ortho,
        "agent": agent,
        "nurse": nurse,
        "ward": ward,
        "doctor": doctor,
        "nurse_c": nurse_c,
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "dan": dan,
        "out": out,
        "dis": dis,
        "task": plan_task,
    }


def _follow_up(db: Session, person: Patient, enc: Any, status: OutreachStatus) -> OutreachTask:
    from backend.models import FollowUpPlan

    plan = db.scalar(sa.select(FollowUpPlan).limit(1))
    if plan is None:
        plan = FollowUpPlan(name="Discharge", questionnaire_id="recovery", offsets_days=[3], channels=["sms"])
        db.add(plan)
        db.flush()
    now = utcnow()
    task = OutreachTask(
        plan_id=plan.id,
        patient_id=person.id,
        encounter_id=enc.id,
        department_id=enc.department_id,
        questionnaire_id="recovery",
        offset_days=3,
        due_at=now,
        next_attempt_at=now,
        status=status,
        closed_at=now if not status.open else None,
    )
    db.add(task)
    db.flush()
    return task


def _names(db: Session, user: StaffUser, **values: str) -> list[str]:
    rows = patient_rows(db, user=user, filters=parse_patient_filters(values))
    return [r.patient.name for r in rows]


def test_lists_by_visit_type_with_each_filter(db: Session) -> None:
    w = _visits(db)
    agent, day = w["agent"], (w["now"] - timedelta(days=7)).date()
    assert _names(db, agent, visit="outpatient") == ["Alice Wang"]
    # newest discharge first; Bob and Dan left on the same day: the later visit record first
    assert _names(db, agent, visit="discharge") == ["Dan Ortho", "Bob Li", "Carol Wu"]
    assert _names(db, agent, visit="discharge", department=str(w["cardio"].id)) == ["Bob Li", "Carol Wu"]
    assert _names(db, agent, visit="discharge", ward=str(w["ward"].id)) == ["Bob Li"]
    assert _names(db, agent, visit="discharge", doctor=str(w["doctor"].id)) == ["Bob Li"]
    assert _names(db, agent, visit="discharge", nurse=str(w["nurse_c"].id)) == ["Bob Li"]
    assert _names(db, agent, visit="discharge", diagnosis="i21") == ["Bob Li"]
    assert _names(db, agent, visit="discharge", diagnosis="J") == ["Carol Wu"]
    # the discharged are dated by discharge (started + 3 days in the factory)
    assert set(_names(db, agent, visit="discharge", since=day.isoformat())) == {"Bob Li", "Dan Ortho"}
    assert _names(db, agent, visit="discharge", until=(day - timedelta(days=10)).isoformat()) == ["Carol Wu"]
    assert _names(db, agent, visit="discharge", follow_up="completed") == ["Bob Li"]
    assert set(_names(db, agent, visit="discharge", follow_up="none")) == {"Carol Wu", "Dan Ortho"}
    assert _names(db, agent, visit="discharge", flag="deceased") == ["Carol Wu"]
    assert "Carol Wu" not in _names(db, agent, visit="discharge", flag="none")
    assert _names(db, agent, flag="deceased") == ["Carol Wu"]  # patients, not visits
    # a nurse's list holds her department's visits only
    assert set(_names(db, w["nurse"], visit="discharge")) == {"Bob Li", "Carol Wu"}


@pytest.mark.parametrize(
    "values, field",
    [
        ({"visit": "ward_round"}, "visit"),
        ({"since": "2026-13-01"}, "since"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "until"),
        ({"department": "cardio"}, "department"),
        ({"follow_up": "maybe"}, "follow_up"),
        ({"flag": "vip"}, "flag"),
        ({"diagnosis": "X" * 17}, "diagnosis"),
    ],
)
def test_bad_filters_are_named(values: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_patient_filters(values)
    assert caught.value.field == field


def test_filters_parse_and_say_when_rows_are_visits() -> None:
    f = parse_patient_filters({"q": " Alice ", "follow_up": "open", "diagnosis": "i10"})
    assert f == PatientFilters(text="Alice", follow_up=FollowUpState.OPEN, diagnosis="I10")
    assert f.by_visit and not parse_patient_filters({"q": "x", "flag": "dispute"}).by_visit


def test_a_bad_filter_on_the_page_is_a_400_naming_it(client: TestClient, db: Session) -> None:
    _staff_world(db)
    db.commit()
    sign_in(client, "agent1")
    page = _search(client, since="yesterday")
    assert page.status_code == 400 and "This filter value cannot be used: From" in page.text


def test_the_visit_list_costs_the_same_queries_for_50_rows_as_for_a_few(
    client: TestClient, db: Session, statements: list[str]
) -> None:
    w = _visits(db)
    sign_in(client, "agent1")
    token = _csrf(client.get("/staff/patients").text)
    form = {"csrf_token": token, "visit": "discharge"}
    client.post("/staff/patients", data=form)  # warm up
    statements.clear()
    short = client.post("/staff/patients", data=form)
    short_count = len(statements)
    for _ in range(60):
        person = factories.patient(db)
        enc = factories.encounter(db, person, w["cardio"])
        enc.ward_id, enc.attending_doctor_id = w["ward"].id, w["doctor"].id
    db.commit()
    statements.clear()
    full = client.post("/staff/patients", data=form)
    assert short.status_code == full.status_code == 200
    assert len(re.findall(r'data-patient="', full.text)) == 50
    assert len(statements) == short_count, statements


# --- the page --------------------------------------------------------------------------------------


def test_the_record_has_every_section_and_one_timeline_across_channels(
    client: TestClient, db: Session
) -> None:
    cardio, _, _, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", phone="+8613800138000", dept=cardio)
    sms = factories.conversation(db, alice, Channel.SMS)
    web = factories.conversation(db, alice, Channel.WEBCHAT)
    now = utcnow()
    factories.reply(db, sms, "sms from alice", at=now - timedelta(minutes=30))
    factories.reply(db, web, "web from alice", at=now - timedelta(minutes=20))
    item = factories.outbox_item(
        db, sms, at=now - timedelta(minutes=10), status=OutboxStatus.SUPPRESSED, reason="no_consent"
    )
    db.get_one(Message, item.message_id).status = MessageStatus.NOT_SENT
    factories.task(db, person=alice, dept=cardio, conv=sms)
    db.commit()
    sign_in(client, "nurse1")
    page = client.get(f"/staff/patients/{alice.id}")
    assert page.status_code == 200
    for section in SECTIONS:
        assert f'id="{section.key}"' in page.text
    timeline = page.text.split('id="conversations"', 1)[1].split("</section>", 1)[0]
    assert timeline.index("Hello") < timeline.index("web from alice") < timeline.index("sms from alice")
    assert "not sent" in timeline and "has not agreed to messages on this channel" in timeline
    assert "+86138****8000" in page.text and "13800138000" not in page.text
    [view] = _audits(db, "patient.view")
    assert view.patient_id == alice.id


def test_another_departments_patient_by_url_is_403_and_audited(client: TestClient, db: Session) -> None:
    _, ortho, _, nurse = _staff_world(db)
    dan = factories.patient(db, name="Dan Ortho", dept=ortho)
    db.commit()
    sign_in(client, "nurse1")
    page = client.get(f"/staff/patients/{dan.id}")
    assert page.status_code == 403 and "Dan Ortho" not in page.text
    [denied] = _audits(db, "patient.view_denied")
    assert (denied.staff_id, denied.patient_id) == (nurse.id, dan.id)
    assert client.get("/staff/patients/999999").status_code == 404


# --- flags -----------------------------------------------------------------------------------------


def _flag(client: TestClient, patient_id: int, flag: str, value: str = "on") -> Any:
    token = _csrf(client.get(f"/staff/patients/{patient_id}").text)
    return client.post(
        f"/staff/patients/{patient_id}/flags", data={"flag": flag, "value": value, "csrf_token": token}
    )


def test_flags_are_set_by_permitted_roles_and_close_open_follow_ups(client: TestClient, db: Session) -> None:
    cardio, _, agent, nurse = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang")
    enc = factories.encounter(db, alice, cardio)
    open_task = _follow_up(db, alice, enc, OutreachStatus.SCHEDULED)
    db.commit()
    sign_in(client, "nurse1")
    refused = _flag(client, alice.id, "deceased")
    assert refused.status_code == 403 and "You may not change this list." in refused.text
    db.expire_all()
    assert db.get_one(Patient, alice.id).deceased is False
    [denied] = _audits(db, "patient.exclusion_denied")
    assert (denied.staff_id, denied.detail["flag"]) == (nurse.id, "deceased")
    assert _flag(client, alice.id, "do_not_disturb").status_code == 200  # redirected back to the record
    db.expire_all()
    assert db.get_one(Patient, alice.id).do_not_disturb is True
    assert db.get_one(OutreachTask, open_task.id).status is OutreachStatus.CANCELLED
    sign_in(client, "agent1")
    page = _flag(client, alice.id, "do_not_disturb", "off")
    assert "The list was updated." in page.text
    db.expire_all()
    assert db.get_one(Patient, alice.id).do_not_disturb is False
    changes = _audits(db, "patient.exclusion")
    assert [(a.staff_id, a.detail["flag"], a.detail["value"]) for a in changes] == [
        (nurse.id, "do_not_disturb", True),
        (agent.id, "do_not_disturb", False),
    ]
    assert changes[0].detail["follow_ups_closed"] == 1


# --- quick actions ---------------------------------------------------------------------------------


def _post_action(client: TestClient, patient_id: int, action: str, **values: str) -> Any:
    token = _csrf(client.get(f"/staff/patients/{patient_id}").text)
    return client.post(f"/staff/patients/{patient_id}/{action}", data={"csrf_token": token, **values})


def test_a_message_on_sms_goes_through_the_outbox_to_twilio(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
    no_quiet_hours: None,
) -> None:
    cardio, _, agent, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", phone="+8613800138000", dept=cardio)
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "message", channel="sms", text="Please call the ward tomorrow.")
    assert page.status_code == 200 and "The message was queued." in page.text
    [sent] = twilio.messages
    assert sent.params["Body"] == "Please call the ward tomorrow." and sent.params["To"] == "+8613800138000"
    db.expire_all()
    [item] = db.scalars(sa.select(OutboxItem)).all()
    assert (item.status, item.created_by_staff_id) == (OutboxStatus.SENT, agent.id)
    [audit] = _audits(db, "patient.message")
    assert audit.detail["outbox_id"] == item.id and "Please" not in str(audit.detail)


def test_a_message_the_gates_refuse_is_shown_with_the_reason_and_the_draft_kept(
    client: TestClient, db: Session
) -> None:
    cardio, _, _, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    carol = factories.patient(db, name="Carol Wu", dept=cardio, deceased=True)
    do_revoke_consent(
        db, patient_id=alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "message", channel="sms", text="Draft to keep")
    assert page.status_code == 409
    assert "Not sent: the patient has not agreed to messages on this channel." in page.text
    assert ">Draft to keep</textarea>" in page.text
    page = _post_action(client, carol.id, "message", channel="webchat", text="Hello")
    assert page.status_code == 409 and "recorded as deceased" in page.text
    page = _post_action(client, alice.id, "message", channel="voice", text="Hello")
    assert page.status_code == 409 and "cannot be sent on this channel" in page.text
    page = _post_action(client, alice.id, "message", channel="webchat", text="   ")
    assert page.status_code == 409 and "up to 1600 characters" in page.text
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    assert _audits(db, "patient.message") == []


def test_a_message_on_the_web_chat_is_in_the_conversation_at_once(client: TestClient, db: Session) -> None:
    cardio, _, agent, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "message", channel="webchat", text="See you on Monday")
    assert "See you on Monday" in page.text.split('id="conversations"', 1)[1]
    db.expire_all()
    [message] = db.scalars(sa.select(Message)).all()
    conv = db.get_one(Conversation, message.conversation_id)
    assert (conv.patient_id, conv.channel, message.direction, message.status, message.sent_by_staff_id) == (
        alice.id,
        Channel.WEBCHAT,
        Direction.OUTBOUND,
        MessageStatus.SENT,
        agent.id,
    )


def test_a_questionnaire_is_started_and_its_link_sent(client: TestClient, db: Session) -> None:
    cardio, _, _, _ = _staff_world(db)
    alice = factories.patient(db, name="Alice Wang", dept=cardio)
    do_publish(db, DEFINITION)
    db.commit()
    sign_in(client, "agent1")
    page = _post_action(client, alice.id, "questionnaire", channel="webchat", questionnaire="recovery")
    assert "The questionnaire was sent." in page.text
    db.expire_all()
    [response] = db.scalars(sa.select(QuestionnaireResponse)).all()
    assert (response.patient_id, response.questionnaire_id, response.channel, response.department_id) == (
        alice.id,
        "recovery",
        Channel.WEBCHAT,
        cardio.id,  # her visit's department: findings go to its inbox
    )
    [message] = db.scalars(sa.select(Message)).all()
    links = [p for p in message.parts or [] if p.get("type") == "link"]
    # stored as a reference to the form's link, minted when sent or shown (a link is a credential)
    assert links and links[0]["url"].startswith(f"careloop-link:q.{response.id}.")
    [audit] = _audits(db, "patient.questionnaire_sent")
    assert audit.subject_id == response.id
    page = _post_action(client, alice.id, "questionnaire", channel="webchat", questionnaire="nope")
    assert page.status_code == 409 and "not published" in page.text


def test_quick_actions_need_the_csrf_token_and_the_department(client: TestClient, db: Session) -> None:
    _, ortho, _, _ = _staff_world(db)
    dan = factories.patient(db, name="Dan Ortho", dept=ortho)
    db.commit()
    sign_in(client, "nurse1")
    token = _csrf(client.get("/staff/patients").text)
    forged = client.post(
        f"/staff/patients/{dan.id}/message", data={"csrf_token": "x", "channel": "webchat", "text": "hi"}
    )
    assert forged.status_code in (400, 403)
    other = client.post(
        f"/staff/patients/{dan.id}/message", data={"csrf_token": token, "channel": "webchat", "text": "hi"}
    )
    assert other.status_code == 403
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0

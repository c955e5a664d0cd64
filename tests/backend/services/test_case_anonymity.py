"""An anonymous complaint stays anonymous for its departments in every view that lists messages: its
outcome notice and the chat message that carried it never appear beside the patient's name and number
(message log, record timeline, inbox thread); the service centre still sees them."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import FeedbackCase
from backend.services import cases
from backend.services.consents import do_grant_consent
from backend.services.feedback_intake import take_feedback
from backend.services.patient_record import timeline
from bots.domain import Channel, ConsentPurpose
from bots.effects import FeedbackKind, SubmitFeedback
from tests import factories
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.backend.services.case_world import make_world as _world
from tests.backend.services.case_world import register_case as _register
from tests.backend.services.test_case_files_and_notices import media  # noqa: F401
from tests.channels.fake_twilio import FakeTwilio

NOTICE = "Outcome: the night nurse has apologised to you."


def test_the_notice_of_an_anonymous_case_is_not_shown_beside_the_patient(
    twilio: FakeTwilio,  # noqa: F811
    media: Path,  # noqa: F811
    client: TestClient,
    db: Session,
) -> None:
    w = _world(db)
    case = _register(db, w, anonymous=True)
    cases.do_close_case(db, case=case, staff_id=w.nurse.id, summary="Apologised.")
    do_grant_consent(db, patient_id=w.alice.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="t")
    db.commit()
    sign_in(client, "nurse1")  # cardiology: the department the complaint is about, and Alice's
    page = client.get(f"/staff/cases/{case.id}").text
    sent = client.post(
        f"/staff/cases/{case.id}/notify",
        data={"csrf_token": _csrf(page), "channel": "sms", "text": NOTICE},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and len(twilio.messages) == 1  # the complainant is told
    db.expire_all()
    row = f'data-outbox="{db.get_one(FeedbackCase, case.id).notice_outbox_id}"'
    log = client.get("/staff/messages").text
    record = client.get(f"/staff/patients/{w.alice.id}").text
    assert "Alice Wang" in record  # her own department sees her record...
    assert row not in log and "Alice Wang" not in log  # ...but not the notice beside her name
    assert NOTICE not in record
    sign_in(client, "agent1")  # the service centre may know who complained
    log = client.get("/staff/messages").text
    assert row in log and "Alice Wang" in log
    assert NOTICE in client.get(f"/staff/patients/{w.alice.id}").text


def test_the_chat_message_that_carried_an_anonymous_complaint_is_kept_from_the_departments(
    db: Session,
) -> None:
    w = _world(db)
    conversation = factories.conversation(db, w.alice, Channel.WEBCHAT)
    factories.reply(db, conversation, "The night nurse was rude to my mother.")
    factories.reply(db, conversation, "Thank you")
    effect = SubmitFeedback(
        kind=FeedbackKind.COMPLAINT,
        text="The night nurse was rude to my mother.",
        anonymous=True,
        department_id=w.cardio.id,
    )
    take_feedback(db, conversation, effect)
    db.commit()
    nurse_sees = [e.message.text for e in timeline(db, w.alice.id, user=w.nurse)]
    agent_sees = [e.message.text for e in timeline(db, w.alice.id, user=w.agent)]
    assert nurse_sees == ["Thank you"]
    assert sorted(agent_sees) == sorted(["Thank you", "The night nurse was rude to my mother."])

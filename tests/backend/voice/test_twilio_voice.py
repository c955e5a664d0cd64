"""Twilio Programmable Voice: the calls we create (checked by a local fake), TwiML, signed callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import AuditEvent, VoiceCall
from backend.voice.call_media import read_stream_token
from backend.voice.calls import do_create_call
from backend.voice.dialer import dial, gateway_from_settings
from tests import factories
from tests.backend.voice.conftest import audit_trail
from tests.channels.fake_twilio_voice import FakeTwilioVoice
from tests.conftest import reset_caches
from voice_ai.call_events import CallState, Outcome
from voice_ai.gateway import GatewayError
from voice_ai.gateway_twilio import TwilioVoice

PUBLIC = "https://careloop.example.org"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def fake(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilioVoice]:
    with FakeTwilioVoice() as server:
        for name, value in {
            "CARELOOP_PUBLIC_URL": PUBLIC,
            "CARELOOP_TWILIO_ACCOUNT_SID": server.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": server.auth_token,
            "CARELOOP_TWILIO_API_BASE": server.base_url,
            "CARELOOP_TWILIO_VOICE_FROM": "+15005550006",
            "CARELOOP_VOICE_GATEWAY": "twilio",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield server
        reset_caches()


def placed_call(db: Session) -> VoiceCall:
    publish_all(db, get_settings().content_dir)
    person = factories.patient(db, phone="+8613800138000")
    call = do_create_call(db, patient=person, questionnaire_id="nps", gateway="twilio")
    assert dial(db, call, gateway_from_settings(get_settings())) == "placed"
    db.commit()
    return call


def post(client: TestClient, url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
    response = client.post(
        url.removeprefix(PUBLIC), content=urlencode(params), headers={**FORM, "X-Twilio-Signature": signature}
    )
    return response.status_code, response.text


def test_a_call_is_created_with_amd_recording_and_every_status_event(
    fake: FakeTwilioVoice, db: Session
) -> None:
    call = placed_call(db)
    sent = fake.calls[-1]
    assert sent.params["To"] == "+8613800138000" and sent.params["From"] == "+15005550006"
    assert sent.params["Url"] == f"{PUBLIC}/hooks/twilio/voice/answer?call={call.id}"
    assert sent.params["Method"] == "POST" and sent.params["MachineDetection"] == "Enable"
    assert sent.lists["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert sent.params["StatusCallback"] == f"{PUBLIC}/hooks/twilio/voice/status"
    assert sent.params["Record"] == "true"
    assert sent.params["RecordingStatusCallback"] == f"{PUBLIC}/hooks/twilio/voice/recording"
    assert sent.lists["RecordingStatusCallbackEvent"] == ["completed"] and sent.params["Timeout"] == "30"
    db.expire_all()
    assert db.get(VoiceCall, call.id).provider_id == sent.sid  # type: ignore[union-attr]


def test_refusals_end_the_call_record_and_say_whether_a_retry_helps(
    fake: FakeTwilioVoice, db: Session
) -> None:
    publish_all(db, get_settings().content_dir)
    voice = gateway_from_settings(get_settings())
    person = factories.patient(db)
    fake.fail_next(400, 21211)
    call = do_create_call(db, patient=person, questionnaire_id="nps", gateway="twilio")
    assert dial(db, call, voice) == "refused:21211" and call.state is CallState.FAILED
    assert audit_trail(db, call.id)[-1] == ("voice.call_refused", {"code": "21211", "permanent": True})
    fake.fail_next(503)
    assert isinstance(voice, TwilioVoice)
    with pytest.raises(GatewayError) as caught:
        voice.hang_up("CA" + "0" * 32)
    assert caught.value.permanent is False
    with pytest.raises(GatewayError) as unknown:
        voice.hang_up("CA" + "0" * 32)
    assert unknown.value.permanent is True and unknown.value.code == "20404"


def test_the_answer_url_connects_a_signed_bidirectional_stream(
    fake: FakeTwilioVoice, client: TestClient, db: Session
) -> None:
    call = placed_call(db)
    sid = fake.calls[-1].sid or ""
    url, params, signature = fake.answer_webhook(sid, answered_by="machine_end_beep")
    assert post(client, url, params, "forged")[0] == 403
    status, body = post(client, url, params, signature)
    assert status == 200
    stream = xmltodict.parse(body)["Response"]["Connect"]["Stream"]
    assert stream["@url"] == "wss://careloop.example.org/voice/stream"
    given = {p["@name"]: p["@value"] for p in stream["Parameter"]}
    assert given["answered_by"] == "machine" and read_stream_token(get_settings(), given["token"]) == call.id
    db.expire_all()
    assert db.get(VoiceCall, call.id).answered_by == "machine"  # type: ignore[union-attr]
    assert audit_trail(db, call.id)[-1] == ("voice.answered_by", {"by": "machine"})


def test_status_callbacks_are_verified_ordered_and_final_states_stick(
    fake: FakeTwilioVoice, client: TestClient, db: Session
) -> None:
    call = placed_call(db)
    sid = fake.calls[-1].sid or ""
    url, params, signature = fake.status_callback(sid, "ringing", sequence=1)
    assert post(client, url, params, signature[::-1])[0] == 403
    assert post(client, url, params, signature)[0] == 204
    db.expire_all()
    assert db.get(VoiceCall, call.id).state is CallState.RINGING  # type: ignore[union-attr]
    stale = fake.status_callback(sid, "initiated", sequence=0)
    assert post(client, *stale)[0] == 204
    busy = fake.status_callback(sid, "busy", sequence=2, duration=0)
    assert post(client, *busy)[0] == 204
    late = fake.status_callback(sid, "completed", sequence=3, duration=12)
    assert post(client, *late)[0] == 204
    db.expire_all()
    row = db.get(VoiceCall, call.id)
    assert (
        row is not None and row.state is CallState.BUSY and row.outcome is None and row.last_status_seq == 3
    )
    bad = dict(params, CallStatus="exploded")
    assert post(client, url, bad, fake.status_callback(sid, "ringing")[2])[0] in {400, 403}
    assert (
        db.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "voice.call_status")
        )
        == 2
    )


def test_a_completed_call_without_our_stream_failed_and_recordings_are_kept(
    fake: FakeTwilioVoice, client: TestClient, db: Session
) -> None:
    call = placed_call(db)
    sid = fake.calls[-1].sid or ""
    assert post(client, *fake.status_callback(sid, "in-progress", sequence=1, answered_by="human"))[0] == 204
    assert post(client, *fake.status_callback(sid, "completed", sequence=2, duration=42))[0] == 204
    url, params, signature = fake.recording_callback(sid, seconds=41)
    assert post(client, url, params, "nope")[0] == 403
    assert post(client, url, params, signature)[0] == 204
    db.expire_all()
    row = db.get(VoiceCall, call.id)
    assert row is not None and row.answered_by == "human" and row.duration_seconds == 42
    assert row.state is CallState.FAILED and row.outcome is not Outcome.COMPLETED
    assert row.recording_id == params["RecordingSid"] and row.recording_url == params["RecordingUrl"]
    trail = audit_trail(db, call.id)
    assert [detail for action, detail in trail if action == "voice.call_status"] == [
        {"status": "in-progress"},
        {"status": "completed"},
    ]
    assert trail[-1] == ("voice.recording", {})

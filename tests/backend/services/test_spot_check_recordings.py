"""Spot checks show the calls of the sampled follow-up, and the reviewer plays a call's recording, fetched
from the telephony provider (a local Twilio) with the account's credentials and audited; both DBs."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, SpotCheckItem, VoiceCall
from backend.services import spot_checks
from tests.backend.outbox.test_outbox import twilio  # noqa: F401  (fixture)
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.test_spot_checks import DAY, _world
from tests.channels.fake_twilio import FakeTwilio
from voice_ai.call_events import CallState, Outcome

AUDIO = b"ID3\x04\x00" + b"\x00" * 200  # the start of an MP3 file


def _sampled(db: Session) -> tuple[SpotCheckItem, VoiceCall, VoiceCall]:
    w = _world(db, per_department=1)
    check = spot_checks.do_draw(
        db, user=w.manager, department_id=w.cardio.id, start=DAY, end=DAY, count=1, seed="fixed"
    )
    [item] = db.scalars(sa.select(SpotCheckItem).where(SpotCheckItem.spot_check_id == check.id)).all()
    common = {"patient_id": item.patient_id, "outreach_task_id": item.outreach_task_id, "language": "en"}
    missed = VoiceCall(gateway="twilio", provider_id="CA1", state=CallState.NO_ANSWER, attempt=1, **common)
    answered = VoiceCall(
        gateway="twilio",
        provider_id="CA2",
        state=CallState.COMPLETED,
        outcome=Outcome.COMPLETED,
        attempt=2,
        duration_seconds=95,
        recording_id="RE0123456789abcdef",
        **common,
    )
    db.add_all([missed, answered])
    db.commit()
    return item, missed, answered


def test_the_review_shows_the_calls_and_plays_the_recording_from_the_provider(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
) -> None:
    item, missed, answered = _sampled(db)
    answered.recording_url = (
        f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/RE0123456789abcdef"
    )
    db.commit()
    twilio.recordings["RE0123456789abcdef"] = AUDIO
    sign_in(client, "boss")
    page = client.get(f"/staff/spot-checks/items/{item.id}").text
    calls = page.split('id="calls"', 1)[1].split("</section>", 1)[0]
    assert f'data-call="{missed.id}"' in calls and "No recording" in calls
    src = f"/staff/spot-checks/items/{item.id}/calls/{answered.id}/recording"
    assert re.search(rf'<audio controls preload="none" src="{re.escape(src)}"', calls)
    assert "95 s" in calls
    played = client.get(src)
    assert played.status_code == 200 and played.content == AUDIO
    assert played.headers["content-type"] == "audio/mpeg" and played.headers["cache-control"] == "no-store"
    [fetch] = [r for r in twilio.requests if r.path.endswith(".mp3")]
    assert fetch.path.endswith("/Recordings/RE0123456789abcdef.mp3")
    [row] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "spot_check.recording_play")).all()
    assert (row.patient_id, row.subject_id, row.detail["spot_check_item"]) == (
        item.patient_id,
        answered.id,
        item.id,
    )


def test_a_recording_the_provider_cannot_give_or_outside_its_address_is_refused_and_not_audited(
    client: TestClient,
    db: Session,
    twilio: FakeTwilio,  # noqa: F811
) -> None:
    item, missed, answered = _sampled(db)
    answered.recording_url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/REgone"
    db.commit()
    sign_in(client, "boss")
    src = f"/staff/spot-checks/items/{item.id}/calls/{answered.id}/recording"
    gone = client.get(src)
    assert gone.status_code == 502 and "could not be fetched" in gone.text
    answered.recording_url = "http://169.254.169.254/latest/meta-data"  # never fetched
    db.commit()
    assert client.get(src).status_code == 502
    assert not any("169.254" in r.path for r in twilio.requests)
    assert client.get(f"/staff/spot-checks/items/{item.id}/calls/{missed.id}/recording").status_code == 404
    db.expire_all()
    assert (
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "spot_check.recording_play")).all() == []
    )


def test_only_supervisors_play_recordings(client: TestClient, db: Session) -> None:
    item, _, answered = _sampled(db)
    sign_in(client, "nurse1")
    denied = client.get(f"/staff/spot-checks/items/{item.id}/calls/{answered.id}/recording")
    assert denied.status_code == 403

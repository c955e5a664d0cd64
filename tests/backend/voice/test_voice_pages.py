"""The voice monitoring page and the calls section of a patient's record, on both databases: figures
computed from seeded calls, department scoping, played audio and recordings, every view audited."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import (
    AuditEvent,
    Department,
    Finding,
    FollowUpPlan,
    Patient,
    QuestionnaireResponse,
    Role,
    VoiceCall,
)
from backend.models.base import utcnow
from backend.voice.call_media import keep_answer_audio
from backend.voice.calls import do_create_call, do_staff_callback
from backend.voice.monitoring import voice_report
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.conftest import reset_caches
from voice_ai.audio import read_wav, silence
from voice_ai.call_events import CallState, Outcome

SPOKEN = "speech"


def _call(
    db: Session,
    person: Patient,
    dept: Department,
    now: datetime,
    *,
    plan: FollowUpPlan | None = None,
    state: CallState = CallState.COMPLETED,
    outcome: Outcome | None = None,
    placed: bool = True,
    answered_by: str | None = None,
    seconds: int | None = None,
    lines: list[tuple[str, float | None]] | None = None,
    fallbacks: int = 0,
    **fields: Any,
) -> VoiceCall:
    """A call record made by the real verb, then moved to how the dialer and stream leave it."""
    call = do_create_call(db, patient=person, questionnaire_id="nps", gateway="twilio", now=now)
    response = db.get(QuestionnaireResponse, call.response_id)
    assert response is not None
    response.department_id = dept.id
    call.plan_id = plan.id if plan else None
    call.state, call.outcome, call.answered_by, call.duration_seconds = state, outcome, answered_by, seconds
    if placed:
        call.placed_at, call.provider_id = now, f"CA{call.id:032d}"
    if answered_by:
        call.answered_at = now
    call.transcripts = [
        {"item": "recommend", "heard": "nine", "confidence": conf, "via": via, "audio": None}
        for via, conf in (lines or [])
    ]
    call.fallbacks = fallbacks
    for name, value in fields.items():
        setattr(call, name, value)
    db.flush()
    return call


@pytest.fixture
def seeded(db: Session) -> dict[str, Any]:
    """Nine calls in Cardiology today, one in another department."""
    publish_all(db, get_settings().content_dir)
    now = utcnow()
    cardio, ortho = factories.department(db), factories.department(db)
    person, other = factories.patient(db), factories.patient(db)
    plan = FollowUpPlan(name="Cardiology discharge calls", questionnaire_id="nps", channels=["voice"])
    db.add(plan)
    db.flush()
    human = {"answered_by": "human"}
    valid = _call(
        db,
        person,
        cardio,
        now,
        plan=plan,
        outcome=Outcome.COMPLETED,
        seconds=60,
        lines=[(SPOKEN, 0.9), (SPOKEN, 0.8), ("keypad", None)],
        **human,
    )
    _call(
        db,
        person,
        cardio,
        now,
        plan=plan,
        outcome=Outcome.COMPLETED,
        seconds=30,
        lines=[(SPOKEN, 0.3)],
        fallbacks=1,
        **human,
    )
    handed = _call(db, person, cardio, now, plan=plan, outcome=Outcome.INCOMPLETE, seconds=20, **human)
    do_staff_callback(db, handed, "noise", now)
    _call(db, person, cardio, now, plan=plan, outcome=Outcome.MACHINE, answered_by="machine")
    _call(db, person, cardio, now, plan=plan, state=CallState.NO_ANSWER)
    _call(db, person, cardio, now, state=CallState.IN_SURVEY, **human)  # under way now
    _call(db, person, cardio, now, state=CallState.FAILED, placed=False, skip_reason="no_consent")
    _call(
        db, person, cardio, now, state=CallState.QUEUED, placed=False, dial_after=now - timedelta(minutes=1)
    )
    _call(db, person, cardio, now, state=CallState.QUEUED, placed=False, dial_after=now + timedelta(hours=3))
    _call(db, other, ortho, now, outcome=Outcome.COMPLETED, seconds=100, **human)
    alarm = factories.task(db, person=person, dept=cardio)
    db.add(
        Finding(
            response_id=valid.response_id, code="low", severity="high", items=["recommend"], task_id=alarm.id
        )
    )
    factories.encounter(db, person, cardio)
    factories.encounter(db, other, ortho)
    factories.staff(db, username="nurse", departments=[cardio])
    factories.staff(db, username="agent", role=Role.SERVICE_AGENT)
    db.commit()
    return {"now": now, "cardio": cardio, "person": person, "other": other, "valid": valid}


def test_the_figures_follow_from_the_calls_in_the_viewers_departments(
    db: Session, seeded: dict[str, Any]
) -> None:
    report = voice_report(db, seeded["now"], {seeded["cardio"].id})
    t = report.today
    assert report.running == 1
    assert (t.due, t.attempted, t.skipped, t.queued) == (8, 6, 1, 1)
    assert t.coverage == 6 / 8 and t.connect_rate == 5 / 6 and t.machine_rate == 1 / 6
    assert t.completion_rate == 2 / 4 and t.valid_rate == 1 / 2 and t.alert_rate == 1 / 2
    assert t.handoff_rate == 1 / 4 and t.fallback_rate == 1 / 4
    assert t.average_seconds == pytest.approx((60 + 30 + 20) / 3)
    campaigns = dict(report.campaigns)
    assert (
        campaigns["Cardiology discharge calls"].due == 5
        and campaigns["Cardiology discharge calls"].completed == 2
    )
    assert campaigns[""].due == 3 and campaigns[""].attempted == 1
    everyone = voice_report(db, seeded["now"], None).today
    assert (everyone.due, everyone.completed) == (9, 3)


def _cell(html: str, cell: str) -> str:
    found = re.search(rf'id="{cell}">([^<]*)<', html)
    assert found, cell
    return found.group(1).strip()


def test_the_monitoring_page_shows_them_scoped_and_audited(
    client: TestClient, db: Session, seeded: dict[str, Any]
) -> None:
    assert client.get("/staff/voice", follow_redirects=False).status_code in {302, 303, 401}
    assert sign_in(client, "nurse").status_code == 303
    page = client.get("/staff/voice")
    assert page.status_code == 200
    html = page.text
    assert _cell(html, "running") == "1" and _cell(html, "coverage") == "6 / 8 = 75%"
    assert [_cell(html, c) for c in ("connect", "machine", "completion", "valid", "alerts", "handoffs")] == [
        "83%",
        "17%",
        "50%",
        "50%",
        "50%",
        "25%",
    ]
    assert _cell(html, "duration") == "37 s" and _cell(html, "fallback") == "25%"
    assert "Cardiology discharge calls" in html
    db.expire_all()
    viewed = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "voice.monitor_view")).one()
    assert viewed.staff_id is not None
    client.cookies.clear()
    assert sign_in(client, "agent").status_code == 303
    assert _cell(client.get("/staff/voice").text, "coverage") == "7 / 9 = 78%"


def test_the_page_is_translated(client: TestClient, db: Session, seeded: dict[str, Any]) -> None:
    for lang, heading in (("zh-CN", "语音外呼"), ("vi", "Cuộc gọi thoại")):
        db.execute(sa.text("UPDATE staff_users SET language = :l WHERE username = 'nurse'"), {"l": lang})
        db.commit()
        client.cookies.clear()
        sign_in(client, "nurse")
        html = client.get("/staff/voice").text
        assert f"<h1>{heading}</h1>" in html and "Connect rate" not in html


@pytest.fixture
def recordings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Twilio's recording media (the outside world): the MP3 for authenticated GETs, 401 otherwise."""
    asked: list[str] = []
    mp3 = b"ID3\x04\x00 audio"  # what comes back is passed through untouched

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            if self.headers.get("Authorization", "").startswith("Basic ") and self.path.endswith(".mp3"):
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.end_headers()
                self.wfile.write(mp3)
            else:
                self.send_response(401)
                self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", "t" * 32)
    reset_caches()
    yield asked
    server.shutdown()
    server.server_close()


def test_the_record_shows_each_call_and_plays_its_audio_to_staff_who_may_see_the_patient(
    client: TestClient,
    db: Session,
    seeded: dict[str, Any],
    recordings: list[str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(tmp_path / "media"))
    get_settings.cache_clear()
    call = db.get(VoiceCall, seeded["valid"].id)
    assert call is not None
    pcm = silence(300, 8000)
    ref = keep_answer_audio(get_settings(), call.id, pcm)
    call.transcripts = [
        *call.transcripts[:2],
        {"item": "reason", "heard": "the food", "confidence": None, "via": "recording", "audio": ref},
    ]
    base = get_settings().twilio_api_base
    call.recording_id, call.recording_url = "RE1", f"{base}/2010-04-01/Accounts/AC1/Recordings/RE1"
    db.commit()
    sign_in(client, "nurse")
    page = client.get(f"/staff/patients/{seeded['person'].id}").text
    section = page[page.index(f'data-call="{call.id}"') :]
    section = section[: section.index("</article>")]
    assert "Survey completed" in section and "60 s" in section and "0.90" in section and "0.80" in section
    assert "the food" in section and "How likely" in section  # the question's text, not its id
    assert (
        f"/staff/voice/calls/{call.id}/audio/2" in section
        and f"/staff/voice/calls/{call.id}/recording" in section
    )
    played = client.get(f"/staff/voice/calls/{call.id}/audio/2")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert read_wav(played.content) == (pcm, 8000)
    assert client.get(f"/staff/voice/calls/{call.id}/audio/0").status_code == 404  # spoken: no audio kept
    fetched = client.get(f"/staff/voice/calls/{call.id}/recording")
    assert fetched.status_code == 200 and fetched.content == b"ID3\x04\x00 audio"
    assert fetched.headers["content-type"] == "audio/mpeg"
    assert recordings == ["/2010-04-01/Accounts/AC1/Recordings/RE1.mp3"]
    db.expire_all()
    actions = list(db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("voice.%_play%"))))
    assert actions == ["voice.audio_play", "voice.recording_play"]
    # a nurse of another department neither sees the patient nor plays the call
    ortho = db.scalars(sa.select(Department).where(Department.id != seeded["cardio"].id)).first()
    factories.staff(db, username="ortho", departments=[ortho])  # type: ignore[list-item]
    db.commit()
    client.cookies.clear()
    sign_in(client, "ortho")
    assert client.get(f"/staff/voice/calls/{call.id}/audio/2").status_code == 404
    assert client.get(f"/staff/voice/calls/{call.id}/recording").status_code == 404
    assert len(recordings) == 1
    db.expire_all()
    denied = list(db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("voice.%_denied"))))
    assert denied == ["voice.audio_play_denied", "voice.recording_play_denied"]

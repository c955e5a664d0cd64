"""Voice fixtures: the real app served by uvicorn on a free port, and helpers to place simulated calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import AuditEvent, QuestionnaireResponse, VoiceCall
from backend.voice.calls import do_create_call
from backend.web.voice_hooks import stream_parameters
from tests import factories
from tests.backend.voice.live import free_port, run_in_own_loop, serving
from voice_ai.call_events import CallState
from voice_ai.gateway import AnsweredBy
from voice_ai.gateway_sim import CallLog, SimulatedCaller, Turn

BIRTH_KEYS = "17051960"  # factories.patient's birth date, day month year


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voice-prompts")


@pytest.fixture
def voice_server(
    database_url: str, prompt_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    port = free_port()
    monkeypatch.setenv("CARELOOP_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CARELOOP_VOICE_PROMPT_CACHE", str(prompt_cache))
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("CARELOOP_VOICE_NO_INPUT_MS", "3000")
    get_settings.cache_clear()
    with serving(port) as base:
        yield base


def start_call(db: Session, questionnaire_id: str) -> VoiceCall:
    publish_all(db, get_settings().content_dir)
    person = factories.patient(db, language="en")
    call = do_create_call(db, patient=person, questionnaire_id=questionnaire_id, gateway="simulated")
    db.commit()
    return call


def place(base: str, call: VoiceCall, turns: list[Turn], by: AnsweredBy = AnsweredBy.HUMAN) -> CallLog:
    url = base.replace("http://", "ws://") + "/voice/stream"
    caller = SimulatedCaller(turns, speed=8.0)
    return run_in_own_loop(caller.run(url, stream_parameters(get_settings(), call.id, by), timeout=600))


def audit_trail(db: Session, call_id: int) -> list[tuple[str, dict[str, Any]]]:
    """The call's audit rows in order: (action, detail)."""
    rows = db.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.subject_type == "voice_call", AuditEvent.subject_id == call_id)
        .order_by(AuditEvent.id)
    )
    return [(row.action, dict(row.detail or {})) for row in rows]


def stored(db: Session, call: VoiceCall) -> tuple[VoiceCall, QuestionnaireResponse]:
    """The call and its response once the server has finished with the call (a caller who hangs up
    does not wait for that)."""
    deadline = time.monotonic() + 10
    while True:
        db.expire_all()
        row = db.get(VoiceCall, call.id)
        assert row is not None
        if row.ended_at is not None or row.state is CallState.QUEUED or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    response = db.get(QuestionnaireResponse, row.response_id)
    assert response is not None
    return row, response

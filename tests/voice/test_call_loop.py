"""Closed loop: espeak-ng speaks each answer, the simulated gateway streams it over the WebSocket to the
real server route, pocketsphinx recognises it, and the stored response equals the intended answers."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from backend.content import load_answer_messages, load_voice_phrases
from backend.followup.catalog import definition_of, latest_version, publish_all
from backend.models import QuestionnaireResponse, ResponseStatus, Task, TaskKind, VoiceCall
from backend.settings import REPO_ROOT, get_settings
from backend.voice.calls import do_create_call, load_answer_audio
from backend.voice.hooks import stream_parameters
from questionnaires.channels import VoicePhrases
from questionnaires.values import to_json
from tests import factories
from tests.voice.live import free_port, serving
from tests.voice.plans import plan_for
from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser
from voice_ai.gateway import AnsweredBy
from voice_ai.gateway_sim import CallLog, SimulatedCaller, Turn
from voice_ai.session import CallState, Outcome
from voice_ai.tts import EspeakSynthesizer

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="make system-deps installs espeak-ng"),
]
QUESTIONNAIRES = sorted(p.stem for p in (REPO_ROOT / "content" / "questionnaires").glob("*.yaml"))
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


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> EspeakSynthesizer:
    return EspeakSynthesizer(tmp_path_factory.mktemp("caller-voice"), engine="cli")


def start_call(db: Session, questionnaire_id: str) -> VoiceCall:
    publish_all(db, get_settings().content_dir)
    person = factories.patient(db, language="en")
    call = do_create_call(db, patient=person, questionnaire_id=questionnaire_id, gateway="simulated")
    db.commit()
    return call


def place(base: str, call: VoiceCall, turns: list[Turn], by: AnsweredBy = AnsweredBy.HUMAN) -> CallLog:
    url = base.replace("http://", "ws://") + "/voice/stream"
    caller = SimulatedCaller(turns, speed=8.0)
    return asyncio.run(caller.run(url, stream_parameters(get_settings(), call.id, by), timeout=600))


def stored(db: Session, call: VoiceCall) -> tuple[VoiceCall, QuestionnaireResponse]:
    db.expire_all()
    row = db.get(VoiceCall, call.id)
    assert row is not None
    response = db.get(QuestionnaireResponse, row.response_id)
    assert response is not None
    return row, response


@pytest.mark.parametrize("questionnaire_id", QUESTIONNAIRES)
def test_every_questionnaire_by_voice_stores_the_intended_answers(
    voice_server: str, db: Session, synth: EspeakSynthesizer, questionnaire_id: str
) -> None:
    call = start_call(db, questionnaire_id)
    version = latest_version(db, questionnaire_id)
    assert version is not None
    q = definition_of(version)
    phrases = VoicePhrases.parse(load_voice_phrases("en"), "en")
    known = PocketsphinxRecogniser(8000)._known
    plan = plan_for(q, phrases, load_answer_messages(get_settings().content_dir), synth, known,
                    birth_keys=BIRTH_KEYS, today=date.today())  # fmt: skip
    log = place(voice_server, call, plan.turns)
    row, response = stored(db, call)
    assert log.errors == [] and log.closed_by_server, log
    intended = {key: to_json(q.item(key), value) for key, value in plan.answers.items()}
    got = {key: value for key, value in response.answers.items() if key not in plan.recorded}
    assert got == intended, {"said": plan.spoken, "transcripts": row.transcripts}
    assert sorted(response.skipped) == sorted(plan.skipped)
    for item_id in plan.recorded:  # open answers: the audio is kept; the transcript is a rough draft
        line = next(t for t in row.transcripts if t["item"] == item_id)
        assert line["via"] == "recording" and response.answers[item_id]
        assert len(load_answer_audio(get_settings(), row.id, line["audio"])) > 8000
    assert response.status is ResponseStatus.COMPLETED and response.channel.value == "voice"
    assert row.state is CallState.COMPLETED and row.outcome is Outcome.COMPLETED
    assert row.duration_seconds is not None and row.provider_id == log.call_sid
    spoken = [t for t in row.transcripts if t["via"] == "speech"]
    assert all(t["heard"] for t in spoken)
    assert response.completed_at is not None

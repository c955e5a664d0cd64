"""Closed loop: espeak-ng speaks each answer, the simulated gateway streams it over the WebSocket to the
real server route, pocketsphinx recognises it, and the stored response equals the intended answers."""

from __future__ import annotations

import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from backend.app.settings import REPO_ROOT, get_settings
from backend.dialogue.content import load_answer_messages, load_voice_phrases
from backend.followup.catalog import definition_of, latest_version
from backend.models import Patient, ResponseStatus
from backend.voice.call_media import load_answer_audio
from questionnaires.channels import VoicePhrases
from questionnaires.values import to_json
from tests.backend.voice.conftest import BIRTH_KEYS, place, start_call, stored
from tests.backend.voice.plans import plan_for
from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser
from voice_ai.call_events import CallState, Outcome
from voice_ai.tts import EspeakSynthesizer

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="make system-deps installs espeak-ng"),
]
# Every questionnaire passes: pocketsphinx decodes each utterance on its own (nothing carries over from
# earlier answers), so a phrase is heard the same way whatever came before it; the phrases avoided as
# misheard are in plans.MISHEARD.
QUESTIONNAIRES = sorted(p.stem for p in (REPO_ROOT / "content" / "questionnaires").glob("*.yaml"))


# Speech is what this loop tests, and it does not depend on the database: it runs on PostgreSQL only
# (half the suite's longest part). The call's storage is tested on both databases in
# test_call_behaviour.py and test_twilio_voice.py.
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("questionnaire_id", QUESTIONNAIRES)
def test_every_questionnaire_by_voice_stores_the_intended_answers(
    voice_server: str,
    db: Session,
    synth: EspeakSynthesizer,
    questionnaire_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The scripted caller says one answer per question and cannot answer a read-back or an offer of a
    # person: this loop tests recognition with both off, as it was written; read-back and spotting are
    # tested end to end in test_call_readback.py.
    monkeypatch.setenv("CARELOOP_VOICE_CONFIRM_BELOW_POCKETSPHINX", "0")
    monkeypatch.setenv("CARELOOP_VOICE_SPOTTING", "false")
    get_settings.cache_clear()
    call = start_call(db, questionnaire_id)
    patient = db.get(Patient, call.patient_id)
    assert patient is not None
    today = datetime.now(ZoneInfo(patient.timezone)).date()  # the call's "today", as the server sees it
    version = latest_version(db, questionnaire_id)
    assert version is not None
    q = definition_of(version)
    phrases = VoicePhrases.parse(load_voice_phrases("en"), "en")
    known = PocketsphinxRecogniser(8000)._known
    plan = plan_for(
        q,
        phrases,
        load_answer_messages(get_settings().content_dir),
        synth,
        known,
        birth_keys=BIRTH_KEYS,
        today=today,
    )
    log = place(voice_server, call, plan.turns)
    row, response = stored(db, call)
    assert log.errors == [] and log.closed_by_server, log
    intended = {key: to_json(q.item(key), value) for key, value in plan.answers.items()}
    got = {key: value for key, value in response.answers.items() if key not in plan.recorded}
    assert got == intended, {
        "said": plan.spoken,
        "transcripts": row.transcripts,
        "outcome": row.outcome,
        "log": log,
    }
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

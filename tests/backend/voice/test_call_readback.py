"""Read-back and red flags end to end over the WebSocket: real server, espeak-ng caller, real pocketsphinx."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import ResponseStatus, Task, TaskKind, TaskPriority
from tests.backend.voice.conftest import BIRTH_KEYS, place, start_call, stored
from voice_ai.call_events import Outcome
from voice_ai.gateway_sim import Press, say
from voice_ai.tts import EspeakSynthesizer

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="make system-deps installs espeak-ng"),
]


def test_an_unsure_answer_is_read_back_and_stored_as_confirmed_after_a_spoken_yes(
    voice_server: str, db: Session, synth: EspeakSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_VOICE_CONFIRM_BELOW_POCKETSPHINX", "1.0")  # every answer is unsure
    get_settings.cache_clear()
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), say(synth, "four"), say(synth, "yes"), Press("#")])
    row, response = stored(db, call)
    assert log.closed_by_server and response.answers == {"recommend": 4}
    line = row.transcripts[0]
    assert (line["heard"], line["via"], line["confirmed"]) == ("four", "speech", True)
    assert row.outcome is Outcome.COMPLETED and response.status is ResponseStatus.COMPLETED


def test_a_red_flag_said_mid_survey_plays_the_guidance_and_a_person_is_one_key_away(
    voice_server: str, db: Session, synth: EspeakSynthesizer
) -> None:
    # pocketsphinx does not spot espeak-ng's "chest pain" in any form (measured: heard as "eight" with
    # confidence 0.99, and nothing in the spotting grammar); "i can't breathe" it does. docs/voice.md.
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), say(synth, "i can't breathe"), Press("1")])
    row, response = stored(db, call)
    assert log.closed_by_server and response.answers == {}
    tasks = db.scalars(sa.select(Task).where(Task.patient_id == row.patient_id)).all()
    flags = [t for t in tasks if t.kind is TaskKind.HANDOFF]
    assert len(flags) == 1 and flags[0].priority is TaskPriority.EMERGENCY
    assert flags[0].title.startswith("voice:emergency:breathing:recommend")
    callback = db.get(Task, row.callback_task_id)
    assert callback is not None and callback.priority is TaskPriority.URGENT
    assert row.outcome is Outcome.TO_STAFF

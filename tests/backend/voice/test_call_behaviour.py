"""Calls that do not go by the book, end to end over the WebSocket: keypad, barge-in, silence, machines,
hang-ups, a wrong birth date, a forged stream. Real server, real espeak-ng speech, real pocketsphinx."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
import websockets
from sqlalchemy.orm import Session

from backend.models import ResponseStatus, Task, TaskKind
from tests.backend.voice.conftest import BIRTH_KEYS, audit_trail, place, start_call, stored
from tests.backend.voice.live import run_in_own_loop
from voice_ai.call_events import CallState, Outcome
from voice_ai.gateway import AnsweredBy
from voice_ai.gateway_sim import HangUp, Press, Silent, say
from voice_ai.media_stream import MULAW, Connected, Start, encode_inbound
from voice_ai.tts import EspeakSynthesizer

pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="make system-deps installs espeak-ng"),
]


def test_a_whole_survey_by_keypad(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), Press("9#"), Press("#")])
    row, response = stored(db, call)
    assert log.closed_by_server and response.answers == {"recommend": 9} and response.skipped == ["reason"]
    assert [t["via"] for t in row.transcripts] == ["keypad"]
    assert row.outcome is Outcome.COMPLETED and response.status is ResponseStatus.COMPLETED
    trail = audit_trail(db, call.id)
    actions = [action for action, _ in trail]
    assert actions[:2] == ["voice.call_created", "voice.stream_started"] and "voice.call_state" in actions
    assert [detail for action, detail in trail if action == "voice.answer_saved"] == [
        {"item": "recommend", "via": "keypad"}  # which question and how, never what was said
    ]
    assert actions[-2:] == ["voice.hangup", "voice.call_ended"]
    assert trail[-1][1] == {"outcome": "completed", "answers": 1}


def test_speaking_over_a_question_stops_it_and_is_heard(
    voice_server: str, db: Session, synth: EspeakSynthesizer
) -> None:
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), say(synth, "four", barge_in=True), Press("#")])
    row, response = stored(db, call)
    assert log.clears >= 1  # the server sent clear when the caller started talking
    assert response.answers == {"recommend": 4} and row.transcripts[0]["heard"] == "four"
    assert row.outcome is Outcome.COMPLETED


def test_silence_twice_moves_to_the_keypad(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), Silent(), Silent(), Press("3#"), Press("#")])
    row, response = stored(db, call)
    assert log.prompts >= 5  # greeting, birth date, question, re-ask, keypad re-ask, ...
    assert response.answers == {"recommend": 3} and row.transcripts[0]["via"] == "keypad"
    assert row.outcome is Outcome.COMPLETED


def test_no_answer_by_speech_or_keypad_ends_in_a_staff_callback(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")
    place(voice_server, call, [Press(BIRTH_KEYS), Silent(), Silent(), Silent(), Silent()])
    row, response = stored(db, call)
    assert row.outcome is Outcome.UNANSWERABLE and row.state is CallState.COMPLETED
    assert ("voice.callback_raised", {"task": row.callback_task_id}) in audit_trail(db, call.id)
    task = db.get(Task, row.callback_task_id)
    assert task is not None and task.kind is TaskKind.CALLBACK and task.patient_id == row.patient_id
    assert response.status is ResponseStatus.IN_PROGRESS and response.answers == {}


def test_an_answering_machine_gets_the_voicemail_and_nothing_is_asked(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")
    log = place(voice_server, call, [], by=AnsweredBy.MACHINE)
    row, response = stored(db, call)
    assert log.closed_by_server and log.prompts == 1
    assert row.outcome is Outcome.MACHINE and row.answered_by == "machine" and response.answers == {}
    assert ("voice.call_state", {"state": "machine"}) in audit_trail(db, call.id)


def test_hanging_up_mid_survey_keeps_the_answers_given(
    voice_server: str, db: Session, synth: EspeakSynthesizer
) -> None:
    call = start_call(db, "nps")
    log = place(voice_server, call, [Press(BIRTH_KEYS), say(synth, "four"), HangUp()])
    row, response = stored(db, call)
    assert not log.closed_by_server
    assert response.answers == {"recommend": 4} and response.status is ResponseStatus.IN_PROGRESS
    assert row.outcome is Outcome.INCOMPLETE and row.state is CallState.FAILED and row.ended_at is not None
    trail = audit_trail(db, call.id)
    assert [a for a, _ in trail if a == "voice.answer_saved"] == ["voice.answer_saved"]
    assert trail[-1] == ("voice.call_ended", {"outcome": "incomplete", "answers": 1})


def test_a_wrong_birth_date_twice_ends_the_call_without_asking(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")
    place(voice_server, call, [Press("01011970"), Press("01011970")])
    row, response = stored(db, call)
    assert row.outcome is Outcome.IDENTITY_FAILED and response.answers == {}


def test_a_stream_without_our_token_is_closed_and_changes_nothing(voice_server: str, db: Session) -> None:
    call = start_call(db, "nps")

    async def forged() -> int | None:
        url = voice_server.replace("http://", "ws://") + "/voice/stream"
        async with websockets.connect(url) as ws:
            await ws.send(encode_inbound(Connected("Call", "1.0.0")))
            start = Start(
                "MZ" + "1" * 32,
                "CA" + "1" * 32,
                "AC" + "1" * 32,
                ("inbound",),
                MULAW,
                8000,
                1,
                {"token": f"{call.id}.forged"},
                1,
            )
            await ws.send(encode_inbound(start))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        return None

    assert run_in_own_loop(forged()) == 1008
    row, _ = stored(db, call)
    assert row.state is CallState.QUEUED and row.provider_id is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 0
    assert [action for action, _ in audit_trail(db, call.id)] == ["voice.call_created"]

"""The Media Stream WebSocket route: a `CallDriver` per call; its hooks store answers via the do_* verbs."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.content.catalogue import current_catalog
from backend.content.safety_lexicon import sync as sync_site_lexicon
from backend.dialogue.content import load_answer_messages, load_catalog, load_voice_phrases
from backend.followup.responses import answers_of
from backend.models import Patient, VoiceCall
from backend.models.base import utcnow
from backend.voice import engines
from backend.voice.call_media import keep_answer_audio, read_stream_token
from backend.voice.calls import (
    UnknownCall,
    do_change_call_state,
    do_end_call,
    do_record_hangup,
    do_red_flag,
    do_save_call_answer,
    do_staff_callback,
    do_start_stream,
)
from bots.catalog import Catalog
from nlu.safety import Emergency, advice_for
from questionnaires.channels import VoicePhrases
from questionnaires.model import Questionnaire
from voice_ai import call_events as ev
from voice_ai import session as s
from voice_ai.asr import ModelMissing, Recogniser
from voice_ai.call_driver import CallDriver, CallRefused, CallSetup, Timings
from voice_ai.gateway import AnsweredBy
from voice_ai.media_stream import MULAW, Start
from voice_ai.vad import VadConfig

log = logging.getLogger(__name__)
router = APIRouter()
# Synthesis, recognition and database work for every call run here, never on the event loop.
EXECUTOR = ThreadPoolExecutor(max_workers=16, thread_name_prefix="voice")


def script(settings: Settings, lang: str, catalog: Catalog | None = None) -> s.Script:
    """The call's fixed prompts in `lang`: the voice.* and safety texts of `catalog` (the studio's published
    texts, which the studio's voice-prompt page edits; the files when none is given)."""
    catalog = catalog or load_catalog(settings.content_dir, settings.hospital_name)
    keys = (
        "ask_birth_date",
        "identity_failed",
        "confirm",
        "keypad_only",
        "voicemail",
        "goodbye",
        "callback",
        "to_staff",
        "offer_staff",
        "keypad_call",
        "audio_only",
    )
    texts = {key: catalog.text(lang, f"voice.{key}", answer="{answer}") for key in keys}
    # The opening says who calls and that it is automated, whether it is recorded, and how to reach a person.
    opening = ["greeting", *(["recorded"] if settings.voice_record_at_gateway else []), "reach_person"]
    greeting = " ".join(catalog.text(lang, f"voice.{key}") for key in opening)
    numbers = {"emergency_number": settings.emergency_number, "crisis_line": settings.crisis_line}
    advice = {
        e.value: " ".join(
            [catalog.text(lang, advice_for(e).message_key, **numbers), catalog.text(lang, f"safety.tip.{e}")]
        )
        for e in Emergency
    }
    return s.Script(greeting=greeting, advice=advice, **texts)


def build_session(
    settings: Settings,
    q: Questionnaire,
    lang: str,
    patient: Patient,
    now: datetime,
    catalog: Catalog | None = None,
) -> s.CallSession:
    phrases = VoicePhrases.parse(load_voice_phrases(lang, settings.content_dir), lang)
    assert patient.birth_date is not None
    today = now.astimezone(ZoneInfo(patient.timezone)).date()
    return s.CallSession(
        q,
        lang,
        phrases,
        load_answer_messages(settings.content_dir),
        script(settings, lang, catalog),
        birth_date=patient.birth_date,
        today=today,
    )


class StoreHooks:
    """`voice_ai.call_driver.CallHooks` over the database: each call in its own transaction."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.call_id: int | None = None
        self.session: s.CallSession | None = None
        self._audio: dict[str, str] = {}

    def begin(self, start: Start) -> CallSetup:
        if start.encoding != MULAW or start.sample_rate != 8000:
            raise CallRefused(f"media format {start.encoding}/{start.sample_rate} is not mu-law 8 kHz")
        now = utcnow()
        try:
            call_id = read_stream_token(self.settings, start.parameters.get("token", ""))
            with session_scope() as db:
                call, patient, response, q = do_start_stream(db, call_id, start.call_sid)
                sync_site_lexicon(db)  # the hospital's red-flag phrases, spotted in what the caller says
                # the prompts a call starts on are the texts published then, like a conversation's run
                texts = current_catalog(db)
                session = build_session(self.settings, q, call.language, patient, now, texts)
                session.answers = answers_of(q, response)  # a redial resumes where the last call stopped
                session.skipped = set(response.skipped)
                machine = AnsweredBy.MACHINE in (start.parameters.get("answered_by"), call.answered_by)
                lang = call.language
        except UnknownCall as exc:
            raise CallRefused(str(exc)) from exc
        session.spotting = self.settings.voice_spotting
        recogniser: Recogniser | None = None
        try:
            recogniser = engines.recogniser(self.settings, lang)
            session.confirm_below = engines.confirm_below(self.settings, recogniser)
        except ModelMissing as exc:  # no speech model for the language: the call goes by keypad
            log.info("call %s: %s; asking by keypad", call_id, exc)
            session.speech = False
        self.call_id, self.session = call_id, session
        return CallSetup(session, recogniser, engines.transcriber(self.settings, lang), machine=machine)

    def act(self, action: ev.Action) -> None:
        assert self.call_id is not None and self.session is not None
        now = utcnow()
        with session_scope() as db:
            call = db.get(VoiceCall, self.call_id)
            assert call is not None
            match action:
                case ev.SaveAnswer():
                    audio = self._audio.pop(action.item_id, None)
                    skipped = sorted(self.session.skipped)
                    do_save_call_answer(db, call, action, audio=audio, skipped=skipped, now=now)
                case ev.StateChanged(state=state):
                    do_change_call_state(db, call, state, now)
                case ev.StaffCallback(reason=reason, urgent=urgent):
                    do_staff_callback(db, call, reason, now, urgent=urgent)
                case ev.RedFlag():
                    do_red_flag(db, call, action.hit, action.heard, action.item_id, now)
                case ev.Hangup(outcome=outcome):
                    do_record_hangup(db, call, outcome)

    def keep_audio(self, item_id: str, pcm: bytes) -> str:
        assert self.call_id is not None
        ref = keep_answer_audio(self.settings, self.call_id, pcm)
        self._audio[item_id] = ref
        return ref

    def end(self, session: s.CallSession, outcome: ev.Outcome | None, timings: Timings) -> None:
        assert self.call_id is not None
        with session_scope() as db:
            call = db.get(VoiceCall, self.call_id)
            assert call is not None
            do_end_call(
                db,
                call,
                state=session.state,
                outcome=outcome,
                skipped=sorted(session.skipped),
                fallbacks=timings.fallbacks,
                now=utcnow(),
            )


def vad_config(settings: Settings) -> VadConfig:
    return VadConfig(no_input_ms=settings.voice_no_input_ms, end_silence_ms=settings.voice_end_silence_ms)


@router.websocket("/voice/stream")
async def media_stream(ws: WebSocket) -> None:
    """Twilio's <Connect><Stream> (or the simulated gateway) connects here once the call is answered."""
    settings = get_settings()
    await ws.accept()

    async def receive() -> str | None:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if isinstance(text, str) else None

    synth = engines.synthesizer(settings.voice_prompt_cache, settings.voice_tts_engine)
    driver = CallDriver(ws.send_text, StoreHooks(settings), synth, EXECUTOR, vad_config(settings))
    try:
        await driver.run(receive)
    except CallRefused as exc:
        log.warning("media stream refused: %s", exc)
        if ws.application_state is WebSocketState.CONNECTED:
            await ws.close(code=1008)
        return
    if ws.application_state is WebSocketState.CONNECTED:
        await ws.close()

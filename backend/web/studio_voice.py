"""The studio's voice-prompt page: the call's fixed wording (the `voice.*` message texts) in three languages
side by side, each with a "play" preview synthesised by the call's own text-to-speech; editing happens in
the texts editor filtered to these keys (backend/content/voice_prompts.py says why)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content import voice_prompts
from backend.content.catalogue import catalog_at
from backend.voice import engines
from backend.web.deps import SessionDep, StaffDep
from backend.web.staff import render
from backend.web.studio import denied
from bots.domain import LANGUAGES
from voice_ai.audio import TELEPHONE_RATE, ulaw_to_pcm16, write_wav
from voice_ai.tts import SynthesisError

router = APIRouter(prefix="/staff/studio/voice-prompts")


@router.get("", response_class=HTMLResponse)
def voice_prompts_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    number = voice_prompts.shown_revision(db)
    context = {
        "staff": staff,
        "number": number,
        "prompts": voice_prompts.prompts(catalog_at(db, number)),
        "languages": LANGUAGES,
    }
    return render(request, "staff/studio/voice_prompts.html", staff.staff.language, context)


@router.get("/play")
def play(
    request: Request, db: SessionDep, staff: StaffDep, key: str = "", lang: str = "", r: int = 0
) -> Response:
    """The prompt as a call on revision `r` (0: the files) would say it, as telephone audio in a WAV file."""
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    try:
        text = voice_prompts.spoken(db, r or None, key[:120], lang)
    except KeyError:
        return denied(request, staff, missing=True)
    settings = get_settings()
    try:
        # a sync route runs in the thread pool: synthesis never blocks the event loop
        audio = engines.synthesizer(settings.voice_prompt_cache, settings.voice_tts_engine).synthesize(
            text, lang
        )
    except SynthesisError:
        return Response(status_code=503)
    wav = write_wav(ulaw_to_pcm16(audio), TELEPHONE_RATE)
    return Response(wav, media_type="audio/wav", headers={"Cache-Control": "private, max-age=300"})

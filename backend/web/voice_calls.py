"""Staff play a call's audio: an answer kept by our server, or the gateway's recording fetched with the
gateway's credentials (a Twilio recording URL needs them); only for patients they may see, audited."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from backend.models import VoiceCall
from backend.services import audit
from backend.services.patients import may_view
from backend.settings import Settings
from backend.voice.calls import load_answer_audio
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from voice_ai.audio import TELEPHONE_RATE, write_wav

log = logging.getLogger(__name__)
router = APIRouter(prefix="/staff/voice/calls")
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
TWILIO_MEDIA = "https://api.twilio.com/"


def _allowed(db: SessionDep, staff: StaffDep, call: VoiceCall | None, call_id: int, what: str) -> bool:
    if call is None:
        return False
    if not may_view(db, staff.staff, call.patient_id):
        audit.record(
            db,
            f"voice.{what}_denied",
            staff_id=staff.staff_id,
            patient_id=call.patient_id,
            subject=("voice_call", call_id),
        )
        return False
    audit.record(
        db,
        f"voice.{what}",
        staff_id=staff.staff_id,
        patient_id=call.patient_id,
        subject=("voice_call", call_id),
    )
    return True


@router.get("/{call_id}/audio/{index}")
def answer_audio(
    call_id: int, index: int, db: SessionDep, settings: SettingsDep, staff: StaffDep
) -> Response:
    """The audio our server kept of one answer (open answers), as WAV."""
    call = db.get(VoiceCall, call_id)
    lines = (call.transcripts or []) if call is not None else []
    ref = lines[index].get("audio") if 0 <= index < len(lines) else None
    if not ref or not _allowed(db, staff, call, call_id, "audio_play"):
        return PlainTextResponse("not found", status_code=404)
    try:
        pcm = load_answer_audio(settings, call_id, str(ref))
    except (FileNotFoundError, ValueError):
        return PlainTextResponse("not found", status_code=404)
    return Response(write_wav(pcm, TELEPHONE_RATE), media_type="audio/wav", headers=NO_STORE)


def _gateway_media(settings: Settings, url: str) -> bool:
    """Our gateway credentials go only to the gateway's own media host."""
    return url.startswith(TWILIO_MEDIA) or url.startswith(settings.twilio_api_base.rstrip("/") + "/")


@router.get("/{call_id}/recording")
def gateway_recording(call_id: int, db: SessionDep, settings: SettingsDep, staff: StaffDep) -> Response:
    call = db.get(VoiceCall, call_id)
    url = call.recording_url if call is not None else None
    if not url or not _allowed(db, staff, call, call_id, "recording_play"):
        return PlainTextResponse("not found", status_code=404)
    if not _gateway_media(settings, url) or not (settings.twilio_account_sid and settings.twilio_auth_token):
        return PlainTextResponse("recording not reachable", status_code=502)
    try:
        fetched = httpx.get(
            f"{url}.wav",
            auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
            timeout=settings.send_timeout_seconds,
            follow_redirects=True,
        )
    except httpx.HTTPError as exc:
        log.warning("voice call %s: recording fetch failed: %s", call_id, type(exc).__name__)
        return PlainTextResponse("recording not reachable", status_code=502)
    if fetched.status_code != 200:
        return PlainTextResponse("recording not reachable", status_code=502)
    return Response(fetched.content, media_type="audio/wav", headers=NO_STORE)

"""Staff play a call's audio: an answer kept by our server, or the gateway's recording fetched with the
gateway's credentials (a Twilio recording URL needs them); only for patients they may see, audited."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from backend.models import VoiceCall
from backend.services import audit
from backend.services.patients import may_view
from backend.voice.call_media import load_answer_audio
from backend.voice.recordings import RecordingUnavailable, fetch_recording
from backend.web.deps import ProviderSettingsDep, SessionDep, SettingsDep, StaffDep
from voice_ai.audio import TELEPHONE_RATE, write_wav

log = logging.getLogger(__name__)
router = APIRouter(prefix="/staff/voice/calls")
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


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


@router.get("/{call_id}/recording")
def gateway_recording(
    call_id: int, db: SessionDep, settings: ProviderSettingsDep, staff: StaffDep
) -> Response:
    call = db.get(VoiceCall, call_id)
    if call is None or not call.recording_url or not _allowed(db, staff, call, call_id, "recording_play"):
        return PlainTextResponse("not found", status_code=404)
    try:
        audio = fetch_recording(settings, call)
    except RecordingUnavailable as exc:
        log.warning("voice call %s: recording not reachable: %s", call_id, exc)
        return PlainTextResponse("recording not reachable", status_code=502)
    return Response(audio, media_type="audio/mpeg", headers=NO_STORE)

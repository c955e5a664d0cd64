"""Fetching a call's recording from the gateway for a staff member who may hear it (spot checks, the
patient record's calls), and deleting it there when retention or an erasure says it must go.

Twilio keeps recordings; its callback gives their URL, and the audio is `<url>.mp3` behind the
account's basic auth. We fetch it on demand rather than copy every call: only a URL under the configured
Twilio API base is fetched (the URL came from a signature-checked callback, but a row must never make
the server request an arbitrary address), and the bytes are passed to the browser, not stored.
"""

from __future__ import annotations

import httpx

from backend.app.settings import Settings
from backend.models import VoiceCall


class RecordingUnavailable(Exception):
    """No recording, not a gateway address we fetch from, or the gateway did not give it."""


def fetch_recording(settings: Settings, call: VoiceCall) -> bytes:
    url = call.recording_url or ""
    base = settings.twilio_api_base.rstrip("/") + "/"
    if not url.startswith(base) or not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise RecordingUnavailable("no fetchable recording")
    try:
        response = httpx.get(
            f"{url}.mp3",
            auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
            timeout=settings.send_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise RecordingUnavailable(type(exc).__name__) from exc
    if response.status_code != 200:
        raise RecordingUnavailable(f"gateway answered {response.status_code}")
    return response.content


def delete_recording(settings: Settings, call: VoiceCall) -> bool:
    """Delete the call's recording at the gateway (Twilio: DELETE <RecordingUrl>.json, 204 No Content).
    True when it is gone there, including a 404 (deleted before); False when the link is not one of the
    gateway's (a simulated call: there is nothing to delete). Raises RecordingUnavailable when the
    gateway did not delete it, so the caller keeps the link and tries again later."""
    url = call.recording_url or ""
    base = settings.twilio_api_base.rstrip("/") + "/"
    if not url.startswith(base):
        return False
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise RecordingUnavailable("no Twilio credentials to delete the recording with")
    try:
        response = httpx.delete(
            f"{url}.json",
            auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
            timeout=settings.send_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise RecordingUnavailable(type(exc).__name__) from exc
    if response.status_code not in (204, 404):
        raise RecordingUnavailable(f"gateway answered {response.status_code}")
    return True

"""Twilio Programmable Voice: call creation, <Connect><Stream> TwiML, status and recording callbacks.

A call is created with synchronous answering-machine detection (`MachineDetection=Enable`): Twilio
asks our answer URL for TwiML only once it knows who answered, and says so in `AnsweredBy`; the
TwiML then connects a bidirectional Media Stream whose <Parameter>s carry our call id, a signed token
and `AnsweredBy`, so the stream knows whether to survey or leave a voicemail. Recording happens at
Twilio (`Record=true`) and its callback gives the recording's URL. The Twilio REST client is built by
the composition root (channels.sms_twilio.twilio_client: the API base URL is a setting, so tests
point it at a local fake).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Connect, VoiceResponse

from voice_ai.call_events import CallState
from voice_ai.gateway import (
    AnsweredBy,
    CallRequest,
    CallStatus,
    GatewayError,
    GatewayName,
    MalformedCallback,
    PlacedCall,
    RecordingReady,
)

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")  # every event Twilio can call back on
TWILIO_STATE = {
    "queued": CallState.QUEUED,
    "initiated": CallState.QUEUED,
    "ringing": CallState.RINGING,
    "in-progress": CallState.ANSWERED,
    "completed": CallState.COMPLETED,
    "busy": CallState.BUSY,
    "no-answer": CallState.NO_ANSWER,
    "failed": CallState.FAILED,
    "canceled": CallState.FAILED,
}
INVALID_NUMBER_CODES = frozenset({"13223", "13224", "21211", "21215", "21216", "21217"})


def answered_by(raw: str | None) -> AnsweredBy | None:
    """Twilio's AnsweredBy: human, machine_start, machine_end_beep/_silence/_other, fax, unknown."""
    if not raw:
        return None
    if raw == "human":
        return AnsweredBy.HUMAN
    if raw.startswith("machine_") or raw == "fax":
        return AnsweredBy.MACHINE
    return AnsweredBy.UNKNOWN


def connect_stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """<Response><Connect><Stream url=...><Parameter .../></Stream></Connect></Response>."""
    if not stream_url.startswith(("wss://", "ws://")):
        raise ValueError("a Media Stream URL is wss:// (ws:// only for local tests)")
    response, connect = VoiceResponse(), Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise MalformedCallback(f"{name} is missing")
    return value


def _int(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name, "")
    return int(value) if value.isdigit() else None


class TwilioVoice:
    """`voice_ai.gateway.Gateway` for Twilio; `client` is a twilio.rest.Client."""

    name = GatewayName.TWILIO

    def __init__(self, client: Any, *, caller_id: str, record: bool = True) -> None:
        self.client, self.caller_id, self.record = client, caller_id, record

    def place_call(self, request: CallRequest) -> PlacedCall:
        options: dict[str, Any] = {
            "to": request.to,
            "from_": request.caller_id or self.caller_id,
            "url": request.answer_url,
            "method": "POST",
            "status_callback": request.status_url,
            "status_callback_event": list(STATUS_EVENTS),
            "status_callback_method": "POST",
            "machine_detection": "Enable",
            "timeout": request.ring_seconds,
        }
        if self.record and request.recording_url:
            options |= {
                "record": True,
                "recording_status_callback": request.recording_url,
                "recording_status_callback_event": ["completed"],
                "recording_status_callback_method": "POST",
            }
        call = self._call(lambda: self.client.calls.create(**options))
        return PlacedCall(str(call.sid), TWILIO_STATE.get(str(call.status), CallState.QUEUED))

    def hang_up(self, provider_id: str) -> None:
        self._call(lambda: self.client.calls(provider_id).update(status="completed"))

    def _call(self, request: Any) -> Any:
        try:
            return request()
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code is not None else None
            transient = exc.status == 429 or exc.status >= 500
            reason = f"Twilio {exc.status}" + (f" error {code}" if code else "")
            raise GatewayError(reason, permanent=not transient, code=code) from exc
        except requests.Timeout as exc:
            raise GatewayError("Twilio did not answer in time", permanent=False, code="timeout") from exc
        except requests.RequestException as exc:
            raise GatewayError(
                f"Twilio unreachable: {type(exc).__name__}", permanent=False, code="network"
            ) from exc

    def parse_status(self, params: Mapping[str, str]) -> CallStatus:
        return parse_call_status(params)

    def parse_recording(self, params: Mapping[str, str]) -> RecordingReady:
        return parse_recording_callback(params)


def parse_call_status(params: Mapping[str, str]) -> CallStatus:
    """A status callback (CallStatus, CallSid, AnsweredBy, CallDuration, SequenceNumber, ...)."""
    raw = _required(params, "CallStatus")
    if raw not in TWILIO_STATE:
        raise MalformedCallback(f"unknown CallStatus {raw!r}")
    return CallStatus(
        provider_id=_required(params, "CallSid"),
        state=TWILIO_STATE[raw],
        raw_status=raw,
        answered_by=answered_by(params.get("AnsweredBy")),
        duration_seconds=_int(params, "CallDuration"),
        sequence=_int(params, "SequenceNumber"),
    )


def parse_recording_callback(params: Mapping[str, str]) -> RecordingReady:
    """A recording status callback (RecordingSid, RecordingUrl, RecordingDuration, CallSid)."""
    if params.get("RecordingStatus", "completed") != "completed":
        raise MalformedCallback(f"recording is {params.get('RecordingStatus')!r}, not completed")
    return RecordingReady(
        provider_id=_required(params, "CallSid"),
        recording_id=_required(params, "RecordingSid"),
        url=_required(params, "RecordingUrl"),
        duration_seconds=_int(params, "RecordingDuration"),
    )

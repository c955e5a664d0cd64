"""Twilio Media Streams as typed messages: connected/start/media/dtmf/mark/stop in, media/mark/clear out.

The JSON shapes are Twilio's documented ones (docs/voice/media-streams/websocket-messages). The
simulated gateway speaks the same protocol through `encode_inbound`, so one parser serves both.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MULAW = "audio/x-mulaw"


class MalformedMessage(ValueError):
    """Not a Media Streams message we understand; the message names what is wrong (never the audio)."""


# --- Twilio -> us -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    parameters: Mapping[str, str] = field(default_factory=dict)  # <Parameter>s of the <Stream>
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes  # mu-law 8 kHz, decoded from base64
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    digit: str
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class MarkDone:
    """Twilio's answer to our mark: the audio sent before it has played (or a clear dropped it)."""

    stream_sid: str
    name: str
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    call_sid: str
    account_sid: str
    sequence: int = 0


Inbound = Connected | Start | Media | Dtmf | MarkDone | Stop


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise MalformedMessage(f"{data.get('event')}: '{key}' is missing or not an object")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"'{key}' is missing or not a string")
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    try:
        return int(value)  # Twilio sends sequence numbers, chunks and timestamps as strings
    except (TypeError, ValueError):
        raise MalformedMessage(f"'{key}' is not a number") from None


def parse_inbound(raw: str | bytes) -> Inbound:
    """One WebSocket text message from Twilio (or the simulated gateway)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    event = data.get("event")
    seq = _int(data, "sequenceNumber", 0)
    if event == "connected":
        return Connected(_str(data, "protocol"), str(data.get("version", "")))
    if event == "start":
        start = _obj(data, "start")
        fmt = _obj(start, "mediaFormat")
        params = start.get("customParameters") or {}
        if not isinstance(params, Mapping):
            raise MalformedMessage("start: customParameters is not an object")
        return Start(
            stream_sid=_str(start, "streamSid"),
            call_sid=_str(start, "callSid"),
            account_sid=_str(start, "accountSid"),
            tracks=tuple(str(t) for t in start.get("tracks", ())),
            encoding=_str(fmt, "encoding"),
            sample_rate=_int(fmt, "sampleRate"),
            channels=_int(fmt, "channels", 1),
            parameters={str(k): str(v) for k, v in params.items()},
            sequence=seq,
        )
    if event == "media":
        media = _obj(data, "media")
        text = _str(media, "payload")
        try:
            payload = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedMessage("media: payload is not base64") from None
        return Media(
            _str(data, "streamSid"),
            str(media.get("track", "inbound")),
            _int(media, "chunk", 0),
            _int(media, "timestamp", 0),
            payload,
            seq,
        )
    if event == "dtmf":
        digit = _str(_obj(data, "dtmf"), "digit")
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise MalformedMessage("dtmf: not a keypad digit")
        return Dtmf(_str(data, "streamSid"), digit, seq)
    if event == "mark":
        return MarkDone(_str(data, "streamSid"), _str(_obj(data, "mark"), "name"), seq)
    if event == "stop":
        stop = _obj(data, "stop")
        return Stop(_str(data, "streamSid"), _str(stop, "callSid"), _str(stop, "accountSid"), seq)
    raise MalformedMessage(f"unknown event {event!r}")


def encode_inbound(message: Inbound) -> str:
    """What Twilio would send for `message` (the simulated gateway's side of the protocol)."""
    seq = str(message.sequence) if not isinstance(message, Connected) else None
    match message:
        case Connected(protocol=protocol, version=version):
            return json.dumps({"event": "connected", "protocol": protocol, "version": version})
        case Start():
            start = {
                "streamSid": message.stream_sid,
                "accountSid": message.account_sid,
                "callSid": message.call_sid,
                "tracks": list(message.tracks),
                "customParameters": dict(message.parameters),
                "mediaFormat": {
                    "encoding": message.encoding,
                    "sampleRate": message.sample_rate,
                    "channels": message.channels,
                },
            }
            return json.dumps(
                {"event": "start", "sequenceNumber": seq, "start": start, "streamSid": message.stream_sid}
            )
        case Media():
            media = {
                "track": message.track,
                "chunk": str(message.chunk),
                "timestamp": str(message.timestamp_ms),
                "payload": base64.b64encode(message.payload).decode("ascii"),
            }
            return json.dumps(
                {"event": "media", "sequenceNumber": seq, "media": media, "streamSid": message.stream_sid}
            )
        case Dtmf():
            return json.dumps(
                {
                    "event": "dtmf",
                    "streamSid": message.stream_sid,
                    "sequenceNumber": seq,
                    "dtmf": {"track": "inbound_track", "digit": message.digit},
                }
            )
        case MarkDone():
            return json.dumps(
                {
                    "event": "mark",
                    "sequenceNumber": seq,
                    "streamSid": message.stream_sid,
                    "mark": {"name": message.name},
                }
            )
        case Stop():
            return json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": seq,
                    "streamSid": message.stream_sid,
                    "stop": {"accountSid": message.account_sid, "callSid": message.call_sid},
                }
            )
    raise TypeError(f"not a Media Streams message: {message!r}")


# --- us -> Twilio (bidirectional streams) -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendMedia:
    payload: bytes  # mu-law 8 kHz, no header


@dataclass(frozen=True, slots=True)
class SendMark:
    name: str


@dataclass(frozen=True, slots=True)
class Clear: ...


Outbound = SendMedia | SendMark | Clear


def encode_outbound(stream_sid: str, message: Outbound) -> str:
    match message:
        case SendMedia(payload=payload):
            body = {"payload": base64.b64encode(payload).decode("ascii")}
            return json.dumps({"event": "media", "streamSid": stream_sid, "media": body})
        case SendMark(name=name):
            return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
        case Clear():
            return json.dumps({"event": "clear", "streamSid": stream_sid})
    raise TypeError(f"not an outbound message: {message!r}")


def parse_outbound(raw: str | bytes) -> tuple[str, Outbound]:
    """(streamSid, message) of what our server sent: the simulated gateway's reading of it."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    sid, event = _str(data, "streamSid"), data.get("event")
    if event == "media":
        text = _str(_obj(data, "media"), "payload")
        try:
            return sid, SendMedia(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise MalformedMessage("media: payload is not base64") from None
    if event == "mark":
        return sid, SendMark(_str(_obj(data, "mark"), "name"))
    if event == "clear":
        return sid, Clear()
    raise MalformedMessage(f"unknown event {event!r}")

"""Media Streams messages against the formats in Twilio's documentation (websocket-messages page)."""

from __future__ import annotations

import base64
import json

import pytest

from voice_ai.media_stream import (
    Clear,
    Connected,
    Dtmf,
    MalformedMessage,
    MarkDone,
    Media,
    SendMark,
    SendMedia,
    Start,
    Stop,
    encode_inbound,
    encode_outbound,
    parse_inbound,
    parse_outbound,
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA362c8cd9c6a8f1a4e3bd0dd0a0fa0d3d"
ACCOUNT = "AC6a2d4a7e5d3c4b1a9f8e7d6c5b4a3f21"
# The documented examples, field for field (values of our own).
DOCUMENTED = {
    "connected": {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    "start": {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"token": "abc", "answered_by": "human"},
        },
        "streamSid": SID,
    },
    "media": {
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "5",
            "payload": base64.b64encode(b"\xff\x7f" * 80).decode(),
        },
        "streamSid": SID,
    },
    "dtmf": {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    },
    "mark": {"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "prompt-1"}},
    "stop": {
        "event": "stop",
        "sequenceNumber": "5",
        "streamSid": SID,
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    },
}


def test_every_documented_message_from_twilio_parses_to_its_type() -> None:
    parsed = {name: parse_inbound(json.dumps(raw)) for name, raw in DOCUMENTED.items()}
    assert parsed["connected"] == Connected("Call", "1.0.0")
    start = parsed["start"]
    assert isinstance(start, Start) and start.stream_sid == SID and start.call_sid == CALL
    assert start.encoding == "audio/x-mulaw" and start.sample_rate == 8000 and start.channels == 1
    assert start.parameters == {"token": "abc", "answered_by": "human"} and start.sequence == 1
    assert parsed["media"] == Media(SID, "inbound", 1, 5, b"\xff\x7f" * 80, 3)
    assert parsed["dtmf"] == Dtmf(SID, "1", 5)
    assert parsed["mark"] == MarkDone(SID, "prompt-1", 4)
    assert parsed["stop"] == Stop(SID, CALL, ACCOUNT, 5)


def test_the_simulated_gateway_sends_exactly_what_twilio_documents() -> None:
    for raw in DOCUMENTED.values():
        message = parse_inbound(json.dumps(raw))
        assert json.loads(encode_inbound(message)) == raw


def test_what_we_send_is_the_documented_media_mark_and_clear() -> None:
    media = json.loads(encode_outbound(SID, SendMedia(b"\x01\x02")))
    assert media == {"event": "media", "streamSid": SID, "media": {"payload": "AQI="}}
    assert json.loads(encode_outbound(SID, SendMark("prompt-2"))) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "prompt-2"},
    }
    assert json.loads(encode_outbound(SID, Clear())) == {"event": "clear", "streamSid": SID}
    assert parse_outbound(encode_outbound(SID, SendMedia(b"\x01\x02"))) == (SID, SendMedia(b"\x01\x02"))


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": "hello"}', "unknown event"),
        (json.dumps({**DOCUMENTED["media"], "media": {"payload": "***"}}), "not base64"),
        (json.dumps({**DOCUMENTED["media"], "media": {}}), "payload"),
        (json.dumps({**DOCUMENTED["dtmf"], "dtmf": {"digit": "12"}}), "keypad digit"),
        (json.dumps({"event": "start", "start": {"streamSid": SID}}), "mediaFormat"),
        (json.dumps({**DOCUMENTED["mark"], "sequenceNumber": "x"}), "not a number"),
        (json.dumps({"event": "stop", "streamSid": SID}), "stop"),
    ],
)
def test_malformed_messages_say_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(MalformedMessage, match=says):
        parse_inbound(raw)

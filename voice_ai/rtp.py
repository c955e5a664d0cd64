"""RTP for the SIP gateway: packets (RFC 3550), telephone-event digits (RFC 4733), RTCP reception
reports, and G.711 A-law beside the mu-law the Media Streams side speaks.

The call driver hears and speaks mu-law (Twilio's format); a trunk that chose PCMA (usual on Chinese
carriers) is transcoded per byte through two 256-entry tables, exact to the G.711 reference tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from voice_ai.audio import ulaw_to_pcm16

EVENT_DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15


class MalformedRtp(ValueError):
    """Not an RTP/RTCP packet we can read."""


def _alaw_decode(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << max(seg - 1, 0)
    return t if a & 0x80 else -t


def _alaw_encode(sample: int) -> int:
    # The reference encoder (Sun's g711.c linear2alaw): 13-bit magnitude, segment search.
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask, value = 0x55, -value - 1
    ends = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(ends) if value <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    low = (value >> 1) if seg < 2 else (value >> seg)
    return ((seg << 4) | (low & 0x0F)) ^ mask


_ULAW_PCM = struct.unpack("<256h", ulaw_to_pcm16(bytes(range(256))))
ULAW_TO_ALAW = bytes(_alaw_encode(s) for s in _ULAW_PCM)


def _nearest_ulaw(sample: int) -> int:
    return min(range(256), key=lambda u: abs(_ULAW_PCM[u] - sample))


ALAW_TO_ULAW = bytes(_nearest_ulaw(_alaw_decode(a)) for a in range(256))
ULAW_SILENCE = 0xFF
ALAW_SILENCE = ULAW_TO_ALAW[ULAW_SILENCE]


def alaw_decode(byte: int) -> int:
    """One A-law byte as a 16-bit linear sample (for tests and tools)."""
    return _alaw_decode(byte)


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        head = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
            self.sequence & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        return head + self.payload


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < 12 or data[0] >> 6 != 2:
        raise MalformedRtp("not RTP version 2")
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    offset = 12 + 4 * (first & 0x0F)  # CSRCs
    if first & 0x10:  # header extension: 4 bytes, then its length in 32-bit words
        if len(data) < offset + 4:
            raise MalformedRtp("truncated header extension")
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
    end = len(data)
    if first & 0x20 and end > offset:  # padding: the last byte says how much
        end -= data[-1]
    if end < offset:
        raise MalformedRtp("header longer than the packet")
    return RtpPacket(second & 0x7F, seq, ts, ssrc, data[offset:end], bool(second & 0x80))


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str
    end: bool
    duration: int  # timestamp units (1/8000 s)


def parse_event(payload: bytes) -> DtmfEvent | None:
    """An RFC 4733 telephone-event payload; None for events that are not keypad digits."""
    if len(payload) < 4:
        raise MalformedRtp("telephone-event payload shorter than 4 bytes")
    event, flags, duration = struct.unpack("!BBH", payload[:4])
    if event >= len(EVENT_DIGITS):
        return None
    return DtmfEvent(EVENT_DIGITS[event], bool(flags & 0x80), duration)


def event_payload(digit: str, *, end: bool, duration: int, volume: int = 10) -> bytes:
    return struct.pack("!BBH", EVENT_DIGITS.index(digit), (0x80 if end else 0) | volume, duration)


def received_by_peer(data: bytes, our_ssrc: int) -> int | None:
    """From an RTCP compound packet, the extended highest sequence number the peer reports having
    received from `our_ssrc` (SR or RR report blocks); None when it reports nothing about us."""
    found: int | None = None
    at = 0
    while at + 8 <= len(data):
        first, ptype, words = struct.unpack("!BBH", data[at : at + 4])
        if first >> 6 != 2:
            raise MalformedRtp("not RTCP version 2")
        length = 4 * (words + 1)
        count = first & 0x1F
        blocks = at + 8 + (20 if ptype == 200 else 0)  # SR: sender info before the blocks
        if ptype in (200, 201):
            for i in range(count):
                block = data[blocks + 24 * i : blocks + 24 * (i + 1)]
                if len(block) == 24 and struct.unpack("!I", block[:4])[0] == our_ssrc:
                    found = struct.unpack("!I", block[8:12])[0]
        at += length
    return found

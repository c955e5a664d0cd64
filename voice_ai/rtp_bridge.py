"""The media half of the SIP gateway: one answered call's RTP (G.711, RFC 4733 keys) bridged to our
Media Stream WebSocket, speaking Twilio's side of that protocol so the call driver runs unchanged.

Inbound: each audio packet becomes a `media` message (A-law transcoded to mu-law), each key's end
packet a `dtmf` message. Outbound: the server's audio is queued and played out as 20 ms packets on the
wall clock (silence when there is nothing to say); a mark is echoed once the audio before it has
been sent, and a clear drops what is queued and echoes every mark at once, as Twilio does. The far
end's RTCP reception reports say how many of our packets arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voice_ai.audio import TELEPHONE_RATE
from voice_ai.media_stream import (
    MULAW,
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
    parse_outbound,
)
from voice_ai.rtp import (
    ALAW_TO_ULAW,
    ULAW_SILENCE,
    ULAW_TO_ALAW,
    MalformedRtp,
    RtpPacket,
    parse_event,
    parse_rtp,
    received_by_peer,
)
from voice_ai.sip_message import Codec, MediaAnswer

log = logging.getLogger(__name__)
FRAME = TELEPHONE_RATE * 20 // 1000  # samples (= G.711 bytes) in 20 ms
NEAR_ZERO = b"\xff\x7f\xfe\x7e"  # mu-law's codes for the smallest levels either side of zero


@dataclass
class SipCallLog:
    """What happened on the line (figures for tests and benches; no numbers, no audio)."""

    final_code: int | None = None  # the INVITE's final response
    codec: Codec | None = None
    rtp_in: int = 0  # audio packets received
    rtp_out: int = 0  # audio packets sent
    peer_received: int = 0  # of ours, by the far end's RTCP reports
    audible_in: int = 0  # received packets that were not silence
    audible_out: int = 0  # sent packets that were not silence (our prompts)
    digits: str = ""  # RFC 4733 keys received
    prompts: int = 0  # marks echoed: prompts played to their end (or cleared)
    late_max_ms: float = 0.0  # the play-out clock's worst lag behind its 20 ms schedule (a busy loop)
    late_packets: int = 0  # packets sent a whole frame (20 ms) or more behind schedule
    playing: bool = False  # our server's audio is queued and going out now
    ended_by: str = ""  # "us" (BYE sent), "them" (BYE received), "cancel"
    bye_confirmed: bool = False  # our BYE got its 200, or theirs got ours
    malformed: list[str] = field(default_factory=list)  # reasons (never contents)


class RtpBridge:
    def __init__(
        self, rtp: socket.socket, rtcp: socket.socket, answer: MediaAnswer, call_id: str, line: SipCallLog
    ) -> None:
        self.rtp, self.rtcp, self.answer, self.call_id, self.line = rtp, rtcp, answer, call_id, line
        self.remote = (answer.address, answer.port)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.ssrc = secrets.randbits(32)
        self.first_seq = secrets.randbelow(0x8000)
        self._ws_seq = 0
        self._buffer = bytearray()
        self._queued = self._played = 0
        self._marks: list[tuple[str, int]] = []  # (name, queued bytes it plays out at)
        line.codec = answer.codec

    async def run(
        self, url: str, params: Mapping[str, str], stop: asyncio.Event, far_end_hung_up: Callable[[], bool]
    ) -> None:
        """Until our server closes the stream or `stop` is set; tells the server `stop` when the far end
        hung up."""
        import websockets

        async with websockets.connect(url, max_size=2**22) as ws:
            await ws.send(encode_inbound(Connected("Call", "1.0.0")))
            start = Start(
                self.stream_sid,
                self.call_id,
                "sip",
                ("inbound",),
                MULAW,
                TELEPHONE_RATE,
                1,
                dict(params),
                self._next(),
            )
            await ws.send(encode_inbound(start))
            tasks = [
                asyncio.create_task(self._rtp_in(ws)),
                asyncio.create_task(self._rtcp_in()),
                asyncio.create_task(self._play_out(ws)),
            ]
            server = asyncio.create_task(self._stream_in(ws))
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if far_end_hung_up():
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(
                            encode_inbound(Stop(self.stream_sid, self.call_id, "sip", self._next()))
                        )
            finally:
                for task in (*tasks, server, stopped):
                    task.cancel()
                await asyncio.gather(*tasks, server, stopped, return_exceptions=True)

    def _next(self) -> int:
        self._ws_seq += 1
        return self._ws_seq

    async def _rtp_in(self, ws: Any) -> None:
        loop = asyncio.get_running_loop()
        chunk, last_event_ts, latched = 0, -1, False
        codec, events = self.answer.codec, self.answer.event_pt
        while True:
            data, addr = await loop.sock_recvfrom(self.rtp, 2048)
            try:
                packet = parse_rtp(data)
            except MalformedRtp:
                continue
            if not latched:  # symmetric RTP: send to where the far end's audio comes from (NAT)
                self.remote, latched = addr, True
            if events is not None and packet.payload_type == events:
                try:
                    event = parse_event(packet.payload)
                except MalformedRtp:
                    continue
                # The end packet is sent three times with the event's timestamp: one digit for all three.
                if event is not None and event.end and packet.timestamp != last_event_ts:
                    last_event_ts = packet.timestamp
                    self.line.digits += event.digit
                    await ws.send(encode_inbound(Dtmf(self.stream_sid, event.digit, self._next())))
                continue
            if packet.payload_type != codec:
                continue
            audio = packet.payload.translate(ALAW_TO_ULAW) if codec is Codec.PCMA else packet.payload
            self.line.rtp_in += 1
            self.line.audible_in += bool(audio.strip(NEAR_ZERO))
            chunk += 1
            media = Media(self.stream_sid, "inbound", chunk, chunk * 20, audio, self._next())
            await ws.send(encode_inbound(media))

    async def _rtcp_in(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, _ = await loop.sock_recvfrom(self.rtcp, 2048)
            try:
                highest = received_by_peer(data, self.ssrc)
            except MalformedRtp:
                continue
            if highest is not None:
                self.line.peer_received = max(self.line.peer_received, highest - self.first_seq + 1)

    async def _stream_in(self, ws: Any) -> None:
        """Our server's audio, marks and clears; returns when it closes the stream (it hung up)."""
        import websockets

        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                try:
                    _, message = parse_outbound(raw)
                except MalformedMessage as exc:
                    log.warning("sip call %s: stream message ignored (%s)", self.call_id[:8], exc)
                    continue
                if isinstance(message, SendMedia):
                    self._buffer += message.payload
                    self._queued += len(message.payload)
                elif isinstance(message, SendMark):
                    self._marks.append((message.name, self._queued))
                elif isinstance(message, Clear):
                    self._buffer.clear()
                    self._played = self._queued
                    await self._echo_marks(ws)

    async def _echo_marks(self, ws: Any) -> None:
        while self._marks and self._marks[0][1] <= self._played:
            name, _ = self._marks.pop(0)
            self.line.prompts += 1
            await ws.send(encode_inbound(MarkDone(self.stream_sid, name, self._next())))

    async def _play_out(self, ws: Any) -> None:
        loop = asyncio.get_running_loop()
        seq, timestamp = self.first_seq, secrets.randbits(32)
        codec = self.answer.codec
        silence = bytes([ULAW_SILENCE]) * FRAME
        began, n = time.monotonic(), 0
        while True:
            late = 1000 * (time.monotonic() - (began + n * 0.02))
            self.line.late_max_ms = max(self.line.late_max_ms, late)
            self.line.late_packets += late >= 20
            taken = min(FRAME, len(self._buffer))
            frame = bytes(self._buffer[:taken]).ljust(FRAME, bytes([ULAW_SILENCE])) if taken else silence
            del self._buffer[:taken]
            self._played += taken
            payload = frame.translate(ULAW_TO_ALAW) if codec is Codec.PCMA else frame
            packet = RtpPacket(int(codec), seq, timestamp, self.ssrc, payload, marker=n == 0)
            await loop.sock_sendto(self.rtp, packet.encode(), self.remote)
            self.line.rtp_out += 1
            self.line.playing = bool(self._buffer)
            self.line.audible_out += bool(taken and frame.strip(NEAR_ZERO))
            seq, timestamp, n = (seq + 1) & 0xFFFF, (timestamp + FRAME) & 0xFFFFFFFF, n + 1
            if self._marks:
                await self._echo_marks(ws)
            # On the clock from the call's start, so a late wake-up does not slow the stream down.
            await asyncio.sleep(max(0.0, began + n * 0.02 - time.monotonic()))

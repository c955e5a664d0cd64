"""A simulated gateway: plays a caller from audio files or espeak-ng speech over the Media Streams protocol.

It stands in for Twilio and the person on the phone at once. `SimulatedCaller` opens the same
WebSocket Twilio would (connected, start with the <Parameter>s, 20 ms mu-law media frames, dtmf,
stop), "plays" what the server sends at `speed` times real time and echoes each mark once the audio
before it has played (at once on clear, as Twilio does). The caller takes turns like a person: it
answers when the server has finished talking, or, for a barge-in turn, while a prompt is playing.
`SimulatedGateway` implements the gateway Protocol for development: place_call runs a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voice_ai.audio import TELEPHONE_RATE, pcm16_to_ulaw, read_wav, resample
from voice_ai.call_events import CallState
from voice_ai.dtmf import tone
from voice_ai.gateway import AnsweredBy, CallRequest, CallStatus, GatewayName, PlacedCall, RecordingReady
from voice_ai.media_stream import (
    MULAW,
    Clear,
    Connected,
    Dtmf,
    MarkDone,
    Media,
    SendMark,
    SendMedia,
    Start,
    Stop,
    encode_inbound,
    parse_outbound,
)
from voice_ai.tts import Synthesizer

FRAME = TELEPHONE_RATE * 20 // 1000  # mu-law bytes in 20 ms
SILENCE = b"\xff" * FRAME  # mu-law of 0


@dataclass(frozen=True, slots=True)
class Say:
    audio: bytes  # mu-law 8 kHz
    barge_in: bool = False  # start talking while the prompt is still playing
    label: str = ""


@dataclass(frozen=True, slots=True)
class Press:
    keys: str
    in_band: bool = False  # as tones inside the audio instead of dtmf messages


@dataclass(frozen=True, slots=True)
class Silent:
    """Let this prompt pass without answering (the server's no-input timeout)."""


@dataclass(frozen=True, slots=True)
class HangUp:
    """Hang up now (the stop message, then the socket closes)."""


Turn = Say | Press | Silent | HangUp


def say(synth: Synthesizer, text: str, lang: str = "en", *, barge_in: bool = False) -> Say:
    """A turn spoken by espeak-ng (through the same prompt renderer the server uses)."""
    return Say(synth.synthesize(text, lang), barge_in=barge_in, label=text)


def say_file(path: Path, *, barge_in: bool = False) -> Say:
    """A turn from a recorded WAV file (any rate, 16-bit), sent as telephone audio."""
    pcm, rate = read_wav(path.read_bytes())
    return Say(pcm16_to_ulaw(resample(pcm, rate, TELEPHONE_RATE)), barge_in=barge_in, label=path.name)


@dataclass
class CallLog:
    """What the caller experienced."""

    prompts: int = 0  # marks echoed: prompts heard to their end (or cleared)
    clears: int = 0
    heard_ms: int = 0  # audio received from the server
    turns_taken: int = 0
    closed_by_server: bool = False
    stream_sid: str = ""
    call_sid: str = ""
    errors: list[str] = field(default_factory=list)


class SimulatedCaller:
    def __init__(
        self,
        turns: Sequence[Turn],
        *,
        speed: float = 8.0,
        quiet_ms: int = 300,
        account_sid: str = "AC" + "0" * 32,
        call_sid: str | None = None,
    ) -> None:
        self.turns = list(turns)
        self.speed, self.quiet_ms = speed, quiet_ms
        self.account_sid = account_sid
        self.log = CallLog(
            call_sid=call_sid or "CA" + secrets.token_hex(16), stream_sid="MZ" + secrets.token_hex(16)
        )
        self._seq = 0
        self._queued_ms = 0  # server audio received
        self._played_ms = 0  # of it played
        self._marks: list[tuple[str, int]] = []  # (name, position it plays out at)
        self._last_server = time.monotonic()
        self._quiet_ms = 0
        self._cleared: set[str] = set()
        self._hung_up = False  # call time since the server last had something playing
        self._prompt_since_turn = False
        self._speech: list[bytes] = []  # frames still to say
        self._keys: list[str] = []

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def run(self, url: str, parameters: Mapping[str, str], timeout: float = 300.0) -> CallLog:
        import websockets

        async with websockets.connect(url, max_size=2**22) as ws:
            await ws.send(encode_inbound(Connected("Call", "1.0.0")))
            start = Start(
                self.log.stream_sid,
                self.log.call_sid,
                self.account_sid,
                ("inbound",),
                MULAW,
                TELEPHONE_RATE,
                1,
                dict(parameters),
                self._next_seq(),
            )
            await ws.send(encode_inbound(start))
            reader = asyncio.create_task(self._read(ws))
            try:
                await asyncio.wait_for(self._line(ws, reader), timeout)
            except websockets.ConnectionClosed:
                self.log.closed_by_server = True  # it hung up while we were sending
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
        return self.log

    async def _read(self, ws: object) -> None:
        try:
            async for raw in ws:  # type: ignore[attr-defined]
                _, message = parse_outbound(raw)
                self._last_server = time.monotonic()
                if isinstance(message, SendMedia):
                    self._queued_ms += len(message.payload) * 1000 // TELEPHONE_RATE
                    self.log.heard_ms += len(message.payload) * 1000 // TELEPHONE_RATE
                elif isinstance(message, SendMark):
                    self._marks.append((message.name, self._queued_ms))
                elif isinstance(message, Clear):
                    self.log.clears += 1
                    self._played_ms = self._queued_ms
                    self._cleared |= {name for name, _ in self._marks}  # echoed, but not heard out
        except Exception as exc:  # the server closed: that is how a call it ends looks from here
            if type(exc).__name__ not in {"ConnectionClosedOK", "ConnectionClosedError"}:
                self.log.errors.append(repr(exc))
        self.log.closed_by_server = not self._hung_up

    async def _line(self, ws: object, reader: asyncio.Task[None]) -> None:
        per_tick = max(1, round(self.speed))
        chunk = 0
        while not reader.done():
            for _ in range(per_tick):
                self._played_ms = min(self._played_ms + 20, self._queued_ms)
                idle = self._played_ms >= self._queued_ms and not self._marks
                self._quiet_ms = self._quiet_ms + 20 if idle else 0
                for name, at in list(self._marks):
                    if at <= self._played_ms:
                        self._marks.remove((name, at))
                        self.log.prompts += 1
                        self._prompt_since_turn |= name not in self._cleared
                        await ws.send(encode_inbound(MarkDone(self.log.stream_sid, name, self._next_seq())))  # type: ignore[attr-defined]
                if self._take_turn() is HangUp:
                    self._hung_up = True
                    stop = Stop(self.log.stream_sid, self.log.call_sid, self.account_sid, self._next_seq())
                    await ws.send(encode_inbound(stop))  # type: ignore[attr-defined]
                    await ws.close()  # type: ignore[attr-defined]
                    return
                if self._keys:
                    digit = self._keys.pop(0)
                    await ws.send(encode_inbound(Dtmf(self.log.stream_sid, digit, self._next_seq())))  # type: ignore[attr-defined]
                frame = self._speech.pop(0) if self._speech else SILENCE
                chunk += 1
                media = Media(self.log.stream_sid, "inbound", chunk, chunk * 20, frame, self._next_seq())
                await ws.send(encode_inbound(media))  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)

    def _server_quiet(self) -> bool:
        """Quiet for `quiet_ms` of call time (a person's pause before answering), all prompts played."""
        return self._quiet_ms >= self.quiet_ms

    def _take_turn(self) -> type[HangUp] | None:
        if not self.turns or self._speech or self._keys:
            return None
        turn = self.turns[0]
        playing = self._played_ms < self._queued_ms
        if isinstance(turn, Say) and turn.barge_in:
            if not (playing and self._played_ms + 600 < self._queued_ms):
                return None  # wait for a prompt long enough to talk over
        elif isinstance(turn, HangUp):
            if not self._prompt_since_turn:
                return None
        elif not (self._prompt_since_turn and self._server_quiet()):
            return None
        self.turns.pop(0)
        self.log.turns_taken += 1
        self._prompt_since_turn = False
        match turn:
            case HangUp():
                return HangUp
            case Say(audio=audio):
                padded = audio + SILENCE * 5
                self._speech = [
                    padded[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(padded), FRAME)
                ]
            case Press(keys=keys, in_band=False):
                self._keys = list(keys)
            case Press(keys=keys, in_band=True):
                audio = b"".join(pcm16_to_ulaw(tone(k, 120)) + SILENCE * 4 for k in keys)
                self._speech = [
                    audio[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(audio), FRAME)
                ]
            case Silent():
                pass
        return None


class SimulatedGateway:
    """The gateway Protocol for development: each placed call runs a `SimulatedCaller` in a thread.

    `script_for(to)` says what the person on that number does (None: nobody answers). The answer
    URL is not fetched: `stream_for(request)` gives the stream URL and parameters the backend's
    TwiML would have; status callbacks are delivered to `on_status` as `CallStatus` values."""

    name = GatewayName.SIMULATED

    def __init__(
        self,
        script_for: Callable[[str], Sequence[Turn] | None],
        stream_for: Callable[[CallRequest, AnsweredBy], tuple[str, Mapping[str, str]]],
        on_status: Callable[[CallStatus], None],
        *,
        machine: Callable[[str], bool] = lambda to: False,
        speed: float = 8.0,
    ) -> None:
        self.script_for, self.stream_for, self.on_status = script_for, stream_for, on_status
        self.machine, self.speed = machine, speed
        self.logs: dict[str, CallLog] = {}
        self.threads: list[threading.Thread] = []
        self._ended: set[str] = set()

    def place_call(self, request: CallRequest) -> PlacedCall:
        sid = "CA" + secrets.token_hex(16)
        thread = threading.Thread(target=self._ring, args=(sid, request), daemon=True, name=f"sim-{sid[:8]}")
        self.threads.append(thread)
        thread.start()
        return PlacedCall(sid, CallState.QUEUED)

    def _ring(self, sid: str, request: CallRequest) -> None:
        self.on_status(CallStatus(sid, CallState.RINGING, "ringing"))
        turns = self.script_for(request.to)
        if turns is None:
            self.on_status(CallStatus(sid, CallState.NO_ANSWER, "no-answer", duration_seconds=0))
            return
        by = AnsweredBy.MACHINE if self.machine(request.to) else AnsweredBy.HUMAN
        self.on_status(CallStatus(sid, CallState.ANSWERED, "in-progress", answered_by=by))
        url, params = self.stream_for(request, by)
        began = time.monotonic()
        caller = SimulatedCaller(turns, speed=self.speed, call_sid=sid)
        log = asyncio.run(caller.run(url, params))
        self.logs[sid] = log
        seconds = round((time.monotonic() - began) * self.speed)
        self.on_status(
            CallStatus(sid, CallState.COMPLETED, "completed", answered_by=by, duration_seconds=seconds)
        )

    def hang_up(self, provider_id: str) -> None:
        self._ended.add(provider_id)

    def parse_status(self, params: Mapping[str, str]) -> CallStatus:
        raise NotImplementedError("the simulated gateway delivers CallStatus values, not HTTP callbacks")

    def parse_recording(self, params: Mapping[str, str]) -> RecordingReady:
        raise NotImplementedError("the simulated gateway does not record; the server keeps answer audio")

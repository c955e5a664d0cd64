"""Runs one call: Media Stream messages in, the call session's actions out as audio, marks and clears.

The driver owns the timing (VAD end-pointing, barge-in, no-input timeouts) and the engines
(synthesis and recognition run in a thread pool, never on the event loop); the session decides
what to say; `CallHooks` (the backend) stores what happened. One driver per WebSocket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from voice_ai import call_events as ev
from voice_ai import session as s
from voice_ai.asr import Recogniser, Recognition, heard_with_spotting
from voice_ai.audio import TELEPHONE_RATE, Framer, ulaw_to_pcm16
from voice_ai.media_stream import (
    Clear,
    Connected,
    Dtmf,
    MalformedMessage,
    MarkDone,
    Media,
    Outbound,
    SendMark,
    SendMedia,
    Start,
    Stop,
    encode_outbound,
    parse_inbound,
)
from voice_ai.tts import Synthesizer
from voice_ai.vad import Endpointer, NoInput, SpeechEnded, SpeechStarted, VadConfig

log = logging.getLogger(__name__)
CHUNK = TELEPHONE_RATE // 2  # bytes of mu-law per outbound media message: half a second
T = TypeVar("T")


class CallRefused(Exception):
    """The stream's parameters do not name a call we placed (bad token, unknown or finished call)."""


@dataclass
class CallSetup:
    session: s.CallSession
    recogniser: Recogniser | None  # grammar recognition (8 kHz PCM in); None: keypad only
    transcriber: Recogniser | None = None  # open answers; None: kept as audio only
    machine: bool = False  # the gateway's answering-machine detection said machine


@dataclass
class Timings:
    response_ms: list[float] = field(default_factory=list)  # end of caller speech -> first prompt byte
    asr_seconds: float = 0.0  # CPU-bound decode time
    asr_audio_seconds: float = 0.0
    fallbacks: int = 0  # recognitions that found nothing


class CallHooks(Protocol):
    """What the backend does for the driver; blocking (database), so called in the thread pool."""

    def begin(self, start: Start) -> CallSetup: ...

    def act(self, action: ev.Action) -> None:
        """SaveAnswer, StateChanged, StaffCallback, Hangup and Ignored: store or log."""
        ...

    def keep_audio(self, item_id: str, pcm: bytes) -> str:
        """Store an open answer's audio (8 kHz 16-bit PCM); returns its reference."""
        ...

    def end(self, session: s.CallSession, outcome: ev.Outcome | None, timings: Timings) -> None:
        """The stream is over (hang-up by us, by the caller, or a broken connection)."""
        ...


class CallDriver:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        hooks: CallHooks,
        synth: Synthesizer,
        executor: Executor | None = None,
        vad: VadConfig | None = None,
    ) -> None:
        self._send_text, self.hooks, self.synth, self.executor = send, hooks, synth, executor
        self.vad_config = vad or VadConfig()
        self.timings = Timings()
        self.stream_sid = ""
        self.setup: CallSetup | None = None
        self._events: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        self._framer = Framer(TELEPHONE_RATE)
        self._ep: Endpointer | None = None
        self._listen: ev.Listen | ev.Record | None = None
        self._gen = 0  # bumps at every Listen/Record: late recognitions of an old question are dropped
        self._marks = 0
        self._last_mark: str | None = None  # the newest mark not yet echoed: a prompt is playing
        self._barge = True
        self._spoke_at: float | None = None
        self._outcome: ev.Outcome | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _send(self, message: Outbound) -> None:
        await self._send_text(encode_outbound(self.stream_sid, message))

    # --- the call ---------------------------------------------------------------------------------
    async def run(self, receive: Callable[[], Awaitable[str | None]]) -> ev.Outcome | None:
        """Until the stream stops or we hang up; returns our outcome (None: the caller hung up first)."""
        start = await self._wait_for_start(receive)
        if start is None:
            return None
        self.stream_sid = start.stream_sid
        self.setup = await self._blocking(self.hooks.begin, start)
        self._ep = Endpointer(TELEPHONE_RATE, config=self.vad_config)
        reader = asyncio.create_task(self._read(receive))
        await self._events.put(ev.Answered(machine=self.setup.machine))
        try:
            await self._consume()
        finally:
            reader.cancel()
            for task in list(self._tasks):
                task.cancel()
            await self._blocking(self.hooks.end, self.setup.session, self._outcome, self.timings)
        return self._outcome

    async def _wait_for_start(self, receive: Callable[[], Awaitable[str | None]]) -> Start | None:
        while (raw := await receive()) is not None:
            try:
                message = parse_inbound(raw)
            except MalformedMessage as exc:
                log.warning("media stream: malformed message before start (%s)", exc)
                continue
            if isinstance(message, Start):
                return message
            if not isinstance(message, Connected):
                log.warning("media stream: %s before start, ignored", type(message).__name__)
        return None

    async def _read(self, receive: Callable[[], Awaitable[str | None]]) -> None:
        try:
            while (raw := await receive()) is not None:
                try:
                    message = parse_inbound(raw)
                except MalformedMessage as exc:
                    log.warning("media stream %s: malformed message ignored (%s)", self.stream_sid, exc)
                    continue
                if not self._on_message(message):
                    break
        finally:
            self._events.put_nowait(ev.CallEnded(ev.CallState.COMPLETED))

    def _on_message(self, message: Any) -> bool:
        match message:
            case Media(payload=payload):
                for frame in self._framer.push(ulaw_to_pcm16(payload)):
                    self._on_frame(frame)
            case Dtmf(digit=digit):
                if self._last_mark is not None and self._barge:
                    self._events.put_nowait(ev.SpeechStarted())  # a key stops the prompt like speech does
                self._events.put_nowait(ev.Key(digit))
            case MarkDone(name=name) if name == self._last_mark:
                self._last_mark = None
                self._restart_clock()
                self._events.put_nowait(ev.PromptDone())
            case MarkDone():
                pass  # an earlier prompt's mark: a later one is still playing
            case Stop():
                return False
            case _:
                log.warning("media stream %s: unexpected %s", self.stream_sid, type(message).__name__)
        return True

    def _restart_clock(self) -> None:
        """The no-input timeout counts from the end of the prompt, not from its start."""
        if self._ep is not None and not self._ep.in_speech:
            self._ep.reset()

    def _on_frame(self, frame: bytes) -> None:
        if self._listen is None or self._ep is None:
            return
        event = self._ep.push(frame)
        playing = self._last_mark is not None
        if isinstance(event, SpeechStarted):
            if playing and not self._barge:
                self._ep.reset()  # talking over a prompt that cannot be interrupted: not an answer
            elif playing:
                self._events.put_nowait(ev.SpeechStarted())
        elif isinstance(event, NoInput):
            if playing:
                self._ep.reset()
            else:
                self._listen = None
                self._events.put_nowait(ev.Silence())
        elif isinstance(event, SpeechEnded):
            listening, gen = self._listen, self._gen
            if isinstance(listening, ev.Listen) and not listening.grammar:
                self._ep.reset()  # keypad only: speech is not an answer here
                return
            self._listen = None
            self._spoke_at = time.perf_counter()
            task = asyncio.create_task(self._understand(listening, gen, event.audio))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _understand(self, listening: ev.Listen | ev.Record | None, gen: int, pcm: bytes) -> None:
        assert self.setup is not None
        if isinstance(listening, ev.Record):
            ref = await self._blocking(self.hooks.keep_audio, listening.item_id, pcm)
            heard = await self._recognise(self.setup.transcriber, (), pcm)
            event: ev.Event = ev.Recorded(ref, heard.text)
        elif isinstance(listening, ev.Listen):
            # Every utterance is also decoded with the red flags and a person as its grammar: the answer's
            # grammar forces the nearest answer, often surely (measured: espeak-ng's "i have chest pain"
            # heard as "ten" above the read-back threshold). How the two are weighed: heard_with_spotting.
            rec, listen = self.setup.recogniser, listening

            def decode(phrases: Sequence[str]) -> Recognition:
                return self._decode(rec, tuple(phrases), pcm)

            heard = await self._blocking(heard_with_spotting, decode, listen.grammar, listen.spot)
            self.timings.asr_audio_seconds += len(pcm) / (2 * TELEPHONE_RATE)
            if not heard.text:
                self.timings.fallbacks += 1
            event = ev.Heard(heard.text, heard.confidence)
        else:
            return
        if gen == self._gen:
            await self._events.put(event)

    async def _recognise(self, rec: Recogniser | None, grammar: tuple[str, ...], pcm: bytes) -> Recognition:
        heard = await self._blocking(self._decode, rec, grammar, pcm)
        self.timings.asr_audio_seconds += len(pcm) / (2 * TELEPHONE_RATE)
        return heard

    def _decode(self, rec: Recogniser | None, grammar: tuple[str, ...], pcm: bytes) -> Recognition:
        """Blocking: in the thread pool."""
        if rec is None:
            return Recognition("", 0.0)
        began = time.process_time()
        try:
            rec.start(grammar)
        except ValueError as exc:  # no phrase of the grammar is known to this model
            log.warning("recogniser cannot listen for this question: %s", exc)
            return Recognition("", 0.0)
        rec.accept(pcm)
        heard = rec.result()
        self.timings.asr_seconds += time.process_time() - began
        return heard

    async def _consume(self) -> None:
        assert self.setup is not None
        session = self.setup.session
        while (event := await self._events.get()) is not None:
            actions = session.handle(event)
            if isinstance(event, ev.CallEnded):
                await self._apply(actions)
                return
            if await self._apply(actions):
                return

    async def _apply(self, actions: list[ev.Action]) -> bool:
        """Carry out the actions; True when the call is over (we hung up)."""
        # Render every prompt of the batch first, so consecutive prompts play without a gap a caller
        # would take for their turn.
        rendered = {id(a): await self._render(a.text) for a in actions if isinstance(a, ev.Play)}
        # The batch's listener opens before its prompt is sent: a caller may answer from the prompt's
        # first byte (barge-in). Opened after it, the speech that arrived while the prompt was being
        # sent was dropped, and the answer with it, depending on how the sends interleaved.
        for action in actions:
            if isinstance(action, ev.Listen | ev.Record):
                self._open(action)
        for action in actions:
            match action:
                case ev.Play(barge_in=barge_in):
                    await self._play(rendered[id(action)], barge_in)
                case ev.StopPlaying():
                    if self._last_mark is not None:
                        await self._send(Clear())
                case ev.Listen() | ev.Record():
                    pass  # opened above
                case ev.Hangup(outcome=outcome):
                    self._outcome = outcome
                    await self._blocking(self.hooks.act, action)
                    return True
                case ev.Ignored(event=event, why=why):
                    log.info("call %s: %s ignored: %s", self.stream_sid, type(event).__name__, why)
                case _:
                    await self._blocking(self.hooks.act, action)
        return False

    def _open(self, listen: ev.Listen | ev.Record) -> None:
        self._gen += 1
        self._listen = listen
        if self._ep is not None:
            self._ep.reset()

    async def _render(self, text: str) -> bytes:
        assert self.setup is not None
        return await self._blocking(self.synth.synthesize, text, self.setup.session.lang)

    async def _play(self, audio: bytes, barge_in: bool) -> None:
        if self._spoke_at is not None:
            self.timings.response_ms.append(1000 * (time.perf_counter() - self._spoke_at))
            self._spoke_at = None
        # The prompt counts as playing from its first byte (speech over it is barge-in, or ignored if
        # it cannot be interrupted), not from the mark sent after its last.
        self._marks += 1
        self._last_mark, self._barge = f"prompt-{self._marks}", barge_in
        mark = self._last_mark
        for at in range(0, len(audio), CHUNK):
            await self._send(SendMedia(audio[at : at + CHUNK]))
        await self._send(SendMark(mark))

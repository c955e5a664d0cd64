"""MLLP (HL7's minimal lower layer protocol) framing and an asyncio TCP listener that answers each frame.

A frame is `0x0b <message> 0x1c 0x0d`. The decoder is a small state machine over whatever bytes
arrive, so frames split across reads or several in one read come out the same. What is not a frame
is answered rather than fatal: bytes before a start block are discarded (and counted), a start block
inside a frame means the earlier frame was cut short (answered AR), and a frame longer than the limit
is read through to its end without being kept, then answered AR, so the connection stays in step.

Each connection handles one message at a time (original mode: the sender waits for the ACK); the
handler runs in a thread pool, so one slow commit holds up its own connection and no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

START = 0x0B
END = 0x1C
CR = 0x0D
HEAD_KEPT = 4096  # of an oversized frame, enough to read its MSH and address the AR


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete message between the start block and the end block."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class FramingError:
    """A frame that cannot be delivered as it is; `head` is what was kept of it (to address the AR)."""

    reason: str
    head: bytes = b""


Event = Frame | FramingError


@dataclass
class FrameDecoder:
    """Feed it bytes; it yields frames and framing errors in order."""

    max_bytes: int
    _buffer: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _size: int = 0  # the current frame's length, kept or not
    _oversized: bool = False
    _after_end: bool = False  # saw 0x1c; a 0x0d may follow
    discarded: int = 0  # bytes seen outside any frame

    @property
    def mid_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> Iterator[Event]:
        # Scans with bytes.find, not byte by byte: a 10 MB frame is a few slices, not 10 million steps
        # on the event loop.
        i, end = 0, len(data)
        while i < end:
            if self._after_end:
                self._after_end = False
                if data[i] == CR:
                    i += 1
                    continue
                # 0x1c without 0x0d: take the frame as ended (some engines omit the CR) and go on
            if not self._in_frame:
                start = data.find(b"\x0b", i)
                outside = data[i : end if start < 0 else start]
                # stray line ends between frames are harmless; anything else is counted as discarded
                self.discarded += len(outside) - outside.count(b"\r") - outside.count(b"\n")
                if start < 0:
                    return
                self._begin()
                i = start + 1
                continue
            stops = [found for found in (data.find(b"\x0b", i), data.find(b"\x1c", i)) if found >= 0]
            stop = min(stops) if stops else end
            self._append(data[i:stop])
            if stop == end:
                return
            if data[stop] == START:
                yield FramingError("a new frame started before the end block", bytes(self._buffer))
                self._begin()
            else:
                yield self._finish()
            i = stop + 1

    def _append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if not self._oversized:
            self._buffer += chunk
            if self._size > self.max_bytes:
                self._oversized = True
                del self._buffer[HEAD_KEPT:]

    def truncated(self) -> FramingError | None:
        """The connection went quiet or closed inside a frame: what was kept of it, and reset."""
        if not self._in_frame:
            return None
        error = FramingError("the frame was not completed (no end block)", bytes(self._buffer[:HEAD_KEPT]))
        self._reset()
        return error

    def _begin(self) -> None:
        self._reset()
        self._in_frame = True

    def _finish(self) -> Event:
        event: Event
        if self._oversized:
            event = FramingError(
                f"message of {self._size} bytes is over the {self.max_bytes}-byte limit", bytes(self._buffer)
            )
        else:
            event = Frame(bytes(self._buffer))
        self._reset()
        self._after_end = True
        return event

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._size = 0
        self._oversized = False


def frame(payload: bytes) -> bytes:
    return bytes([START]) + payload + bytes([END, CR])


Handler = Callable[[Event, str], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    max_bytes: int = 10 * 1024 * 1024
    frame_timeout: float = 30.0  # a frame started and nothing more came for this long: answer it
    idle_timeout: float | None = None  # close connections silent for this long (None: keep them)
    allowed_peers: tuple[str, ...] = ()  # addresses or networks; empty allows any
    ssl_context: ssl.SSLContext | None = None


def peer_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network, strict=False) for network in allowed)


class MllpListener:
    """Accepts MLLP connections and writes back what `handler` returns for each frame or framing error."""

    def __init__(self, handler: Handler, options: ListenerOptions) -> None:
        self._handler = handler
        self._options = options
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> tuple[str, int]:
        """Bind and listen; `reuse_port` lets several processes listen on one port (the kernel spreads
        the connections over them)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=self._options.ssl_context, limit=2**16, reuse_port=reuse_port or None
        )
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peername = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{peername[0]}:{peername[1]}"
        try:
            if not peer_allowed(str(peername[0]), self._options.allowed_peers):
                log.warning("hl7 connection from %s refused: not on the allow-list", peer)
                return
            log.info("hl7 connection from %s", peer)
            await self._converse(reader, writer, peer)
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("hl7 connection %s ended: %s", peer, exc)
        except Exception:
            # Nothing could be stored (the database is down, say): no ACK, so the sender keeps the
            # message and sends it again; the listener goes on serving other connections.
            log.exception("hl7 connection %s: the message could not be handled; closing without an ACK", peer)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        decoder = FrameDecoder(max_bytes=self._options.max_bytes)
        while True:
            timeout = self._options.frame_timeout if decoder.mid_frame else self._options.idle_timeout
            try:
                data = await asyncio.wait_for(reader.read(2**16), timeout)
            except TimeoutError:
                cut = decoder.truncated()
                if cut is None:
                    log.info("hl7 connection %s idle; closing", peer)
                    return
                await self._answer(writer, cut, peer)
                continue
            if not data:
                cut = decoder.truncated()
                if cut is not None:
                    log.warning(
                        "hl7 connection %s closed inside a frame (%d bytes kept)", peer, len(cut.head)
                    )
                return
            before = decoder.discarded
            for event in decoder.feed(data):
                await self._answer(writer, event, peer)
            if decoder.discarded > before:
                log.warning(
                    "hl7 %s: %d bytes outside any MLLP frame discarded", peer, decoder.discarded - before
                )

    async def _answer(self, writer: asyncio.StreamWriter, event: Event, peer: str) -> None:
        reply = await self._handler(event, peer)
        if reply is not None:
            writer.write(frame(reply))
            await writer.drain()

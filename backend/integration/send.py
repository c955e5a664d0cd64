"""Sending HL7 files to an MLLP listener (`careloop hl7-send`): a hospital's sample messages, a smoke test."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path

from backend.integration.mllp import END, START, frame

_LINE = re.compile(rb"\r\n|\n|\r")
_BATCH_SEGMENTS = (b"FHS", b"FTS", b"BHS", b"BTS")


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file: each starts at an MSH line; batch/file header and trailer lines are
    dropped; segments are re-joined with `\\r`, as MLLP peers expect."""
    messages: list[list[bytes]] = []
    for line in _LINE.split(data.lstrip(b"\xef\xbb\xbf")):  # a UTF-8 BOM is not part of MSH
        if not line.strip() or line[:3] in _BATCH_SEGMENTS:
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return [b"\r".join(lines) + b"\r" for lines in messages]


def read_messages(paths: Iterable[Path]) -> Iterator[bytes]:
    for path in paths:
        yield from split_messages(path.read_bytes())


def send_all(
    host: str, port: int, messages: Iterable[bytes], *, timeout: float = 30, tls_ca: Path | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """Send each message on one connection and wait for its ACK; yields (message, ACK)."""
    raw = socket.create_connection((host, port), timeout=timeout)
    sock: socket.socket = raw
    if tls_ca is not None:
        sock = ssl.create_default_context(cafile=str(tls_ca)).wrap_socket(raw, server_hostname=host)
    pending = b""
    with sock:
        for message in messages:
            sock.sendall(frame(message))
            while bytes([END]) not in pending:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the listener closed the connection without an ACK")
                pending += chunk
            reply, _, pending = pending.partition(bytes([END]))
            pending = pending.removeprefix(b"\r")
            yield message, reply.lstrip(bytes([START]))


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK ("AA", "AE", "AR"), or "" when there is none."""
    for line in _LINE.split(ack):
        if line.startswith(b"MSA"):
            fields = line.split(line[3:4])
            return fields[1].decode("ascii", "replace") if len(fields) > 1 else ""
    return ""

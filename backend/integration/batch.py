"""HL7 batches (FHS/BHS … BTS/FTS) in one MLLP frame: split into messages, answered by a batch of ACKs. Pure.

HL7 v2 chapter 2's batch protocol: a file (FHS … FTS) holds batches (BHS … BTS), a batch holds
messages. Some engines send a whole night's discharges so, over MLLP or as a file. Each message inside
is received exactly as if it came alone (its own key, row, outcome and ACK); the answer is a batch of
those ACKs whose BHS-12/FHS-12 name the batch and file control ids that were sent (BHS-11/FHS-11), with
BTS-1 the number of ACKs, so the sender can match every message to its answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.integration.ack import escape
from backend.integration.send import split_messages

_LINE = re.compile(rb"\r\n|\n|\r")
ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the batch's header lines said: the ids our answer refers to."""

    file_header: bool
    file_control_id: str = ""
    batch_control_id: str = ""
    sending_application: str = ""
    sending_facility: str = ""


def is_batch(payload: bytes) -> bool:
    return payload.lstrip(b"\x00 \t\r\n\xef\xbb\xbf")[:3] in (b"FHS", b"BHS")


def _fields(line: bytes) -> list[str]:
    separator = line[3:4] or b"|"
    return [part.decode("latin-1") for part in line.split(separator)]


def split_batch(payload: bytes) -> tuple[Envelope, list[bytes]]:
    """The envelope and the messages (each from its MSH line to the next; segments joined by `\\r`)."""
    file_header = b""
    batch_header = b""
    for line in _LINE.split(payload.lstrip(b"\x00 \t\r\n\xef\xbb\xbf")):
        if line.startswith(b"FHS") and not file_header:
            file_header = line
        elif line.startswith(b"BHS") and not batch_header:
            batch_header = line
    head = _fields(batch_header or file_header)
    # FHS/BHS-1 is the separator itself, so field n is head[n - 1] after the split (head[0] is the name)

    def at(position: int) -> str:
        return head[position - 1][:199] if len(head) >= position else ""

    envelope = Envelope(
        file_header=bool(file_header),
        file_control_id=_fields(file_header)[10][:199] if len(_fields(file_header)) > 10 else "",
        batch_control_id=at(11) if batch_header else "",
        sending_application=at(3).split("^")[0],
        sending_facility=at(4).split("^")[0],
    )
    messages = [m for m in split_messages(payload) if m.lstrip().startswith(b"MSH")]
    return envelope, messages


def batch_reply(envelope: Envelope, acks: list[str], *, now: datetime | None = None) -> str:
    """Our answer: the ACKs, in the order of the messages, inside BHS … BTS (and FHS … FTS when sent)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    address = [
        "CARELOOP",
        "",
        escape(envelope.sending_application),
        escape(envelope.sending_facility),
        stamp,
    ]
    lines: list[str] = []
    if envelope.file_header:
        lines.append("|".join(["FHS", "^~\\&", *address, "", "", "", "", escape(envelope.file_control_id)]))
    lines.append("|".join(["BHS", "^~\\&", *address, "", "", "", "", escape(envelope.batch_control_id)]))
    lines += [segment for ack in acks for segment in ack.strip("\r").split("\r")]
    lines.append(f"BTS|{len(acks)}")
    if envelope.file_header:
        lines.append("FTS|1")
    return "\r".join(lines) + "\r"

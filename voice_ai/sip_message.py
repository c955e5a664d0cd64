"""SIP messages, digest authentication and SDP for the SIP gateway: parsing and building, no I/O.

Only what an outbound user agent client needs (RFC 3261 requests INVITE, ACK, CANCEL, BYE; responses
to them and to a BYE from the far end; RFC 2617 digest with qop=auth; an RFC 4566 audio offer with
G.711 and RFC 4733 telephone-event). A message that does not parse raises `MalformedSip` naming what
is wrong; header values are never logged (they carry phone numbers).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum


class MalformedSip(ValueError):
    """Not a SIP message we can read: the reason names the part, never its contents."""


class Codec(IntEnum):
    """G.711 static RTP payload types (RFC 3551)."""

    PCMU = 0
    PCMA = 8


DEFAULT_EVENT_PT = 101  # telephone-event: dynamic, 101 by convention
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}
_START = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_REQUEST = re.compile(r"^([A-Z]+) (\S+) SIP/2\.0$")


@dataclass
class SipMessage:
    """A request (method, uri) or a response (status, reason); headers keep their order and repeats."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.status > 0

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def cseq(self) -> tuple[int, str]:
        raw = self.get("CSeq") or ""
        parts = raw.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise MalformedSip("CSeq is missing or not 'number METHOD'")
        return int(parts[0]), parts[1].upper()

    def encode(self) -> bytes:
        start = (
            f"SIP/2.0 {self.status} {self.reason}"
            if self.is_response
            else f"{self.method} {self.uri} SIP/2.0"
        )
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def parse(data: bytes) -> SipMessage:
    """One UDP datagram as a SIP message; raises MalformedSip."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not sep:
        raise MalformedSip("no blank line after the headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedSip("headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    message = SipMessage()
    if match := _START.match(lines[0]):
        message.status, message.reason = int(match.group(1)), match.group(2)
        if not 100 <= message.status <= 699:
            raise MalformedSip("status code out of range")
    elif match := _REQUEST.match(lines[0]):
        message.method, message.uri = match.group(1), match.group(2)
    else:
        raise MalformedSip("first line is neither a SIP request nor a SIP/2.0 status line")
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:  # folded continuation
            name, value = message.headers[-1]
            message.headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MalformedSip("a header line without a name and colon")
        key = name.strip()
        message.headers.append((_COMPACT.get(key.lower(), key), value.strip()))
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if message.get(required) is None:
            raise MalformedSip(f"{required} is missing")
    message.cseq()
    length = message.get("Content-Length")
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise MalformedSip("Content-Length is not a number or exceeds the datagram")
        body = body[: int(length)]
    message.body = body
    return message


def tag_of(header: str) -> str | None:
    match = re.search(r";\s*tag=([^;>\s]+)", header)
    return match.group(1) if match else None


def uri_of(header: str) -> str:
    """The URI inside a From/To/Contact/Route value (`"name" <sip:...>;params` or a bare URI)."""
    match = re.search(r"<([^>]+)>", header)
    return match.group(1) if match else header.split(";")[0].strip()


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """(host, port) of a sip: URI, for sending a request to it."""
    match = re.match(r"^sips?:(?:[^@]+@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", uri)
    if not match:
        raise MalformedSip("not a sip: URI")
    return match.group(1).strip("[]"), int(match.group(2) or default_port)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)  # the RFC 3261 magic cookie


# --- digest (RFC 2617 / RFC 8760 MD5) ------------------------------------------------------------
def _challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise MalformedSip("the challenge is not Digest")
    params = dict(
        (k.lower(), v if v else bare)
        for k, v, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))', rest)
    )
    if "realm" not in params or "nonce" not in params:
        raise MalformedSip("the challenge has no realm or nonce")
    if params.get("algorithm", "MD5").upper() not in ("MD5", "MD5-SESS"):
        raise MalformedSip("the challenge's algorithm is not MD5")
    return params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_authorization(
    challenge: str, *, method: str, uri: str, username: str, password: str, cnonce: str | None = None
) -> str:
    """The Authorization/Proxy-Authorization value answering a WWW-/Proxy-Authenticate challenge
    (`cnonce` is fixed only by tests against published examples)."""
    c = _challenge(challenge)
    realm, nonce = c["realm"], c["nonce"]
    ha1 = _md5(f"{username}:{realm}:{password}")
    cnonce = cnonce or secrets.token_hex(8)
    if c.get("algorithm", "").upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        nc = "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append("algorithm=" + c.get("algorithm", "MD5"))
    if "opaque" in c:
        parts.append(f'opaque="{c["opaque"]}"')
    return "Digest " + ", ".join(parts)


# --- SDP ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MediaAnswer:
    address: str
    port: int
    codec: Codec
    event_pt: int | None  # None: the far end takes no telephone-event


def sdp_offer(address: str, rtp_port: int, codecs: Sequence[Codec], session_id: int) -> bytes:
    pts = " ".join(str(int(c)) for c in codecs)
    lines = [
        "v=0",
        f"o=careloop {session_id} {session_id} IN IP4 {address}",
        "s=CareLoop",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {pts} {DEFAULT_EVENT_PT}",
        *(f"a=rtpmap:{int(c)} {c.name}/8000" for c in codecs),
        f"a=rtpmap:{DEFAULT_EVENT_PT} telephone-event/8000",
        f"a=fmtp:{DEFAULT_EVENT_PT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def sdp_answer(body: bytes, offered: Iterable[Codec]) -> MediaAnswer:
    """The far end's address, port, the G.711 codec it chose among ours, and its telephone-event type."""
    text = body.decode("utf-8", "replace")
    address, port, pts = "", 0, []
    events: int | None = None
    in_audio = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("c=") and (not port or in_audio):
            fields = line[2:].split()
            if len(fields) == 3:
                address = fields[2].split("/")[0]
        elif line.startswith("m="):
            fields = line[2:].split()
            in_audio = fields[:1] == ["audio"] and not port
            if in_audio and len(fields) >= 4 and fields[1].isdigit():
                port, pts = int(fields[1]), [int(p) for p in fields[3:] if p.isdigit()]
        elif in_audio and line.lower().startswith("a=rtpmap:") and "telephone-event/8000" in line.lower():
            pt = line[9:].split()[0]
            events = int(pt) if pt.isdigit() else events
    if not address or not port:
        raise MalformedSip("the answer's SDP has no audio address and port")
    chosen = next((Codec(pt) for pt in pts if pt in {int(c) for c in offered}), None)
    if chosen is None:
        raise MalformedSip("the answer's SDP takes none of the G.711 codecs offered")
    return MediaAnswer(address, port, chosen, events if events in pts else None)

"""HL7 v2 bytes to a parsed message: character set (MSH-18), segment ends, header, field reading. Pure.

The parser is python-hl7 (`hl7` on PyPI) rather than hl7apy. python-hl7 reads any v2.x message with the
separators its own MSH declares, handles repetitions, components and escape sequences, and is a 120 KB
pure-Python package that takes the message as it is. hl7apy validates against per-version message
structures (8 MB of tables for v2.1-v2.8.2): useful for building messages, but a tolerant receiver must
accept what real hospital engines send (Z-segments, v2.3 messages labelled 2.4, fields beyond the
version's list), and we check the few fields we use ourselves, naming each in the ERR segment. Neither
library's MLLP server decodes by the message's own MSH-18 or bounds a frame's size, so framing is ours
(`mllp.py`).

Errors come in two kinds, as the acknowledgement needs them: `Unparseable` (answer AR: no MSH, wrong
separators, undecodable bytes, no control id) and `InvalidField` (answer AE with an ERR segment naming
the field: understood, but a field CareLoop needs is missing or malformed).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7
from hl7.exceptions import ParseException

from backend.integration.hl7_escapes import expand_escapes


class Unparseable(ValueError):
    """Not an HL7 v2 message we can read: answer AR. `control_id` is set when the header got that far."""

    def __init__(self, reason: str, *, control_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.control_id = control_id


class ErrorCode:
    """HL7 table 0357 (message error condition codes) entries we use."""

    SEGMENT_SEQUENCE = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_VERSION = 203
    UNKNOWN_KEY = 204
    DUPLICATE_KEY = 205
    INTERNAL_ERROR = 207


ERROR_TEXT = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    207: "Application internal error",
}


class InvalidField(ValueError):
    """Understood but not acceptable: answer AE with ERR naming `segment`-`position` (e.g. PID-3)."""

    def __init__(self, segment: str, position: int | None, code: int, reason: str) -> None:
        super().__init__(reason)
        self.segment = segment
        self.position = position
        self.code = code
        self.reason = reason

    @property
    def location(self) -> str:
        return self.segment if self.position is None else f"{self.segment}-{self.position}"


# HL7 table 0211 (alternate character sets) and the names senders write in practice, to Python codecs.
CHARSETS = {
    "": "utf-8",  # unnamed: ASCII by the standard; UTF-8 is its superset and v2.8's preference
    "ASCII": "ascii",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "8859/1": "iso-8859-1",
    "88591": "iso-8859-1",
    "8859/15": "iso-8859-15",
    "GB18030": "gb18030",
    "GB180302000": "gb18030",
    "GBK": "gbk",
    "GB2312": "gb18030",  # a subset of GB18030
    "CNS116431992": "big5",
    "BIG5": "big5",
    "KSX1001": "euc-kr",
    "ISOIR87": "iso2022_jp",
    "UNICODEUTF16": "utf-16",
}
MAX_FIELD = 200  # identifiers, codes and names longer than this are not ones we store


def _charset_key(name: str) -> str:
    return re.sub(r"[\s_]", "", name.upper()).replace("-", "") if name.strip() else ""


def codec_for(msh18: str) -> str:
    """The Python codec for an MSH-18 value (first repetition); Unparseable if we cannot read it."""
    name = msh18.split("~")[0].strip()
    key = _charset_key(name)
    codec = CHARSETS.get(key) or CHARSETS.get(name.upper())
    if codec is None:
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            raise Unparseable(f"unsupported character set in MSH-18: {name[:40]!r}") from None
    return codec


@dataclass(frozen=True, slots=True)
class RawHeader:
    """What can be read from the first segment's bytes before decoding (all ASCII in practice)."""

    field_separator: str
    fields: tuple[str, ...]  # MSH-1.. as text (latin-1 view), index 0 is MSH-1

    def get(self, position: int) -> str:
        index = position - 1
        return self.fields[index] if 0 <= index < len(self.fields) else ""


_SEGMENT_END = re.compile(rb"\r\n|\n|\r")


def sniff_header(payload: bytes) -> RawHeader:
    """MSH's fields from the raw bytes: enough to pick the codec and to address an AR."""
    start = payload.lstrip(b"\x00 \t\r\n")
    if not start.startswith(b"MSH"):
        raise Unparseable("the message does not start with an MSH segment")
    first = _SEGMENT_END.split(start, maxsplit=1)[0]
    if len(first) < 8:
        raise Unparseable("the MSH segment is too short")
    separator = first[3:4]
    if separator.isalnum() or separator in b" \x00":
        raise Unparseable("MSH-1 (field separator) is not a separator character")
    parts = first.split(separator)
    encoding_chars = parts[1] if len(parts) > 1 else b""
    if len(encoding_chars) < 2 or any(chr(c).isalnum() or c == separator[0] for c in encoding_chars):
        raise Unparseable("MSH-2 (encoding characters) is missing or malformed")
    text = [part.decode("latin-1") for part in parts[1:]]
    return RawHeader(field_separator=separator.decode("latin-1"), fields=(separator.decode("latin-1"), *text))


def decode(payload: bytes, raw: RawHeader, fallback: str) -> tuple[str, str]:
    """The message as text, by its MSH-18. Unnamed or "ASCII" and not UTF-8 falls back to `fallback`
    (GB18030 here): HIS interfaces in China often send GBK text under the default ASCII label."""
    msh18 = raw.get(18)
    codec = codec_for(msh18)
    if codec == "ascii":
        codec = "utf-8"  # its superset
    try:
        return payload.decode(codec), codec
    except UnicodeDecodeError:
        if codec != "utf-8" or _charset_key(msh18.split("~")[0]) not in {"", "ASCII"}:
            raise Unparseable(f"the bytes are not valid {msh18.strip()[:40]}") from None
    try:
        return payload.decode(fallback), codecs.lookup(fallback).name
    except (UnicodeDecodeError, LookupError):
        raise Unparseable("the bytes are neither UTF-8 nor the configured fallback character set") from None


def normalise_segments(text: str) -> str:
    """One `\\r` between segments, whatever the sender used (`\\r`, `\\n`, `\\r\\n`); blank lines dropped."""
    lines = [line for line in re.split(r"\r\n|\n|\r", text.strip("\x00 \t\r\n")) if line.strip()]
    return "\r".join(lines)


def content_hash(text: str) -> str:
    """SHA-256 of the normalised message with MSH-7 (the send time, new on every resend) left out."""
    first, _, rest = text.partition("\r")
    separator = first[3:4]
    fields = first.split(separator)
    if len(fields) > 6:
        fields[6] = ""  # fields[0] is "MSH", so fields[n] is MSH-(n+1) for n >= 1; MSH-7 is fields[6]
    canonical = separator.join(fields) + ("\r" + rest if rest else "")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- reading fields -------------------------------------------------------------------------------


def value_at(segment: Any, position: int, repetition: int = 1, component: int = 1, sub: int = 1) -> str:
    """A field part as text ('' when absent); python-hl7 raises for paths beyond the tree."""
    try:
        value = segment.extract_field(1, position, repetition, component, sub)
    except (IndexError, KeyError):
        return ""
    return str(value).strip()


def repetitions(segment: Any, position: int) -> int:
    if position >= len(segment):
        return 0
    content = segment(position)
    if content and isinstance(content[0], hl7.Repetition):
        return len(content)
    return 1 if str(content) else 0


def segments(message: Any, name: str) -> list[Any]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def bounded(value: str, segment: str, position: int) -> str:
    if len(value) > MAX_FIELD:
        raise InvalidField(segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is too long")
    return value


_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def parse_timestamp(value: str, zone: ZoneInfo, segment: str, position: int) -> datetime | None:
    """HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]); without an offset it is the hospital's time."""
    value = value.strip()
    if not value:
        return None
    match = _TS.match(value)
    if match is None:
        raise InvalidField(
            segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is not a date/time"
        )
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        naive = datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        raise InvalidField(
            segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is not a real date"
        ) from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        return naive.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def parse_date(value: str, segment: str, position: int) -> date | None:
    value = value.strip()
    if not value:
        return None
    match = _TS.match(value)
    if match is None or match.group(3) is None:
        raise InvalidField(
            segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is not a date"
        )
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise InvalidField(
            segment, position, ErrorCode.DATA_TYPE_ERROR, f"{segment}-{position} is not a real date"
        ) from None


# --- the header ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    control_id: str
    message_code: str  # MSH-9.1, e.g. ADT
    trigger: str  # MSH-9.2 (or EVN-1 for old senders), e.g. A01
    version: str  # MSH-12
    processing_id: str
    charset: str  # MSH-18 as sent
    sent_at: str  # MSH-7 as sent

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code


def _hd(segment: Any, position: int) -> str:
    """A hierarchic designator (HD) as one key: namespace, or universal id when the namespace is empty."""
    return value_at(segment, position, 1, 1) or value_at(segment, position, 1, 2)


def parse(text: str, codec: str = "utf-8") -> tuple[Any, Header]:
    """Parse normalised text decoded with `codec`; Unparseable for what python-hl7 cannot read, a
    header without its key, or a frame holding more than one message."""
    try:
        message = hl7.parse(expand_escapes(text, codec))
        msh = message.segment("MSH")
    except (ParseException, KeyError, IndexError, ValueError) as exc:
        raise Unparseable(f"not an HL7 v2 message: {exc}"[:200]) from None
    control_id = value_at(msh, 10)
    count = len(segments(message, "MSH"))
    if count > 1:
        # python-hl7 would read the first and drop the rest without a word: the sender would take our
        # one ACK for all of them
        raise Unparseable(
            f"the frame holds {count} messages (MSH segments): send one message per frame, "
            "or wrap them in a batch (BHS ... BTS)",
            control_id=control_id[:199],
        )
    header = Header(
        sending_application=_hd(msh, 3)[:180],
        sending_facility=_hd(msh, 4)[:180],
        receiving_application=_hd(msh, 5),
        receiving_facility=_hd(msh, 6),
        control_id=control_id[:199],
        message_code=value_at(msh, 9, 1, 1).upper()[:8],
        trigger=value_at(msh, 9, 1, 2).upper()[:8],
        version=value_at(msh, 12, 1, 1)[:16],
        processing_id=value_at(msh, 11, 1, 1),
        charset=value_at(msh, 18),
        sent_at=value_at(msh, 7),
    )
    if not control_id:
        raise Unparseable("MSH-10 (message control id) is empty")
    if not header.message_code:
        raise Unparseable("MSH-9 (message type) is empty", control_id=control_id)
    if not header.version.startswith("2"):
        raise Unparseable(f"MSH-12 version {header.version[:16]!r} is not HL7 v2", control_id=control_id)
    if not header.trigger:
        evn = segments(message, "EVN")
        trigger = value_at(evn[0], 1).upper()[:8] if evn else ""
        header = Header(**{**{f: getattr(header, f) for f in Header.__slots__}, "trigger": trigger})
    return message, header

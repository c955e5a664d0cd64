"""HL7 v2 bytes to typed facts: character set (MSH-18), segment ends, header, PID/PV1/DG1/PR1/MRG. Pure.

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
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7
from hl7.exceptions import ParseException

from backend.integration.facts import CodedValue, EncounterFacts, Identifier, PatientFacts
from backend.models.patients import EncounterKind, Sex


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
    """The message as text, by its MSH-18; unnamed and not UTF-8 falls back to `fallback` (GB18030 here)."""
    msh18 = raw.get(18)
    codec = codec_for(msh18)
    try:
        return payload.decode(codec), codec
    except UnicodeDecodeError:
        if msh18.strip():
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


def _value(segment: Any, position: int, repetition: int = 1, component: int = 1, sub: int = 1) -> str:
    """A field part as text ('' when absent); python-hl7 raises for paths beyond the tree."""
    try:
        value = segment.extract_field(1, position, repetition, component, sub)
    except (IndexError, KeyError):
        return ""
    return str(value).strip()


def _repetitions(segment: Any, position: int) -> int:
    if position >= len(segment):
        return 0
    content = segment(position)
    if content and isinstance(content[0], hl7.Repetition):
        return len(content)
    return 1 if str(content) else 0


def _segments(message: Any, name: str) -> list[Any]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _bounded(value: str, segment: str, position: int) -> str:
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
    return _value(segment, position, 1, 1) or _value(segment, position, 1, 2)


def parse(text: str) -> tuple[Any, Header]:
    """Parse normalised text; Unparseable for what python-hl7 cannot read or a header without its key."""
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except (ParseException, KeyError, IndexError, ValueError) as exc:
        raise Unparseable(f"not an HL7 v2 message: {exc}"[:200]) from None
    control_id = _value(msh, 10)
    header = Header(
        sending_application=_hd(msh, 3)[:180],
        sending_facility=_hd(msh, 4)[:180],
        receiving_application=_hd(msh, 5),
        receiving_facility=_hd(msh, 6),
        control_id=control_id[:199],
        message_code=_value(msh, 9, 1, 1).upper()[:8],
        trigger=_value(msh, 9, 1, 2).upper()[:8],
        version=_value(msh, 12, 1, 1)[:16],
        processing_id=_value(msh, 11, 1, 1),
        charset=_value(msh, 18),
        sent_at=_value(msh, 7),
    )
    if not control_id:
        raise Unparseable("MSH-10 (message control id) is empty")
    if not header.message_code:
        raise Unparseable("MSH-9 (message type) is empty", control_id=control_id)
    if not header.version.startswith("2"):
        raise Unparseable(f"MSH-12 version {header.version[:16]!r} is not HL7 v2", control_id=control_id)
    if not header.trigger:
        evn = _segments(message, "EVN")
        trigger = _value(evn[0], 1).upper()[:8] if evn else ""
        header = Header(**{**{f: getattr(header, f) for f in Header.__slots__}, "trigger": trigger})
    return message, header


# --- ADT content --------------------------------------------------------------------------------

SEX = {"F": Sex.FEMALE, "M": Sex.MALE, "O": Sex.OTHER, "A": Sex.OTHER, "U": Sex.UNKNOWN, "N": Sex.UNKNOWN}
LANGUAGES = {
    "ZH": "zh-CN", "ZH-CN": "zh-CN", "ZHO": "zh-CN", "CHI": "zh-CN", "CMN": "zh-CN", "ZH-HANS": "zh-CN",
    "VI": "vi", "VIE": "vi", "VI-VN": "vi",
    "EN": "en", "ENG": "en", "EN-US": "en", "EN-GB": "en",
}  # fmt: skip
PATIENT_CLASS = {
    "I": EncounterKind.INPATIENT,
    "O": EncounterKind.OUTPATIENT,
    "E": EncounterKind.OUTPATIENT,
    "R": EncounterKind.OUTPATIENT,
    "B": EncounterKind.INPATIENT,
    "P": EncounterKind.INPATIENT,
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")


@dataclass(frozen=True, slots=True)
class AdtContent:
    """The facts of one ADT message; `encounter` when PV1-19 names the visit, `merge_from` for A40 (MRG)."""

    patient: PatientFacts | None
    encounter: EncounterFacts | None
    event_time: datetime | None
    merge_from: tuple[Identifier, ...] = field(default_factory=tuple)


def _name(pid: Any) -> str | None:
    family, given, middle = (_value(pid, 5, 1, c) for c in (1, 2, 3))
    if not (family or given):
        return None
    if _CJK.search(family + given):
        return unicodedata.normalize("NFC", family + given)[:200]  # 张 + 三: family name first, no space
    return " ".join(part for part in (given, middle, family) if part)[:200]


def _identifiers(segment: Any, position: int, default_authority: str) -> tuple[Identifier, ...]:
    name = str(segment[0][0])
    found = []
    for rep in range(1, _repetitions(segment, position) + 1):
        value = _bounded(_value(segment, position, rep, 1), name, position)
        if not value:
            continue
        authority = _value(segment, position, rep, 4, 1) or _value(segment, position, rep, 4, 2)
        found.append(
            Identifier(
                value=value,
                authority=(authority or default_authority)[:180],
                type_code=_value(segment, position, rep, 5)[:16],
            )
        )
    return tuple(found)


def _phone(pid: Any) -> str | None:
    for position in (13, 14):  # home, then business
        for rep in range(1, _repetitions(pid, position) + 1):
            unformatted = _value(pid, position, rep, 12)
            if unformatted:
                return unformatted
            area, local = _value(pid, position, rep, 6), _value(pid, position, rep, 7)
            if local:
                country = _value(pid, position, rep, 5)
                return f"{'+' + country.lstrip('+') if country else ''}{area}{local}"
            email_use = _value(pid, position, rep, 3).upper() in {"INTERNET", "X.400"}
            first = _value(pid, position, rep, 1)
            if first and not email_use:
                return first
    return None


def _patient(pid: Any, default_authority: str, zone: ZoneInfo) -> PatientFacts:
    identifiers = _identifiers(pid, 3, default_authority)
    if not identifiers:
        raise InvalidField(
            "PID", 3, ErrorCode.REQUIRED_FIELD_MISSING, "PID-3 (patient identifier list) is empty"
        )
    sex_code = _value(pid, 8).upper()[:1]
    language = _value(pid, 15, 1, 1).upper()
    death_time = parse_timestamp(_value(pid, 29), zone, "PID", 29)
    return PatientFacts(
        identifiers=identifiers,
        name=_name(pid),
        birth_date=parse_date(_value(pid, 7), "PID", 7),
        sex=SEX.get(sex_code),
        phone=_phone(pid),
        language=LANGUAGES.get(language),
        deceased=_value(pid, 30).upper() == "Y" or death_time is not None,
        death_time=death_time,
    )


def _coded(segment: Any, position: int, text_component: int = 2, rep: int = 1) -> CodedValue | None:
    code = _value(segment, position, rep, 1)[:64]
    if not code:
        return None
    return CodedValue(
        code=code,
        text=_value(segment, position, rep, text_component)[:200],
        system=_value(segment, position, rep, 3),
    )


def _doctor(pv1: Any, position: int) -> CodedValue | None:
    code = _value(pv1, position, 1, 1)[:64]
    if not code:
        return None
    family, given = _value(pv1, position, 1, 2), _value(pv1, position, 1, 3)
    name = family + given if _CJK.search(family + given) else " ".join(p for p in (given, family) if p)
    return CodedValue(code=code, text=name[:200])


def _diagnoses(message: Any) -> tuple[CodedValue, ...]:
    rows: list[tuple[int, CodedValue]] = []
    for index, dg1 in enumerate(_segments(message, "DG1")):
        coded = _coded(dg1, 3) or (
            CodedValue(code=_value(dg1, 4)[:64], text=_value(dg1, 4)[:200]) if _value(dg1, 4) else None
        )
        if coded is None:
            continue
        priority = _value(dg1, 15)
        # DG1-15 "1" is the primary diagnosis; DG1-6 "F"/"A" (final, admitting) before working ones
        rank = 0 if priority == "1" else 1 if _value(dg1, 6).upper() in {"F", "A"} else 2
        rows.append((rank * 1000 + index, coded))
    return tuple(coded for _, coded in sorted(rows, key=lambda row: row[0]))


def _procedures(message: Any) -> tuple[CodedValue, ...]:
    return tuple(coded for pr1 in _segments(message, "PR1") if (coded := _coded(pr1, 3)) is not None)


def _encounter(message: Any, pv1: Any, default_authority: str, zone: ZoneInfo) -> EncounterFacts | None:
    visits = _identifiers(pv1, 19, default_authority)
    if not visits:
        return None
    patient_class = _value(pv1, 2).upper()[:8]
    location = _value(pv1, 3, 1, 1)[:64]
    service = _value(pv1, 10)[:64]
    department = service or location
    return EncounterFacts(
        visit=visits[0],
        kind=PATIENT_CLASS.get(patient_class[:1]),
        patient_class=patient_class,
        department=CodedValue(code=department, text=_value(pv1, 3, 1, 9)[:200]) if department else None,
        ward=CodedValue(code=location, text=_value(pv1, 3, 1, 9)[:200]) if location else None,
        attending_doctor=_doctor(pv1, 7) or _doctor(pv1, 17),
        started_at=parse_timestamp(_value(pv1, 44), zone, "PV1", 44),
        ended_at=parse_timestamp(_value(pv1, 45), zone, "PV1", 45),
        disposition=_value(pv1, 36)[:16],
        diagnoses=_diagnoses(message),
        procedures=_procedures(message),
    )


def adt_content(message: Any, header: Header, *, zone: ZoneInfo, needs_visit: bool) -> AdtContent:
    """The facts of an ADT message. `needs_visit`: the event is about a visit, so PV1-19 is required."""
    default_authority = header.sending_facility or header.sending_application
    evn = _segments(message, "EVN")
    event_time = None
    if evn:
        event_time = parse_timestamp(_value(evn[0], 6), zone, "EVN", 6) or parse_timestamp(
            _value(evn[0], 2), zone, "EVN", 2
        )
    if event_time is None:
        event_time = parse_timestamp(header.sent_at, zone, "MSH", 7)
    pids = _segments(message, "PID")
    if not pids:
        raise InvalidField("PID", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no PID segment")
    patient = _patient(pids[0], default_authority, zone)
    pv1s = _segments(message, "PV1")
    encounter = _encounter(message, pv1s[0], default_authority, zone) if pv1s else None
    if needs_visit and encounter is None:
        if not pv1s:
            raise InvalidField("PV1", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no PV1 segment")
        raise InvalidField("PV1", 19, ErrorCode.REQUIRED_FIELD_MISSING, "PV1-19 (visit number) is empty")
    mrgs = _segments(message, "MRG")
    merge_from = _identifiers(mrgs[0], 1, default_authority) if mrgs else ()
    return AdtContent(patient=patient, encounter=encounter, event_time=event_time, merge_from=merge_from)

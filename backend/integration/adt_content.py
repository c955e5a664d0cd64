"""The facts of an ADT message (PID, PV1, DG1, PR1, MRG) as the shared verbs take them. Pure.

Only the fields CareLoop uses are read; each one that is required or malformed raises InvalidField
naming it, so the ACK's ERR segment can point the sending engine at the field. NK1, IN1, PV2 and
Z-segments pass through untouched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from backend.integration.facts import CodedValue, EncounterFacts, Identifier, PatientFacts
from backend.integration.hl7_parse import (
    ErrorCode,
    Header,
    InvalidField,
    bounded,
    parse_date,
    parse_timestamp,
    repetitions,
    segments,
    value_at,
)
from backend.models.patients import EncounterKind, Sex

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


# XPN-7 name types (HL7 table 0200): the legal name first, then an unlabelled one, the display name, and
# only then aliases, maiden, nick and other names.
_NAME_TYPE_RANK = {"L": 0, "": 1, "D": 2}
# Vietnamese letters beyond ASCII (ă â đ ê ô ơ ư and the Latin Extended Additional block with tone marks)
_VIETNAMESE = re.compile(r"[ăâđêôơưĂÂĐÊÔƠƯ\u1ea0-\u1ef9]")


def _name(pid: Any, family_first: bool) -> str | None:
    """The name staff will know: the legal repetition of PID-5 (a Chinese name before its pinyin), written
    in the patient's own order: Chinese family+given with no space, Vietnamese family middle given,
    others given middle family."""
    candidates = []
    for rep in range(1, max(repetitions(pid, 5), 1) + 1):
        family, given, middle = (value_at(pid, 5, rep, c) for c in (1, 2, 3))
        if not (family or given):
            continue
        name_type = value_at(pid, 5, rep, 7).upper()
        ideographic = value_at(pid, 5, rep, 8).upper() == "I" or bool(_CJK.search(family + given))
        rank = (_NAME_TYPE_RANK.get(name_type, 3), 0 if ideographic else 1, rep)
        candidates.append((rank, family, given, middle))
    if not candidates:
        return None
    _, family, given, middle = min(candidates)
    if _CJK.search(family + given):
        return unicodedata.normalize("NFC", family + middle + given)[:200]  # 张 + 三: family first, no space
    if family_first or _VIETNAMESE.search(family + given + middle):
        return unicodedata.normalize("NFC", " ".join(p for p in (family, middle, given) if p))[:200]
    return unicodedata.normalize("NFC", " ".join(part for part in (given, middle, family) if part))[:200]


def _identifiers(segment: Any, position: int, default_authority: str) -> tuple[Identifier, ...]:
    name = str(segment[0][0])
    found = []
    for rep in range(1, repetitions(segment, position) + 1):
        value = bounded(value_at(segment, position, rep, 1), name, position)
        if not value:
            continue
        authority = value_at(segment, position, rep, 4, 1) or value_at(segment, position, rep, 4, 2)
        found.append(
            Identifier(
                value=value,
                authority=(authority or default_authority)[:180],
                type_code=value_at(segment, position, rep, 5)[:16],
            )
        )
    return tuple(found)


# XTN-3 equipment types (HL7 table 0202) that cannot take a call or a text, and email uses (XTN-2/3)
_NOT_A_PHONE = {"FX", "BP", "MD", "INTERNET", "X.400", "TDD", "TTY"}


def _phone(pid: Any) -> str | None:
    """A number to reach the patient: home (PID-13) then business (PID-14), a mobile ("CP") before any
    other, never a fax, pager or email. XTN components when sent, else the unstructured text (v2.3 form)."""
    found: list[tuple[int, int, str]] = []
    for position in (13, 14):
        for rep in range(1, repetitions(pid, position) + 1):
            use, equipment = value_at(pid, position, rep, 2).upper(), value_at(pid, position, rep, 3).upper()
            if equipment in _NOT_A_PHONE or use == "NET":
                continue
            number = value_at(pid, position, rep, 12)
            area, local = value_at(pid, position, rep, 6), value_at(pid, position, rep, 7)
            if not number and local:
                country = value_at(pid, position, rep, 5)
                number = f"{'+' + country.lstrip('+') if country else ''}{area}{local}"
            number = number or value_at(pid, position, rep, 1)
            if number and "@" not in number:
                found.append((0 if equipment == "CP" else 1, len(found), number[:64]))
    return min(found)[2] if found else None


def _patient(
    pid: Any, default_authority: str, zone: ZoneInfo, family_first: bool, mrn_authorities: tuple[str, ...]
) -> PatientFacts:
    # PID-2 (external id) is where v2.2 and some v2.3 senders put the hospital's number
    identifiers = _identifiers(pid, 3, default_authority) or _identifiers(pid, 2, default_authority)
    if not identifiers:
        raise InvalidField(
            "PID", 3, ErrorCode.REQUIRED_FIELD_MISSING, "PID-3 (patient identifier list) is empty"
        )
    sex_code = value_at(pid, 8).upper()[:1]
    language = value_at(pid, 15, 1, 1).upper()
    family_first = family_first or LANGUAGES.get(language) == "vi"
    death_time = parse_timestamp(value_at(pid, 29), zone, "PID", 29)
    return PatientFacts(
        identifiers=identifiers,
        name=_name(pid, family_first),
        birth_date=parse_date(value_at(pid, 7), "PID", 7),
        sex=SEX.get(sex_code),
        phone=_phone(pid),
        language=LANGUAGES.get(language),
        deceased=value_at(pid, 30).upper() == "Y" or death_time is not None,
        death_time=death_time,
        mrn_authorities=mrn_authorities,
    )


def _coded(segment: Any, position: int, text_component: int = 2, rep: int = 1) -> CodedValue | None:
    code = value_at(segment, position, rep, 1)[:64]
    if not code:
        return None
    return CodedValue(
        code=code,
        text=value_at(segment, position, rep, text_component)[:200],
        system=value_at(segment, position, rep, 3),
    )


def _doctor(pv1: Any, position: int) -> CodedValue | None:
    code = value_at(pv1, position, 1, 1)[:64]
    if not code:
        return None
    family, given = value_at(pv1, position, 1, 2), value_at(pv1, position, 1, 3)
    name = family + given if _CJK.search(family + given) else " ".join(p for p in (given, family) if p)
    return CodedValue(code=code, text=name[:200])


def _diagnoses(message: Any) -> tuple[CodedValue, ...]:
    rows: list[tuple[int, CodedValue]] = []
    for index, dg1 in enumerate(segments(message, "DG1")):
        coded = _coded(dg1, 3) or (
            CodedValue(code=value_at(dg1, 4)[:64], text=value_at(dg1, 4)[:200]) if value_at(dg1, 4) else None
        )
        if coded is None:
            continue
        priority = value_at(dg1, 15)
        # DG1-15 "1" is the primary diagnosis; DG1-6 "F"/"A" (final, admitting) before working ones
        rank = 0 if priority == "1" else 1 if value_at(dg1, 6).upper() in {"F", "A"} else 2
        rows.append((rank * 1000 + index, coded))
    return tuple(coded for _, coded in sorted(rows, key=lambda row: row[0]))


def _procedures(message: Any) -> tuple[CodedValue, ...]:
    return tuple(coded for pr1 in segments(message, "PR1") if (coded := _coded(pr1, 3)) is not None)


def _encounter(message: Any, pv1: Any, default_authority: str, zone: ZoneInfo) -> EncounterFacts | None:
    visits = _identifiers(pv1, 19, default_authority)
    if not visits:
        return None
    patient_class = value_at(pv1, 2).upper()[:8]
    location = value_at(pv1, 3, 1, 1)[:64]
    service = value_at(pv1, 10)[:64]
    department = service or location
    return EncounterFacts(
        visit=visits[0],
        kind=PATIENT_CLASS.get(patient_class[:1]),
        patient_class=patient_class,
        department=CodedValue(code=department, text=value_at(pv1, 3, 1, 9)[:200]) if department else None,
        ward=CodedValue(code=location, text=value_at(pv1, 3, 1, 9)[:200]) if location else None,
        attending_doctor=_doctor(pv1, 7) or _doctor(pv1, 17),
        started_at=parse_timestamp(value_at(pv1, 44), zone, "PV1", 44),
        ended_at=parse_timestamp(value_at(pv1, 45), zone, "PV1", 45),
        disposition=value_at(pv1, 36)[:16],
        diagnoses=_diagnoses(message),
        procedures=_procedures(message),
    )


def adt_content(
    message: Any, header: Header, *, zone: ZoneInfo, needs_visit: bool, mrn_authorities: tuple[str, ...] = ()
) -> AdtContent:
    """The facts of an ADT message. `needs_visit`: the event is about a visit, so PV1-19 is required."""
    default_authority = header.sending_facility or header.sending_application
    evn = segments(message, "EVN")
    event_time = None
    if evn:
        event_time = parse_timestamp(value_at(evn[0], 6), zone, "EVN", 6) or parse_timestamp(
            value_at(evn[0], 2), zone, "EVN", 2
        )
    if event_time is None:
        event_time = parse_timestamp(header.sent_at, zone, "MSH", 7)
    pids = segments(message, "PID")
    if not pids:
        raise InvalidField("PID", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no PID segment")
    msh = segments(message, "MSH")[0]
    vietnam = value_at(msh, 17).upper() in {"VNM", "VN"}  # MSH-17 country code: the names' order
    patient = _patient(pids[0], default_authority, zone, vietnam, mrn_authorities)
    pv1s = segments(message, "PV1")
    encounter = _encounter(message, pv1s[0], default_authority, zone) if pv1s else None
    if needs_visit and encounter is None:
        if not pv1s:
            raise InvalidField("PV1", None, ErrorCode.SEGMENT_SEQUENCE, "the message has no PV1 segment")
        raise InvalidField("PV1", 19, ErrorCode.REQUIRED_FIELD_MISSING, "PV1-19 (visit number) is empty")
    mrgs = segments(message, "MRG")
    merge_from = _identifiers(mrgs[0], 1, default_authority) if mrgs else ()
    return AdtContent(patient=patient, encounter=encounter, event_time=event_time, merge_from=merge_from)

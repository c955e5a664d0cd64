"""What a hospital system tells us about a patient or a visit, whatever the source (HL7, FHIR, a file).

Plain typed values, no I/O: the HL7 parser produces them and the verbs in `records.py` apply them, so
FHIR writes and file imports can produce the same facts and share every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from backend.models.patients import EncounterKind, Sex


@dataclass(frozen=True, slots=True)
class Identifier:
    """An outside identifier and the authority that assigned it (the sending facility when unnamed)."""

    value: str
    authority: str
    type_code: str = ""  # HL7 table 0203: MR (medical record), PI, NI, ...


@dataclass(frozen=True, slots=True)
class PatientFacts:
    identifiers: tuple[Identifier, ...]
    name: str | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phone: str | None = None  # as sent; normalised (or set aside when invalid) by the verb
    email: str | None = None  # likewise
    language: str | None = None  # one of CareLoop's languages, already mapped
    deceased: bool = False
    death_time: datetime | None = None
    mrn_authorities: tuple[str, ...] = ()  # assigning authorities whose number is the MRN, preferred first

    @property
    def record_number(self) -> Identifier:
        """The identifier CareLoop shows as the MRN: one from the first of `mrn_authorities` present (a
        hospital with several campuses or a regional index says whose number is its own); then the first
        medical record number (MR), else the first patient number (PI, PT, PN), else the first of another
        hospital type; a personal document (a national id card such as 身份证 or CCCD, a passport, an
        insurance or social security number) only when nothing else was sent, since it is not the
        hospital's number and is more sensitive."""
        preferred = {authority: rank for rank, authority in enumerate(self.mrn_authorities)}

        def rank(pair: tuple[int, Identifier]) -> tuple[int, int, int]:
            index, identifier = pair
            type_rank = _RECORD_RANK.get(identifier.type_code.upper(), 2)
            return preferred.get(identifier.authority, len(preferred)), type_rank, index

        return min(enumerate(self.identifiers), key=rank)[1]


# HL7 table 0203 identifier types, in the order one is taken as the MRN (others rank 2)
_RECORD_RANK = {"MR": 0, "MRT": 0, "PI": 1, "PT": 1, "PN": 1}
_RECORD_RANK.update(
    dict.fromkeys(("NI", "NNCHN", "NNVNM", "CZ", "PPN", "SS", "SB", "DL", "NH", "HC", "JHN"), 3)
)


@dataclass(frozen=True, slots=True)
class CodedValue:
    code: str
    text: str = ""
    system: str = ""


class VisitEvent(StrEnum):
    """What happened to a visit, independent of how the source names it."""

    ADMIT = "admit"  # A01, A04, A05: the visit's own record
    TRANSFER = "transfer"  # A02
    UPDATE = "update"  # A06, A07, A08, A12
    DISCHARGE = "discharge"  # A03
    CANCEL_DISCHARGE = "cancel_discharge"  # A13


@dataclass(frozen=True, slots=True)
class EncounterFacts:
    visit: Identifier  # PV1-19 and its authority
    kind: EncounterKind | None = None
    patient_class: str = ""  # as sent (HL7 table 0004)
    department: CodedValue | None = None
    ward: CodedValue | None = None
    attending_doctor: CodedValue | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: str = ""  # discharge disposition as sent (PV1-36)
    diagnoses: tuple[CodedValue, ...] = field(default_factory=tuple)  # the primary first
    procedures: tuple[CodedValue, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class AppointmentFacts:
    """An appointment booked in the hospital's own system (an HL7 SIU message's SCH, TQ1 and AI* segments)."""

    filler: Identifier  # the hospital's appointment id (SCH-2) and its authority: the key
    starts_at: datetime
    ends_at: datetime
    placer_id: str = ""  # SCH-1
    department: CodedValue | None = None  # AIL-3.1, the clinic's point of care
    facility: str = ""  # AIL-3.4: matched to a site's code
    doctor: CodedValue | None = None  # AIP-3
    service: CodedValue | None = None  # AIS-3
    reason: CodedValue | None = None  # SCH-7

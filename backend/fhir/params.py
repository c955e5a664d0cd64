"""Search parameters as FHIR sends them (`date=ge2026-12-01`, `identifier=system|value`, `_count=20`),
parsed into typed criteria. Pure: no database; a parameter this API does not support is a 400, not
silently ignored, so an integrator never mistakes an unfiltered list for a filtered one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.fhir.outcome import FhirError, IssueType
from backend.fhir.wire import authority_of
from backend.services.ids import parse_id

DEFAULT_COUNT = 50
MAX_COUNT = 200
PREFIXES = ("eq", "gt", "lt", "ge", "le")
_DATE = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<value>\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?)$"
)
CONTROL = {"_count", "_cursor", "_format"}
# per resource type: the search parameters beyond the control ones
SUPPORTED: dict[str, frozenset[str]] = {
    "Patient": frozenset({"_id", "identifier", "_lastUpdated"}),
    "Encounter": frozenset({"_id", "identifier", "patient", "subject", "date", "status", "_lastUpdated"}),
    "Questionnaire": frozenset({"_id", "identifier", "date", "status", "_lastUpdated"}),
    "QuestionnaireResponse": frozenset({"_id", "patient", "subject", "date", "status", "_lastUpdated"}),
    "Task": frozenset({"_id", "patient", "subject", "date", "status", "_lastUpdated"}),
    "Communication": frozenset({"_id", "patient", "subject", "date", "status", "_lastUpdated"}),
    "Consent": frozenset({"_id", "patient", "date", "status", "_lastUpdated"}),
}


@dataclass(frozen=True, slots=True)
class DateBound:
    """`column <op> value` where value covers [start, end) at the precision it was given in."""

    prefix: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class IdentifierToken:
    authority: str | None  # None: any system
    value: str


@dataclass
class Criteria:
    ids: list[int] = field(default_factory=list)
    identifiers: list[IdentifierToken] = field(default_factory=list)
    patient: int | None = None
    dates: list[DateBound] = field(default_factory=list)
    last_updated: list[DateBound] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    cursor: int | None = None


def _bad(name: str, message: str) -> FhirError:
    return FhirError(400, IssueType.VALUE, f"search parameter {name}: {message}", expression=name)


def parse_date(name: str, text: str, zone: ZoneInfo) -> DateBound:
    """A date search value with its prefix; a value without a zone is in the hospital's zone."""
    found = _DATE.match(text.strip())
    if not found:
        raise _bad(name, f"{text!r} is not a FHIR date, e.g. ge2026-12-01 or 2026-12-01T08:00:00Z")
    prefix, value = found.group("prefix") or "eq", found.group("value")
    if prefix not in PREFIXES:
        raise _bad(name, f"prefix {prefix!r} is not supported (eq, gt, lt, ge, le)")
    try:
        if len(value) == 4:
            start = datetime(int(value), 1, 1, tzinfo=zone)
            end = datetime(int(value) + 1, 1, 1, tzinfo=zone)
        elif len(value) == 7:
            year, month = int(value[:4]), int(value[5:7])
            start = datetime(year, month, 1, tzinfo=zone)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        elif len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(), zone)
            end = start + timedelta(days=1)
        else:
            start = datetime.fromisoformat(value.replace("Z", "+00:00"))
            start = start if start.tzinfo else start.replace(tzinfo=zone)
            end = start + (timedelta(seconds=1) if value.count(":") >= 2 else timedelta(minutes=1))
    except ValueError as exc:
        raise _bad(name, f"{text!r}: {exc}") from None
    return DateBound(prefix, start, end)


def _reference_id(name: str, text: str, resource_type: str) -> int:
    found = parse_id(text.strip().removeprefix(f"{resource_type}/"))
    if found is None:
        raise _bad(name, f"{text!r} is not a {resource_type} id or reference ({resource_type}/123)")
    return found


def parse_criteria(resource_type: str, items: list[tuple[str, str]], zone: ZoneInfo) -> Criteria:
    supported = SUPPORTED[resource_type] | CONTROL
    criteria = Criteria()
    for name, value in items:
        if name not in supported:
            raise FhirError(
                400, IssueType.NOT_SUPPORTED,
                f"{resource_type} has no search parameter {name!r} here; supported: "
                + ", ".join(sorted(SUPPORTED[resource_type] | {"_count"})),
                expression=name,
            )  # fmt: skip
        if name == "_count":
            if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_COUNT:
                raise _bad(name, f"a number from 1 to {MAX_COUNT}")
            criteria.count = int(value)
        elif name == "_cursor":
            cursor = parse_id(value)
            if cursor is None:
                raise _bad(name, "not a cursor this server gave")
            criteria.cursor = cursor
        elif name == "_id":
            criteria.ids.extend(_reference_id(name, part, resource_type) for part in value.split(","))
        elif name == "identifier":
            for part in value.split(","):
                system, bar, code = part.rpartition("|")
                if not code.strip():
                    raise _bad(name, "give system|value or a value")
                criteria.identifiers.append(
                    IdentifierToken(authority_of(system) if bar else None, code.strip())
                )
        elif name in ("patient", "subject"):
            criteria.patient = _reference_id(name, value, "Patient")
        elif name == "date":
            criteria.dates.append(parse_date(name, value, zone))
        elif name == "_lastUpdated":
            criteria.last_updated.append(parse_date(name, value, zone))
        elif name == "status":
            criteria.statuses.extend(part.strip() for part in value.split(",") if part.strip())
    return criteria

"""One typed filter for "which patients match": plan populations, batch segments, report drill-downs.

An `Audience` is plain data (it round-trips through JSON, so a batch stores its segment and a job
re-reads it); `encounter_conditions` and `patient_conditions` compile it to SQLAlchemy Core conditions on
indexed columns, and `patient_ids` to one statement selecting the matching patients' ids. The follow-up
planner selects its candidates with the same `encounter_conditions`, so a plan's preview and its daily
run can never disagree about who matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from backend.app.settings import get_settings
from backend.models import Anchor, Encounter, EncounterKind, Patient
from backend.models.patients import EXCLUSION_FLAGS
from backend.outbox.gates import latest_consent
from backend.services.consents import consent_allows
from bots.domain import LANGUAGES, Channel, ConsentPurpose

MAX_AGE = 150


class InvalidAudience(ValueError):
    """A filter value that cannot be used; `field` names the form field so staff know which."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"invalid value for {field_name}")
        self.field = field_name


@dataclass(frozen=True)
class Audience:
    """Who to reach. Empty tuples and None mean "any". Encounter criteria (department, ward, kind, dates,
    diagnosis, procedure) match a patient with at least one such encounter; dates are days in the
    hospital's zone, both ends included, of the discharge (or the visit's start, with `anchor=visit`)."""

    department_ids: tuple[int, ...] = ()
    ward_ids: tuple[int, ...] = ()
    encounter_kinds: tuple[EncounterKind, ...] = ()
    anchor: Anchor = Anchor.DISCHARGE
    date_from: date | None = None
    date_to: date | None = None
    diagnosis_prefixes: tuple[str, ...] = ()  # ICD-10, e.g. "I21"
    procedure_codes: tuple[str, ...] = ()
    age_min: int | None = None
    age_max: int | None = None
    languages: tuple[str, ...] = ()
    reachable_on: Channel | None = None  # has an address on this channel
    consent_for: ConsentPurpose | None = None  # consent in force for this purpose on `reachable_on`
    excluded_flags: tuple[str, ...] = field(default=())  # patients with these flags are left out

    def __post_init__(self) -> None:
        for flag in self.excluded_flags:
            if flag not in EXCLUSION_FLAGS:
                raise InvalidAudience("excluded_flags")
        for lang in self.languages:
            if lang not in LANGUAGES:
                raise InvalidAudience("languages")
        for name in ("age_min", "age_max"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_AGE:
                raise InvalidAudience(name)
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise InvalidAudience("age_max")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidAudience("date_to")
        if self.consent_for is not None and self.reachable_on is None:
            raise InvalidAudience("reachable_on")  # consent is given per channel
        if any(not p.strip() or len(p) > 16 for p in self.diagnosis_prefixes):
            raise InvalidAudience("diagnosis_prefixes")

    @property
    def has_encounter_criteria(self) -> bool:
        return bool(
            self.department_ids
            or self.ward_ids
            or self.encounter_kinds
            or self.date_from
            or self.date_to
            or self.diagnosis_prefixes
            or self.procedure_codes
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, date):
                data[key] = value.isoformat()
            elif isinstance(value, tuple):
                data[key] = [str(v) if isinstance(v, EncounterKind) else v for v in value]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Audience:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidAudience(sorted(unknown)[0])
        values: dict[str, Any] = {}
        for key, value in data.items():
            try:
                values[key] = _typed(key, value)
            except (TypeError, ValueError) as exc:
                raise InvalidAudience(key) from exc
        return cls(**values)


def _typed(key: str, value: Any) -> Any:
    if value is None or value == "":
        return None if key not in _TUPLES else ()
    if key in ("department_ids", "ward_ids"):
        return tuple(int(v) for v in value)
    if key == "encounter_kinds":
        return tuple(EncounterKind(v) for v in value)
    if key in ("diagnosis_prefixes", "procedure_codes", "languages", "excluded_flags"):
        return tuple(str(v).strip().upper() if key == "diagnosis_prefixes" else str(v).strip() for v in value)
    if key == "anchor":
        return Anchor(value)
    if key in ("date_from", "date_to"):
        return date.fromisoformat(value) if isinstance(value, str) else value
    if key in ("age_min", "age_max"):
        return int(value)
    if key == "reachable_on":
        return Channel(value)
    if key == "consent_for":
        return ConsentPurpose(value)
    raise ValueError(key)


_TUPLES = {
    "department_ids",
    "ward_ids",
    "encounter_kinds",
    "diagnosis_prefixes",
    "procedure_codes",
    "languages",
    "excluded_flags",
}


def anchor_column(anchor: Anchor) -> sa.ColumnElement[datetime | None]:
    return Encounter.ended_at if anchor is Anchor.DISCHARGE else Encounter.started_at  # type: ignore[return-value]


def _day_start(day: date) -> datetime:
    """Midnight of a hospital day, as the aware instant the database compares with."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(get_settings().default_timezone))


def encounter_conditions(audience: Audience) -> list[sa.ColumnElement[bool]]:
    """Conditions on `encounters` (department, ward, kind, dates, diagnosis prefix, procedure)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if audience.encounter_kinds:
        conditions.append(Encounter.kind.in_(audience.encounter_kinds))
    if audience.department_ids:
        conditions.append(Encounter.department_id.in_(audience.department_ids))
    if audience.ward_ids:
        conditions.append(Encounter.ward_id.in_(audience.ward_ids))
    anchored = anchor_column(audience.anchor)
    if audience.date_from:
        conditions.append(anchored >= _day_start(audience.date_from))
    if audience.date_to:
        conditions.append(anchored < _day_start(audience.date_to + timedelta(days=1)))
    if audience.diagnosis_prefixes:
        conditions.append(
            sa.or_(
                *(
                    Encounter.primary_diagnosis.startswith(p, autoescape=True)
                    for p in audience.diagnosis_prefixes
                )
            )
        )
    if audience.procedure_codes:
        conditions.append(Encounter.procedure_code.in_(audience.procedure_codes))
    return conditions


def allowed_consent_states(purpose: ConsentPurpose) -> set[bool | None]:
    """The latest-event states (grant, revocation, never asked) in which `consent_allows` lets a message go:
    the SQL below is derived from the one consent rule, not a second copy of it."""
    return {state for state in (True, False, None) if consent_allows(purpose, state)}


def _consent_condition(purpose: ConsentPurpose, channel: Channel) -> sa.ColumnElement[bool]:
    latest = latest_consent(purpose, channel).subquery()

    def latest_is(granted: bool) -> sa.Select[Any]:
        return sa.select(latest.c.patient_id).where(latest.c.granted.is_(granted))

    allowed = allowed_consent_states(purpose)
    if allowed == {True, None}:  # opt-out: everyone but those whose latest word was no
        return Patient.id.not_in(latest_is(False))
    if allowed == {True}:  # opt-in: only those whose latest word was yes
        return Patient.id.in_(latest_is(True))
    raise AssertionError(f"no SQL form for the consent states {allowed}")


def reachable_condition(channel: Channel) -> sa.ColumnElement[bool]:
    """The SQL form of `eligibility.channel_address(...) is not None` (tested against it)."""
    if channel is Channel.WEBCHAT:
        return sa.true()
    valid = Patient.invalid_contact.is_(False)
    if channel in (Channel.SMS, Channel.VOICE):
        return sa.and_(valid, Patient.phone_bidx.is_not(None))
    if channel is Channel.WHATSAPP:
        return sa.and_(valid, Patient.whatsapp_bidx.is_not(None))
    if channel is Channel.EMAIL:
        return sa.and_(Patient.email_bounced.is_(False), Patient.email_bidx.is_not(None))
    return Patient.wechat_openid_bidx.is_not(None)


def patient_conditions(audience: Audience, today: date) -> list[sa.ColumnElement[bool]]:
    """Conditions on `patients` (age on `today`, language, reachability, consent, exclusion flags)."""
    conditions: list[sa.ColumnElement[bool]] = []
    # Birth dates are encrypted; their plain year is what SQL sees. Age is therefore the age a patient
    # turns this calendar year (today's year less the birth year): all of one birth year in or out alike.
    if audience.age_min is not None:
        conditions.append(Patient.birth_year <= today.year - audience.age_min)
    if audience.age_max is not None:
        conditions.append(Patient.birth_year >= today.year - audience.age_max)
    if audience.languages:
        conditions.append(Patient.language.in_(audience.languages))
    if audience.reachable_on is not None:
        conditions.append(reachable_condition(audience.reachable_on))
        if audience.consent_for is not None:
            conditions.append(_consent_condition(audience.consent_for, audience.reachable_on))
    for flag in audience.excluded_flags:
        conditions.append(getattr(Patient, flag).is_(False))
    return conditions


def patient_ids(audience: Audience, today: date) -> sa.Select[int]:
    """The ids of the matching patients, each once, in id order."""
    query = sa.select(Patient.id).where(*patient_conditions(audience, today))
    if audience.has_encounter_criteria:
        query = query.where(
            sa.exists().where(Encounter.patient_id == Patient.id, *encounter_conditions(audience))
        )
    return query.order_by(Patient.id)

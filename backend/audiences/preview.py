"""Counting an audience, a masked sample of it, and what the outbox gates would do for each of its patients:
send now, defer (quiet hours, caps) or suppress (no consent, excluded, unreachable), decided by the
outbox's own `judge` (see `gate_counts`)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.audiences.filters import Audience, patient_ids
from backend.models import OutboxItem, Patient
from backend.models.base import among
from backend.outbox.gates import (
    Action,
    Facts,
    Probe,
    counted_contact,
    judge,
    latest_consent,
    latest_department,
    load_rules,
)
from backend.security.identifiers import mask_phone
from bots.domain import Channel, ConsentPurpose, pick_language

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Recipient:
    """The columns of a patient the gates read (see eligibility.Contactable), and her language."""

    id: int
    timezone: str
    deceased: bool
    dispute: bool
    do_not_disturb: bool
    invalid_contact: bool
    phone_bidx: str | None
    whatsapp_bidx: str | None
    wechat_openid_bidx: str | None
    language: str
    email_bidx: str | None = None
    email_bounced: bool = False


_COLUMNS = (
    Patient.id,
    Patient.timezone,
    Patient.deceased,
    Patient.dispute,
    Patient.do_not_disturb,
    Patient.invalid_contact,
    Patient.phone_bidx,
    Patient.whatsapp_bidx,
    Patient.wechat_openid_bidx,
    Patient.language,
    Patient.email_bidx,
    Patient.email_bounced,
)


def load_recipients(session: Session, ids: Sequence[int]) -> list[Recipient]:
    rows = session.execute(sa.select(*_COLUMNS).where(among(session, Patient.id, ids)).order_by(Patient.id))
    return [Recipient(*row) for row in rows]  # columns in the dataclass's order


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def count(session: Session, audience: Audience, today: date) -> int:
    query = patient_ids(audience, today).order_by(None).subquery()
    return int(session.scalar(sa.select(sa.func.count()).select_from(query)) or 0)


def mask_name(name: str) -> str:
    """'王小明' -> '王**', 'Nguyen Van An' -> 'N************': enough to recognise a sample, no more."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


@dataclass(frozen=True)
class MaskedPatient:
    id: int
    name: str
    phone: str
    language: str


def masked(patients: Sequence[Patient]) -> list[MaskedPatient]:
    return [
        MaskedPatient(p.id, mask_name(p.name), mask_phone(p.phone) if p.phone else "", p.language)
        for p in patients
    ]


def sample(session: Session, audience: Audience, n: int, today: date) -> list[MaskedPatient]:
    """Up to `n` matching patients picked at random, names and numbers masked."""
    ids = patient_ids(audience, today).order_by(sa.func.random()).limit(n)
    return masked(session.scalars(sa.select(Patient).where(Patient.id.in_(ids)).order_by(Patient.id)).all())


@dataclass
class GateCounts:
    """How many would be sent now, deferred and suppressed (by reason), and in which languages."""

    send: int = 0
    defer: Counter[str] = field(default_factory=Counter)
    suppress: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)  # of those not suppressed

    @property
    def total(self) -> int:
        return self.send + sum(self.defer.values()) + sum(self.suppress.values())

    @property
    def reachable(self) -> int:
        """Sent now or later: what an approval threshold counts."""
        return self.send + sum(self.defer.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "send": self.send,
            "defer": dict(sorted(self.defer.items())),
            "suppress": dict(sorted(self.suppress.items())),
            "languages": dict(sorted(self.languages.items())),
        }

    def digest(self) -> str:
        """A hash of the counts, stable across processes (sorted keys)."""
        data = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode()).hexdigest()


def gate_counts(
    session: Session,
    population: sa.Select[Any],
    channel: Channel,
    purpose: ConsentPurpose,
    now: datetime,
) -> GateCounts:
    """What the outbox would do now with one outreach item per patient of `population` (a select of patient
    ids), on `channel`.

    The gates' verdict is a function of a patient's flags, zone, addresses, her latest consent for this
    purpose and channel, and how many outreach messages she had in the last day. One SQL statement groups
    the population by exactly those facts (the consent and the sends counted as `load_facts` counts them:
    `gates.latest_consent`, `gates.counted_contact`), and `gates.judge` is asked once per group with a
    stand-in patient holding them: the same decision as item by item, in one round trip for 100,000
    patients. Voice is not a batch channel (its calls count as contact too, which this does not load)."""
    if channel is Channel.VOICE:
        raise ValueError("voice is not previewed as a batch channel")
    people = population.order_by(None).subquery()
    latest = latest_consent(purpose, channel).subquery()
    recent = (
        sa.select(OutboxItem.patient_id, sa.func.count().label("sent"))
        .where(OutboxItem.channel == channel, *counted_contact(now))
        .group_by(OutboxItem.patient_id)
        .subquery()
    )
    rules = load_rules(session)
    # her department's rules only matter when some department has its own: otherwise no lookup per patient
    department = (latest_department().label("department_id"),) if rules.by_department else ()
    facts_columns = (
        *department,
        Patient.timezone,
        Patient.deceased,
        Patient.dispute,
        Patient.do_not_disturb,
        Patient.invalid_contact,
        Patient.phone_bidx.is_not(None),
        Patient.whatsapp_bidx.is_not(None),
        Patient.wechat_openid_bidx.is_not(None),
        Patient.language,
        Patient.email_bidx.is_not(None),
        Patient.email_bounced,
        latest.c.granted,
        sa.func.coalesce(recent.c.sent, 0),
    )
    query = (
        sa.select(*facts_columns, sa.func.count())
        .select_from(Patient)
        .join(people, people.c.id == Patient.id)
        .outerjoin(latest, latest.c.patient_id == Patient.id)
        .outerjoin(recent, recent.c.patient_id == Patient.id)
        .group_by(*facts_columns)
    )
    counts = GateCounts()
    probe = Probe(patient_id=0, channel=channel, purpose=purpose)
    for row in session.execute(query):
        department_id = row[0] if department else None
        (
            zone,
            deceased,
            dispute,
            dnd,
            invalid,
            phone,
            whatsapp,
            wechat,
            language,
            email,
            bounced,
            granted,
            sent,
            n,
        ) = row[len(department) :]
        stand_in = Recipient(
            0,
            zone,
            bool(deceased),
            bool(dispute),
            bool(dnd),
            bool(invalid),
            "present" if phone else None,
            "present" if whatsapp else None,
            "present" if wechat else None,
            language,
            "present" if email else None,
            bool(bounced),
        )
        facts = Facts(rules=rules)
        if department_id is not None:
            facts.departments[0] = department_id
        if granted is not None:
            facts.consent[(0, purpose, channel)] = bool(granted)
        facts.sent[(0, channel)] = [now] * int(sent)
        verdict = judge(probe, stand_in, facts, now)
        if verdict.action is Action.SUPPRESS:
            counts.suppress[verdict.reason or ""] += n
            continue
        if verdict.action is Action.DEFER:
            counts.defer[verdict.reason or ""] += n
        else:
            counts.send += n
        counts.languages[pick_language(language)] += n
    return counts


def listed(session: Session, ids: Sequence[int]) -> sa.Select[Any]:
    """An uploaded list's patients as a population for `gate_counts`."""
    return sa.select(Patient.id).where(among(session, Patient.id, sorted(set(ids))))

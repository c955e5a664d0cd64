"""Counting an audience, a masked sample of it, and what the outbox gates would do for each of its patients.

The gate preview builds, for each patient, the `Probe` of the item a batch would queue and asks the
outbox's own `load_facts` and `judge`: send now, defer (quiet hours, caps) or suppress (no consent,
excluded, unreachable). Patients are read a chunk at a time, only the columns the gates use.
"""

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
from backend.models import Patient
from backend.outbox.gates import Action, Probe, judge, load_facts
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
)


def load_recipients(session: Session, ids: Sequence[int]) -> list[Recipient]:
    rows = session.execute(sa.select(*_COLUMNS).where(Patient.id.in_(ids)).order_by(Patient.id))
    return [Recipient(*row) for row in rows]  # type: ignore[call-arg]  # slots dataclass, columns in order


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
    ids: Sequence[int],
    channel: Channel,
    purpose: ConsentPurpose,
    now: datetime,
) -> GateCounts:
    """What the outbox would do now with one outreach item per patient in `ids`, on `channel`."""
    counts = GateCounts()
    for chunk in chunks(sorted(set(ids))):
        recipients = load_recipients(session, chunk)
        probes = {r.id: Probe(patient_id=r.id, channel=channel, purpose=purpose) for r in recipients}
        facts = load_facts(session, probes.values(), now)
        for recipient in recipients:
            verdict = judge(probes[recipient.id], recipient, facts, now)
            reason = verdict.reason or ""
            if verdict.action is Action.SUPPRESS:
                counts.suppress[reason] += 1
                continue
            if verdict.action is Action.DEFER:
                counts.defer[reason] += 1
            else:
                counts.send += 1
            counts.languages[pick_language(recipient.language)] += 1
        # patients gone since the ids were read (merged away) cannot be reached
        counts.suppress["unknown_patient"] += len(chunk) - len(recipients)
    if not counts.suppress["unknown_patient"]:
        del counts.suppress["unknown_patient"]
    return counts

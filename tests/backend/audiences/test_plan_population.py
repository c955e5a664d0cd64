"""A plan's population preview against a plain-Python reference on varied data, on both databases.

The reference reads every patient and encounter and applies a plan's rules one by one (kind, department,
diagnosis prefix, procedure, anchor, exclusions, age, visits, the planner's sample, each offset's due time
in the patient's zone, the first channel that reaches her), with none of the SQL the preview uses. The
preview (candidates, due times and overlaps computed by the database, or in Python on SQLite) must give
exactly the same counts, channels, departments, sample and overlaps.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.audiences.filters import InvalidAudience
from backend.audiences.plans import HORIZONS, SAMPLE, UNREACHABLE, plan_population
from backend.followup.eligibility import channel_address
from backend.followup.planner import due_time, sampled
from backend.models import Anchor, Encounter, EncounterKind, FollowUpPlan, Patient
from bots.domain import Channel
from tests import factories

NOW = datetime(2026, 3, 27, 23, 30, tzinfo=UTC)  # Europe/Berlin changes to summer time in two days
ZONES = ("Asia/Shanghai", "Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "UTC")


@dataclass(frozen=True)
class Contact:
    at: datetime
    department_id: int
    channel: str


def _varied(db: Session, n: int, seed: int) -> list[int]:
    """Patients in five zones with every kind of flag and address, encounters at any hour over 40 days
    (some not ended yet), three diagnoses, two procedures, discharges and visits."""
    rng = random.Random(seed)
    depts = [factories.department(db) for _ in range(3)]
    for _ in range(n):
        patient = factories.patient(
            db,
            deceased=rng.random() < 0.05,
            dispute=rng.random() < 0.05,
            do_not_disturb=rng.random() < 0.05,
            invalid_contact=rng.random() < 0.1,
            email_bounced=rng.random() < 0.2,
            birth_date=datetime(rng.choice([1930, 1950, 1970, 1990, 2010]), 6, 1).date(),
        )
        patient.timezone = rng.choice(ZONES)
        if rng.random() < 0.2:
            patient.phone = None
        if rng.random() < 0.3:
            patient.wechat_openid = f"o-{patient.id}"
        if rng.random() < 0.3:
            patient.whatsapp = f"+8613700{patient.id:06d}"
        if rng.random() < 0.3:
            patient.email = f"p{patient.id}@example.org"
        for _ in range(rng.choice([1, 1, 2, 3])):
            ended = NOW - timedelta(days=rng.uniform(-2, 40), minutes=rng.randrange(1440))
            enc = factories.encounter(
                db,
                patient,
                rng.choice(depts),
                kind=rng.choice([EncounterKind.DISCHARGE, EncounterKind.OUTPATIENT]),
            )
            enc.started_at = ended - timedelta(hours=rng.choice([2, 50]))
            enc.ended_at = None if rng.random() < 0.05 else ended
            enc.primary_diagnosis = rng.choice(["I10", "I21.4", "K35.8", None])
            enc.procedure_code = rng.choice([None, None, "36.06", "81.51"])
    db.flush()
    return [d.id for d in depts]


def _plan(db: Session | None, name: str, **kw: Any) -> FollowUpPlan:
    values: dict[str, Any] = {
        "questionnaire_id": "post_discharge",
        "anchor": Anchor.DISCHARGE,
        "offsets_days": [3, 15, 30],
        "channels": ["wechat", "sms"],
        "send_hour": 10,
        "sample_ratio": 1.0,
        "encounter_kinds": [],
        "department_ids": [],
        "diagnosis_prefixes": [],
        "procedure_codes": [],
        "excluded_flags": [],
    }
    plan = FollowUpPlan(name=name, **(values | kw))
    if db is not None:  # saved and active; otherwise the editor's unsaved draft
        db.add(plan)
        db.flush()
    return plan


def _matches(
    db: Session, plan: FollowUpPlan, enc: Encounter, patient: Patient, every: list[Encounter]
) -> bool:
    kinds = plan.encounter_kinds or []
    if kinds and enc.kind.value not in kinds:
        return False
    if plan.department_ids and enc.department_id not in plan.department_ids:
        return False
    prefixes = plan.diagnosis_prefixes or []
    if prefixes and not any((enc.primary_diagnosis or "").startswith(p) for p in prefixes):
        return False
    if plan.procedure_codes and enc.procedure_code not in plan.procedure_codes:
        return False
    if any(getattr(patient, flag) for flag in plan.excluded_flags or []):
        return False
    age = NOW.year - patient.birth_year if patient.birth_year is not None else None
    if plan.age_min is not None and (age is None or age < plan.age_min):
        return False
    if plan.age_max is not None and (age is None or age > plan.age_max):
        return False
    if plan.min_visits and plan.min_visits > 1:
        anchor = _anchor(plan, enc)
        visits = [
            e
            for e in every
            if e.patient_id == patient.id
            and e.started_at <= anchor  # type: ignore[operator]
            and (not kinds or e.kind.value in kinds)
        ]
        if len(visits) < plan.min_visits:
            return False
    return True


def _anchor(plan: FollowUpPlan, enc: Encounter) -> datetime | None:
    return enc.ended_at if plan.anchor is Anchor.DISCHARGE else enc.started_at


def reference(db: Session, plan: FollowUpPlan, days: int) -> dict[int, Contact]:
    """Patient id -> the plan's first contact in [NOW, NOW + days), encounter by encounter, in Python."""
    patients = {p.id: p for p in db.scalars(sa.select(Patient))}
    every = list(db.scalars(sa.select(Encounter).order_by(Encounter.id)))
    first: dict[int, Contact] = {}
    for enc in every:
        patient = patients[enc.patient_id]
        anchor = _anchor(plan, enc)
        if anchor is None or anchor > NOW or not _matches(db, plan, enc, patient, every):
            continue
        if not sampled(plan.id or 0, enc.id, plan.sample_ratio):
            continue
        for offset in plan.offsets_days:
            at = due_time(anchor, offset, plan.send_hour, patient.timezone)
            if not NOW <= at < NOW + timedelta(days=days):
                continue
            if enc.patient_id in first and first[enc.patient_id].at <= at:
                continue
            channel = next(
                (c for c in plan.channels if channel_address(patient, Channel(c)) is not None), UNREACHABLE
            )
            first[enc.patient_id] = Contact(at, enc.department_id, channel)
    return first


DRAFTS = [
    {"offsets_days": [1, 3, 15, 30], "encounter_kinds": ["discharge"], "excluded_flags": ["deceased"]},
    {
        "offsets_days": [0, 7],
        "send_hour": 20,
        "anchor": Anchor.VISIT,
        "channels": ["email", "whatsapp", "sms"],
        "excluded_flags": ["deceased", "dispute", "do_not_disturb", "invalid_contact"],
    },
    {"offsets_days": [2, 14], "send_hour": 8, "diagnosis_prefixes": ["I2"], "age_min": 50, "min_visits": 2},
    {"offsets_days": [3, 30], "sample_ratio": 0.5, "channels": ["webchat"], "procedure_codes": ["36.06"]},
]


@pytest.mark.parametrize("draft_settings", DRAFTS)
def test_the_preview_equals_the_reference(db: Session, draft_settings: dict[str, Any]) -> None:
    depts = _varied(db, 120, seed=len(str(draft_settings)))
    others = [
        _plan(db, "discharges", encounter_kinds=["discharge"], excluded_flags=["deceased"]),
        _plan(db, "hypertension", diagnosis_prefixes=["I10"], offsets_days=[7, 30], channels=["sms"]),
        _plan(db, "heart attack", diagnosis_prefixes=["I21"], offsets_days=[7, 14], sample_ratio=0.5),
        _plan(
            db,
            "visits",
            anchor=Anchor.VISIT,
            encounter_kinds=["outpatient"],
            age_min=50,
            min_visits=2,
            offsets_days=[0, 20],
            send_hour=21,
        ),
        _plan(db, "one department", department_ids=[depts[1]], procedure_codes=["81.51"], age_max=60),
        _plan(db, "paused", active=False),  # matches everyone, never an overlap
        _plan(db, "nothing yet", offsets_days=[]),
    ]
    draft = _plan(None, "draft", department_ids=depts[:2], **draft_settings)

    population = plan_population(db, draft, NOW)

    expected = reference(db, draft, max(HORIZONS))
    assert expected, "the varied data must give the draft someone to contact"
    assert population.patients == {
        days: sum(1 for c in expected.values() if c.at < NOW + timedelta(days=days)) for days in HORIZONS
    }
    assert population.by_channel == Counter(c.channel for c in expected.values())
    assert population.by_department == Counter(c.department_id for c in expected.values())
    ids = sorted(expected)
    assert [s.id for s in population.sample] == ids[:: max(1, len(ids) // SAMPLE)][:SAMPLE]
    overlaps = []
    for other in others:
        if not other.active:
            continue
        shared = len(set(expected) & set(reference(db, other, max(HORIZONS))))
        if shared:
            overlaps.append((other.id, other.name, shared))
    assert [(o.plan_id, o.name, o.patients) for o in population.overlaps] == overlaps
    assert len(overlaps) >= 3, "the varied data must make several plans overlap"


def test_the_preview_leaves_the_transaction_as_it_found_it(db: Session) -> None:
    """The preview lowers PostgreSQL's random page cost for its own statements only."""
    _varied(db, 20, seed=7)
    postgres = db.get_bind().dialect.name == "postgresql"
    before = db.scalar(sa.text("SHOW random_page_cost")) if postgres else None
    population = plan_population(db, _plan(None, "draft"), NOW)
    assert population.patients[30] == len(reference(db, _plan(None, "draft"), 30))
    if postgres:
        assert db.scalar(sa.text("SHOW random_page_cost")) == before
    with pytest.raises(InvalidAudience):  # a plan the preview refuses: the setting is put back all the same
        plan_population(db, _plan(None, "draft", excluded_flags=["rich"]), NOW)
    if postgres:
        assert db.scalar(sa.text("SHOW random_page_cost")) == before

"""A follow-up plan's population before it is saved: whom it would contact in the next 7 and 30 days.

It reads the planner's own candidates (`planner.candidates`, the same `encounter_conditions`), keeps the
planner's stable sample (`sampled`) and computes each due time with `due_time`, so the preview counts what
the daily planner will create. Encounters not yet ended (or visits not yet made) cannot be foreseen and
are not counted; nor is a plan's `daily_limit`, which caps enrolment per run, not the population.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.audiences.preview import MaskedPatient, load_recipients, masked
from backend.followup.eligibility import channel_address
from backend.followup.planner import candidates, due_time, sampled
from backend.models import FollowUpPlan, Patient
from bots.domain import Channel

HORIZONS = (7, 30)
SAMPLE = 20
UNREACHABLE = "unreachable"


@dataclass
class Overlap:
    plan_id: int
    name: str
    patients: int


@dataclass
class PlanPopulation:
    patients: dict[int, int]  # horizon in days -> distinct patients with a contact due in it
    by_channel: Counter[str] = field(default_factory=Counter)  # 30 days: first reachable channel
    by_department: Counter[int] = field(default_factory=Counter)  # 30 days: department id
    sample: list[MaskedPatient] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)


def _due_patients(
    session: Session,
    plan: FollowUpPlan,
    now: datetime,
    days: int,
    among_patients: Sequence[int] | None = None,
) -> dict[int, tuple[int, datetime]]:
    """Patient id -> (department, first due time) for contacts the plan would make in [now, now + days)."""
    if not plan.offsets_days:
        return {}
    end = now + timedelta(days=days)
    # an encounter anchored this long ago may still have an offset due from now on (+1 day: local dates)
    since = now - timedelta(days=max(plan.offsets_days) + 1)
    found: dict[int, tuple[int, datetime]] = {}
    # an unsaved plan has no id (its sample is drawn as plan 0's) and may leave defaults unset
    ratio = plan.sample_ratio if plan.sample_ratio is not None else 1.0
    hour = plan.send_hour if plan.send_hour is not None else 10
    for row in candidates(session, plan, since, now, patient_ids=among_patients):
        if not sampled(plan.id or 0, row.id, ratio):
            continue
        for offset in plan.offsets_days:
            due = due_time(row.anchor, offset, hour, row.timezone)
            if now <= due < end and (row.patient_id not in found or due < found[row.patient_id][1]):
                found[row.patient_id] = (row.department_id, due)
    return found


def plan_population(session: Session, plan: FollowUpPlan, now: datetime) -> PlanPopulation:
    """The preview of `plan` (saved or not): counts per horizon, by channel and department over the longest,
    a masked sample, and the active plans that would contact the same patients in that time."""
    longest = max(HORIZONS)
    due = _due_patients(session, plan, now, longest)
    population = PlanPopulation(
        patients={
            days: sum(1 for _, at in due.values() if at < now + timedelta(days=days)) for days in HORIZONS
        }
    )
    channels = [Channel(c) for c in plan.channels or ()]
    ids = sorted(due)
    for start in range(0, len(ids), 5000):
        for recipient in load_recipients(session, ids[start : start + 5000]):
            first = next((c for c in channels if channel_address(recipient, c) is not None), None)
            population.by_channel[first.value if first else UNREACHABLE] += 1
    population.by_department.update(department for department, _ in due.values())
    if ids:
        step = max(1, len(ids) // SAMPLE)
        chosen = ids[::step][:SAMPLE]
        population.sample = masked(
            session.scalars(sa.select(Patient).where(Patient.id.in_(chosen)).order_by(Patient.id)).all()
        )
    others = session.scalars(
        sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.id)
    )
    for other in others:
        if other.id == plan.id:
            continue
        if not ids:
            break
        # only this plan's patients can overlap: the other plan is read for them alone
        shared = len(_due_patients(session, other, now, longest, ids).keys())
        if shared:
            population.overlaps.append(Overlap(other.id, other.name, shared))
    return population

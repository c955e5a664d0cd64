"""A follow-up plan's population before it is saved: whom it would contact in the next 7 and 30 days.

It reads the planner's own candidate rows (`planner.candidate_query`), keeps the planner's stable sample
(`sampled`) and its due times, so the preview counts what the daily planner will create. On PostgreSQL the
due times of each candidate at each offset are computed by the database (the local date of the anchor in
the patient's zone, plus the offset, at the plan's hour), and only the contacts falling in the horizon
come back: computing them in Python for every candidate took seconds on a large hospital. Elsewhere
(SQLite) the planner's `due_time` computes them, once per distinct (zone, local anchor date, offset).
A test checks both against the tasks the planner writes.

Encounters not yet ended (or visits not yet made) cannot be foreseen and are not counted; nor is a plan's
`daily_limit`, which caps enrolment per run, not the population.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from backend.audiences.preview import MaskedPatient, masked
from backend.followup.eligibility import channel_address
from backend.followup.planner import candidate_query, due_time, sampled
from backend.models import Encounter, FollowUpPlan, Patient
from backend.models.base import among
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


@dataclass(frozen=True)
class _Reach:
    """A candidate row's patient as `channel_address` reads it."""

    id: int
    timezone: str
    deceased: bool
    dispute: bool
    do_not_disturb: bool
    invalid_contact: bool
    phone_bidx: str | None
    whatsapp_bidx: str | None
    wechat_openid_bidx: str | None
    email_bidx: str | None
    email_bounced: bool


@dataclass(frozen=True)
class Due:
    patient_id: int
    department_id: int
    at: datetime  # the first contact in the horizon
    channel: str  # the first of the plan's channels that reaches the patient, or UNREACHABLE


def _settings(plan: FollowUpPlan) -> tuple[int, float, int]:
    # an unsaved plan has no id (its sample is drawn as plan 0's) and may leave defaults unset
    ratio = plan.sample_ratio if plan.sample_ratio is not None else 1.0
    return plan.id or 0, ratio, plan.send_hour if plan.send_hour is not None else 10


def _due_in_sql(plan: FollowUpPlan, query: sa.Select[Any]) -> tuple[Any, sa.ColumnElement[datetime]]:
    """The candidates joined to the plan's offsets, and each one's due time, as PostgreSQL computes it: the
    anchor's local date in the patient's zone, plus the offset, at the plan's hour in that zone."""
    _, _, hour = _settings(plan)
    cand = query.order_by(None).subquery()
    offsets = (
        sa.func.unnest(sa.literal(list(plan.offsets_days), postgresql.ARRAY(sa.Integer)))
        .table_valued("days")
        .render_derived(with_types=False)
    )
    local_day = sa.cast(sa.func.timezone(cand.c.timezone, cand.c.anchor), sa.Date)
    due = sa.func.timezone(cand.c.timezone, local_day + offsets.c.days + sa.func.make_time(hour, 0, 0))
    return cand.join(offsets, sa.true()), due


def _rows_in_sql(
    session: Session, plan: FollowUpPlan, now: datetime, end: datetime, query: sa.Select[Any]
) -> Iterator[Any]:
    """(candidate row, due) for each offset whose contact falls in [now, end), computed by PostgreSQL.
    Unsampled plans get each patient's first contact only (what the preview keeps of them)."""
    joined, due = _due_in_sql(plan, query)
    cand = joined.left
    select = sa.select(cand, due.label("due")).select_from(joined).where(due >= now, due < end)
    if _settings(plan)[1] >= 1:
        select = select.ext(postgresql.distinct_on(cand.c.patient_id)).order_by(
            cand.c.patient_id, due, cand.c.id
        )
    else:  # the sample is drawn per encounter, in Python (the planner's hash)
        select = select.order_by(cand.c.id)  # ties go to the earlier encounter, as in the planner's order
    for row in session.execute(select):
        yield row, row.due


def _rows_in_python(
    session: Session, plan: FollowUpPlan, now: datetime, end: datetime, query: sa.Select[Any]
) -> Iterator[Any]:
    """The same as `_rows_in_sql`, by the planner's `due_time`, once per (zone, local date, offset)."""
    _, _, hour = _settings(plan)
    known: dict[tuple[str, date, int], datetime] = {}
    zones: dict[str, ZoneInfo] = {}
    for row in session.execute(query):
        zone = zones.setdefault(row.timezone, ZoneInfo(row.timezone))
        day = row.anchor.astimezone(zone).date()
        for offset in plan.offsets_days:
            key = (row.timezone, day, offset)
            if key not in known:
                known[key] = due_time(row.anchor, offset, hour, row.timezone)
            if now <= known[key] < end:
                yield row, known[key]


def _candidates(
    session: Session, plan: FollowUpPlan, now: datetime, among_patients: Sequence[int] | None
) -> sa.Select[Any]:
    # an encounter anchored this long ago may still have an offset due from now on (+1 day: local dates)
    since = now - timedelta(days=max(plan.offsets_days) + 1)
    query = candidate_query(plan, since, now)
    if among_patients is not None:
        query = query.where(among(session, Encounter.patient_id, among_patients))
    return query


def _in_sql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def due_contacts(
    session: Session,
    plan: FollowUpPlan,
    now: datetime,
    days: int,
    among_patients: Sequence[int] | None = None,
) -> dict[int, Due]:
    """Patient id -> the first contact the plan would make in [now, now + days)."""
    if not plan.offsets_days:
        return {}
    end = now + timedelta(days=days)
    query = _candidates(session, plan, now, among_patients)
    plan_id, ratio, _ = _settings(plan)
    channels = [Channel(c) for c in plan.channels or ()]
    found: dict[int, Due] = {}
    for row, at in (_rows_in_sql if _in_sql(session) else _rows_in_python)(session, plan, now, end, query):
        if not sampled(plan_id, row.id, ratio):
            continue
        known = found.get(row.patient_id)
        if known is not None and known.at <= at:
            continue
        if known is None:
            reach = _Reach(
                row.patient_id,
                row.timezone,
                row.deceased,
                row.dispute,
                row.do_not_disturb,
                row.invalid_contact,
                row.phone_bidx,
                row.whatsapp_bidx,
                row.wechat_openid_bidx,
                row.email_bidx,
                row.email_bounced,
            )
            first = next((c.value for c in channels if channel_address(reach, c) is not None), UNREACHABLE)
        else:
            first = known.channel
        found[row.patient_id] = Due(row.patient_id, row.department_id, at, first)
    return found


def due_patient_count(
    session: Session, plan: FollowUpPlan, now: datetime, days: int, among_patients: Sequence[int]
) -> int:
    """How many of `among_patients` the plan would contact in [now, now + days): `len(due_contacts(...))`,
    counted by PostgreSQL when no sample is drawn."""
    if not plan.offsets_days or not _in_sql(session) or _settings(plan)[1] < 1:
        return len(due_contacts(session, plan, now, days, among_patients))
    joined, due = _due_in_sql(plan, _candidates(session, plan, now, among_patients))
    counted = sa.select(sa.func.count(sa.distinct(joined.left.c.patient_id))).select_from(joined)
    return int(session.scalar(counted.where(due >= now, due < now + timedelta(days=days))) or 0)


def plan_population(session: Session, plan: FollowUpPlan, now: datetime) -> PlanPopulation:
    """The preview of `plan` (saved or not): counts per horizon, by channel and department over the longest,
    a masked sample, and the active plans that would contact the same patients in that time."""
    longest = max(HORIZONS)
    due = due_contacts(session, plan, now, longest)
    population = PlanPopulation(
        patients={
            days: sum(1 for d in due.values() if d.at < now + timedelta(days=days)) for days in HORIZONS
        }
    )
    population.by_channel.update(d.channel for d in due.values())
    population.by_department.update(d.department_id for d in due.values())
    ids = sorted(due)
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
        shared = due_patient_count(session, other, now, longest, ids)
        if shared:
            population.overlaps.append(Overlap(other.id, other.name, shared))
    return population

"""A follow-up plan's population before it is saved: whom it would contact in the next 7 and 30 days.

It reads the planner's own candidate rows (`planner.candidate_query`), keeps the planner's stable sample
(`sampled`) and its due times, so the preview counts what the daily planner will create. On PostgreSQL the
due times of each candidate at each offset are computed by the database (the local date of the anchor in
the patient's zone, plus the offset, at the plan's hour), and only the contacts falling in the horizon
come back: computing them in Python for every candidate took seconds on a large hospital. Elsewhere
(SQLite) the planner's `due_time` computes them, once per distinct (zone, local anchor date, offset).
A test checks both against the tasks the planner writes, and against a plain-Python reference.

What made it fast enough for the editor to call as staff type (bench/admin.py, 300,000 patients): the
first reachable channel is a column computed from `reachable_condition` rather than every address sent
back, a cheap bound on the anchor spares most rows the two zone conversions, patients are looked up by
key (RANDOM_PAGE_COST), and the overlapping plans are counted in one statement against the plan's own
patients read once (`_overlaps_in_sql`), not one statement per plan each joining the whole `patients`.

Encounters not yet ended (or visits not yet made) cannot be foreseen and are not counted; nor is a plan's
`daily_limit`, which caps enrolment per run, not the population.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import ClauseAdapter

from backend.audiences.filters import reachable_condition
from backend.audiences.preview import MaskedPatient, masked
from backend.followup.planner import candidate_query, due_time, sampled
from backend.models import Encounter, FollowUpPlan, Patient
from backend.models.base import among
from bots.domain import Channel

HORIZONS = (7, 30)
# PostgreSQL's default cost of a random page (4, for spinning disks) made it read the whole `patients`
# table (114 MB for 300,000 patients) to join 10,000 candidates, about half of every preview statement;
# looked up by key they cost a tenth of that (bench/README.md). Set for the preview's statements only.
RANDOM_PAGE_COST = "1.1"
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


def _near(joined: Any, now: datetime, end: datetime) -> list[sa.ColumnElement[bool]]:
    """A cheap bound on the anchor before the due time is computed (two zone conversions a row): a contact
    falls between a day before and a day after anchor + offset (the local date, the hour, the zone's
    offset and a change of summer time move it less), so two days either side lose nothing."""
    cand, offsets = joined.left, joined.right
    span = (offsets.c.days + 2) * sa.literal_column("interval '1 day'")
    back = (offsets.c.days - 2) * sa.literal_column("interval '1 day'")
    return [cand.c.anchor + span >= now, cand.c.anchor + back < end]


def _first_channel(plan: FollowUpPlan) -> sa.ColumnElement[str]:
    """The first of the plan's channels that reaches the patient (`reachable_condition`, the SQL form of
    `channel_address`), or UNREACHABLE: one column instead of the patient's addresses for each row."""
    channels = [Channel(c) for c in plan.channels or ()]
    if not channels:
        return sa.literal(UNREACHABLE)
    return sa.case(*((reachable_condition(c), c.value) for c in channels), else_=UNREACHABLE)


def _rows_in_sql(
    session: Session, plan: FollowUpPlan, now: datetime, end: datetime, query: sa.Select[Any]
) -> Iterator[Any]:
    """(candidate row, due) for each offset whose contact falls in [now, end), computed by PostgreSQL.
    Unsampled plans get each patient's first contact only (what the preview keeps of them)."""
    joined, due = _due_in_sql(plan, query)
    cand = joined.left
    select = (
        sa.select(cand.c.id, cand.c.patient_id, cand.c.department_id, cand.c.first_channel, due.label("due"))
        .select_from(joined)
        .where(*_near(joined, now, end), due >= now, due < end)
    )
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
    query = _candidates(session, plan, now, among_patients).add_columns(
        _first_channel(plan).label("first_channel")
    )
    plan_id, ratio, _ = _settings(plan)
    found: dict[int, Due] = {}
    for row, at in (_rows_in_sql if _in_sql(session) else _rows_in_python)(session, plan, now, end, query):
        if not sampled(plan_id, row.id, ratio):
            continue
        known = found.get(row.patient_id)
        if known is not None and known.at <= at:
            continue
        first = known.channel if known is not None else row.first_channel
        found[row.patient_id] = Due(row.patient_id, row.department_id, at, first)
    return found


@contextmanager
def _key_lookups(session: Session) -> Iterator[None]:
    """Let PostgreSQL look candidates' patients up by key (see RANDOM_PAGE_COST), then put the setting
    back, also when the preview refuses the plan: the caller's transaction goes on with its own. After an
    error in the database the transaction is aborted and its rollback undoes the setting."""
    if not _in_sql(session):
        yield
        return
    # one round trip: PostgreSQL evaluates a select list left to right, so this reads before it sets
    before, _ = session.execute(
        sa.select(
            sa.func.current_setting("random_page_cost"),
            sa.func.set_config("random_page_cost", RANDOM_PAGE_COST, True),
        )
    ).one()
    aborted = False
    try:
        yield
    except sa.exc.DBAPIError:
        aborted = True
        raise
    finally:
        if not aborted:
            session.execute(sa.select(sa.func.set_config("random_page_cost", before, True)))


def _patient_columns(queries: Iterable[sa.Select[Any]]) -> list[sa.ColumnElement[Any]]:
    """The columns of `patients` the queries read: what the shared patients' rows must carry."""
    table = Patient.__table__
    names = {"id"}
    for query in queries:
        for element in visitors.iterate(query):
            if isinstance(element, sa.Column) and element.table is table:
                names.add(element.name)
    return [table.c[name] for name in sorted(names)]


def _overlaps_in_sql(
    session: Session, others: Sequence[FollowUpPlan], now: datetime, days: int, ids: Sequence[int]
) -> dict[int, int]:
    """Plan id -> how many of `ids` each plan would contact in [now, now + days), every plan in one
    statement: the patients' rows are read once, by key, into a materialised CTE, and each plan's
    candidates are joined to it instead of to `patients` (one statement per plan read them again each
    time). Each plan's rows are its candidates' (patient, encounter) pairs with a contact due in the
    horizon; the planner's sample (a hash in Python) then decides which count, as `due_contacts` does."""
    end = now + timedelta(days=days)
    queries = {o.id: _candidates(session, o, now, None) for o in others if o.offsets_days}
    if not queries or not ids:
        return {}
    shared = (
        sa.select(*_patient_columns(queries.values()))
        .where(among(session, Patient.id, ids))
        .cte("preview_patients")
        .prefix_with("MATERIALIZED")
    )
    adapter = ClauseAdapter(shared)
    parts = []
    plans = {o.id: o for o in others}
    for plan_id, query in queries.items():
        joined, due = _due_in_sql(plans[plan_id], adapter.traverse(query))
        cand = joined.left
        rows = sa.select(sa.literal(plan_id).label("plan_id")).select_from(joined)
        rows = rows.where(*_near(joined, now, end), due >= now, due < end)
        if _settings(plans[plan_id])[1] >= 1:  # counted here: (plan, None, patients)
            parts.append(
                rows.add_columns(
                    sa.cast(sa.null(), sa.Integer), sa.func.count(sa.distinct(cand.c.patient_id))
                )
            )
        else:  # the sample is the planner's hash of each encounter: (plan, encounter, patient) for Python
            parts.append(rows.add_columns(cand.c.id, cand.c.patient_id).distinct())
    counts: Counter[int] = Counter()
    sampled_in: dict[int, set[int]] = {}
    for plan_id, encounter_id, n in session.execute(sa.union_all(*parts)):
        if encounter_id is None:
            counts[plan_id] = n
        elif sampled(plan_id, encounter_id, _settings(plans[plan_id])[1]):
            sampled_in.setdefault(plan_id, set()).add(n)
    return counts | {plan_id: len(patients) for plan_id, patients in sampled_in.items()}


def plan_population(session: Session, plan: FollowUpPlan, now: datetime) -> PlanPopulation:
    """The preview of `plan` (saved or not): counts per horizon, by channel and department over the longest,
    a masked sample, and the active plans that would contact the same patients in that time. On
    PostgreSQL: one statement for the plan's first contacts, one for the masked sample and one for every
    overlapping plan together, whatever the number of plans."""
    longest = max(HORIZONS)
    with _key_lookups(session):
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
    if not ids:
        return population
    others = [
        other
        for other in session.scalars(
            sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.id)
        )
        if other.id != plan.id
    ]
    # only this plan's patients can overlap: the other plans are read for them alone
    if _in_sql(session):
        counts = _overlaps_in_sql(session, others, now, longest, ids)
    else:
        counts = {other.id: len(due_contacts(session, other, now, longest, ids)) for other in others}
    population.overlaps = [Overlap(o.id, o.name, counts[o.id]) for o in others if counts.get(o.id)]
    return population

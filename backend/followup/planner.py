"""The daily planner: match encounters to follow-up plans and write outreach tasks with due times."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, aliased

from backend.audiences.filters import Audience, anchor_column, encounter_conditions, patient_conditions
from backend.models import (
    Anchor,
    Encounter,
    EncounterKind,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    Patient,
)
from backend.models.base import among, utcnow

log = logging.getLogger(__name__)
GRACE = timedelta(days=2)  # a planner that missed a day or two still creates what is due
BATCH = 5000


def due_time(anchor: datetime, offset_days: int, send_hour: int, timezone: str) -> datetime:
    """Local `send_hour` on the day `offset_days` after the anchor's local date, in UTC."""
    zone = ZoneInfo(timezone)
    local_day = anchor.astimezone(zone).date() + timedelta(days=offset_days)
    return datetime.combine(local_day, time(hour=send_hour), tzinfo=zone).astimezone(anchor.tzinfo)


def sampled(plan_id: int, encounter_id: int, ratio: float) -> bool:
    """Stable sampling: the same encounter is in or out of a plan's sample on every run."""
    if ratio >= 1:
        return True
    digest = hashlib.blake2b(f"{plan_id}:{encounter_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 < ratio


def plan_audience(plan: FollowUpPlan) -> Audience:
    """Who a plan is for, as the shared audience filter (its dates are the planner's window, not here).
    An unsaved plan (the editor's preview) may leave its lists unset: they mean "any"."""
    return Audience(
        encounter_kinds=tuple(EncounterKind(kind) for kind in plan.encounter_kinds or ()),
        department_ids=tuple(plan.department_ids or ()),
        ward_ids=tuple(plan.ward_ids or ()),
        diagnosis_prefixes=tuple(plan.diagnosis_prefixes or ()),
        procedure_codes=tuple(plan.procedure_codes or ()),
        anchor=plan.anchor or Anchor.DISCHARGE,
        excluded_flags=tuple(plan.excluded_flags or ()),
        age_min=plan.age_min,
        age_max=plan.age_max,
    )


def _visit_condition(plan: FollowUpPlan, anchor_col: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
    """At least `min_visits` encounters of the plan's kinds by the anchor, this one included."""
    if not plan.min_visits or plan.min_visits <= 1:
        return []
    earlier = aliased(Encounter)
    kinds = [EncounterKind(kind) for kind in plan.encounter_kinds or ()]
    counted = (
        sa.select(sa.func.count())
        .where(earlier.patient_id == Encounter.patient_id, earlier.started_at <= anchor_col)
        .where(*([earlier.kind.in_(kinds)] if kinds else []))
        .scalar_subquery()
    )
    return [counted >= plan.min_visits]


def candidate_query(plan: FollowUpPlan, since: datetime, now: datetime) -> sa.Select[Any]:
    """The plan's encounters anchored between `since` and `now`: id, patient, department, anchor, the
    patient's zone and what says which channels reach the patient, in encounter order. The planner and the
    population preview (backend/audiences/plans.py) both read these rows."""
    audience = plan_audience(plan)
    anchor_col = anchor_column(audience.anchor)
    query: sa.Select[Any] = (
        sa.select(  # type: ignore[assignment]
            Encounter.id,
            Encounter.patient_id,
            Encounter.department_id,
            anchor_col.label("anchor"),
            Patient.timezone,
            Patient.deceased,
            Patient.dispute,
            Patient.do_not_disturb,
            Patient.invalid_contact,
            Patient.phone_bidx,
            Patient.whatsapp_bidx,
            Patient.wechat_openid_bidx,
            Patient.email_bidx,
            Patient.email_bounced,
        )
        .join(Patient, Patient.id == Encounter.patient_id)
        .where(anchor_col >= since, anchor_col <= now)
        .where(*encounter_conditions(audience))
        .where(*patient_conditions(audience, now.date()))
        .where(*_visit_condition(plan, anchor_col))
        .order_by(Encounter.id)
    )
    return query


def candidates(
    session: Session,
    plan: FollowUpPlan,
    since: datetime,
    now: datetime,
    encounter_id: int | None = None,
    patient_ids: Sequence[int] | None = None,
    encounter_ids: Sequence[int] | None = None,
) -> Iterator[Any]:
    """The rows of `candidate_query`, of one encounter, some encounters or some patients if given (the
    population preview reads the same rows)."""
    query = candidate_query(plan, since, now)
    if patient_ids is not None:
        query = query.where(among(session, Encounter.patient_id, patient_ids))
    if encounter_ids is not None:
        query = query.where(among(session, Encounter.id, encounter_ids))
    if encounter_id is not None:  # one row at most: a server-side cursor would cost three more round trips
        yield from session.execute(query.where(Encounter.id == encounter_id))
        return
    yield from session.execute(query.execution_options(yield_per=BATCH))


_COLUMNS = {  # column -> PostgreSQL array type for the unnest() insert
    "plan_id": "integer[]",
    "patient_id": "integer[]",
    "encounter_id": "integer[]",
    "department_id": "integer[]",
    "questionnaire_id": "varchar[]",
    "plan_revision": "integer[]",
    "offset_days": "integer[]",
    "due_at": "timestamptz[]",
    "next_attempt_at": "timestamptz[]",
    "status": "varchar[]",
    "channel_index": "integer[]",
    "attempts": "integer[]",
    "created_at": "timestamptz[]",
}
_TASKS = cast(sa.Table, OutreachTask.__table__)
# Built from the constant column table above, never from input.
_PG_INSERT = sa.text(
    f"INSERT INTO outreach_tasks ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t})' for c, t in _COLUMNS.items())}) "
    "ON CONFLICT (plan_id, encounter_id, offset_days) DO NOTHING RETURNING encounter_id"
)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> Counter[int]:
    """Insert the batch, skipping tasks that exist; returns how many were new, by encounter."""
    if not rows:
        return Counter()
    if session.get_bind().dialect.name == "postgresql":
        # One statement with one array per column: psycopg parses 12 placeholders, not 12 per row
        # (the row-per-placeholder form spent 15 s of a 19 s run parsing SQL on 1M encounters).
        columns = {name: [row[name] for row in rows] for name in _COLUMNS}
        return Counter(session.execute(_PG_INSERT, columns).scalars())
    statement = (
        sqlite.insert(_TASKS)
        .on_conflict_do_nothing(index_elements=["plan_id", "encounter_id", "offset_days"])
        .returning(_TASKS.c.encounter_id)  # rowcount is unreliable for batched inserts
    )
    return Counter(session.execute(statement, rows).scalars())


def plan_one(session: Session, plan: FollowUpPlan, now: datetime, encounter_id: int | None = None) -> int:
    """Create the missing outreach tasks of one plan (for one encounter if given); returns how many."""
    return sum(_plan(session, plan, now, encounter_id=encounter_id).values())


def _plan(
    session: Session,
    plan: FollowUpPlan,
    now: datetime,
    *,
    encounter_id: int | None = None,
    encounter_ids: Sequence[int] | None = None,
) -> Counter[int]:
    """The missing outreach tasks of one plan written; how many, by encounter. Given encounters are each
    planned as `plan_encounter` plans one alone: the daily limit counts per call, so it holds no single
    discharge back (only a limit of 0 does)."""
    created: Counter[int] = Counter()
    if not plan.offsets_days or not plan.channels:
        return created
    since = now - timedelta(days=max(plan.offsets_days)) - GRACE
    enrolled, rows = 0, []
    for row in candidates(session, plan, since, now, encounter_id, encounter_ids=encounter_ids):
        if not sampled(plan.id, row.id, plan.sample_ratio):
            continue
        counted = 0 if encounter_ids is not None else enrolled
        if plan.daily_limit is not None and counted >= plan.daily_limit:
            break
        new_for_encounter = False
        for offset in plan.offsets_days:
            due = due_time(row.anchor, offset, plan.send_hour, row.timezone)
            if due < now - GRACE:
                continue
            new_for_encounter = True
            rows.append(
                {
                    "plan_id": plan.id,
                    "patient_id": row.patient_id,
                    "encounter_id": row.id,
                    "department_id": row.department_id,
                    "questionnaire_id": plan.questionnaire_id,
                    "plan_revision": plan.revision,
                    "offset_days": offset,
                    "due_at": due,
                    "next_attempt_at": due,
                    "status": OutreachStatus.SCHEDULED.value,
                    "channel_index": 0,
                    "attempts": 0,
                    "created_at": now,
                }
            )
        enrolled += new_for_encounter
        if len(rows) >= BATCH:
            created += _insert_ignoring_duplicates(session, rows)
            rows = []
    created += _insert_ignoring_duplicates(session, rows)
    return created


def run_planner(session: Session, now: datetime | None = None) -> int:
    now = now or utcnow()
    total = 0
    for plan in session.scalars(
        sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.id)
    ):
        created = plan_one(session, plan, now)
        log.info("planner plan=%s created=%d", plan.id, created)
        total += created
    return total


def plan_encounter(session: Session, encounter_id: int, now: datetime | None = None) -> int:
    """Plan one encounter now (a discharge just arrived), not at the next run; the same rules apply."""
    now = now or utcnow()
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        return 0
    plans = session.scalars(
        sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.id)
    )
    return sum(
        plan_one(session, plan, now, encounter_id)
        for plan in plans
        # plans that cannot match this encounter are skipped without a query (many plans, one discharge)
        if _may_match(plan, encounter.kind, encounter.department_id, encounter.ward_id)
    )


def _may_match(plan: FollowUpPlan, kind: EncounterKind, department_id: int, ward_id: int | None) -> bool:
    return (
        (not plan.encounter_kinds or kind.value in plan.encounter_kinds)
        and (not plan.department_ids or department_id in plan.department_ids)
        and (not plan.ward_ids or ward_id in plan.ward_ids)
    )


def plan_encounters(
    session: Session, encounter_ids: Sequence[int], now: datetime | None = None
) -> Counter[int]:
    """Plan many encounters now (a file of discharges), each as `plan_encounter` would plan it alone, in
    one query per plan that may match any of them. Returns how many tasks were created, by encounter."""
    now = now or utcnow()
    created: Counter[int] = Counter()
    if not encounter_ids:
        return created
    visits = session.execute(
        sa.select(Encounter.id, Encounter.kind, Encounter.department_id, Encounter.ward_id).where(
            among(session, Encounter.id, encounter_ids)
        )
    ).all()
    plans = session.scalars(
        sa.select(FollowUpPlan).where(FollowUpPlan.active.is_(True)).order_by(FollowUpPlan.id)
    )
    for plan in plans:
        ids = [v.id for v in visits if _may_match(plan, v.kind, v.department_id, v.ward_id)]
        for start in range(0, len(ids), BATCH):
            created += _plan(session, plan, now, encounter_ids=ids[start : start + BATCH])
    return created


def reschedule_for_encounter(session: Session, encounter: Encounter) -> int:
    """The discharge (or visit) time changed: move the due times of tasks not yet sent."""
    moved = 0
    tasks = session.scalars(
        sa.select(OutreachTask).where(
            OutreachTask.encounter_id == encounter.id, OutreachTask.status == OutreachStatus.SCHEDULED
        )
    )
    for task in tasks:
        plan = session.get(FollowUpPlan, task.plan_id)
        anchor = encounter.ended_at if plan and plan.anchor is Anchor.DISCHARGE else encounter.started_at
        if plan is None or anchor is None:
            continue
        patient = session.get(Patient, task.patient_id)
        task.due_at = task.next_attempt_at = due_time(
            anchor, task.offset_days, plan.send_hour, patient.timezone if patient else "UTC"
        )
        moved += 1
    return moved

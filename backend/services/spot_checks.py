"""Spot checks: supervisors draw a reproducible sample of completed follow-ups, review, call back, record
findings; quality statistics per department, responsible nurse and reviewer."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from backend.models import (
    Clinician,
    Department,
    Encounter,
    OutreachStatus,
    OutreachTask,
    QuestionnaireResponse,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    StaffUser,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.services.tasks import do_raise_task

MAX_SAMPLE = 1000
MAX_NOTE = 4000


class SpotCheckRefused(ActionRefused):
    """Not a supervisor, a bad ratio or count, an empty period, a review of a closed item …"""


def sample(
    ids: Sequence[int], seed: str, *, ratio: float | None = None, count: int | None = None
) -> list[int]:
    """A stable sample: each id ranked by a hash of (seed, id), the first n taken, returned sorted.
    The same ids and seed always give the same sample, and an id's rank does not depend on the others
    (a later draw over more rows may add new ones, never reorder the old). n is `count`, or `ratio` of the
    ids rounded up."""
    if (ratio is None) == (count is None):
        raise SpotCheckRefused(Reason.RATIO_OR_COUNT)
    if ratio is not None and not 0 < ratio <= 1:
        raise SpotCheckRefused(Reason.RATIO_RANGE)
    if count is not None and not 0 < count <= MAX_SAMPLE:
        raise SpotCheckRefused(Reason.COUNT_RANGE)
    n = count if count is not None else math.ceil(len(ids) * (ratio or 0))
    n = min(n, len(ids), MAX_SAMPLE)

    def rank(ident: int) -> bytes:
        return hashlib.sha256(f"{seed}:{ident}".encode()).digest()

    return sorted(sorted(set(ids), key=rank)[:n])


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC)."""
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


def completed_follow_ups(
    session: Session, *, department_id: int | None, start: date, end: date
) -> list[tuple[int, int, int, int | None]]:
    """(outreach task id, patient id, department id, response id) of follow-ups completed in the period."""
    since, until = period_bounds(start, end)
    query = (
        sa.select(
            OutreachTask.id, OutreachTask.patient_id, OutreachTask.department_id, QuestionnaireResponse.id
        )
        .outerjoin(QuestionnaireResponse, QuestionnaireResponse.outreach_task_id == OutreachTask.id)
        .where(
            OutreachTask.status == OutreachStatus.COMPLETED,
            OutreachTask.closed_at >= since,
            OutreachTask.closed_at < until,
        )
        .order_by(OutreachTask.id)
    )
    if department_id is not None:
        query = query.where(OutreachTask.department_id == department_id)
    return [(t, p, d, r) for t, p, d, r in session.execute(query)]


def may_supervise(user: StaffUser) -> bool:
    """Whether `user` may draw and review spot checks (managers and administrators, unless changed)."""
    return may(user, Permission.SPOT_CHECKS)


def _supervisor(user: StaffUser) -> None:
    if not may_supervise(user):
        raise SpotCheckRefused(Reason.NOT_SUPERVISOR)


def do_draw(
    session: Session,
    *,
    user: StaffUser,
    department_id: int | None,
    start: date,
    end: date,
    ratio: float | None = None,
    count: int | None = None,
    seed: str | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> SpotCheck:
    """Draw and store the sample. Without a seed a random one is chosen and stored, so the draw can be
    repeated and checked later."""
    _supervisor(user)
    if start > end:
        raise SpotCheckRefused(Reason.PERIOD)
    seed = seed or secrets.token_hex(8)
    population = completed_follow_ups(session, department_id=department_id, start=start, end=end)
    chosen = set(sample([row[0] for row in population], seed, ratio=ratio, count=count))
    if not chosen:
        raise SpotCheckRefused(Reason.NOTHING_TO_SAMPLE)
    check = SpotCheck(
        department_id=department_id,
        period_start=start,
        period_end=end,
        ratio=ratio,
        count=count,
        seed=seed,
        population=len(population),
        created_by_id=user.id,
        created_at=now or utcnow(),
    )
    session.add(check)
    session.flush()
    session.add_all(
        SpotCheckItem(
            spot_check_id=check.id,
            outreach_task_id=task_id,
            patient_id=patient_id,
            department_id=dept_id,
            response_id=response_id,
        )
        for task_id, patient_id, dept_id, response_id in population
        if task_id in chosen
    )
    session.flush()
    audit.record(
        session,
        "spot_check.draw",
        staff_id=user.id,
        subject=("spot_check", check.id),
        ip=ip,
        department=department_id,
        population=len(population),
        sampled=len(chosen),
    )
    return check


def do_review(
    session: Session,
    *,
    item: SpotCheckItem,
    user: StaffUser,
    verdict: SpotVerdict,
    note: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record the finding (passed, or an issue with a note saying what). A later review replaces it."""
    _supervisor(user)
    note = note.strip()
    if verdict is SpotVerdict.PENDING:
        raise SpotCheckRefused(Reason.VERDICT)
    if len(note) > MAX_NOTE or (verdict is SpotVerdict.ISSUE and not note):
        raise SpotCheckRefused(Reason.NOTE)
    item.verdict, item.note = verdict, note
    item.reviewer_id, item.reviewed_at = user.id, now or utcnow()
    audit.record(
        session,
        "spot_check.review",
        staff_id=user.id,
        patient_id=item.patient_id,
        subject=("spot_check_item", item.id),
        ip=ip,
        verdict=verdict.value,
    )


def do_request_callback(
    session: Session,
    *,
    item: SpotCheckItem,
    user: StaffUser,
    ip: str | None = None,
    now: datetime | None = None,
) -> int:
    """Raise a CALLBACK task for the department (once per item); returns its id."""
    _supervisor(user)
    if item.callback_task_id is not None:
        return item.callback_task_id
    task = do_raise_task(
        session,
        kind=TaskKind.CALLBACK,
        priority=TaskPriority.NORMAL,
        title=f"spot_check:{item.spot_check_id}",
        source=("spot_check_item", item.id),
        patient_id=item.patient_id,
        department_id=item.department_id,
        now=now,
    )
    item.callback_task_id = task.id
    audit.record(
        session,
        "spot_check.callback",
        staff_id=user.id,
        patient_id=item.patient_id,
        subject=("spot_check_item", item.id),
        ip=ip,
        task_id=task.id,
    )
    return task.id


# --- statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityRow:
    key: int | None
    name: str
    sampled: int
    reviewed: int
    passed: int
    issues: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.reviewed if self.reviewed else None


def quality(
    session: Session, *, by: str, start: date | None = None, end: date | None = None
) -> list[QualityRow]:
    """Sampled, reviewed, passed and issues, grouped `by` "department", "nurse" (the encounter's
    responsible nurse) or "reviewer"; over checks whose period starts within [start, end]."""
    nurse, reviewer = aliased(Clinician), aliased(StaffUser)
    columns: dict[str, tuple[Any, Any]] = {
        "department": (SpotCheckItem.department_id, Department.name),
        "nurse": (nurse.id, nurse.name),
        "reviewer": (SpotCheckItem.reviewer_id, reviewer.display_name),
    }
    if by not in columns:
        raise ValueError(f"unknown grouping {by!r}")
    key, name = columns[by]
    verdict = SpotCheckItem.verdict
    query = (
        sa.select(
            key,
            name,
            sa.func.count(),
            sa.func.count(SpotCheckItem.reviewed_at),
            sa.func.sum(sa.case((verdict == SpotVerdict.PASSED, 1), else_=0)),
            sa.func.sum(sa.case((verdict == SpotVerdict.ISSUE, 1), else_=0)),
        )
        .select_from(SpotCheckItem)
        .join(SpotCheck, SpotCheck.id == SpotCheckItem.spot_check_id)
        .join(Department, Department.id == SpotCheckItem.department_id)
        .join(OutreachTask, OutreachTask.id == SpotCheckItem.outreach_task_id)
        .join(Encounter, Encounter.id == OutreachTask.encounter_id)
        .outerjoin(nurse, nurse.id == Encounter.responsible_nurse_id)
        .outerjoin(reviewer, reviewer.id == SpotCheckItem.reviewer_id)
        .group_by(key, name)
        .order_by(name)
    )
    if start is not None:
        query = query.where(SpotCheck.period_start >= start)
    if end is not None:
        query = query.where(SpotCheck.period_start <= end)
    return [
        QualityRow(k, n or "", int(s), int(r), int(p or 0), int(i or 0))
        for k, n, s, r, p, i in session.execute(query)
    ]

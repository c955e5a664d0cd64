"""What the long-work pages show: the jobs a staff member may see (her own; admins and managers all),
filtered, and one job's progress as the page and its poll read it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import StaffUser, WorkJob, WorkState
from backend.security.permissions import Permission, may
from backend.services.spreadsheet import formula_safe
from backend.work.runs import WorkError, runner_for

PAGE_SIZE = 50
EXPORT_COLUMNS = ("id", "kind", "state", "done", "total", "errors", "started_by", "created_at", "finished_at")


def sees_all(user: StaffUser) -> bool:
    return may(user, Permission.WORK_ALL)


def visible(user: StaffUser) -> sa.ColumnElement[bool]:
    """The jobs `user` may see, as a condition the query applies (not the template)."""
    return sa.true() if sees_all(user) else WorkJob.started_by_id == user.id


def may_see(user: StaffUser, job: WorkJob) -> bool:
    return sees_all(user) or job.started_by_id == user.id


@dataclass(frozen=True)
class JobFilters:
    kind: str | None = None
    state: WorkState | None = None

    @classmethod
    def parse(cls, kind: str | None, state: str | None) -> JobFilters:
        """Unknown values are errors that name the field, not silently ignored filters."""
        if state:
            try:
                parsed_state: WorkState | None = WorkState(state)
            except ValueError:
                raise ValueError("state") from None
        else:
            parsed_state = None
        return cls(kind=kind or None, state=parsed_state)


def jobs(session: Session, user: StaffUser, filters: JobFilters, limit: int = PAGE_SIZE) -> list[WorkJob]:
    query = sa.select(WorkJob).where(visible(user)).order_by(WorkJob.id.desc()).limit(limit)
    if filters.kind:
        query = query.where(WorkJob.kind == filters.kind)
    if filters.state:
        query = query.where(WorkJob.state == filters.state)
    return list(session.scalars(query))


def starter_names(session: Session, rows: list[WorkJob]) -> dict[int, str]:
    ids = {row.started_by_id for row in rows if row.started_by_id is not None}
    if not ids:
        return {}
    found = session.execute(sa.select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids)))
    return {staff_id: name for staff_id, name in found}


def title_of(job: WorkJob) -> str:
    try:
        return runner_for(job.kind).title
    except WorkError:
        return job.kind


def result_url(job: WorkJob) -> str | None:
    if job.state is not WorkState.DONE:
        return None
    try:
        return runner_for(job.kind).result_url(job)
    except WorkError:
        return None


def status(job: WorkJob) -> dict[str, Any]:
    """What the page's poll reads: enough to move the bar and say when to stop polling."""
    return {
        "id": job.id,
        "state": job.state.value,
        "finished": job.state.finished,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "counts": job.counts or {},
        "error_count": job.error_count,
        "result_url": result_url(job),
    }


def export_csv(rows: list[WorkJob], names: dict[int, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for job in rows:
        writer.writerow(
            [
                formula_safe(value)
                for value in (
                    job.id,
                    job.kind,
                    job.state.value,
                    job.done,
                    job.total if job.total is not None else "",
                    job.error_count,
                    names.get(job.started_by_id or 0, ""),
                    job.created_at.isoformat(),
                    job.finished_at.isoformat() if job.finished_at else "",
                )
            ]
        )
    return out.getvalue()

"""Staff statistics page and its Excel export; both scoped to the departments the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from backend.followup.export import to_xlsx
from backend.followup.stats import Filters, GroupBy, follow_up_report
from backend.models import Department
from backend.services import audit, directory
from backend.services.patients import department_ids
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.ids import IdQuery
from backend.web.staff import render

router = APIRouter(prefix="/staff")


@dataclass(frozen=True)
class StatsQuery:
    """The page's filters as asked for, and as allowed for this viewer."""

    filters: Filters
    group_by: GroupBy
    department: int | None
    questionnaire: str


def stats_query(
    staff: StaffDep,
    start: date | None = None,
    end: date | None = None,
    department: IdQuery | None = None,
    questionnaire: str | None = None,
    group_by: GroupBy = GroupBy.DEPARTMENT,
) -> StatsQuery:
    today = datetime.now(UTC).date()
    end = end or today + timedelta(days=1)
    start = start or end - timedelta(days=30)
    allowed = department_ids(staff.staff)
    chosen: frozenset[int] | None = allowed if allowed is None else frozenset(allowed)
    if department is not None:
        # a department outside the viewer's scope gives an empty report, not someone else's figures
        chosen = frozenset({department}) if allowed is None or department in allowed else frozenset()
    filters = Filters(
        start=datetime.combine(start, time(), UTC),
        end=datetime.combine(end, time(), UTC),
        department_ids=chosen,
        questionnaire_id=questionnaire or None,
    )
    return StatsQuery(filters, group_by, department, questionnaire or "")


QueryDep = Annotated[StatsQuery, Depends(stats_query)]


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, db: SessionDep, staff: StaffDep, query: QueryDep) -> Response:
    filters = query.filters
    report = follow_up_report(db, filters, query.group_by)
    departments = directory.departments(db)
    return render(
        request,
        "staff/stats.html",
        staff.staff.language,
        {
            "staff": staff,
            "report": report,
            "departments": departments,
            "department": query.department,
            "questionnaire": query.questionnaire,
            "group_by": query.group_by.value,
            "groupings": [g.value for g in GroupBy],
            "start": filters.start.date().isoformat(),
            "end": filters.end.date().isoformat(),
            "query": request.url.query,
        },
    )


@router.get("/stats.xlsx")
def stats_export(request: Request, db: SessionDep, staff: StaffDep, query: QueryDep) -> Response:
    filters = query.filters
    report = follow_up_report(db, filters, query.group_by)
    names = None
    if filters.department_ids is not None:
        names = list(db.scalars(sa.select(Department.name).where(Department.id.in_(filters.department_ids))))
    audit.record(
        db, "stats.export", staff_id=staff.staff_id, ip=client_ip(request), group_by=query.group_by.value
    )
    return Response(
        to_xlsx(report, department_names=names),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="follow-up-{filters.start.date()}.xlsx"'},
    )

"""Staff pages of long work: the list of jobs, one job with its progress bar (polled while it runs), its
errors, and a cancel button. The work's own pages start jobs; these only watch and stop them."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse

from backend.models import WorkJob
from backend.services import audit
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render
from backend.work import views
from backend.work.runs import request_cancel

router = APIRouter(prefix="/staff/work")


def _job(db: SessionDep, staff: StaffDep, job_id: int) -> WorkJob | None:
    job = db.get(WorkJob, job_id)
    return job if job is not None and views.may_see(staff.staff, job) else None


def _filters(request: Request, kind: str | None, state: str | None) -> views.JobFilters | Response:
    try:
        return views.JobFilters.parse(kind, state)
    except ValueError as exc:
        return PlainTextResponse(f"unknown value for filter {exc}", status_code=400)


@router.get("", response_class=HTMLResponse)
def work_list(
    request: Request, db: SessionDep, staff: StaffDep, kind: str | None = None, state: str | None = None
) -> Response:
    filters = _filters(request, kind, state)
    if isinstance(filters, Response):
        return filters
    rows = views.jobs(db, staff.staff, filters)
    audit.record(db, "work.list", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    context = {
        "staff": staff,
        "rows": rows,
        "names": views.starter_names(db, rows),
        "filters": filters,
        "title_of": views.title_of,
        "kinds": sorted({row.kind for row in rows} | ({filters.kind} if filters.kind else set())),
    }
    return render(request, "staff/work.html", staff.staff.language, context)


@router.get(".csv")
def work_csv(
    request: Request, db: SessionDep, staff: StaffDep, kind: str | None = None, state: str | None = None
) -> Response:
    filters = _filters(request, kind, state)
    if isinstance(filters, Response):
        return filters
    rows = views.jobs(db, staff.staff, filters, limit=10_000)
    audit.record(db, "work.export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    return PlainTextResponse(
        views.export_csv(rows, views.starter_names(db, rows)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="work.csv"'},
    )


@router.get("/{job_id}", response_class=HTMLResponse)
def work_page(request: Request, job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    job = _job(db, staff, job_id)
    if job is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    context = {
        "staff": staff,
        "job": job,
        "title": views.title_of(job),
        "result_url": views.result_url(job),
        "started_by": views.starter_names(db, [job]).get(job.started_by_id or 0, ""),
    }
    return render(request, "staff/work_job.html", staff.staff.language, context)


@router.get("/{job_id}/status")
def work_status(job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    job = _job(db, staff, job_id)
    if job is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(views.status(job), headers={"Cache-Control": "no-store"})


@router.post("/{job_id}/cancel")
def work_cancel(
    request: Request, job_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    job = _job(db, staff, job_id)
    if job is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    request_cancel(db, job)
    audit.record(db, "work.cancel", staff_id=staff.staff_id, ip=client_ip(request), job_id=job.id)
    db.commit()
    return RedirectResponse(f"/staff/work/{job.id}", status_code=303)

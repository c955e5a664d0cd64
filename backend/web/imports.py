"""Import pages (admin and integration roles): upload a file for a dry run or a reconciliation, watch its
bar, read its problems, confirm it, download the reconciliation. Routes parse, call the imports service,
render; the work runs as jobs."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.imports import service, staff_apply, storage
from backend.imports.columns import FIELDS, ImportKind
from backend.imports.jobs import CONFIRM, DRY_RUN, RECONCILE
from backend.imports.problems import split
from backend.imports.reconcile import report_kind
from backend.models import StaffSession, WorkJob, WorkState
from backend.security.crypto import current_cipher
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.permits import refused
from backend.web.staff import check_csrf, render
from backend.work.runs import launch

router = APIRouter(prefix="/staff/imports")


def _forbidden(request: Request, db: Session, staff: StaffSession) -> Response | None:
    return refused(request, db, staff, Permission.IMPORTS, "import.view_denied")


def _manages_staff(staff: StaffSession) -> bool:
    return may(staff.staff, Permission.ADMIN_STAFF)


def _page(request: Request, db: Session, staff: StaffSession, error: str = "", status: int = 200) -> Response:
    context = {
        "staff": staff,
        "kinds": [k.value for k in ImportKind],
        "sources": service.sources(db),
        "encodings": service.ENCODINGS,
        "jobs": service.recent(db),
        "error": error,
        "max_mb": storage.max_megabytes(),
    }
    return render(request, "staff/imports.html", staff.staff.language, context, status)


@router.get("", response_class=HTMLResponse)
def imports_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    return _page(request, db, staff)


@router.post("")
def upload(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=32)],
    source: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=128)],
    encoding: Annotated[str, Form(max_length=32)] = "",
    purpose: Annotated[str, Form(max_length=16)] = "import",
) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    check_csrf(staff, csrf_token)
    try:
        sha, size = storage.store(file.file)
    except storage.TooLarge:
        return _page(request, db, staff, service.ImportReason.TOO_LARGE.value, 413)
    if size == 0:
        return _page(request, db, staff, service.ImportReason.EMPTY.value, 400)
    try:
        job = service.do_start_dry_run(
            db, kind=kind, file=sha, name=file.filename or "", source=source, encoding=encoding or None,
            staff_id=staff.staff_id, reconcile_only=purpose == "reconcile",
            manages_staff=_manages_staff(staff),
        )  # fmt: skip
    except service.ImportRefused as refused:
        return _page(request, db, staff, str(refused.reason), 400)
    db.commit()
    launch(job.id)
    return RedirectResponse(f"/staff/imports/{job.id}", status_code=303)


def _import_job(db: Session, job_id: int) -> WorkJob | None:
    job = db.get(WorkJob, job_id)
    return job if job is not None and job.kind in {DRY_RUN, CONFIRM, RECONCILE} else None


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: int, db: SessionDep, staff: StaffDep, error: str = "") -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    job = _import_job(db, job_id)
    if job is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    dry_run = job if job.kind == DRY_RUN else _import_job(db, int((job.params or {}).get("dry_run", 0)))
    params: dict[str, Any] = dict((dry_run or job).params or {})
    confirms = service.confirms_of(db, job.id) if job.kind == DRY_RUN else []
    context = {
        "staff": staff,
        "job": job,
        "params": params,
        "dry_run": dry_run,
        "confirms": confirms,
        "may_confirm": job.kind == DRY_RUN
        and job.state is WorkState.DONE
        and bool((job.result or {}).get("writes"))
        and not any(c.state is not WorkState.FAILED and c.state is not WorkState.CANCELLED for c in confirms),
        "problems": [(e["at"], *split(str(e["error"]))) for e in job.errors or []],
        "fields": [f.name for f in FIELDS[ImportKind(params["kind"])]] if params.get("kind") else [],
        "has_report": job.kind in {CONFIRM, RECONCILE} and storage.report_path(job.id).exists(),
        "headers": service.headers_of(params["file"], params.get("encoding"))
        if job.kind == DRY_RUN and job.state.finished and not confirms and params.get("file")
        else (),
        "needing_link": staff_apply.needing_link(db, job.created_at)
        if job.kind == CONFIRM and params.get("kind") == ImportKind.STAFF.value and job.state.finished
        else [],
        "error": error,
    }
    return render(request, "staff/import_job.html", staff.staff.language, context)


@router.get("/{job_id}/problems.csv")
def problems_csv(request: Request, job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    job = _import_job(db, job_id)
    if job is None:
        return PlainTextResponse("not found", status_code=404)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "problem", "column or row"])
    for entry in job.errors or []:
        writer.writerow([entry["at"], *split(str(entry["error"]))])
    audit.record(db, "import.problems_export", staff_id=staff.staff_id, ip=client_ip(request), job_id=job.id)
    db.commit()
    return PlainTextResponse(
        "\ufeff" + out.getvalue(),  # a BOM: Excel opens UTF-8 CSV with Chinese text correctly only with one
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-problems.csv"'},
    )


@router.post("/{job_id}/columns")
async def choose_columns(request: Request, job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    form = await request.form()
    check_csrf(staff, str(form.get("csrf_token", "")))
    dry_run = _import_job(db, job_id)
    if dry_run is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    columns = {
        str(key).removeprefix("column-"): str(value)[:200]
        for key, value in form.multi_items()
        if str(key).startswith("column-")
    }
    try:
        job = service.do_dry_run_again(
            db, dry_run, columns, staff_id=staff.staff_id, manages_staff=_manages_staff(staff)
        )
    except service.ImportRefused as refused:
        return RedirectResponse(f"/staff/imports/{job_id}?error={refused.reason}", status_code=303)
    db.commit()
    launch(job.id)
    return RedirectResponse(f"/staff/imports/{job.id}", status_code=303)


@router.post("/{job_id}/confirm")
def confirm(
    request: Request, job_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    check_csrf(staff, csrf_token)
    dry_run = _import_job(db, job_id)
    if dry_run is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    try:
        job = service.do_start_confirm(
            db, dry_run, staff_id=staff.staff_id, manages_staff=_manages_staff(staff)
        )
    except service.ImportRefused as refused:
        return RedirectResponse(f"/staff/imports/{job_id}?error={refused.reason}", status_code=303)
    db.commit()
    launch(job.id)
    return RedirectResponse(f"/staff/imports/{job.id}", status_code=303)


@router.get("/{job_id}/reconciliation.xlsx")
def reconciliation(request: Request, job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    job = _import_job(db, job_id)
    path = storage.report_path(job_id)
    if job is None or not path.exists():
        return PlainTextResponse("not found", status_code=404)
    data = current_cipher().unseal(report_kind(job.id), path.read_bytes())
    audit.record(
        db, "import.reconciliation_download", staff_id=staff.staff_id, ip=client_ip(request), job_id=job.id
    )
    db.commit()
    return spreadsheet(data, f"reconciliation-{job.id}.xlsx")

"""Staff pages of outreach batches (managers and admins): the list, a new batch, and one batch's page with
its preview, approval, send (with the job's bar), cancel and report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from backend.app.settings import get_settings
from backend.audiences.filters import InvalidAudience
from backend.audiences.plans import plan_population
from backend.models import BatchPurpose, Department, EncounterKind, FollowUpPlan, OutreachBatch, StaffSession
from backend.models.base import utcnow
from backend.outbox.overrides import effective_settings
from backend.outreach import views
from backend.outreach.batches import (
    do_approve,
    do_cancel,
    do_create_batch,
    do_preview,
    do_send,
    rendered,
)
from backend.outreach.report import batch_report
from backend.security.permissions import Permission
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.local_time import from_local_field
from backend.web.permits import refused
from backend.web.staff import check_csrf, render
from backend.work import runs
from bots.domain import LANGUAGES, Channel

router = APIRouter(prefix="/staff/outreach")
MAX_UPLOAD = 1024 * 1024  # the staff forms body limit (backend/web/body_limit.py): about 60,000 rows


async def _form_data(request: Request) -> FormData:
    """The posted form, read before the (synchronous) route runs in the thread pool: the work behind
    these routes (a preview of thousands of patients) must not hold the event loop."""
    return await request.form(max_part_size=MAX_UPLOAD + 1)


FormDataDep = Annotated[FormData, Depends(_form_data)]


def _strings(raw: FormData) -> dict[str, str]:
    return {key: value for key, value in raw.items() if isinstance(value, str)}


def _forbidden(request: Request, db: Session, staff: StaffSession) -> Response | None:
    return refused(request, db, staff, Permission.OUTREACH, "outreach.view_denied")


def _filters(request: Request) -> views.BatchFilters | Response:
    try:
        return views.BatchFilters.parse(dict(request.query_params))
    except InvalidAudience as exc:
        return PlainTextResponse(f"unknown value for filter {exc.field}", status_code=400)


@router.get("", response_class=HTMLResponse)
def outreach_list(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    filters = _filters(request)
    if isinstance(filters, Response):
        return filters
    rows = views.batches(db, filters)
    audit.record(db, "outreach.list", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    context = {
        "staff": staff,
        "rows": rows,
        "filters": filters,
        "names": views.staff_names(db, {b.created_by_id for b in rows}),
        "channels": views.CHANNELS,
        "plans": views.active_plans(db),
    }
    return render(request, "staff/outreach_list.html", staff.staff.language, context)


@router.get(".csv")
def outreach_csv(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    filters = _filters(request)
    if isinstance(filters, Response):
        return filters
    rows = views.batches(db, filters, limit=10_000)
    audit.record(db, "outreach.export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    return PlainTextResponse(
        views.export_csv(rows, views.staff_names(db, {b.created_by_id for b in rows})),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="outreach.csv"'},
    )


def _new_page(
    request: Request, db: Session, staff: StaffSession, form: dict[str, str], error: str | None, status: int
) -> Response:
    context = {
        "staff": staff,
        "form": form,
        "error": error,
        "departments": db.query(Department).order_by(Department.name).all(),
        "kinds": list(EncounterKind),
        "purposes": list(BatchPurpose),
        "channels": views.CHANNELS,
        "languages": LANGUAGES,
    }
    return render(request, "staff/outreach_new.html", staff.staff.language, context, status)


@router.get("/new", response_class=HTMLResponse)
def outreach_new(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    return _new_page(
        request, db, staff, {"recipients": "segment", "purpose": "care", "channel": "sms"}, None, 200
    )


@router.post("/new")
def outreach_create(request: Request, db: SessionDep, staff: StaffDep, raw: FormDataDep) -> Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    form = _strings(raw)
    check_csrf(staff, form.get("csrf_token", ""))
    upload = raw.get("list_file")
    listing: str | None = None
    error: str | None = None
    if form.get("recipients") == "list":
        listing = form.get("list_text", "")
        if isinstance(upload, UploadFile) and upload.filename:
            data = upload.file.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                error = Reason.BATCH_LIST.value
            listing = data.decode("utf-8-sig", errors="replace") + "\n" + listing
    try:
        if error is not None:
            raise ActionRefused(Reason.BATCH_LIST)
        audience = views.audience_from_form(form) if listing is None else None
        batch = do_create_batch(
            db,
            staff=staff.staff,
            name=form.get("name", ""),
            purpose=BatchPurpose(form.get("purpose", "")),
            channel=Channel(form.get("channel", "")),
            messages={lang: form.get(f"message_{lang}", "") for lang in LANGUAGES},
            audience=audience,
            listing=listing,
        )
    except InvalidAudience as exc:
        return _new_page(request, db, staff, form, f"field:{exc.field}", 400)
    except ValueError:
        return _new_page(request, db, staff, form, Reason.INVALID_FILTER.value, 400)
    except ActionRefused as exc:
        return _new_page(request, db, staff, form, exc.reason, 400)
    db.commit()
    return RedirectResponse(f"/staff/outreach/{batch.id}", status_code=303)


def _batch_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    batch: OutreachBatch,
    error: str | None = None,
    status: int = 200,
) -> Response:
    preview = views.latest_preview(db, batch.id, staff.staff_id)
    settings = get_settings()
    report = batch_report(db, batch)
    context: dict[str, Any] = {
        "staff": staff,
        "batch": batch,
        "error": error,
        "preview": preview,
        "rendered": rendered(batch, effective_settings(db), db),
        "job": views.job_of(db, batch),
        "report": report,
        "bars": report.bars(),
        "names": views.staff_names(db, {batch.created_by_id, batch.approved_by_id or 0}),
        "threshold": settings.outreach_approval_threshold,
        "over_threshold": preview is not None
        and _reachable(preview.counts) > settings.outreach_approval_threshold,
    }
    return render(request, "staff/outreach_batch.html", staff.staff.language, context, status)


def _reachable(counts: dict[str, Any]) -> int:
    return int(counts.get("send", 0)) + sum(int(n) for n in counts.get("defer", {}).values())


def _find(request: Request, db: Session, staff: StaffSession, batch_id: int) -> OutreachBatch | Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    batch = db.get(OutreachBatch, batch_id)
    if batch is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    return batch


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_preview(request: Request, plan_id: int, db: SessionDep, staff: StaffDep) -> Response:
    """Whom a follow-up plan reaches in the next 7 and 30 days (the plan editor's preview)."""
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    plan = db.get(FollowUpPlan, plan_id)
    if plan is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    population = plan_population(db, plan, utcnow())
    audit.record(
        db,
        "outreach.plan_preview",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        plan_id=plan.id,
        patients=[p.id for p in population.sample],
    )
    context = {
        "staff": staff,
        "plan": plan,
        "population": population,
        "departments_by_id": {d.id: d for d in db.query(Department).all()},
    }
    return render(request, "staff/outreach_plan.html", staff.staff.language, context)


@router.get("/{batch_id}", response_class=HTMLResponse)
def outreach_batch(request: Request, batch_id: int, db: SessionDep, staff: StaffDep) -> Response:
    batch = _find(request, db, staff, batch_id)
    if isinstance(batch, Response):
        return batch
    audit.record(db, "outreach.view", staff_id=staff.staff_id, subject=("outreach_batch", batch.id))
    return _batch_page(request, db, staff, batch)


def _send_at(value: str) -> datetime | None:
    try:
        return from_local_field(value.strip())
    except ValueError:
        raise ActionRefused(Reason.SEND_TIME_INVALID) from None


def _act(
    request: Request, db: Session, staff: StaffSession, batch_id: int, raw: FormData, action: str
) -> Response:
    batch = _find(request, db, staff, batch_id)
    if isinstance(batch, Response):
        return batch
    form = _strings(raw)
    check_csrf(staff, form.get("csrf_token", ""))
    launch: int | None = None
    try:
        preview_id = int(form.get("preview_id") or 0)
        if action == "preview":
            do_preview(db, batch, staff.staff)
        elif action == "approve":
            do_approve(db, batch, staff.staff, preview_id)
        elif action == "send":
            job = do_send(db, batch, staff.staff, preview_id, at=_send_at(form.get("send_at", "")))
            launch = job.id if job is not None else None
        else:
            do_cancel(db, batch, staff.staff)
    except ActionRefused as exc:
        db.rollback()
        return _batch_page(request, db, staff, batch, exc.reason, 400)
    except ValueError:
        db.rollback()
        return _batch_page(request, db, staff, batch, Reason.PREVIEW_REQUIRED.value, 400)
    db.commit()
    if launch is not None:
        runs.launch(launch)  # after the commit: the worker must find the job and the batch's state
    return RedirectResponse(f"/staff/outreach/{batch.id}", status_code=303)


@router.post("/{batch_id}/preview")
def outreach_preview(
    request: Request, batch_id: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    return _act(request, db, staff, batch_id, raw, "preview")


@router.post("/{batch_id}/approve")
def outreach_approve(
    request: Request, batch_id: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    return _act(request, db, staff, batch_id, raw, "approve")


@router.post("/{batch_id}/send")
def outreach_send(
    request: Request, batch_id: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    return _act(request, db, staff, batch_id, raw, "send")


@router.post("/{batch_id}/cancel")
def outreach_cancel(
    request: Request, batch_id: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    return _act(request, db, staff, batch_id, raw, "cancel")

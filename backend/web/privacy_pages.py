"""Staff pages of a patient's data rights: requests from the record and their decision by the privacy
officer, the data export's downloads, the record's access report, break-glass and its review."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.models import Patient, RightsKind, RightsRequest, StaffSession, WorkJob, WorkState
from backend.models.base import utcnow
from backend.privacy import export as data_export
from backend.privacy.access import AccessFilters, access_rows, export_csv, may_see_report
from backend.privacy.break_glass import do_break_glass, do_review, grant_rows
from backend.privacy.requests import (
    HeldRefusal,
    changes_of,
    do_approve,
    do_reject,
    do_request,
    parse_changes,
    request_rows,
)
from backend.privacy.retention import remove_recordings_of
from backend.privacy.views import grants_csv, hospital_zone, parse_list_filters, requests_csv
from backend.services import audit, patients
from backend.services.refusal import ActionRefused, Reason
from backend.web.admin_common import PrivacyDep
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.downloads import file_response
from backend.web.staff import check_csrf, render
from backend.work import runs, views

router = APIRouter()
CSV_HEADERS = {"Cache-Control": "no-store"}


def _csv(body: str, filename: str) -> Response:
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **CSV_HEADERS},
    )


def _record(request: Request, db: Session, staff: StaffSession, patient_id: int) -> Patient | Response:
    from backend.web.record import _open

    return _open(request, db, staff, patient_id)


def _back_to_record(patient_id: int, done: str) -> Response:
    return RedirectResponse(f"/staff/patients/{patient_id}?done={done}#rights", status_code=303)


def _refused_on_record(
    request: Request, db: Session, staff: StaffSession, patient: Patient, reason: str
) -> Response:
    from backend.web.record import _record_page

    db.rollback()
    found = db.get(Patient, patient.id)
    assert found is not None
    return _record_page(request, db, staff, found, error=reason, status=409)


# --- from the record: requests and exports ---------------------------------------------------------------


@router.post("/staff/patients/{patient_id}/rights")
async def ask(request: Request, patient_id: int, db: SessionDep, staff: StaffDep) -> Response:
    form = await request.form()
    check_csrf(staff, str(form.get("csrf_token", "")))
    values = {k: str(v)[:2000] for k, v in form.items()}
    patient = _record(request, db, staff, patient_id)
    if isinstance(patient, Response):
        return patient
    db.commit()  # the view's audit row stays whatever happens next
    try:
        kind = RightsKind(values.get("kind", ""))
        changes = parse_changes(values) if kind is RightsKind.CORRECTION else None
        asked = do_request(
            db,
            patient=patient,
            kind=kind,
            reason=values.get("reason", ""),
            user=staff.staff,
            now=utcnow(),
            changes=changes,
            ip=client_ip(request),
        )
    except ValueError:
        return _refused_on_record(request, db, staff, patient, "correction_invalid")
    except ActionRefused as exc:
        return _refused_on_record(request, db, staff, patient, exc.reason)
    db.commit()
    return _back_to_record(patient_id, "rights_blocked" if asked.holds else "rights")


@router.post("/staff/patients/{patient_id}/export")
def start_export(
    request: Request, patient_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    patient = _record(request, db, staff, patient_id)
    if isinstance(patient, Response):
        return patient
    job = runs.start(
        db, data_export.KIND, {"patient_id": patient.id, "staff_id": staff.staff_id}, staff.staff_id
    )
    audit.record(
        db,
        "privacy.export_started",
        staff_id=staff.staff_id,
        patient_id=patient.id,
        subject=("work_job", job.id),
        ip=client_ip(request),
    )
    db.commit()
    runs.launch(job.id)
    return RedirectResponse(f"/staff/work/{job.id}", status_code=303)


def _export_job(db: Session, staff: StaffSession, job_id: int) -> tuple[WorkJob, int] | None:
    job = db.get(WorkJob, job_id)
    if job is None or job.kind != data_export.KIND or not views.may_see(staff.staff, job):
        return None
    patient_id = int((job.params or {}).get("patient_id", 0))
    if not patients.may_view(db, staff.staff, patient_id):
        return None
    return job, patient_id


@router.get("/staff/privacy/exports/{job_id}", response_class=HTMLResponse)
def export_page(request: Request, job_id: int, db: SessionDep, staff: StaffDep) -> Response:
    found = _export_job(db, staff, job_id)
    if found is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    job, patient_id = found
    done = job.state is WorkState.DONE
    files = {suffix: done and data_export.exists(job.id, suffix) for suffix in ("json", "pdf")}
    context = {
        "staff": staff,
        "job": job,
        "patient_id": patient_id,
        "ready": any(files.values()),
        "files": files,
    }
    return render(request, "staff/privacy/export.html", staff.staff.language, context)


@router.get("/staff/privacy/exports/{job_id}/{name}")
def export_download(request: Request, job_id: int, name: str, db: SessionDep, staff: StaffDep) -> Response:
    files = {"bundle.json": ("json", "application/fhir+json"), "record.pdf": ("pdf", "application/pdf")}
    found = _export_job(db, staff, job_id)
    if found is None or name not in files:
        return PlainTextResponse("not found", status_code=404)
    job, patient_id = found
    suffix, media_type = files[name]
    data = data_export.load(job.id, suffix) if job.state is WorkState.DONE else None
    if data is None:
        return PlainTextResponse("not found", status_code=404)
    audit.record(
        db,
        "privacy.export_download",
        staff_id=staff.staff_id,
        patient_id=patient_id,
        subject=("work_job", job.id),
        ip=client_ip(request),
        file=name,
    )
    db.commit()
    allowed = frozenset({media_type})
    return file_response(data, media_type, f"patient-{patient_id}-{name}", allowed=allowed)


# --- who viewed the record --------------------------------------------------------------------------------


def _access(
    request: Request,
    db: Session,
    staff: StaffSession,
    patient_id: int,
    since: str,
    until: str,
    views_only: str,
) -> tuple[Patient, AccessFilters] | Response:
    if not may_see_report(staff.staff):
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    patient = _record(request, db, staff, patient_id)
    if isinstance(patient, Response):
        return patient
    try:
        filters = AccessFilters.parse(since, until, views_only)
    except ValueError as exc:
        return PlainTextResponse(f"unknown value for filter {exc}", status_code=400)
    return patient, filters


@router.get("/staff/patients/{patient_id}/access", response_class=HTMLResponse)
def access_page(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    since: str = "",
    until: str = "",
    views_only: str = "",
) -> Response:
    found = _access(request, db, staff, patient_id, since, until, views_only)
    if isinstance(found, Response):
        return found
    patient, filters = found
    rows = access_rows(db, patient.id, filters, hospital_zone())
    audit.record(
        db,
        "privacy.access_report",
        staff_id=staff.staff_id,
        patient_id=patient.id,
        ip=client_ip(request),
        rows=len(rows),
    )
    context = {
        "staff": staff,
        "patient": patient,
        "rows": rows,
        "f": filters,
        "v": {"since": since, "until": until, "views_only": views_only},
    }
    return render(request, "staff/privacy/access.html", staff.staff.language, context)


@router.get("/staff/patients/{patient_id}/access.csv")
def access_csv(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    since: str = "",
    until: str = "",
    views_only: str = "",
) -> Response:
    found = _access(request, db, staff, patient_id, since, until, views_only)
    if isinstance(found, Response):
        return found
    patient, filters = found
    rows = access_rows(db, patient.id, filters, hospital_zone(), limit=10_000)
    audit.record(
        db,
        "privacy.access_export",
        staff_id=staff.staff_id,
        patient_id=patient.id,
        ip=client_ip(request),
        rows=len(rows),
    )
    return _csv(export_csv(rows), f"patient-{patient.id}-access.csv")


# --- the privacy officer's requests list --------------------------------------------------------------------


@router.get("/staff/privacy/requests", response_class=HTMLResponse)
def requests_page(
    request: Request, db: SessionDep, staff: PrivacyDep, state: str = "", kind: str = ""
) -> Response:
    try:
        parsed_state, parsed_kind = parse_list_filters(state, kind)
    except ValueError as exc:
        return PlainTextResponse(f"unknown value for filter {exc}", status_code=400)
    rows = request_rows(db, state=parsed_state, kind=parsed_kind)
    audit.record(db, "privacy.requests_list", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    context = {"staff": staff, "rows": rows, "v": {"state": state, "kind": kind}}
    return render(request, "staff/privacy/requests.html", staff.staff.language, context)


@router.get("/staff/privacy/requests.csv")
def requests_export(
    request: Request, db: SessionDep, staff: PrivacyDep, state: str = "", kind: str = ""
) -> Response:
    try:
        parsed_state, parsed_kind = parse_list_filters(state, kind)
    except ValueError as exc:
        return PlainTextResponse(f"unknown value for filter {exc}", status_code=400)
    rows = request_rows(db, state=parsed_state, kind=parsed_kind, limit=10_000)
    audit.record(
        db, "privacy.requests_export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows)
    )
    return _csv(requests_csv(rows), "data-rights-requests.csv")


def _request_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    found: RightsRequest,
    *,
    error: str | None = None,
    holds: list[str] | None = None,
    status: int = 200,
) -> Response:
    patient = db.get(Patient, found.patient_id)
    audit.record(
        db,
        "privacy.request_view",
        staff_id=staff.staff_id,
        patient_id=found.patient_id,
        subject=("rights_request", found.id),
        ip=client_ip(request),
    )
    context: dict[str, Any] = {
        "staff": staff,
        "r": found,
        "patient": patient,
        "changes": changes_of(found),
        "error": error,
        "error_holds": holds or [],
    }
    return render(request, "staff/privacy/request.html", staff.staff.language, context, status)


@router.get("/staff/privacy/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int, db: SessionDep, staff: PrivacyDep) -> Response:
    found = db.get(RightsRequest, request_id)
    if found is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    return _request_page(request, db, staff, found)


@router.post("/staff/privacy/requests/{request_id}/{action}")
def decide(
    request: Request,
    request_id: int,
    action: str,
    db: SessionDep,
    staff: PrivacyDep,
    note: str = Form(default="", max_length=1000),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    found = db.get(RightsRequest, request_id)
    if found is None or action not in {"approve", "reject"}:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    try:
        if action == "approve":
            do_approve(db, request=found, user=staff.staff, now=utcnow(), note=note, ip=client_ip(request))
        else:
            do_reject(db, request=found, user=staff.staff, now=utcnow(), note=note, ip=client_ip(request))
    except HeldRefusal as exc:
        db.commit()  # the refused approval's audit row is kept; the verb changed nothing else
        return _request_page(
            request, db, staff, found, error=exc.reason, holds=[h.value for h in exc.holds], status=409
        )
    except ActionRefused as exc:
        db.rollback()
        again = db.get(RightsRequest, request_id)
        assert again is not None
        return _request_page(request, db, staff, again, error=exc.reason, status=409)
    db.commit()
    if action == "approve" and found.kind is not RightsKind.CORRECTION:
        remove_recordings_of(found.patient_id)  # at the gateway, after the commit (no network in it)
    return RedirectResponse(f"/staff/privacy/requests/{request_id}?done={action}", status_code=303)


# --- break-glass -----------------------------------------------------------------------------------------


@router.post("/staff/patients/{patient_id}/break-glass")
def break_glass(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    reason: str = Form(default="", max_length=2000),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    patient = db.get(Patient, patient_id)
    if patient is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    try:
        do_break_glass(
            db,
            user=staff.staff,
            patient=patient,
            reason=reason,
            now=utcnow(),
            in_scope=patients.in_scope(db, staff.staff, patient_id),
            ip=client_ip(request),
        )
    except ActionRefused as exc:
        db.rollback()
        if exc.reason == Reason.NOT_NEEDED:  # her departments open it already: no grant, just the record
            return RedirectResponse(f"/staff/patients/{patient_id}", status_code=303)
        context = {"staff": staff, "patient_id": patient_id, "error": exc.reason, "reason": reason}
        return render(request, "staff/denied.html", staff.staff.language, context, 400)
    db.commit()
    return RedirectResponse(f"/staff/patients/{patient_id}", status_code=303)


@router.get("/staff/privacy/break-glass", response_class=HTMLResponse)
def break_glass_list(request: Request, db: SessionDep, staff: PrivacyDep, show: str = "pending") -> Response:
    rows = grant_rows(db, pending_only=show != "all")
    audit.record(
        db, "privacy.break_glass_list", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows)
    )
    context = {"staff": staff, "rows": rows, "show": "all" if show == "all" else "pending", "now": utcnow()}
    return render(request, "staff/privacy/break_glass.html", staff.staff.language, context)


@router.get("/staff/privacy/break-glass.csv")
def break_glass_csv(request: Request, db: SessionDep, staff: PrivacyDep, show: str = "pending") -> Response:
    rows = grant_rows(db, pending_only=show != "all", limit=10_000)
    audit.record(
        db, "privacy.break_glass_export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows)
    )
    return _csv(grants_csv(rows), "break-glass.csv")


@router.post("/staff/privacy/break-glass/{grant_id}/review")
def break_glass_review(
    request: Request,
    grant_id: int,
    db: SessionDep,
    staff: PrivacyDep,
    note: str = Form(default="", max_length=1000),
    csrf_token: str = Form(max_length=128),
) -> Response:
    from backend.models import BreakGlass

    check_csrf(staff, csrf_token)
    grant = db.get(BreakGlass, grant_id)
    if grant is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    try:
        do_review(db, grant=grant, user=staff.staff, note=note, now=utcnow(), ip=client_ip(request))
    except ActionRefused as exc:
        db.rollback()
        rows = grant_rows(db, pending_only=True)
        context = {"staff": staff, "rows": rows, "show": "pending", "now": utcnow(), "error": exc.reason}
        return render(request, "staff/privacy/break_glass.html", staff.staff.language, context, 409)
    db.commit()
    return RedirectResponse("/staff/privacy/break-glass?done=1", status_code=303)

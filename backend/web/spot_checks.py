"""Spot-check pages for supervisors: draw a sample, review each record, call back, quality statistics."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.models import (
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    StaffSession,
    VoiceCall,
)
from backend.outbox.overrides import effective_settings
from backend.security.permissions import Permission
from backend.services import audit, directory, spot_check_views, spot_checks
from backend.services.ids import parse_id
from backend.services.patient_record import timeline
from backend.services.refusal import Reason
from backend.services.spot_checks import SpotCheckRefused
from backend.voice.recordings import RecordingUnavailable, fetch_recording
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.permits import refused
from backend.web.staff import check_csrf, render
from bots.domain import pick_language

router = APIRouter(prefix="/staff/spot-checks")
GROUPINGS = ("department", "nurse", "reviewer")


def _forbidden(request: Request, db: Session, staff: StaffSession) -> Response | None:
    return refused(request, db, staff, Permission.SPOT_CHECKS, "spot_check.view_denied")


def _index(
    request: Request,
    db: Session,
    staff: StaffSession,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    recent = spot_check_views.recent_checks(db)
    departments = directory.departments(db)
    return render(
        request,
        "staff/spot_checks.html",
        staff.staff.language,
        {
            "staff": staff,
            "checks": recent.checks,
            "progress": recent.progress,
            "sizes": recent.sizes,
            "departments": departments,
            "department_names": {d.id: d.names.get(staff.staff.language, d.name) for d in departments},
            "stats": {by: spot_checks.quality(db, by=by) for by in GROUPINGS},
            "error": error,
            "form": form or {},
        },
        status,
    )


@router.get("", response_class=HTMLResponse)
def index(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _forbidden(request, db, staff) or _index(request, db, staff)


def _number(text: str, kind: type[int] | type[float]) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise SpotCheckRefused(Reason.RATIO_OR_COUNT) from exc


@router.post("")
def draw(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    start: str = Form(max_length=10),
    end: str = Form(max_length=10),
    department: str = Form(default="", max_length=12),
    ratio: str = Form(default="", max_length=12),
    count: str = Form(default="", max_length=12),
    seed: str = Form(default="", max_length=64),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    form = {
        "start": start,
        "end": end,
        "department": department,
        "ratio": ratio,
        "count": count,
        "seed": seed,
    }
    try:
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise SpotCheckRefused(Reason.PERIOD) from exc
        department_id = parse_id(department)
        if department and department_id is None:
            raise SpotCheckRefused(Reason.DEPARTMENT)
        percent = _number(ratio, float)
        check = spot_checks.do_draw(
            db,
            user=staff.staff,
            department_id=department_id,
            start=first,
            end=last,
            ratio=None if percent is None else float(percent) / 100,
            count=None if not count.strip() else int(_number(count, int) or 0),
            seed=seed.strip() or None,
            ip=client_ip(request),
        )
    except SpotCheckRefused as exc:
        db.rollback()
        return _index(request, db, staff, error=exc.reason, status=400, form=form)
    return RedirectResponse(f"/staff/spot-checks/{check.id}", status_code=303)


@router.get("/{check_id}", response_class=HTMLResponse)
def one_check(request: Request, check_id: int, db: SessionDep, staff: StaffDep) -> Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    check = db.get(SpotCheck, check_id)
    if check is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    rows = spot_check_views.check_rows(db, check.id)
    audit.record(
        db,
        "spot_check.view",
        staff_id=staff.staff_id,
        subject=("spot_check", check.id),
        ip=client_ip(request),
        patients=sorted({item.patient_id for item, *_ in rows}),
    )
    departments = {d.id: d.name for d in directory.departments(db)}
    return render(
        request,
        "staff/spot_check.html",
        staff.staff.language,
        {"staff": staff, "check": check, "rows": rows, "department_names": departments},
    )


def _item_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    item: SpotCheckItem,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    patient = db.get_one(Patient, item.patient_id)
    response = db.get(QuestionnaireResponse, item.response_id) if item.response_id else None
    findings = spot_check_views.findings_of(db, response)
    lang = pick_language(staff.staff.language)
    audit.record(
        db,
        "spot_check.item_view",
        staff_id=staff.staff_id,
        patient_id=item.patient_id,
        subject=("spot_check_item", item.id),
        ip=client_ip(request),
    )
    context: dict[str, Any] = {
        "staff": staff,
        "item": item,
        "patient": patient,
        "follow_up": db.get(OutreachTask, item.outreach_task_id),
        "response": response,
        "answers": spot_check_views.answers_shown(db, response, lang),
        "findings": findings,
        "entries": timeline(db, patient.id, user=staff.staff, limit=100),
        "calls": spot_check_views.calls_of(db, item),
        "verdicts": [SpotVerdict.PASSED.value, SpotVerdict.ISSUE.value],
        "error": error,
    }
    return render(request, "staff/spot_check_item.html", staff.staff.language, context, status)


def _item(request: Request, db: Session, staff: StaffSession, item_id: int) -> SpotCheckItem | Response:
    denied = _forbidden(request, db, staff)
    if denied is not None:
        return denied
    item = db.get(SpotCheckItem, item_id)
    if item is None:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    return item


@router.get("/items/{item_id}", response_class=HTMLResponse)
def review_page(request: Request, item_id: int, db: SessionDep, staff: StaffDep) -> Response:
    item = _item(request, db, staff, item_id)
    return item if isinstance(item, Response) else _item_page(request, db, staff, item)


@router.post("/items/{item_id}/review")
def review(
    request: Request,
    item_id: int,
    db: SessionDep,
    staff: StaffDep,
    verdict: str = Form(max_length=16),
    note: str = Form(default="", max_length=spot_checks.MAX_NOTE * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    item = _item(request, db, staff, item_id)
    if isinstance(item, Response):
        return item
    try:
        if verdict not in {v.value for v in SpotVerdict}:
            raise SpotCheckRefused(Reason.VERDICT)
        spot_checks.do_review(
            db, item=item, user=staff.staff, verdict=SpotVerdict(verdict), note=note, ip=client_ip(request)
        )
    except SpotCheckRefused as exc:
        db.rollback()
        return _item_page(request, db, staff, item, error=exc.reason, status=400)
    return RedirectResponse(f"/staff/spot-checks/{item.spot_check_id}", status_code=303)


@router.post("/items/{item_id}/callback")
def callback(
    request: Request, item_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    item = _item(request, db, staff, item_id)
    if isinstance(item, Response):
        return item
    spot_checks.do_request_callback(db, item=item, user=staff.staff, ip=client_ip(request))
    return RedirectResponse(f"/staff/spot-checks/items/{item.id}", status_code=303)


@router.get("/items/{item_id}/calls/{call_id}/recording")
def recording(request: Request, item_id: int, call_id: int, db: SessionDep, staff: StaffDep) -> Response:
    """A sampled follow-up's call recording, fetched from the gateway for the reviewer; each play audited."""
    item = _item(request, db, staff, item_id)
    if isinstance(item, Response):
        return item
    call = db.get(VoiceCall, call_id)
    if call is None or call.outreach_task_id != item.outreach_task_id or not call.recording_url:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    try:
        audio = fetch_recording(effective_settings(db), call)
    except RecordingUnavailable:
        return _item_page(request, db, staff, item, error="recording_unavailable", status=502)
    audit.record(
        db,
        "spot_check.recording_play",
        staff_id=staff.staff_id,
        patient_id=call.patient_id,
        subject=("voice_call", call.id),
        ip=client_ip(request),
        spot_check_item=item.id,
    )
    return Response(audio, media_type="audio/mpeg", headers={"Cache-Control": "no-store"})

"""Staff pages for feedback cases: the list with filters, registering one from the phone, the case page
and its actions. Every view is audited; a case outside the viewer's departments is a 403, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.i18n import translations
from backend.models import (
    CaseKind,
    CaseProgress,
    CaseSource,
    FeedbackCase,
    OutboxItem,
    Patient,
    RecordKind,
    Satisfaction,
    StaffSession,
    StaffUser,
)
from backend.models.base import utcnow
from backend.services import audit, case_notice, case_queries, case_views, cases, directory, inbox_queue
from backend.services.ids import parse_id
from backend.services.message_log import InvalidFilter
from backend.services.patients import department_ids
from backend.services.refusal import ActionRefused
from backend.web import actions
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render
from bots.domain import Channel

router = APIRouter(prefix="/staff/cases")
NOTICE_CHANNELS = (Channel.SMS, Channel.WECHAT, Channel.WHATSAPP, Channel.WEBCHAT)
HIDDEN_HISTORY = ("case.view", "case.report", "case.attachment_view")
LABELS = {  # staff-facing names of codes: msgids of backend/i18n/*.po (categories come from content/)
    "kind": {"complaint": "Complaint", "praise": "Praise", "suggestion": "Suggestion"},
    "progress": {"new": "New", "in_progress": "In progress", "closed": "Closed"},
    "source": {"chat": "Chat", "survey": "Survey", "phone": "Phone", "mobile": "Mobile page"},
    "record": {
        "facts": "Facts verified",
        "solution": "Solution",
        "communication": "Communication with the patient",
        "penalty": "Penalty",
    },
    "satisfaction": {"satisfied": "Satisfied", "dissatisfied": "Dissatisfied", "unknown": "Not asked"},
    "validity": {"valid": "Valid", "invalid": "Invalid", "unjudged": "Not judged"},
}


def labeller(lang: str) -> Callable[[str, str], str]:
    """`label(group, code)` in the staff member's language; categories by their configured labels."""
    gettext = translations(lang).gettext
    categories = case_queries.category_names(get_settings().content_dir, lang)

    def label(group: str, code: str) -> str:
        if group == "category":
            return categories.get(code, code)
        english = LABELS.get(group, {}).get(code)
        return gettext(english) if english else code

    return label


def base_context(db: Session, staff: StaffSession) -> dict[str, Any]:
    """What every case page needs to name things in the viewer's language."""
    user = staff.staff
    everything = directory.departments(db)
    allowed = department_ids(user)
    return {
        "staff": staff,
        "kinds": [k.value for k in CaseKind],
        "progresses": [p.value for p in CaseProgress],
        "sources": [s.value for s in CaseSource],
        "record_kinds": [r.value for r in RecordKind],
        "satisfactions": [s.value for s in Satisfaction],
        "categories": case_queries.categories(get_settings().content_dir),
        "category_names": case_queries.category_names(get_settings().content_dir, user.language),
        "departments": everything,
        "my_departments": [d for d in everything if allowed is None or d.id in allowed],
        "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
        "label": labeller(user.language),
    }


# --- the list ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def case_list(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in case_queries.FILTERS}
    context = base_context(db, staff) | {
        "v": {name: values.get(name, "") for name in case_queries.FILTERS},
        "rows": [],
        "error": None,
        "query": "",
    }
    try:
        filters = case_queries.parse_filters(values, get_settings().content_dir)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/cases.html", user.language, context, 400)
    rows = case_queries.case_rows(db, user=user, filters=filters)
    audit.record(
        db,
        "case.list",
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        patients=sorted({r.case.patient_id for r in rows if r.case.patient_id and r.patient_name}),
    )
    context["rows"] = rows
    context["query"] = str(request.url.query)
    return render(request, "staff/cases.html", user.language, context)


# --- registering from the phone --------------------------------------------------------------------


def _form_page(
    request: Request, db: Session, staff: StaffSession, values: dict[str, str], error: str | None, status: int
) -> Response:
    context = base_context(db, staff) | {"f": values, "error": error}
    return render(request, "staff/case_new.html", staff.staff.language, context, status)


@router.get("/new", response_class=HTMLResponse)
def new_case(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _form_page(request, db, staff, {"kind": "complaint"}, None, 200)


@router.post("")
def register_case(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    kind: str = Form(max_length=32),
    category: str = Form(max_length=64),
    text: str = Form(default="", max_length=cases.MAX_TEXT * 2),
    mrn: str = Form(default="", max_length=64),
    department: str = Form(default="", max_length=12),
    anonymous: str = Form(default=""),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    user = staff.staff
    values = {"kind": kind, "category": category, "text": text, "mrn": mrn, "department": department}
    values["anonymous"] = "1" if anonymous else ""
    codes = {c.code for c in case_queries.categories(get_settings().content_dir)}
    patient = case_views.patient_by_mrn(db, user, mrn.strip()) if mrn.strip() else None
    error = None
    if kind not in set(CaseKind):
        error = "no_such_kind"
    elif category not in codes:
        error = "no_such_category"
    elif mrn.strip() and patient is None:
        error = "no_such_patient"  # unknown, or outside the viewer's departments: the same answer
    elif department and parse_id(department) is None:
        error = "no_such_department"
    if error is None:
        try:
            case = cases.register(
                db,
                kind=CaseKind(kind),
                category=category,
                text=text,
                patient_id=patient.id if patient else None,
                anonymous=bool(anonymous),
                department_id=parse_id(department),
                source=CaseSource.PHONE,
                channel=Channel.VOICE,
                staff_id=user.id,
                actor=f"staff:{user.id}",
                ip=client_ip(request),
            )
        except ActionRefused as exc:
            db.rollback()
            error = exc.reason
    if error is not None:
        return _form_page(request, db, staff, values, error, 400)
    db.commit()
    if case_queries.may_see(db, user, case):
        return RedirectResponse(f"/staff/cases/{case.id}", status_code=303)
    return RedirectResponse(f"/staff/cases?registered={case.id}", status_code=303)  # another department's


# --- one case ------------------------------------------------------------------------------------


def denied(request: Request, db: Session, staff: StaffSession, case_id: int) -> Response:
    """Another department's case (or none): a 403 and an audit row, or a 404."""
    exists = db.get(FeedbackCase, case_id) is not None
    return actions.denied(
        request, db, staff, subject=("case", case_id), exists=exists, template="staff/case_denied.html"
    )


def shows_patient(user: StaffUser, case: FeedbackCase) -> bool:
    """An anonymous case names its patient only to the service centre (who may have to call back)."""
    return case.patient_id is not None and (not case.anonymous or department_ids(user) is None)


def case_page_response(
    request: Request,
    db: Session,
    staff: StaffSession,
    case: FeedbackCase,
    *,
    error: str | None = None,
    drafts: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    user = staff.staff
    settings = get_settings()
    patient = db.get(Patient, case.patient_id) if shows_patient(user, case) and case.patient_id else None
    details = case_views.case_details(db, case)
    task = details["task"]
    history = case_views.case_history(db, case, hidden=HIDDEN_HISTORY)
    audit.record(
        db,
        "case.view",
        staff_id=user.id,
        patient_id=case.patient_id if patient else None,
        subject=("case", case.id),
        ip=client_ip(request),
    )
    drafts = drafts or {}
    notice = drafts.get("notice") or case.notice_draft or ""
    if not notice and case.progress is CaseProgress.CLOSED and case.patient_id:
        notice = case_notice.default_notice(settings, case, db.get(Patient, case.patient_id))
    people = directory.active_staff(db)
    context = (
        base_context(db, staff)
        | details
        | {
            "case": case,
            "patient": patient,
            "anonymous_hidden": case.anonymous and patient is None,
            "sla": inbox_queue.sla_state(task, utcnow()) if task else None,
            "leads": task is not None and inbox_queue.may_handle(user, task),
            "assignable": [p for p in people if task is not None and inbox_queue.may_handle(p, task)],
            "people": people,
            "history": history,
            "notice_channels": [c.value for c in NOTICE_CHANNELS],
            "notice": notice,
            "notice_item": db.get(OutboxItem, case.notice_outbox_id) if case.notice_outbox_id else None,
            "drafts": drafts,
            "error": error,
            "max_attachment_mb": settings.max_attachment_bytes // (1024 * 1024),
        }
    )
    return render(request, "staff/case.html", user.language, context, status)


@router.get("/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: int, db: SessionDep, staff: StaffDep) -> Response:
    case = case_queries.case_for(db, user=staff.staff, case_id=case_id)
    if case is None:
        return denied(request, db, staff, case_id)
    return case_page_response(request, db, staff, case)


def patient_cases_context(db: Session, staff: StaffSession, patient_id: int) -> dict[str, Any]:
    """For the patient page's section `staff/patient/_cases.html` (the lead includes it at merge)."""
    return {
        "patient_cases": case_queries.patient_cases(db, user=staff.staff, patient_id=patient_id),
        "case_label": labeller(staff.staff.language),
    }

"""Feedback case reports for staff: statistics, the Excel export, a printable handling report, evidence
files, and the patient's feedback link. All scoped to the viewer's departments and audited."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_short_url, make_url
from backend.models import CaseAttachment, Patient
from backend.services import audit, case_export, case_files, case_queries, case_views
from backend.services.message_log import InvalidFilter
from backend.services.patients import may_view
from backend.web.cases import base_context, denied, labeller, shows_patient
from backend.web.deps import SessionDep, SettingsDep, StaffDep, client_ip
from backend.web.downloads import file_response
from backend.web.ids import id_form
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff/cases")
EXPORT_LIMIT = 10_000


def _filters(request: Request) -> case_queries.CaseFilters:
    values = {k: v for k, v in request.query_params.items() if k in case_queries.FILTERS}
    return case_queries.parse_filters(values, get_settings().content_dir)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in case_queries.FILTERS}
    context = base_context(db, staff) | {
        "v": {name: values.get(name, "") for name in case_queries.FILTERS},
        "stats": None,
        "error": None,
        "query": str(request.url.query),
    }
    try:
        filters = _filters(request)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/case_stats.html", user.language, context, 400)
    context["stats"] = case_queries.case_stats(db, user=user, filters=filters)
    audit.record(db, "case.stats", staff_id=user.id, ip=client_ip(request), filters=filters.audit_detail())
    return render(request, "staff/case_stats.html", user.language, context)


@router.get("/export.xlsx")
def export(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    user = staff.staff
    try:
        filters = _filters(request)
    except InvalidFilter as exc:
        return PlainTextResponse(f"invalid filter: {exc.field}", status_code=400)
    rows = case_queries.case_rows(db, user=user, filters=filters, limit=EXPORT_LIMIT)
    stats = case_queries.case_stats(db, user=user, filters=filters)
    context = base_context(db, staff)
    audit.record(
        db,
        "case.export",
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        rows=len(rows),
        patients=sorted({r.case.patient_id for r in rows if r.case.patient_id and r.patient_name}),
    )
    body = case_export.to_xlsx(
        rows, stats, filters, label=labeller(user.language), department_names=context["department_names"]
    )
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="feedback-cases.xlsx"'},
    )


@router.get("/{case_id}/report", response_class=HTMLResponse)
def report(request: Request, case_id: int, db: SessionDep, staff: StaffDep) -> Response:
    """The handling report (患者反馈处理报告) as a page made for printing."""
    user = staff.staff
    case = case_queries.case_for(db, user=user, case_id=case_id)
    if case is None:
        return denied(request, db, staff, case_id)
    patient = db.get(Patient, case.patient_id) if shows_patient(user, case) and case.patient_id else None
    audit.record(
        db,
        "case.report",
        staff_id=user.id,
        patient_id=case.patient_id if patient else None,
        subject=("case", case.id),
        ip=client_ip(request),
    )
    context = base_context(db, staff) | case_views.case_details(db, case) | {"case": case, "patient": patient}
    context["hospital"] = get_settings().hospital_name
    return render(request, "staff/case_report.html", user.language, context)


@router.get("/{case_id}/attachments/{attachment_id}")
def attachment(
    request: Request, case_id: int, attachment_id: int, db: SessionDep, staff: StaffDep, settings: SettingsDep
) -> Response:
    case = case_queries.case_for(db, user=staff.staff, case_id=case_id)
    if case is None:
        return denied(request, db, staff, case_id)
    found = db.get(CaseAttachment, attachment_id)
    if found is None or found.case_id != case.id:
        return PlainTextResponse("not found", status_code=404)
    data = case_files.read_attachment(
        db, settings, attachment=found, case=case, staff_id=staff.staff_id, ip=client_ip(request)
    )
    # the type comes from the upload check's own list, by extension
    return file_response(data, found.mime_type, found.filename, allowed=case_files.SERVED_TYPES)


@router.post("/feedback-link", response_class=HTMLResponse)
def feedback_link(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    settings: SettingsDep,
    patient_id: int = id_form(),
    csrf_token: str = Form(max_length=128),
) -> Response:
    """A signed link to the patient's mobile feedback page (short, for SMS)."""
    check_csrf(staff, csrf_token)
    if not may_view(db, staff.staff, patient_id):
        audit.record(
            db, "patient.view_denied", staff_id=staff.staff_id, patient_id=patient_id, ip=client_ip(request)
        )
        db.commit()
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    audit.record(
        db, "patient.feedback_link", staff_id=staff.staff_id, patient_id=patient_id, ip=client_ip(request)
    )
    context = {
        "staff": staff,
        "url": make_url(settings, LinkKind.FEEDBACK, patient_id),
        "short_url": make_short_url(
            settings, LinkKind.FEEDBACK, patient_id, days=settings.feedback_link_days
        ),
        "patient_id": patient_id,
    }
    return render(request, "staff/case_link.html", staff.staff.language, context)

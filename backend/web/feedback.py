"""The patient's mobile feedback page `/f/<token>`: a complaint, praise or suggestion, in their language."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.dialogue.content import load_catalog
from backend.i18n import negotiate
from backend.messaging.links import LinkExpired, LinkInvalid, LinkKind, read_token
from backend.models import CaseKind, CaseSource, Department, FeedbackCase, Patient, Satisfaction
from backend.services import case_queries, cases, directory
from backend.services.ids import parse_id
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, SettingsDep, templates
from backend.web.ids import IdQuery
from bots.domain import pick_language

router = APIRouter()
FIELDS = ("kind", "category", "department", "text", "anonymous")


def _patient(db: Session, settings: Settings, token: str) -> Patient | tuple[int, str]:
    try:
        patient_id = read_token(settings, LinkKind.FEEDBACK, token, settings.feedback_link_days * 86400)
    except LinkExpired:
        return 410, "feedback.link_expired"
    except LinkInvalid:
        return 404, "feedback.link_invalid"
    return db.get(Patient, patient_id) or (404, "feedback.link_invalid")


def _page(
    request: Request,
    db: Session,
    settings: Settings,
    lang: str,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    departments = directory.departments(db)
    return templates.TemplateResponse(
        request,
        "feedback/page.html",
        {
            "lang": lang,
            "t": lambda key, **kw: catalog.text(lang, key, **kw),
            "kinds": [k.value for k in CaseKind],
            "categories": case_queries.categories(settings.content_dir),
            "departments": [(d.id, d.names.get(lang, d.name)) for d in departments],
            "limit": cases.MAX_TEXT,
            "f": {},
            "error": None,
            "sent": None,
            "refused": None,
            "rated": False,
            "to_rate": [],
            **context,
        },
        status_code=status,
    )


def _refused(request: Request, db: Session, settings: Settings, refusal: tuple[int, str]) -> Response:
    lang = (
        negotiate(request.headers.get("accept-language"))
        if request.headers.get("accept-language")
        else (pick_language(settings.default_language))
    )
    return _page(request, db, settings, lang, {"refused": refusal[1]}, refusal[0])


@router.get("/f/{token}", response_class=HTMLResponse)
def feedback_page(
    token: str, request: Request, db: SessionDep, settings: SettingsDep, sent: IdQuery = 0, rated: IdQuery = 0
) -> Response:
    patient = _patient(db, settings, token)
    if not isinstance(patient, Patient):
        return _refused(request, db, settings, patient)
    lang = pick_language(patient.language)
    case = db.get(FeedbackCase, sent) if sent else None
    shown = case.id if case is not None and case.patient_id == patient.id else None
    context = {
        "token": token,
        "sent": shown,
        "rated": bool(rated),
        "to_rate": case_queries.cases_to_rate(db, patient.id),
    }
    return _page(request, db, settings, lang, context)


@router.post("/f/{token}/rate")
def rate_handling(
    token: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    case: str = Form(default="", max_length=12),
    value: str = Form(default="", max_length=32),
) -> Response:
    """The patient's satisfaction with how one of their closed cases was handled (counted in the case
    statistics). Only their own closed, not yet rated cases; anything else shows the page again."""
    patient = _patient(db, settings, token)
    if not isinstance(patient, Patient):
        return _refused(request, db, settings, patient)
    lang = pick_language(patient.language)
    case_id = parse_id(case)
    found = db.get(FeedbackCase, case_id) if case_id is not None else None
    try:
        if found is None or found.patient_id != patient.id or value not in set(Satisfaction):
            raise ActionRefused(Reason.NO_SUCH_CHOICE)
        cases.do_record_satisfaction(db, case=found, staff_id=None, satisfaction=Satisfaction(value))
    except ActionRefused:
        db.rollback()
        context = {
            "token": token,
            "error": "feedback.choose",
            "to_rate": case_queries.cases_to_rate(db, patient.id),
        }
        return _page(request, db, settings, lang, context, 400)
    db.commit()
    return RedirectResponse(f"/f/{token}?rated=1", status_code=303)


@router.post("/f/{token}")
def submit_feedback(
    token: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    kind: str = Form(default="", max_length=32),
    category: str = Form(default="", max_length=64),
    department: str = Form(default="", max_length=12),
    text: str = Form(default="", max_length=cases.MAX_TEXT * 2),
    anonymous: str = Form(default="", max_length=8),
) -> Response:
    patient = _patient(db, settings, token)
    if not isinstance(patient, Patient):
        return _refused(request, db, settings, patient)
    lang = pick_language(patient.language)
    values = {
        "kind": kind,
        "category": category,
        "department": department,
        "text": text,
        "anonymous": anonymous,
    }
    codes = {c.code for c in case_queries.categories(settings.content_dir)}
    department_id = parse_id(department)
    bad_department = bool(department) and (department_id is None or db.get(Department, department_id) is None)
    error = (
        "feedback.choose" if kind not in set(CaseKind) or category not in codes or bad_department else None
    )
    if error is None:
        try:
            case = cases.register(
                db,
                kind=CaseKind(kind),
                category=category,
                text=text,
                patient_id=patient.id,
                anonymous=bool(anonymous),
                department_id=department_id,
                source=CaseSource.MOBILE,
                actor="patient",
            )
        except ActionRefused:
            db.rollback()
            error = "feedback.text_required"
    if error is not None:
        return _page(request, db, settings, lang, {"token": token, "f": values, "error": error}, 400)
    db.commit()
    return RedirectResponse(f"/f/{token}?sent={case.id}", status_code=303)

"""Staff patient pages: search and lists by visit type (POSTed), one page per patient, its quick actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.education.sending import do_send_education
from backend.models import EncounterKind, Patient, StaffSession
from backend.models.base import utcnow
from backend.models.patients import EXCLUSION_FLAGS
from backend.outbox.sender import kick
from backend.security.identifiers import mask_phone
from backend.services import audit, patients, safety_review
from backend.services.message_log import InvalidFilter
from backend.services.patient_lists import (
    NO_FLAGS,
    FollowUpState,
    options,
    parse_patient_filters,
    patient_rows,
)
from backend.services.patient_record import (
    MAX_MESSAGE,
    ActionRefused,
    do_send_message,
    do_send_questionnaire,
    do_set_email,
    do_set_flag,
)
from backend.services.refusal import Reason
from backend.web.actions import perform
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.record_sections import SectionContext, load_sections
from backend.web.staff import check_csrf, render
from bots.domain import Channel

router = APIRouter(prefix="/staff/patients")
NOT_PERMITTED = frozenset({Reason.CONTACT_NOT_PERMITTED, Reason.FLAG_NOT_PERMITTED})  # answered 403
FILTER_FIELDS = (
    "visit",
    "q",
    "department",
    "ward",
    "since",
    "until",
    "doctor",
    "nurse",
    "diagnosis",
    "follow_up",
    "flag",
)


# --- search and lists ----------------------------------------------------------------------------


def _list_page(
    request: Request, db: Session, staff: StaffSession, values: dict[str, str], searched: bool
) -> Response:
    user = staff.staff
    context: dict[str, Any] = {
        "staff": staff,
        "v": {name: values.get(name, "") for name in FILTER_FIELDS},
        "q": values.get("q", ""),
        "visits": [k.value for k in EncounterKind],
        "follow_up_states": [s.value for s in FollowUpState],
        "flags": [*EXCLUSION_FLAGS, NO_FLAGS],
        "rows": [],
        "error": None,
        "by_visit": False,
        **options(db, user),
    }
    try:
        filters = parse_patient_filters(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/patients.html", user.language, context, 400)
    rows = patient_rows(db, user=user, filters=filters)
    if searched:
        audit.record(
            db,
            "patient.search",
            staff_id=user.id,
            ip=client_ip(request),
            results=len(rows),
            filters=filters.audit_detail(),
            patients=sorted({r.patient.id for r in rows}),
        )
    context["rows"] = [
        {"r": r, "phone": mask_phone(r.patient.phone) if r.patient.phone else ""} for r in rows
    ]
    context["by_visit"] = filters.by_visit
    return render(request, "staff/patients.html", user.language, context)


@router.get("", response_class=HTMLResponse)
def patient_list(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _list_page(request, db, staff, {}, searched=False)


@router.post("", response_class=HTMLResponse)
async def patient_search(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    # A POST, so phone numbers, ID numbers and names never sit in URLs, proxy logs or browser history.
    form = await request.form()
    check_csrf(staff, str(form.get("csrf_token", "")))
    values = {k: str(form.get(k, "")) for k in FILTER_FIELDS}
    return _list_page(request, db, staff, values, searched=True)


# --- one patient ---------------------------------------------------------------------------------


def _record_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    patient: Patient,
    *,
    notice: str | None = None,
    error: str | None = None,
    draft: str = "",
    status: int = 200,
) -> Response:
    user = staff.staff
    ctx = SectionContext(session=db, patient=patient, user=user, now=utcnow())
    return render(
        request,
        "staff/patient.html",
        user.language,
        {
            "staff": staff,
            "patient": patient,
            "sections": load_sections(ctx),
            "notice": notice,
            "error": error,
            "draft": draft,
            "max_message": MAX_MESSAGE,
            "link": None,
        },
        status,
    )


def _open(request: Request, db: Session, staff: StaffSession, patient_id: int) -> Patient | Response:
    """The patient, audited as viewed; or the 403 (audited) / 404 page."""
    user = staff.staff
    try:
        patient = patients.open_record(db, user, patient_id, client_ip(request))
    except patients.AccessDenied:
        db.commit()
        # the page offers break-glass: a reason opens this one record for a while (backend/privacy)
        return render(
            request, "staff/denied.html", user.language, {"staff": staff, "patient_id": patient_id}, 403
        )
    if patient is None:
        return render(request, "staff/denied.html", user.language, {"staff": staff, "missing": True}, 404)
    return patient


@router.get("/{patient_id}", response_class=HTMLResponse)
def patient_record(
    request: Request, patient_id: int, db: SessionDep, staff: StaffDep, done: str = "", safety: str = ""
) -> Response:
    patient = _open(request, db, staff, patient_id)
    if isinstance(patient, Response):
        return patient
    notice = (
        done
        if done in {"email", "flag", "message", "questionnaire", "education", "rights", "rights_blocked"}
        else None
    )
    # what marking a message for the safety review did (backend/web/safety_pages.py sends her back here)
    notice = "safety" if safety == "marked" else notice
    error = safety if safety in safety_review.BUTTON_REFUSALS else None
    return _record_page(request, db, staff, patient, notice=notice, error=error)


def _quick_action(
    request: Request,
    db: Session,
    staff: StaffSession,
    patient_id: int,
    token: str,
    what: str,
    verb: Callable[[Patient], int | None],
    *,
    draft: str = "",
    refused_status: int = 409,
) -> Response:
    """The view is audited and kept whatever happens; a refusal keeps its audit row and shows the page
    with the reason and the draft; a done action comes back to the record and kicks its outbox item."""
    queued: list[int] = []

    def find() -> Patient | Response:
        patient = _open(request, db, staff, patient_id)
        if not isinstance(patient, Response):
            db.commit()  # the view's audit row stays even if the action is refused
        return patient

    def run(patient: Patient) -> None:
        item_id = verb(patient)
        queued.extend([item_id] if item_id is not None else [])

    def refused(patient: Patient, exc: ActionRefused) -> Response:
        status = 403 if exc.reason in NOT_PERMITTED else refused_status
        return _record_page(request, db, staff, patient, error=exc.reason, draft=draft, status=status)

    def done(patient: Patient) -> Response:
        for item_id in queued:
            kick(item_id)  # after the commit: the sender checks the gates again
        return RedirectResponse(f"/staff/patients/{patient_id}?done={what}", status_code=303)

    # Every record verb refuses before changing anything but its audit row, which is kept.
    return perform(db, staff, token, find=find, verb=run, refused=refused, done=done, keep_refusal=True)


@router.post("/{patient_id}/flags")
def set_flag(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    flag: str = Form(max_length=32),
    value: str = Form(max_length=8),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(patient: Patient) -> None:
        do_set_flag(
            db, patient=patient, user=staff.staff, flag=flag, value=value == "on", ip=client_ip(request)
        )

    return _quick_action(request, db, staff, patient_id, csrf_token, "flag", verb, refused_status=403)


@router.post("/{patient_id}/email")
def set_email(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    email: str = Form(default="", max_length=320),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(patient: Patient) -> None:
        do_set_email(db, patient=patient, user=staff.staff, email=email, ip=client_ip(request))

    return _quick_action(request, db, staff, patient_id, csrf_token, "email", verb, refused_status=400)


def _channel(name: str) -> Channel:
    try:
        return Channel(name)
    except ValueError as exc:
        raise ActionRefused(Reason.CHANNEL_NOT_SUPPORTED) from exc


@router.post("/{patient_id}/message")
def send_message(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    channel: str = Form(max_length=16),
    text: str = Form(default="", max_length=MAX_MESSAGE * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(patient: Patient) -> int | None:
        _, item_id = do_send_message(
            db,
            patient=patient,
            channel=_channel(channel),
            text=text,
            staff_id=staff.staff_id,
            ip=client_ip(request),
        )
        return item_id

    return _quick_action(request, db, staff, patient_id, csrf_token, "message", verb, draft=text)


@router.post("/{patient_id}/questionnaire")
def send_questionnaire(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    channel: str = Form(max_length=16),
    questionnaire: str = Form(max_length=64),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(patient: Patient) -> int | None:
        return do_send_questionnaire(
            db,
            patient=patient,
            channel=_channel(channel),
            questionnaire_id=questionnaire,
            user=staff.staff,
            ip=client_ip(request),
        )

    return _quick_action(request, db, staff, patient_id, csrf_token, "questionnaire", verb)


@router.post("/{patient_id}/education")
def send_education(
    request: Request,
    patient_id: int,
    db: SessionDep,
    staff: StaffDep,
    channel: str = Form(max_length=16),
    article: str = Form(max_length=64),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(patient: Patient) -> int | None:
        _, item_id = do_send_education(
            db,
            patient=patient,
            channel=_channel(channel),
            article_id=article,
            staff_id=staff.staff_id,
            ip=client_ip(request),
        )
        return item_id

    return _quick_action(request, db, staff, patient_id, csrf_token, "education", verb)

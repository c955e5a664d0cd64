"""Staff pages for the outbound message log and patients' inbound replies (with triage actions)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.models import Department, EncounterKind, OutboxStatus, StaffSession
from backend.services import audit, directory, message_log, replies
from backend.services.message_log import SENSITIVE_FIELDS
from backend.services.patients import department_ids
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.filtered import FilteredList, filtered_page
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff")

LOG_FIELDS = ("start", "end", "patient", "phone", "channel", "department", "template", "sender", "status")
REPLY_FIELDS = ("patient_type", "department", "content", "template", "handled", "invalid")


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormDep = Annotated[dict[str, str], Depends(_form_values)]


def _from_url(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    """Filters from a link. Names, MRNs, phone numbers and message text are only taken from a POST
    body, so they never sit in URLs, proxy logs or browser history."""
    wanted = {*fields, "after"} - SENSITIVE_FIELDS
    return {key: value for key, value in request.query_params.items() if key in wanted}


def _departments(db: Session, staff: StaffSession) -> tuple[list[Department], list[Department]]:
    """Every department (to name a row's) and those the viewer may filter by."""
    everything = directory.departments(db)
    allowed = department_ids(staff.staff)
    return everything, [d for d in everything if allowed is None or d.id in allowed]


# --- outbound message log ------------------------------------------------------------------------


_LOG = FilteredList(
    template="staff/messages.html",
    action="messages.view",
    parse=message_log.parse_log_filters,
    query=lambda db, user, filters, after: message_log.message_log(
        db, user=user, filters=filters, after=after
    ),
    patients=lambda rows: (row.item.patient_id for row in rows if row.item.patient_id is not None),
)


def _log_page(request: Request, db: Session, staff: StaffSession, values: dict[str, str]) -> Response:
    context: dict[str, Any] = {
        "staff": staff,
        "v": {name: values.get(name, "") for name in LOG_FIELDS},
        "departments": _departments(db, staff)[1],
        "channels": [c.value for c in message_log.CHANNELS],
        "statuses": [s.value for s in OutboxStatus],
        "templates": message_log.template_keys(db),
        "senders": message_log.senders(db),
    }
    return filtered_page(request, db, staff, values, _LOG, context)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _log_page(request, db, staff, _from_url(request, LOG_FIELDS))


@router.post("/messages", response_class=HTMLResponse)
def messages_search(request: Request, db: SessionDep, staff: StaffDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    return _log_page(request, db, staff, values)


# --- inbound replies -----------------------------------------------------------------------------


_REPLIES = FilteredList(
    template="staff/replies.html",
    action="replies.view",
    parse=replies.parse_reply_filters,
    query=lambda db, user, filters, after: replies.replies(db, user=user, filters=filters, after=after),
    patients=lambda rows: (row.patient_id for row in rows if row.patient_id is not None),
)


def _replies_page(request: Request, db: Session, staff: StaffSession, values: dict[str, str]) -> Response:
    shown = {name: values.get(name, "") for name in REPLY_FIELDS}
    everything, allowed = _departments(db, staff)
    context: dict[str, Any] = {
        "staff": staff,
        "v": shown,
        # what the row actions send back so the list comes back as it was (without sensitive filters)
        "back": urlencode({k: v for k, v in shown.items() if v and k not in SENSITIVE_FIELDS}),
        "departments": allowed,
        "department_names": {d.id: d.names.get(staff.staff.language, d.name) for d in everything},
        "patient_types": [k.value for k in EncounterKind],
        "templates": message_log.template_keys(db),
    }
    return filtered_page(request, db, staff, values, _REPLIES, context)


@router.get("/replies", response_class=HTMLResponse)
def replies_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _replies_page(request, db, staff, _from_url(request, REPLY_FIELDS))


@router.post("/replies", response_class=HTMLResponse)
def replies_search(request: Request, db: SessionDep, staff: StaffDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    return _replies_page(request, db, staff, values)


def _back_to_list(back: str) -> Response:
    kept = [(k, v) for k, v in parse_qsl(back) if k in REPLY_FIELDS and k not in SENSITIVE_FIELDS]
    return RedirectResponse("/staff/replies" + (f"?{urlencode(kept)}" if kept else ""), status_code=303)


def _unavailable(request: Request, db: Session, staff: StaffSession, message_id: int) -> Response:
    """Not a reply, or outside the viewer's departments: one answer for both, and the attempt kept."""
    audit.record(
        db, "reply.denied", staff_id=staff.staff_id, subject=("message", message_id), ip=client_ip(request)
    )
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)


@router.post("/replies/{message_id}/handled")
def mark_handled(
    request: Request,
    message_id: int,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    back: str = Form(default="", max_length=1000),
) -> Response:
    check_csrf(staff, csrf_token)
    reply = replies.reply_for(db, user=staff.staff, message_id=message_id)
    if reply is None:
        return _unavailable(request, db, staff, message_id)
    replies.do_mark_handled(db, message=reply, staff_id=staff.staff_id, ip=client_ip(request))
    return _back_to_list(back)


@router.post("/replies/{message_id}/invalid")
def mark_invalid(
    request: Request,
    message_id: int,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    back: str = Form(default="", max_length=1000),
) -> Response:
    check_csrf(staff, csrf_token)
    reply = replies.reply_for(db, user=staff.staff, message_id=message_id)
    if reply is None:
        return _unavailable(request, db, staff, message_id)
    replies.do_mark_invalid(db, message=reply, staff_id=staff.staff_id, ip=client_ip(request))
    return _back_to_list(back)

"""Staff pages for the outbound message log and patients' inbound replies (with triage actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from backend.models import Department, EncounterKind, OutboxStatus, StaffSession
from backend.services import audit, directory, message_log, replies
from backend.services.message_log import SENSITIVE_FIELDS
from backend.services.patients import department_ids
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.filtered import FilteredList, add_filtered_routes
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff")

LOG_FIELDS = ("start", "end", "patient", "phone", "channel", "department", "template", "sender", "status")
REPLY_FIELDS = ("patient_type", "department", "content", "template", "handled", "invalid")


def _departments(db: Session, staff: StaffSession) -> tuple[list[Department], list[Department]]:
    """Every department (to name a row's) and those the viewer may filter by."""
    everything = directory.departments(db)
    allowed = department_ids(staff.staff)
    return everything, [d for d in everything if allowed is None or d.id in allowed]


# --- outbound message log ------------------------------------------------------------------------


def _log_context(db: Session, staff: StaffSession, shown: dict[str, str]) -> dict[str, Any]:
    return {
        "departments": _departments(db, staff)[1],
        "channels": [c.value for c in message_log.CHANNELS],
        "statuses": [s.value for s in OutboxStatus],
        "templates": message_log.template_keys(db),
        "senders": message_log.senders(db),
    }


add_filtered_routes(
    router,
    "/messages",
    "messages",
    FilteredList(
        fields=LOG_FIELDS,
        template="staff/messages.html",
        action="messages.view",
        parse=message_log.parse_log_filters,
        query=lambda db, user, filters, after: message_log.message_log(
            db, user=user, filters=filters, after=after
        ),
        patients=lambda rows: (row.item.patient_id for row in rows if row.item.patient_id is not None),
        context=_log_context,
    ),
)


# --- inbound replies -----------------------------------------------------------------------------


def _replies_context(db: Session, staff: StaffSession, shown: dict[str, str]) -> dict[str, Any]:
    everything, allowed = _departments(db, staff)
    return {
        # what the row actions send back so the list comes back as it was (without sensitive filters)
        "back": urlencode({k: v for k, v in shown.items() if v and k not in SENSITIVE_FIELDS}),
        "departments": allowed,
        "department_names": {d.id: d.names.get(staff.staff.language, d.name) for d in everything},
        "patient_types": [k.value for k in EncounterKind],
        "templates": message_log.template_keys(db),
    }


add_filtered_routes(
    router,
    "/replies",
    "replies",
    FilteredList(
        fields=REPLY_FIELDS,
        template="staff/replies.html",
        action="replies.view",
        parse=replies.parse_reply_filters,
        query=lambda db, user, filters, after: replies.replies(db, user=user, filters=filters, after=after),
        patients=lambda rows: (row.patient_id for row in rows if row.patient_id is not None),
        context=_replies_context,
    ),
)


def _back_to_list(back: str) -> Response:
    kept = [(k, v) for k, v in parse_qsl(back) if k in REPLY_FIELDS and k not in SENSITIVE_FIELDS]
    return RedirectResponse("/staff/replies" + (f"?{urlencode(kept)}" if kept else ""), status_code=303)


def _unavailable(request: Request, db: Session, staff: StaffSession, message_id: int) -> Response:
    """Not a reply, or outside the viewer's departments: one answer for both, and the attempt kept."""
    audit.record(
        db, "reply.denied", staff_id=staff.staff_id, subject=("message", message_id), ip=client_ip(request)
    )
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)


def _triage(action: str, verb: Callable[..., object]) -> None:
    """POST /staff/replies/<id>/<action>: mark one reply within the viewer's departments, then back."""

    @router.post(f"/replies/{{message_id}}/{action}", name=f"mark_{action}")
    def mark(
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
        verb(db, message=reply, staff_id=staff.staff_id, ip=client_ip(request))
        return _back_to_list(back)


_triage("handled", replies.do_mark_handled)
_triage("invalid", replies.do_mark_invalid)

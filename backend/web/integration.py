"""Integration pages: the HL7 message log (filters, parsed view, reprocess) and hospital code mappings."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.integration.codes import do_resolve_mapping
from backend.integration.message_log import LogFilter, list_messages, parsed_view
from backend.integration.receiver import REPROCESSABLE, ReceiverConfig, do_reprocess
from backend.models import (
    Clinician,
    CodeKind,
    CodeMapping,
    Department,
    Hl7Message,
    Hl7Status,
    StaffSession,
    Ward,
)
from backend.security.permissions import Permission
from backend.web.deps import SessionDep, StaffDep
from backend.web.ids import IdQuery, id_form
from backend.web.permits import refused
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff/integration")
PAGE = 50


def _forbidden(request: Request, db: Session, staff: StaffSession) -> Response | None:
    return refused(request, db, staff, Permission.INTEGRATION, "integration.view_denied")


@router.get("/messages", response_class=HTMLResponse)
def messages(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    status: str = "",
    type: str = "",  # the query parameter's name
    control: str = "",
    before: IdQuery | None = None,
) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    chosen = Hl7Status(status) if status in set(Hl7Status) else None
    rows = list_messages(
        db,
        LogFilter(status=chosen, message_type=type.strip() or None, control_id=control.strip() or None),
        limit=PAGE,
        before_id=before,
    )
    context = {
        "staff": staff,
        "rows": rows,
        "statuses": [s.value for s in Hl7Status],
        "v": {"status": status, "type": type, "control": control},
        "older": rows[-1].id if len(rows) == PAGE else None,
    }
    return render(request, "staff/integration_messages.html", staff.staff.language, context)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message(request: Request, message_id: int, db: SessionDep, staff: StaffDep, done: str = "") -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    if db.get(Hl7Message, message_id) is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    row, segments = parsed_view(
        db, message_id, staff_id=staff.staff_id, fallback_charset=get_settings().hl7_fallback_charset
    )
    context = {
        "staff": staff,
        "row": row,
        "segments": segments,
        "reprocessable": row.status in REPROCESSABLE,
        "done": done,
    }
    return render(request, "staff/integration_message.html", staff.staff.language, context)


@router.post("/messages/{message_id}/reprocess")
def reprocess(
    request: Request, message_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form("")
) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    check_csrf(staff, csrf_token)
    if db.get(Hl7Message, message_id) is None:
        return PlainTextResponse("not found", status_code=404)
    try:
        do_reprocess(db, message_id, ReceiverConfig.from_settings(get_settings()), staff_id=staff.staff_id)
    except ValueError:
        return RedirectResponse(f"/staff/integration/messages/{message_id}?done=refused", status_code=303)
    return RedirectResponse(f"/staff/integration/messages/{message_id}?done=reprocessed", status_code=303)


def _targets(db: Session) -> dict[str, list[tuple[int, str]]]:
    return {
        CodeKind.DEPARTMENT.value: [
            (d.id, f"{d.code} {d.name}") for d in db.scalars(sa.select(Department).order_by(Department.code))
        ],
        CodeKind.WARD.value: [
            (w.id, f"{w.code} {w.name}") for w in db.scalars(sa.select(Ward).order_by(Ward.code))
        ],
        CodeKind.DOCTOR.value: [
            (c.id, c.name) for c in db.scalars(sa.select(Clinician).order_by(Clinician.name, Clinician.id))
        ],
    }


@router.get("/codes", response_class=HTMLResponse)
def codes(request: Request, db: SessionDep, staff: StaffDep, done: str = "") -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    mappings = list(
        db.scalars(
            sa.select(CodeMapping).order_by(
                CodeMapping.target_id.is_not(None), CodeMapping.kind, CodeMapping.source, CodeMapping.code
            )
        )
    )
    context = {"staff": staff, "mappings": mappings, "targets": _targets(db), "done": done}
    return render(request, "staff/integration_codes.html", staff.staff.language, context)


@router.post("/codes/{mapping_id}")
def map_code(
    request: Request,
    mapping_id: int,
    db: SessionDep,
    staff: StaffDep,
    target: int = id_form(),
    csrf_token: str = Form(""),
) -> Response:
    if (denied := _forbidden(request, db, staff)) is not None:
        return denied
    check_csrf(staff, csrf_token)
    mapping = db.get(CodeMapping, mapping_id)
    if mapping is None:
        return RedirectResponse("/staff/integration/codes?done=refused", status_code=303)
    try:
        moved = do_resolve_mapping(db, mapping, target, staff_id=staff.staff_id)
    except ValueError:
        return RedirectResponse("/staff/integration/codes?done=refused", status_code=303)
    return RedirectResponse(f"/staff/integration/codes?done={moved}", status_code=303)

"""Admin console oversight pages: the audit-log viewer (filters, pages, export; every view audited),
the system health page and its JSON for monitoring, and the effective settings."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session

from backend.admin import audit_log, health
from backend.admin.effective_settings import effective, file_values
from backend.admin.exports import audit_xlsx
from backend.admin.health_facts import gather
from backend.app.settings import ENV_FILE, Settings
from backend.models import StaffSession
from backend.outbox.overrides import current
from backend.services import audit
from backend.services.message_log import InvalidFilter, parse_cursor
from backend.web.admin_common import PREFIX, AdminDep, AuditDep
from backend.web.deps import SessionDep, SettingsDep, client_ip
from backend.web.downloads import spreadsheet
from backend.web.filtered import FormDep, from_url
from backend.web.staff import check_csrf, render

router = APIRouter(prefix=PREFIX)


# --- the audit log -------------------------------------------------------------------------------


def _audit_page(request: Request, db: Session, staff: StaffSession, values: dict[str, str]) -> Response:
    shown = {name: values.get(name, "") for name in audit_log.FIELDS}
    context: dict[str, Any] = {
        "staff": staff,
        "v": shown,
        "actions": audit_log.actions(db),
        "people": audit_log.staff_choices(db),
        "rows": [],
        "next_cursor": None,
        "error": None,
    }
    try:
        filters = audit_log.parse_audit_filters(values)
        after = parse_cursor(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/admin/audit.html", staff.staff.language, context, 400)
    page = audit_log.audit_page(db, filters, after)
    # looking at who saw what is itself something someone saw
    audit.record(
        db,
        "audit.view",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        page=after is not None,
    )
    context.update(rows=page.rows, next_cursor=page.next_cursor.encode() if page.next_cursor else None)
    return render(request, "staff/admin/audit.html", staff.staff.language, context)


@router.get("/audit", response_class=HTMLResponse)
def audit_view(request: Request, db: SessionDep, staff: AuditDep) -> Response:
    return _audit_page(request, db, staff, from_url(request, audit_log.FIELDS))


@router.post("/audit", response_class=HTMLResponse)
def audit_search(request: Request, db: SessionDep, staff: AuditDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    return _audit_page(request, db, staff, values)


@router.post("/audit/export.xlsx")
def audit_export(request: Request, db: SessionDep, staff: AuditDep, values: FormDep) -> Response:
    """A POST, like the search: a patient filter never sits in a URL."""
    check_csrf(staff, values.get("csrf_token", ""))
    try:
        filters = audit_log.parse_audit_filters(values)
    except InvalidFilter as exc:
        return Response(f"invalid value for {exc.field}", status_code=400, media_type="text/plain")
    rows = audit_log.audit_rows(db, filters)
    detail = filters.audit_detail()
    audit.record(
        db, "audit.export", staff_id=staff.staff_id, ip=client_ip(request), filters=detail, rows=len(rows)
    )
    return spreadsheet(audit_xlsx(rows, detail), "audit.xlsx")


# --- system health -------------------------------------------------------------------------------


def _checks(db: Session, settings: Settings) -> list[health.Check]:
    # sync routes run in the thread pool: Redis, Rasa and the disk walk block
    return health.all_checks(gather(db, settings))


@router.get("/health", response_class=HTMLResponse)
def health_page(request: Request, db: SessionDep, staff: AdminDep, settings: SettingsDep) -> Response:
    checks = _checks(db, settings)
    context = {"staff": staff, "checks": checks, "overall": health.overall(checks)}
    return render(request, "staff/admin/health.html", staff.staff.language, context)


@router.get("/health.json")
def health_json(db: SessionDep, staff: AdminDep, settings: SettingsDep) -> JSONResponse:
    """For monitoring with an admin's session; 503 when any check is failing."""
    checks = _checks(db, settings)
    status = health.overall(checks)
    body = {"status": status.value, "checks": [c.as_json() for c in checks]}
    return JSONResponse(body, status_code=503 if status is health.Status.FAILING else 200)


# --- effective settings --------------------------------------------------------------------------


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, db: SessionDep, staff: AdminDep, settings: SettingsDep) -> Response:
    console = current(db).values  # the channel settings stored in the console win over the environment
    shown = settings.model_copy(update=console) if console else settings
    rows = effective(shown, os.environ, file_values(ENV_FILE), console=set(console))
    audit.record(db, "admin.settings_view", staff_id=staff.staff_id, ip=client_ip(request))
    context = {"staff": staff, "rows": rows, "env_file": str(ENV_FILE)}
    return render(request, "staff/admin/settings.html", staff.staff.language, context)

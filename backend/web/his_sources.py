"""HIS source pages (integration role): the sources with their last pull and its outcome (filtered,
exported as CSV), the form that adds or edits one (the database address is a secret: never shown again,
an empty field keeps it), and "pull now", which starts a dry run shown on the import's own page, where it
is confirmed. Routes parse, call the his_sources verbs, render."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.imports import his_sources
from backend.imports.columns import FIELDS
from backend.imports.his_pull import shown_url
from backend.models import HisSource, StaffSession
from backend.security.permissions import Permission
from backend.services import audit
from backend.services.message_log import InvalidFilter
from backend.web.deps import SessionDep, client_ip
from backend.web.permits import requires
from backend.web.staff import check_csrf, render
from backend.work.runs import launch

PREFIX = "/staff/his-sources"
router = APIRouter(prefix=PREFIX)
IntegrationDep = Annotated[
    StaffSession, Depends(requires(Permission.INTEGRATION, action="his_source.denied"))
]
LIST_FIELDS = ("outcome", "kind", "enabled", "q")
FORM_FIELDS = ("name", "url", "query", "kind", "watermark_column", "watermark", "interval_minutes")


def _shown(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "")[:200] for name in LIST_FIELDS}


def _list_context(staff: StaffSession, shown: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "v": shown,
        "outcomes": [o.value for o in his_sources.PullOutcome] + ["never"],
        "kinds": [k.value for k in his_sources.KINDS],
        "shown_url": shown_url,
        "rows": [],
        "error": None,
        **extra,
    }


@router.get("", response_class=HTMLResponse)
def source_list(request: Request, db: SessionDep, staff: IntegrationDep, done: str = "") -> Response:
    shown = _shown(request)
    context = _list_context(staff, shown, done=done[:32], query=request.url.query)
    try:
        filters = his_sources.parse_his_filters(shown)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/his_sources.html", staff.staff.language, context, 400)
    context["rows"] = his_sources.source_list(db, filters)
    return render(request, "staff/his_sources.html", staff.staff.language, context)


@router.get("/export.csv")
def source_export(request: Request, db: SessionDep, staff: IntegrationDep) -> Response:
    try:
        filters = his_sources.parse_his_filters(_shown(request))
    except InvalidFilter as exc:
        return PlainTextResponse(f"invalid value for {exc.field}", status_code=400)
    rows = his_sources.source_list(db, filters)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "kind", "database", "watermark", "interval (minutes)", "auto-apply", "enabled",
                     "last pull (UTC)", "outcome", "error"])  # fmt: skip
    for s in rows:
        last = s.last_run_at.isoformat() if s.last_run_at else ""
        writer.writerow(
            [
                s.name,
                s.kind,
                shown_url(s.url),
                s.watermark or "",
                s.interval_minutes,
                s.auto_apply,
                s.enabled,
                last,
                s.last_outcome or "",
                s.last_error or "",
            ]
        )
    audit.record(db, "his_source.export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    db.commit()
    return PlainTextResponse(
        "\ufeff" + out.getvalue(),  # a BOM, for Excel to read the UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="his-sources.csv"'},
    )


def _form_context(
    staff: StaffSession, source: HisSource | None, v: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "staff": staff,
        "source": source,
        "v": v,
        "kinds": [k.value for k in his_sources.KINDS],
        "fields": {k.value: [f.name for f in FIELDS[k]] for k in his_sources.KINDS},
        "shown_url": shown_url(source.url) if source is not None else "",
        "error": None,
        **extra,
    }


def _values_of(source: HisSource) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(source, name) or "" for name in FORM_FIELDS if name != "url"}
    values.update({f"column-{k}": v for k, v in (source.columns or {}).items()})
    values.update(url="", auto_apply=source.auto_apply, enabled=source.enabled, version=source.version)
    return values


@router.get("/new", response_class=HTMLResponse)
def new_source(request: Request, staff: IntegrationDep) -> Response:
    v = {"interval_minutes": "60", "kind": "patients", "enabled": True, "auto_apply": False, "version": 0}
    return render(request, "staff/his_source_form.html", staff.staff.language, _form_context(staff, None, v))


def _found(db: Session, source_id: int) -> HisSource | None:
    return db.get(HisSource, source_id) if 0 < source_id < 2**31 else None


@router.get("/{source_id}", response_class=HTMLResponse)
def edit_source(
    request: Request, source_id: int, db: SessionDep, staff: IntegrationDep, done: str = ""
) -> Response:
    source = _found(db, source_id)
    if source is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    context = _form_context(staff, source, _values_of(source), done=done[:32])
    return render(request, "staff/his_source_form.html", staff.staff.language, context)


async def _save(request: Request, db: Session, staff: StaffSession, source: HisSource | None) -> Response:
    form = await request.form()
    values = {str(k): str(v)[:20_000] for k, v in form.items()}
    check_csrf(staff, values.get("csrf_token", ""))
    version = int(values["version"]) if values.get("version", "").isdigit() else -1
    try:
        parsed = his_sources.parse_his_form(values, creating=source is None)
        saved = his_sources.do_save_source(
            db, source_id=source.id if source else None, version=version, form=parsed, by=staff.staff_id,
            ip=client_ip(request),
        )  # fmt: skip
    except his_sources.HisRefused as refused:
        shown = {**values, "url": "", "auto_apply": values.get("auto_apply") == "on",
                 "enabled": values.get("enabled") == "on"}  # fmt: skip
        context = _form_context(staff, source, shown, error=str(refused.reason))
        return render(request, "staff/his_source_form.html", staff.staff.language, context, 400)
    db.commit()
    return RedirectResponse(f"{PREFIX}/{saved.id}?done=saved", status_code=303)


@router.post("/new", response_class=HTMLResponse)
async def create_source(request: Request, db: SessionDep, staff: IntegrationDep) -> Response:
    return await _save(request, db, staff, None)


@router.post("/{source_id}", response_class=HTMLResponse)
async def save_source(request: Request, source_id: int, db: SessionDep, staff: IntegrationDep) -> Response:
    source = _found(db, source_id)
    if source is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    return await _save(request, db, staff, source)


@router.post("/{source_id}/pull")
def pull_now(
    request: Request,
    source_id: int,
    db: SessionDep,
    staff: IntegrationDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    """A dry run of what the source holds from its watermark; its page (the import's) offers the confirm."""
    check_csrf(staff, csrf_token)
    source = _found(db, source_id)
    if source is None:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 404)
    try:
        job = his_sources.do_start_pull(db, source, by=staff.staff_id, ip=client_ip(request))
    except his_sources.HisRefused as refused:
        return RedirectResponse(f"{PREFIX}?done={refused.reason!s}", status_code=303)
    db.commit()
    launch(job.id)
    return RedirectResponse(f"/staff/imports/{job.id}", status_code=303)

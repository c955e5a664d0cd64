"""Admin console routes for channels and templates (/staff/admin/channels): channel settings over the
environment, template mappings, quiet hours and caps per hospital and department, and a test send to
the signed-in staff member's own phone or WeChat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.admin import channel_store, trial_send
from backend.admin.channel_store import TemplateTooLong
from backend.admin.channels import (
    MAPPINGS,
    SECRETS,
    TEMPLATE_CHANNELS,
    UNLIMITED_WECHAT_FIELDS,
    WECHAT_FIELD_LIMIT,
    template_keys,
)
from backend.admin.org import departments
from backend.app.settings import get_settings
from backend.models import StaffSession
from backend.models.base import utcnow
from backend.outbox.overrides import CONSOLE_SETTINGS, effective_settings
from backend.outbox.providers import sender_key
from backend.outbox.sender import send_item
from backend.services.refusal import ActionRefused, Reason
from backend.web.admin_common import PREFIX, AdminDep
from backend.web.deps import SessionDep, client_ip
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from bots.domain import Channel

router = APIRouter(prefix=f"{PREFIX}/channels")
PAGE = "staff/admin/channels.html"


def _page(request: Request, db: Session, staff: StaffSession, status: int = 200, **extra: Any) -> Response:
    settings = get_settings()
    effective = effective_settings(db)
    limits = channel_store.limit_rows(db)
    context: dict[str, Any] = {
        "staff": staff,
        "settings_rows": channel_store.setting_rows(db, settings),
        "secrets": SECRETS,
        "mappings": MAPPINGS,
        "templates": channel_store.template_rows(db, settings),
        "limit": WECHAT_FIELD_LIMIT,
        "unlimited": sorted(UNLIMITED_WECHAT_FIELDS),
        "global_quiet": (settings.quiet_hours_start, settings.quiet_hours_end),
        "global_cap": settings.max_messages_per_day,
        "limits": limits,
        "departments": [d for d in departments(db) if d.active],
        "department_names": {d.id: d.names.get(staff.staff.language, d.name) for d in departments(db)},
        "sender_keys": [
            (
                channel.value,
                sender_key(channel, effective),
                effective.send_rates.get(sender_key(channel, effective)),
            )
            for channel in (Channel.SMS, Channel.WHATSAPP, Channel.WECHAT)
        ],
        "own_channels": trial_send.own_channels(staff.staff),
        "refused": None,
        "refused_form": None,
        "problems": [],
        "form": {},
        "done": request.query_params.get("done", ""),
        **extra,
    }
    return render(request, PAGE, staff.staff.language, context, status)


def _refused(
    request: Request, db: Session, staff: StaffSession, exc: ActionRefused, which: str, form: dict[str, str]
) -> Response:
    db.rollback()
    problems = exc.problems if isinstance(exc, TemplateTooLong) else []
    return _page(
        request, db, staff, 400, refused=exc.reason, refused_form=which, problems=problems, form=form
    )


@router.get("", response_class=HTMLResponse)
def channels_page(request: Request, db: SessionDep, staff: AdminDep) -> Response:
    return _page(request, db, staff)


@router.post("/setting", response_class=HTMLResponse)
def setting_save(request: Request, db: SessionDep, staff: AdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    name = values.get("name", "")
    try:
        if values.get("action") == "clear":
            channel_store.do_clear_setting(db, name, by=staff.staff_id, ip=client_ip(request))
        else:
            channel_store.do_set_setting(
                db, name, values.get("value", ""), by=staff.staff_id, ip=client_ip(request)
            )
    except ActionRefused as exc:
        form = {"name": name} if name in SECRETS else {"name": name, "value": values.get("value", "")}
        which = f"setting:{name}" if name in CONSOLE_SETTINGS else "general"
        return _refused(request, db, staff, exc, which, form)
    return RedirectResponse(f"{PREFIX}/channels?done=setting#setting-{name}", status_code=303)


@router.post("/template", response_class=HTMLResponse)
def template_save(request: Request, db: SessionDep, staff: AdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    key, channel_name = values.get("key", ""), values.get("channel", "")
    channel = next((c for c in TEMPLATE_CHANNELS if c.value == channel_name), None)
    known = channel is not None and key in template_keys(get_settings())
    which = f"template:{key}:{channel_name}" if known else "general"
    try:
        if channel is None:
            raise ActionRefused(Reason.TEMPLATE_KEY_UNKNOWN)
        if values.get("action") == "clear":
            channel_store.do_clear_template(db, key, channel, by=staff.staff_id, ip=client_ip(request))
        else:
            channel_store.do_set_template(
                db,
                key,
                channel,
                values.get("template_id", ""),
                values.get("fields", ""),
                by=staff.staff_id,
                ip=client_ip(request),
            )
    except ActionRefused as exc:
        return _refused(request, db, staff, exc, which, dict(values))
    return RedirectResponse(f"{PREFIX}/channels?done=template#template-{key}-{channel_name}", status_code=303)


@router.post("/limit", response_class=HTMLResponse)
def limit_save(request: Request, db: SessionDep, staff: AdminDep, values: FormDep) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    scope = values.get("scope", "")
    try:
        department_id = None if scope == channel_store.HOSPITAL else int(scope)
    except ValueError:
        return _refused(request, db, staff, ActionRefused(Reason.NO_SUCH_DEPARTMENT), "limit", dict(values))
    try:
        if values.get("action") == "clear":
            channel_store.do_clear_limit(db, department_id, by=staff.staff_id, ip=client_ip(request))
        else:
            channel_store.do_set_limit(
                db,
                department_id,
                values.get("quiet_start", ""),
                values.get("quiet_end", ""),
                values.get("daily_cap", ""),
                by=staff.staff_id,
                ip=client_ip(request),
            )
    except ActionRefused as exc:
        return _refused(request, db, staff, exc, "limit", dict(values))
    return RedirectResponse(f"{PREFIX}/channels?done=limit#limits", status_code=303)


@router.post("/test", response_class=HTMLResponse)
def test_send(request: Request, db: SessionDep, staff: AdminDep, values: FormDep) -> Response:
    """Queue, commit, then send through the sender's own entry point (the same a worker runs), so the
    result page shows what the gates and the provider did."""
    check_csrf(staff, values.get("csrf_token", ""))
    channel = next((c for c in Channel if c.value == values.get("channel", "")), None)
    try:
        if channel is None:
            raise ActionRefused(Reason.CHANNEL_NOT_SUPPORTED)
        outbox_id = trial_send.do_test_send(db, staff.staff, channel, ip=client_ip(request), now=utcnow())
    except ActionRefused as exc:
        return _refused(request, db, staff, exc, "test", dict(values))
    db.commit()
    send_item(outbox_id)
    return RedirectResponse(f"{PREFIX}/channels/test/{outbox_id}", status_code=303)


@router.get("/test/{outbox_id}", response_class=HTMLResponse)
def test_result(request: Request, outbox_id: int, db: SessionDep, staff: AdminDep) -> Response:
    result = trial_send.trial_result(db, staff.staff_id, outbox_id)
    if result is None:
        return render(request, "staff/admin/missing.html", staff.staff.language, {"staff": staff}, 404)
    context = {"staff": staff, "result": result}
    return render(request, "staff/admin/channel_test.html", staff.staff.language, context)

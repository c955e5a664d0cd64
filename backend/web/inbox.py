"""Staff inbox pages: the queues, one task with its conversation and actions, and a live count stream."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session, selectinload

from backend.models import (
    Department,
    Message,
    OutboxItem,
    Patient,
    ResolutionCode,
    StaffSession,
    StaffUser,
    Task,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.outbox.sender import kick
from backend.services import audit, inbox, inbox_queue
from backend.services.inbox import ActionRefused
from backend.services.inbox_queue import SlaState
from backend.services.message_log import InvalidFilter
from backend.services.patients import department_ids
from backend.settings import get_settings
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render
from bots.domain import Channel, pick_language

router = APIRouter(prefix="/staff/inbox")
FILTERS = ("queue", "department", "priority", "status", "channel", "sla", "assignee")
POLL_SECONDS = 2.0
STREAM_SECONDS = 300.0  # the browser's EventSource reconnects after this
HEARTBEAT_SECONDS = 20.0


@lru_cache(maxsize=2)
def canned_replies(content_dir: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load((content_dir / "canned_replies.yaml").read_text(encoding="utf-8")) or {}
    replies: list[dict[str, Any]] = data.get("replies", [])
    return replies


def _departments(db: Session) -> list[Department]:
    return list(db.scalars(sa.select(Department).order_by(Department.name)))


def _staff(db: Session) -> list[StaffUser]:
    return list(
        db.scalars(
            sa.select(StaffUser)
            .where(StaffUser.active)
            .options(selectinload(StaffUser.departments))
            .order_by(StaffUser.display_name)
        )
    )


# --- the queues ----------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def inbox_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    # Filters are codes and ids, never names or phone numbers, so a link may carry them.
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in FILTERS}
    allowed = department_ids(user)
    everything = _departments(db)
    context: dict[str, Any] = {
        "staff": staff,
        "v": {name: values.get(name, "") for name in FILTERS},
        "queues": [k.value for k in TaskKind],
        "counts": inbox_queue.queue_counts(db, user),
        "departments": [d for d in everything if allowed is None or d.id in allowed],
        "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
        "priorities": [p.value for p in TaskPriority],
        "statuses": [s.value for s in TaskStatus],
        "channels": [c.value for c in Channel],
        "sla_states": [s.value for s in SlaState],
        "assignees": _staff(db),
        "rows": [],
        "error": None,
    }
    try:
        filters = inbox_queue.parse_filters(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/inbox.html", user.language, context, 400)
    rows = inbox_queue.task_rows(db, user=user, filters=filters, now=utcnow())
    audit.record(
        db,
        "inbox.view",
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        patients=sorted({r.task.patient_id for r in rows if r.task.patient_id is not None}),
    )
    context["rows"] = rows
    return render(request, "staff/inbox.html", user.language, context)


async def _count_events(staff_session_id: int) -> AsyncIterator[str]:
    """Queue counts now, then whenever they change; bounded in time, stops when the sign-in ends."""
    yield f"retry: {int(POLL_SECONDS * 1000)}\n\n"
    started = last_sent = time.monotonic()
    last: dict[str, int] | None = None
    while True:
        counts = await anyio.to_thread.run_sync(inbox_queue.counts_for, staff_session_id)
        if counts is None:
            return
        if counts != last:
            yield f"event: counts\ndata: {json.dumps(counts, sort_keys=True)}\n\n"
            last, last_sent = counts, time.monotonic()
        elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
            yield ": ping\n\n"
            last_sent = time.monotonic()
        if time.monotonic() - started >= STREAM_SECONDS:
            return
        await anyio.sleep(POLL_SECONDS)


@router.get("/events")
def inbox_events(db: SessionDep, staff: StaffDep) -> Response:
    # End the request's transaction now: the stream outlives it, and on SQLite an open one holds the
    # write lock the stream's own polls need.
    db.commit()
    return StreamingResponse(
        _count_events(staff.id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- one task ------------------------------------------------------------------------------------


def _denied(request: Request, db: Session, staff: StaffSession, task_id: int) -> Response:
    """Another department's task (or none): the attempt is kept."""
    exists = db.get(Task, task_id) is not None
    if exists:
        audit.record(
            db, "task.view_denied", staff_id=staff.staff_id, subject=("task", task_id), ip=client_ip(request)
        )
        db.commit()
    context = {"staff": staff, "missing": not exists}
    return render(request, "staff/denied.html", staff.staff.language, context, 403 if exists else 404)


def _task_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    task: Task,
    *,
    error: str | None = None,
    draft: str = "",
    status: int = 200,
) -> Response:
    user = staff.staff
    patient = db.get(Patient, task.patient_id) if task.patient_id else None
    conversation = inbox_queue.conversation_of(db, task)
    messages: list[Message] = []
    outbox: dict[int, OutboxItem] = {}
    if conversation is not None:
        messages = list(
            db.scalars(
                sa.select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.id.desc())
                .limit(200)
            )
        )[::-1]
        outbox = {
            i.message_id: i
            for i in db.scalars(
                sa.select(OutboxItem).where(OutboxItem.message_id.in_([m.id for m in messages]))
            )
        }
    people = _staff(db)
    everything = _departments(db)
    audit.record(
        db,
        "task.view",
        staff_id=user.id,
        patient_id=task.patient_id,
        subject=("task", task.id),
        ip=client_ip(request),
    )
    lang = pick_language(patient.language if patient else get_settings().default_language)
    return render(
        request,
        "staff/task.html",
        user.language,
        {
            "staff": staff,
            "task": task,
            "sla": inbox_queue.sla_state(task, utcnow()),
            "patient": patient,
            "conversation": conversation,
            "messages": [m for m in messages if not (m.provider_message_id or "").startswith("start:")],
            "outbox": outbox,
            "events": inbox_queue.events_of(db, task.id),
            "names": {p.id: p.display_name for p in people},
            "assignable": [p for p in people if inbox_queue.may_handle(p, task)],
            "departments": everything,
            "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
            "codes": [c.value for c in ResolutionCode],
            "canned": [
                {
                    "key": c["key"],
                    "label": c["label"].get(user.language, c["label"]["en"]),
                    "text": c["text"][lang],
                }
                for c in canned_replies(get_settings().content_dir)
            ],
            "error": error,
            "draft": draft,
        },
        status,
    )


@router.get("/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: int, db: SessionDep, staff: StaffDep) -> Response:
    task = inbox_queue.task_for(db, user=staff.staff, task_id=task_id)
    if task is None:
        return _denied(request, db, staff, task_id)
    return _task_page(request, db, staff, task)


def _act(request: Request, db: Session, staff: StaffSession, task_id: int, token: str) -> Task | Response:
    check_csrf(staff, token)
    task = inbox_queue.task_for(db, user=staff.staff, task_id=task_id)
    return _denied(request, db, staff, task_id) if task is None else task


def _not_a_case(task: Task) -> None:
    """A feedback case's task closes, reopens and moves with its case (its page keeps both in step)."""
    if task.source_type == "feedback_case":
        raise ActionRefused("handled_on_case_page")


def _done(task_id: int) -> Response:
    return RedirectResponse(f"/staff/inbox/{task_id}", status_code=303)


def _refused(
    request: Request, db: Session, staff: StaffSession, task: Task, exc: ActionRefused, draft: str = ""
) -> Response:
    db.rollback()
    db.refresh(task)
    return _task_page(request, db, staff, task, error=exc.reason, draft=draft, status=409)


def _perform(
    request: Request,
    db: Session,
    staff: StaffSession,
    task_id: int,
    token: str,
    verb: Callable[[Task], object],
) -> Response:
    """Check the CSRF token and the task's scope, run the verb; back to the task, or its refusal."""
    task = _act(request, db, staff, task_id, token)
    if isinstance(task, Response):
        return task
    try:
        verb(task)
    except ActionRefused as exc:
        return _refused(request, db, staff, task, exc)
    return _done(task_id)


@router.post("/{task_id}/claim")
def claim(
    request: Request, task_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    def verb(task: Task) -> None:
        inbox.do_claim(db, task=task, staff_id=staff.staff_id, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)


@router.post("/{task_id}/assign")
def assign(
    request: Request,
    task_id: int,
    db: SessionDep,
    staff: StaffDep,
    assignee: int = Form(),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(task: Task) -> None:
        person = db.get(StaffUser, assignee)
        if person is None:
            raise ActionRefused("assignee_outside_department")
        inbox.do_assign(db, task=task, staff_id=staff.staff_id, assignee=person, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)


@router.post("/{task_id}/transfer")
def transfer(
    request: Request,
    task_id: int,
    db: SessionDep,
    staff: StaffDep,
    department: int = Form(),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(task: Task) -> None:
        _not_a_case(task)
        if db.get(Department, department) is None:
            raise ActionRefused("no_such_department")
        inbox.do_transfer(
            db, task=task, staff_id=staff.staff_id, department_id=department, ip=client_ip(request)
        )

    response = _perform(request, db, staff, task_id, csrf_token, verb)
    task = db.get(Task, task_id)
    if response.status_code == 303 and task is not None and not inbox_queue.may_handle(staff.staff, task):
        return RedirectResponse("/staff/inbox", status_code=303)  # transferred out of her departments
    return response


@router.post("/{task_id}/note")
def note(
    request: Request,
    task_id: int,
    db: SessionDep,
    staff: StaffDep,
    text: str = Form(default="", max_length=inbox.MAX_NOTE * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(task: Task) -> None:
        inbox.do_add_note(db, task=task, staff_id=staff.staff_id, text=text, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)


@router.post("/{task_id}/close")
def close(
    request: Request,
    task_id: int,
    db: SessionDep,
    staff: StaffDep,
    code: str = Form(max_length=32),
    summary: str = Form(default="", max_length=inbox.MAX_NOTE * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(task: Task) -> None:
        _not_a_case(task)
        if code not in set(ResolutionCode):
            raise ActionRefused("no_such_code")
        inbox.do_close(
            db,
            task=task,
            staff_id=staff.staff_id,
            code=ResolutionCode(code),
            summary=summary,
            ip=client_ip(request),
        )

    return _perform(request, db, staff, task_id, csrf_token, verb)


@router.post("/{task_id}/reopen")
def reopen(
    request: Request, task_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    def verb(task: Task) -> None:
        _not_a_case(task)
        inbox.do_reopen(db, task=task, staff_id=staff.staff_id, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)


@router.post("/{task_id}/reply")
def reply(
    request: Request,
    task_id: int,
    db: SessionDep,
    staff: StaffDep,
    text: str = Form(default="", max_length=inbox.MAX_REPLY * 2),
    canned: str = Form(default="", max_length=64),
    csrf_token: str = Form(max_length=128),
) -> Response:
    task = _act(request, db, staff, task_id, csrf_token)
    if isinstance(task, Response):
        return task
    if not text.strip() and canned:  # without JavaScript, picking a canned reply sends it as it is
        patient = db.get(Patient, task.patient_id) if task.patient_id else None
        lang = pick_language(patient.language if patient else get_settings().default_language)
        found = [c["text"][lang] for c in canned_replies(get_settings().content_dir) if c["key"] == canned]
        text = found[0] if found else ""
    try:
        _, item_id = inbox.do_reply(db, task=task, staff_id=staff.staff_id, text=text, ip=client_ip(request))
    except ActionRefused as exc:
        return _refused(request, db, staff, task, exc, draft=text)
    db.commit()
    if item_id is not None:
        kick(item_id)  # after the commit: the sender re-checks consent and the channel's window
    return _done(task_id)


@router.post("/{task_id}/hand-back")
def hand_back(
    request: Request, task_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    def verb(task: Task) -> None:
        inbox.do_hand_back(db, task=task, staff_id=staff.staff_id, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)

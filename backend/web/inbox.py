"""Staff inbox pages: the queues with their filters and a live count stream (one task: inbox_task.py)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.content import canned
from backend.content.published import published_body
from backend.models import (
    StaffUser,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services import audit, directory, inbox_queue, inbox_view
from backend.services.inbox_queue import SlaState
from backend.services.message_log import InvalidFilter, parse_period
from backend.services.patients import department_ids
from backend.services.task_report import task_report
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import render
from bots.domain import Channel

router = APIRouter(prefix="/staff/inbox")
FILTERS = (
    "queue",
    "department",
    "ward",
    "priority",
    "status",
    "channel",
    "sla",
    "assignee",
    "mentioned",
    "after",
)
POLL_SECONDS = 0.5  # a new finding shows in open inboxes within a second
STREAM_SECONDS = 300.0  # the browser's EventSource reconnects after this
HEARTBEAT_SECONDS = 20.0
REPORT_DAYS = timedelta(days=30)
EXPORT_ROWS = 5000


@lru_cache(maxsize=2)
def canned_file(content_dir: Path) -> dict[str, Any]:
    """content/canned_replies.yaml: the seed of the studio's canned replies."""
    data = yaml_files.load((content_dir / "canned_replies.yaml").read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def canned_replies(db: Session, content_dir: Path, lang: str, label_lang: str) -> list[dict[str, str]]:
    """The published canned replies (the studio's, else the file's): key, category, the label in the staff
    member's language and the text in the patient's, English where a translation is missing."""
    _number, body = published_body(db, canned.KIND, canned.KEY, lambda: canned_file(content_dir))
    return [
        {
            "key": str(r.get("key", "")),
            "category": str(r.get("category", "")),
            "label": canned.text_of(r, "label", label_lang),
            "text": canned.text_of(r, "text", lang),
        }
        for r in canned.replies(body or {})
    ]


# --- the queues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListView:
    """One page of the queue as the list shows it: rows with their previews, unread counts, countdowns."""

    rows: list[inbox_queue.TaskRow]
    previews: dict[int, inbox_view.Preview]  # by task id
    unread: dict[int, int]  # by task id; absent: read
    countdowns: dict[int, inbox_view.Countdown]  # by task id; absent: closed
    query: str  # the filters as a query string, carried on links into a task and between tasks
    next_page: str | None


def list_view(
    db: Session, *, user: StaffUser, values: Mapping[str, str], filters: inbox_queue.InboxFilters
) -> ListView:
    """The rows of one page with what each row shows beside the task: four queries whatever its size."""
    now = utcnow()
    rows = inbox_queue.task_rows(db, user=user, filters=filters, now=now)
    conversations = {r.task.id: r.task.source_id for r in rows if r.task.source_type == "conversation"}
    by_conversation = inbox_view.previews(db, [c for c in conversations.values() if c], user=user)
    kept = {k: v for k, v in values.items() if v and k in FILTERS}
    following = inbox_queue.next_page(rows)
    return ListView(
        rows=rows,
        previews={t: by_conversation[c] for t, c in conversations.items() if c in by_conversation},
        unread=inbox_view.unread(db, [r.task.id for r in rows], staff_id=user.id),
        countdowns={r.task.id: c for r in rows if (c := inbox_view.countdown(r.task, now)) is not None},
        query=urlencode(kept),
        next_page=(
            urlencode({**{k: v for k, v in kept.items() if k != "after"}, "after": following.encode()})
            if following is not None
            else None
        ),
    )


def filter_choices(db: Session, user: StaffUser) -> dict[str, Any]:
    """What the filter form offers the user (her departments and their wards only)."""
    allowed = department_ids(user)
    everything = directory.departments(db)
    return {
        "queues": [k.value for k in TaskKind],
        "departments": [d for d in everything if allowed is None or d.id in allowed],
        "wards": [w for w in directory.wards(db) if allowed is None or w.department_id in allowed],
        "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
        "priorities": [p.value for p in TaskPriority],
        "statuses": [s.value for s in TaskStatus],
        "channels": [c.value for c in Channel],
        "sla_states": [s.value for s in SlaState],
        "assignees": directory.active_staff(db),
    }


@router.get("", response_class=HTMLResponse)
def inbox_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    # Filters are codes and ids, never names or phone numbers, so a link may carry them.
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in FILTERS}
    context: dict[str, Any] = {
        "staff": staff,
        "v": {name: values.get(name, "") for name in FILTERS},
        "counts": inbox_queue.queue_counts(db, user),
        **filter_choices(db, user),
        "view": None,
        "error": None,
    }
    try:
        filters = inbox_queue.parse_filters(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/inbox.html", user.language, context, 400)
    view = list_view(db, user=user, values=values, filters=filters)
    audit.record(
        db,
        "inbox.view",
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        patients=sorted({r.task.patient_id for r in view.rows if r.task.patient_id is not None}),
    )
    context["view"] = view
    return render(request, "staff/inbox.html", user.language, context)


@router.get("/export.csv")
def inbox_csv(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    """The rows the list shows under the same filters (all pages up to EXPORT_ROWS)."""
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in FILTERS}
    try:
        filters = inbox_queue.parse_filters(values)
    except InvalidFilter as exc:
        return PlainTextResponse(f"invalid filter: {exc.field}\n", status_code=400)
    now = utcnow()
    rows = inbox_queue.task_rows(db, user=user, filters=filters, now=now, limit=EXPORT_ROWS)
    audit.record(
        db,
        "inbox.export",
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        rows=len(rows),
        patients=sorted({r.task.patient_id for r in rows if r.task.patient_id is not None}),
    )
    names = {d.id: d.names.get(user.language, d.name) for d in directory.departments(db)}
    body = inbox_view.export_csv(
        rows,
        unread_counts=inbox_view.unread(db, [r.task.id for r in rows], staff_id=user.id),
        department_names=names,
        now=now,
    )
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="inbox.csv"'},
    )


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


# --- the report ----------------------------------------------------------------------------------


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    """Hand-off rate, response and resolution times for tasks raised in a period (default: 30 days)."""
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in ("start", "end")}
    context: dict[str, Any] = {"staff": staff, "v": values, "report": None, "error": None}
    try:
        period = parse_period(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, "staff/inbox_report.html", user.language, context, 400)
    end = period.end or utcnow()
    start = period.start or end - REPORT_DAYS
    context["report"] = task_report(db, user=user, start=start, end=end)
    context["period"] = (start, end)
    audit.record(
        db,
        "inbox.report",
        staff_id=user.id,
        ip=client_ip(request),
        start=start.isoformat(),
        end=end.isoformat(),
    )
    return render(request, "staff/inbox_report.html", user.language, context)

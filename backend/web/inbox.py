"""Staff inbox pages: the queues with their filters and a live count stream (one task: inbox_task.py)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import yaml
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from backend.models import (
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services import audit, directory, inbox_queue
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


@lru_cache(maxsize=2)
def canned_replies(content_dir: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load((content_dir / "canned_replies.yaml").read_text(encoding="utf-8")) or {}
    replies: list[dict[str, Any]] = data.get("replies", [])
    return replies


# --- the queues ----------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def inbox_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    # Filters are codes and ids, never names or phone numbers, so a link may carry them.
    user = staff.staff
    values = {k: v for k, v in request.query_params.items() if k in FILTERS}
    allowed = department_ids(user)
    everything = directory.departments(db)
    context: dict[str, Any] = {
        "staff": staff,
        "v": {name: values.get(name, "") for name in FILTERS},
        "queues": [k.value for k in TaskKind],
        "counts": inbox_queue.queue_counts(db, user),
        "departments": [d for d in everything if allowed is None or d.id in allowed],
        "wards": [w for w in directory.wards(db) if allowed is None or w.department_id in allowed],
        "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
        "priorities": [p.value for p in TaskPriority],
        "statuses": [s.value for s in TaskStatus],
        "channels": [c.value for c in Channel],
        "sla_states": [s.value for s in SlaState],
        "assignees": directory.active_staff(db),
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
    following = inbox_queue.next_page(rows)
    if following is not None:
        kept = {k: v for k, v in values.items() if v and k != "after"}
        context["next_page"] = urlencode({**kept, "after": following.encode()})
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

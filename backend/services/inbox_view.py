"""What the inbox shows around each task: the last message's safe preview, unread counts per staff member
(her read marker on the task), the SLA countdown, who wrote each message, and the patient sidebar."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.followup.finding_views import ResponseView
from backend.followup.response_view import response_view
from backend.messaging.links import hide_link_refs
from backend.models import (
    ConsentEvent,
    Direction,
    Message,
    OutboxItem,
    OutboxKind,
    Patient,
    StaffUser,
    Task,
    TaskRead,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services.anonymity import visible_messages
from backend.services.consents import current_consents
from backend.services.inbox_queue import TaskRow
from backend.services.spreadsheet import formula_safe

PREVIEW_CHARS = 80
# A run of 7+ digits, allowing the spaces, dashes, dots and brackets people type inside phone numbers:
# previews never show one (lists are read over shoulders; the record shows the masked number).
_PHONE = re.compile(r"\+?\d(?:[\s\-.()]*\d){6,}")
_SPACE = re.compile(r"\s+")
PHONE_MASK = "***"


def safe_preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line of a message for a list: link references shown as a link symbol, phone numbers masked,
    whitespace folded, cut at `limit`."""
    line = _SPACE.sub(" ", _PHONE.sub(PHONE_MASK, hide_link_refs(text))).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class Author(StrEnum):
    """Who a line in the conversation is from: the pane shows each differently (and says so in words)."""

    PATIENT = "patient"
    STAFF = "staff"
    BOT = "bot"
    SYSTEM = "system"  # automatic notices: outreach, emergency guidance, case outcomes


def author_of(message: Message, kind: OutboxKind | None) -> Author:
    """`kind`: the message's outbox item's kind, if it was sent through the outbox."""
    if message.direction is Direction.INBOUND:
        return Author.PATIENT
    if message.sent_by_staff_id is not None:
        return Author.STAFF
    if message.case_id is not None or (kind is not None and kind is not OutboxKind.REPLY):
        return Author.SYSTEM
    return Author.BOT


# --- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    text: str
    author: Author
    at: datetime


def previews(session: Session, conversation_ids: Sequence[int], *, user: StaffUser) -> dict[int, Preview]:
    """The last message the viewer may see in each conversation, by conversation id (two queries)."""
    if not conversation_ids:
        return {}
    last = (
        sa.select(sa.func.max(Message.id))
        .where(Message.conversation_id.in_(set(conversation_ids)), *visible_messages(user))
        .group_by(Message.conversation_id)
    )
    messages = list(session.scalars(sa.select(Message).where(Message.id.in_(last))))
    kinds = {
        message_id: kind
        for message_id, kind in session.execute(
            sa.select(OutboxItem.message_id, OutboxItem.kind).where(
                OutboxItem.message_id.in_([m.id for m in messages])
            )
        )
    }
    found: dict[int, Preview] = {}
    for m in messages:
        found[m.conversation_id] = Preview(safe_preview(m.text), author_of(m, kinds.get(m.id)), m.created_at)
    return found


def unread(session: Session, task_ids: Sequence[int], *, staff_id: int) -> dict[int, int]:
    """For each task the patient's messages in its conversation since the staff member last opened it; a
    task she has never opened counts at least one (it is new to her). Tasks she has read are absent.
    Two queries whatever the page size."""
    if not task_ids:
        return {}
    marks = set(
        session.scalars(
            sa.select(TaskRead.task_id).where(TaskRead.staff_id == staff_id, TaskRead.task_id.in_(task_ids))
        )
    )
    read = sa.and_(TaskRead.task_id == Task.id, TaskRead.staff_id == staff_id)
    newer = (
        sa.select(Task.id, sa.func.count(Message.id))
        .join(
            Message,
            sa.and_(
                Task.source_type == "conversation",
                Message.conversation_id == Task.source_id,
                Message.direction == Direction.INBOUND,
            ),
        )
        .outerjoin(TaskRead, read)
        .where(
            Task.id.in_(task_ids), sa.or_(TaskRead.read_at.is_(None), Message.created_at > TaskRead.read_at)
        )
        .group_by(Task.id)
    )
    counts = {task_id: int(n) for task_id, n in session.execute(newer)}
    for task_id in task_ids:
        if task_id not in marks:
            counts[task_id] = max(counts.get(task_id, 0), 1)
    return counts


def do_mark_task_read(session: Session, *, task_id: int, staff_id: int, now: datetime | None = None) -> None:
    """She opened the task: everything in it until now is read for her (one row per staff × task; two
    tabs opening it at once both land, the later time wins)."""
    at = now or utcnow()
    values = {"staff_id": staff_id, "task_id": task_id, "read_at": at}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(TaskRead).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["staff_id", "task_id"], set_={"read_at": statement.excluded.read_at}
        )
    )


@dataclass(frozen=True)
class Countdown:
    """Minutes until a task is due (`overdue` when past), for "due in 12 min" / "overdue 5 min"."""

    minutes: int
    overdue: bool
    hours: int
    rest: int  # minutes after the whole hours


def countdown(task: Task, now: datetime) -> Countdown | None:
    if task.status is TaskStatus.CLOSED:
        return None
    left = task.due_at - now
    overdue = left < timedelta(0)
    minutes = int(abs(left).total_seconds() // 60)
    return Countdown(minutes, overdue, minutes // 60, minutes % 60)


# --- the patient sidebar -------------------------------------------------------------------------

AGE_BANDS = (18, 40, 65, 80)


def age_band(born: date | None, today: date) -> str:
    """'40–64' rather than a birth date: enough to judge advice, less to read over a shoulder."""
    if born is None:
        return ""
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    low = 0
    for edge in AGE_BANDS:
        if age < edge:
            return f"{low}–{edge - 1}"
        low = edge
    return f"{low}+"


@dataclass(frozen=True)
class OpenForm:
    """A response whose task is still open: its findings in words with the answers (values) behind them."""

    task_id: int
    view: ResponseView


@dataclass(frozen=True)
class Sidebar:
    age_band: str
    forms: list[OpenForm]
    consents: list[ConsentEvent]
    opt_outs: list[ConsentEvent]
    open_tasks: int


SIDEBAR_FORMS = 5


def sidebar(session: Session, patient: Patient, *, lang: str, now: datetime) -> Sidebar:
    """The record summary beside a conversation: findings of the patient's responses whose tasks are not
    closed (newest first), consents given and withdrawn (an opt-out is a withdrawn consent), and how many
    of the patient's tasks are open."""
    open_tasks = list(
        session.scalars(
            sa.select(Task)
            .where(Task.patient_id == patient.id, Task.status != TaskStatus.CLOSED)
            .order_by(Task.id.desc())
        )
    )
    forms: list[OpenForm] = []
    for task in (t for t in open_tasks if t.source_type == "response"):
        view = response_view(session, task, lang)
        if view is not None and view.findings:
            forms.append(OpenForm(task.id, view))
        if len(forms) >= SIDEBAR_FORMS:
            break
    events = sorted(current_consents(session, patient.id).values(), key=lambda e: (e.purpose, e.channel))
    return Sidebar(
        age_band=age_band(patient.birth_date, now.date()),
        forms=forms,
        consents=[e for e in events if e.granted],
        opt_outs=[e for e in events if not e.granted],
        open_tasks=len(open_tasks),
    )


EXPORT_COLUMNS = (
    "task_id",
    "due_at",
    "minutes_left",
    "sla",
    "queue",
    "priority",
    "status",
    "patient",
    "department",
    "channel",
    "assignee",
    "unread",
)


def export_csv(
    rows: Sequence[TaskRow], *, unread_counts: dict[int, int], department_names: dict[int, str], now: datetime
) -> str:
    """The list's rows for a spreadsheet: codes rather than display words (the columns are documented in
    docs/inbox.md), times in UTC, no message text (previews stay on screen)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        t = row.task
        left = countdown(t, now)
        writer.writerow(
            [
                formula_safe(value)
                for value in (
                    t.id,
                    t.due_at.isoformat(),
                    "" if left is None else (-left.minutes if left.overdue else left.minutes),
                    row.sla.value if row.sla else "",
                    t.kind.value,
                    t.priority.value,
                    t.status.value,
                    row.patient_name,
                    department_names.get(t.department_id or 0, ""),
                    row.channel.value if row.channel else "",
                    row.assignee_name or "",
                    unread_counts.get(t.id, 0),
                )
            ]
        )
    return out.getvalue()

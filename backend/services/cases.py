"""Feedback cases (complaints, praise, suggestions): registering and handling them, each verb audited.

A case raises one inbox task (TaskKind.COMPLAINT, source "feedback_case"): who works on the case and
its SLA live on that task, so the inbox and the case page never disagree. The case adds what the
inbox has no idea of: kind and category, the departments involved, handling records, validity,
the patient's satisfaction with the handling. Refusals are `ActionRefused` with a reason code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    CaseDepartment,
    CaseKind,
    CaseProgress,
    CaseSource,
    Conversation,
    Department,
    FeedbackCase,
    HandlingRecord,
    Patient,
    RecordKind,
    ResolutionCode,
    Satisfaction,
    StaffUser,
    Task,
    TaskKind,
    TaskPriority,
    TaskStatus,
)
from backend.models.base import utcnow
from backend.services import audit, inbox
from backend.services.patients import department_ids
from backend.services.refusal import ActionRefused, Reason
from backend.services.tasks import do_raise_task
from bots.domain import Channel

TASK_SOURCE = "feedback_case"  # Task.source_type of a case's inbox task
MAX_TEXT = 4000
MAX_REASON = 500
DEFAULT_CATEGORY = "other"


def _audit(session: Session, case: FeedbackCase, action: str, staff_id: int | None, **detail: Any) -> None:
    """Case audit rows: ids and codes only, never what the patient or staff wrote."""
    audit.record(
        session,
        f"case.{action}",
        staff_id=staff_id,
        patient_id=case.patient_id,
        subject=("case", case.id),
        ip=detail.pop("ip", None),
        **detail,
    )


def _text(value: str, reason: Reason, limit: int = MAX_TEXT) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise ActionRefused(reason)
    return value


def _source_of(actor: str, channel: Channel | None) -> tuple[CaseSource, int | None]:
    """`actor` as the chat flows give it: "staff:<id>" (on the phone), "patient" (the mobile page),
    "survey…" (a survey's free text); anything else ("bot", "chat", a flow id) is a chat flow."""
    if actor.startswith("staff:") and actor[6:].isdigit():
        return CaseSource.PHONE, int(actor[6:])
    if actor == "patient":
        return CaseSource.MOBILE, None
    if actor.startswith("survey"):
        return CaseSource.SURVEY, None
    return CaseSource.CHAT, None


def do_register_case(
    session: Session,
    *,
    kind: str,
    text: str,
    patient_id: int | None,
    anonymous: bool,
    department_id: int | None,
    channel: str | None,
    conversation_id: int | None,
    actor: str,
) -> FeedbackCase:
    """The entry point the chat flows use (agreed signature): category "other", refined by staff."""
    channel_value = Channel(channel) if channel else None
    source, staff_id = _source_of(actor, channel_value)
    return register(
        session,
        kind=CaseKind(kind),
        category=DEFAULT_CATEGORY,
        text=text,
        patient_id=patient_id,
        anonymous=anonymous,
        department_id=department_id,
        source=source,
        channel=channel_value,
        conversation_id=conversation_id,
        staff_id=staff_id,
        actor=actor,
    )


def register(
    session: Session,
    *,
    kind: CaseKind,
    category: str,
    text: str,
    patient_id: int | None,
    anonymous: bool,
    department_id: int | None,
    source: CaseSource,
    channel: Channel | None = None,
    conversation_id: int | None = None,
    staff_id: int | None = None,
    actor: str | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> FeedbackCase:
    """Store the case and raise its inbox task in the complaints queue (complaints: high priority)."""
    text = _text(text, Reason.TEXT_LENGTH)
    if patient_id is not None and session.get(Patient, patient_id) is None:
        raise ActionRefused(Reason.NO_SUCH_PATIENT)
    if department_id is not None and session.get(Department, department_id) is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    if conversation_id is not None and session.get(Conversation, conversation_id) is None:
        raise ActionRefused(Reason.NO_SUCH_CONVERSATION)
    now = now or utcnow()
    case = FeedbackCase(
        kind=kind,
        category=category,
        text=text,
        patient_id=patient_id,
        anonymous=anonymous,
        source=source,
        channel=channel,
        conversation_id=conversation_id,
        department_id=department_id,
        progress=CaseProgress.NEW,
        registered_by_id=staff_id,
        created_at=now,
    )
    session.add(case)
    session.flush()
    task = do_raise_task(
        session,
        kind=TaskKind.COMPLAINT,
        priority=TaskPriority.HIGH if kind is CaseKind.COMPLAINT else TaskPriority.LOW,
        title=f"{kind.value}:{category}",
        source=(TASK_SOURCE, case.id),
        patient_id=None if anonymous else patient_id,  # the inbox shows no name for an anonymous case
        department_id=department_id,
        now=now,
    )
    case.task_id = task.id
    _audit(
        session,
        case,
        "register",
        staff_id,
        ip=ip,
        kind=kind.value,
        category=category,
        source=source.value,
        department=department_id,
        anonymous=anonymous,
        actor=actor,
        task=task.id,
    )
    return case


# --- handling --------------------------------------------------------------------------------------


def task_of(session: Session, case: FeedbackCase) -> Task:
    if case.task_id is None:
        raise ActionRefused(Reason.NO_TASK)
    return session.get_one(Task, case.task_id)


def _open(case: FeedbackCase) -> None:
    if case.progress is CaseProgress.CLOSED:
        raise ActionRefused(Reason.CLOSED)


def _working(case: FeedbackCase) -> None:
    if case.progress is CaseProgress.NEW:
        case.progress = CaseProgress.IN_PROGRESS


def do_claim_case(
    session: Session, *, case: FeedbackCase, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> None:
    """Take the case. The task is claimed with a conditional update: of two agents claiming at once one
    wins and the other gets ActionRefused(Reason.ALREADY_CLAIMED)."""
    _open(case)
    inbox.do_claim(session, task=task_of(session, case), staff_id=staff_id, ip=ip, now=now)
    _working(case)
    _audit(session, case, "claim", staff_id, ip=ip)


def do_assign_case(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    assignee: StaffUser,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    _open(case)
    inbox.do_assign(
        session, task=task_of(session, case), staff_id=staff_id, assignee=assignee, ip=ip, now=now
    )
    _working(case)
    _audit(session, case, "assign", staff_id, ip=ip, to=assignee.id)


def do_transfer_case(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    department_id: int,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    """Make another department the lead; its queue gets the task, unassigned."""
    _open(case)
    if session.get(Department, department_id) is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    inbox.do_transfer(
        session, task=task_of(session, case), staff_id=staff_id, department_id=department_id, ip=ip, now=now
    )
    previous, case.department_id = case.department_id, department_id
    session.execute(
        sa.delete(CaseDepartment).where(
            CaseDepartment.case_id == case.id, CaseDepartment.department_id == department_id
        )
    )
    _audit(session, case, "transfer", staff_id, ip=ip, to=department_id, previous=previous)


def do_add_collaborator(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    department_id: int,
    assignee: StaffUser | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> CaseDepartment:
    """Another department works on the case too (多部门联合处理): it then sees it and adds records."""
    _open(case)
    if session.get(Department, department_id) is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    existing = session.get(CaseDepartment, (case.id, department_id))
    if department_id == case.department_id or existing is not None:
        raise ActionRefused(Reason.ALREADY_INVOLVED)
    if assignee is not None:
        allowed = department_ids(assignee)
        if not assignee.active or (allowed is not None and department_id not in allowed):
            raise ActionRefused(Reason.ASSIGNEE_OUTSIDE_DEPARTMENT)
    link = CaseDepartment(
        case_id=case.id,
        department_id=department_id,
        assignee_id=assignee.id if assignee else None,
        added_by_id=staff_id,
        added_at=now or utcnow(),
    )
    session.add(link)
    session.flush()
    _working(case)
    _audit(session, case, "collaborate", staff_id, ip=ip, department=department_id, assignee=link.assignee_id)
    return link


def involved_departments(session: Session, case: FeedbackCase) -> list[int]:
    """The lead department first, then the collaborating ones in the order they joined."""
    others = session.scalars(
        sa.select(CaseDepartment.department_id)
        .where(CaseDepartment.case_id == case.id)
        .order_by(CaseDepartment.added_at)
    )
    lead = [case.department_id] if case.department_id is not None else []
    return lead + [d for d in others if d != case.department_id]


def do_add_record(
    session: Session,
    *,
    case: FeedbackCase,
    author: StaffUser,
    kind: RecordKind,
    text: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> HandlingRecord:
    """A handling record, written on behalf of the first involved department the author belongs to."""
    _open(case)
    text = _text(text, Reason.RECORD_LENGTH)
    mine = {d.id for d in author.departments}
    on_behalf = next((d for d in involved_departments(session, case) if d in mine), None)
    record = HandlingRecord(
        case_id=case.id,
        kind=kind,
        author_id=author.id,
        department_id=on_behalf,
        text=text,
        at=now or utcnow(),
    )
    session.add(record)
    session.flush()
    _working(case)
    _audit(session, case, "record", author.id, ip=ip, record=record.id, kind=kind.value, department=on_behalf)
    return record


def do_close_case(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    summary: str,
    code: ResolutionCode = ResolutionCode.RESOLVED,
    ip: str | None = None,
    now: datetime | None = None,
) -> None:
    """Close with a summary (the handling report's conclusion); the inbox task closes with it."""
    _open(case)
    summary = _text(summary, Reason.SUMMARY_LENGTH)
    now = now or utcnow()
    task = task_of(session, case)
    if task.status is not TaskStatus.CLOSED:
        inbox.do_close(session, task=task, staff_id=staff_id, code=code, summary=summary, ip=ip, now=now)
    case.progress, case.summary, case.closed_at = CaseProgress.CLOSED, summary, now
    _audit(session, case, "close", staff_id, ip=ip, code=code.value)


def do_reopen_case(
    session: Session, *, case: FeedbackCase, staff_id: int, ip: str | None = None, now: datetime | None = None
) -> None:
    if case.progress is not CaseProgress.CLOSED:
        raise ActionRefused(Reason.NOT_CLOSED)
    task = task_of(session, case)
    if task.status is TaskStatus.CLOSED:
        inbox.do_reopen(session, task=task, staff_id=staff_id, ip=ip, now=now)
    case.progress, case.closed_at = CaseProgress.IN_PROGRESS, None
    _audit(session, case, "reopen", staff_id, ip=ip)


def do_set_validity(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int,
    valid: bool,
    reason: str = "",
    ip: str | None = None,
) -> None:
    """Valid or invalid (有效/无效); an invalid case needs the reason."""
    reason = reason.strip()
    if not valid and not reason:
        raise ActionRefused(Reason.REASON_REQUIRED)
    if len(reason) > MAX_REASON:
        raise ActionRefused(Reason.REASON_LENGTH)
    case.valid, case.invalid_reason = valid, (None if valid else reason)
    _audit(session, case, "validity", staff_id, ip=ip, valid=valid)


def do_record_satisfaction(
    session: Session,
    *,
    case: FeedbackCase,
    staff_id: int | None,
    satisfaction: Satisfaction,
    ip: str | None = None,
) -> None:
    """The patient's satisfaction with how the case was handled, asked once it is closed: recorded by staff
    (who asked on the phone; they may correct it), or given by the patient on the mobile page
    (`staff_id` None), once: a second rating of theirs is refused."""
    if case.progress is not CaseProgress.CLOSED:
        raise ActionRefused(Reason.NOT_CLOSED)
    if staff_id is None and case.satisfaction is not None:
        raise ActionRefused(Reason.ALREADY_RATED)
    case.satisfaction = satisfaction
    _audit(
        session,
        case,
        "satisfaction",
        staff_id,
        ip=ip,
        satisfaction=satisfaction.value,
        by="staff" if staff_id is not None else "patient",
    )

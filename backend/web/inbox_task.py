"""One inbox task: its page with the conversation and history, and the actions on it (claim … reply)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.response_view import response_view
from backend.models import (
    Department,
    Patient,
    ResolutionCode,
    StaffSession,
    StaffUser,
    Task,
)
from backend.models.base import utcnow
from backend.outbox.sender import kick
from backend.services import audit, directory, inbox, inbox_queue, inbox_view, mentions
from backend.services.message_log import InvalidFilter
from backend.services.refusal import ActionRefused, Reason
from backend.web.actions import denied, perform
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.inbox import FILTERS, ListView, canned_replies, list_view
from backend.web.staff import render
from backend.web.workflow import Actor, Workflow, add_workflow_routes
from bots.domain import pick_language

# Registered after backend.web.inbox's router, whose /staff/inbox/events must match before /{task_id}.
router = APIRouter(prefix="/staff/inbox")


# --- the page ------------------------------------------------------------------------------------


def _denied(request: Request, db: Session, staff: StaffSession, task_id: int) -> Response:
    """Another department's task (or none): the attempt is kept."""
    return denied(request, db, staff, subject=("task", task_id), exists=db.get(Task, task_id) is not None)


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
    messages, outbox = (
        inbox_queue.recent_messages(db, conversation.id, user=user) if conversation else ([], {})
    )
    people = directory.active_staff(db)
    everything = directory.departments(db)
    view, neighbours = _beside(request, db, user, task)
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
            "authors": {
                m.id: inbox_view.author_of(m, i.kind if (i := outbox.get(m.id)) else None) for m in messages
            },
            "view": view,
            "previous": neighbours[0],
            "next": neighbours[1],
            "countdown": inbox_view.countdown(task, utcnow()),
            "sidebar": inbox_view.sidebar(db, patient, lang=user.language, now=utcnow()) if patient else None,
            "events": inbox_queue.events_of(db, task.id),
            # a form's findings and answers come first: they are why the task exists
            "form": response_view(db, task, user.language),
            "names": {p.id: p.display_name for p in people},
            "assignable": [p for p in people if inbox_queue.may_handle(p, task)],
            "departments": everything,
            "department_names": {d.id: d.names.get(user.language, d.name) for d in everything},
            "codes": [c.value for c in ResolutionCode],
            "canned": canned_replies(db, get_settings().content_dir, lang, user.language),
            "error": error,
            "safety": request.query_params.get("safety"),  # what marking a message for review did
            "draft": draft,
            "may_act": inbox_queue.may_handle(user, task),  # else only mentioned: read and add notes
        },
        status,
    )


def _beside(
    request: Request, db: Session, user: StaffUser, task: Task
) -> tuple[ListView | None, tuple[int | None, int | None]]:
    """The list column beside the conversation (the inbox's filters, carried on the link that led here;
    unusable ones fall back to the default queue), and the tasks before and after this one in it."""
    values = {k: v for k, v in request.query_params.items() if k in FILTERS}
    try:
        filters = inbox_queue.parse_filters(values)
    except InvalidFilter:
        values, filters = {}, inbox_queue.parse_filters({})
    view = list_view(db, user=user, values=values, filters=filters)
    ids = [r.task.id for r in view.rows]
    if task.id not in ids:
        return view, (None, ids[0] if ids else None)
    at = ids.index(task.id)
    return view, (ids[at - 1] if at > 0 else None, ids[at + 1] if at + 1 < len(ids) else None)


@router.get("/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: int, db: SessionDep, staff: StaffDep) -> Response:
    task = inbox_queue.task_for(db, user=staff.staff, task_id=task_id)
    if task is None:
        return _denied(request, db, staff, task_id)
    mentions.do_mark_read(db, task_id=task.id, staff_id=staff.staff_id)  # opening it reads her mentions
    inbox_view.do_mark_task_read(db, task_id=task.id, staff_id=staff.staff_id)  # and its messages so far
    return _task_page(request, db, staff, task)


def _find(request: Request, db: Session, staff: StaffSession, task_id: int) -> Callable[[], Task | Response]:
    def find() -> Task | Response:
        task = inbox_queue.task_for(db, user=staff.staff, task_id=task_id)
        return _denied(request, db, staff, task_id) if task is None else task

    return find


def _not_a_case(task: Task) -> None:
    """A feedback case's task closes, reopens and moves with its case (its page keeps both in step)."""
    if task.source_type == "feedback_case":
        raise ActionRefused(Reason.HANDLED_ON_CASE_PAGE)


def _perform(
    request: Request,
    db: Session,
    staff: StaffSession,
    task_id: int,
    token: str,
    verb: Callable[[Task], object],
    *,
    drafts: dict[str, str] | None = None,
    keep_refusal: bool = False,
    after: Callable[[], None] | None = None,
    notes: bool = False,
) -> Response:
    """Back to the task (or to the inbox when it has moved out of her departments), or to its page
    with the refusal (409) and the reply's draft kept. Only a note (`notes`) may come from a colleague
    who sees the task because she was mentioned on it: handling it (claim, assign, transfer, reply,
    close, reopen, hand back) is for its department's staff."""

    def handled(task: Task) -> object:
        if not notes and not inbox_queue.may_handle(staff.staff, task):
            raise ActionRefused(Reason.MENTIONED_ONLY)
        return verb(task)

    def refused(task: Task, exc: ActionRefused) -> Response:
        db.refresh(task)
        draft = (drafts or {}).get("reply", "")
        return _task_page(request, db, staff, task, error=exc.reason, draft=draft, status=409)

    def done(task: Task) -> Response:
        if after is not None:
            after()
        if not notes and not inbox_queue.may_handle(staff.staff, task):
            return RedirectResponse("/staff/inbox", status_code=303)  # transferred out of her departments
        return RedirectResponse(f"/staff/inbox/{task_id}", status_code=303)

    return perform(
        db,
        staff,
        token,
        find=_find(request, db, staff, task_id),
        verb=handled,
        refused=refused,
        done=done,
        keep_refusal=keep_refusal,
    )


def _closing(
    code: str = Form(max_length=32), summary: str = Form(default="", max_length=inbox.MAX_NOTE * 2)
) -> dict[str, str]:
    return {"code": code, "summary": summary}  # the task page keeps only a reply's draft


def _transfer(a: Actor, task: Task, department: int) -> None:
    _not_a_case(task)
    if a.db.get(Department, department) is None:
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    inbox.do_transfer(a.db, task=task, staff_id=a.staff_id, department_id=department, ip=a.ip)


def _close(a: Actor, task: Task, fields: dict[str, str]) -> None:
    _not_a_case(task)
    if fields["code"] not in set(ResolutionCode):
        raise ActionRefused(Reason.NO_SUCH_CODE)
    code = ResolutionCode(fields["code"])
    inbox.do_close(a.db, task=task, staff_id=a.staff_id, code=code, summary=fields["summary"], ip=a.ip)


def _reopen(a: Actor, task: Task) -> None:
    _not_a_case(task)
    inbox.do_reopen(a.db, task=task, staff_id=a.staff_id, ip=a.ip)


add_workflow_routes(
    router,
    Workflow[Task](
        id_name="task_id",
        perform=_perform,
        claim=lambda a, task: inbox.do_claim(a.db, task=task, staff_id=a.staff_id, ip=a.ip),
        assign=lambda a, task, person: inbox.do_assign(
            a.db, task=task, staff_id=a.staff_id, assignee=person, ip=a.ip
        ),
        transfer=_transfer,
        close_form=_closing,
        close=_close,
        reopen=_reopen,
    ),
)


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

    return _perform(request, db, staff, task_id, csrf_token, verb, notes=True)


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
    queued: list[int] = []

    def verb(task: Task) -> None:
        body = text
        if not body.strip() and canned:  # without JavaScript, picking a canned reply sends it as it is
            patient = db.get(Patient, task.patient_id) if task.patient_id else None
            lang = pick_language(patient.language if patient else get_settings().default_language)
            texts = canned_replies(db, get_settings().content_dir, lang, lang)
            found = [c["text"] for c in texts if c["key"] == canned]
            body = found[0] if found else ""
        _, item_id = inbox.do_reply(db, task=task, staff_id=staff.staff_id, text=body, ip=client_ip(request))
        queued.extend([item_id] if item_id is not None else [])

    def after() -> None:
        for item_id in queued:
            kick(item_id)  # after the commit: the sender re-checks consent and the channel's window

    # A refused reply has written only its audit row, which is kept with the draft.
    return _perform(
        request, db, staff, task_id, csrf_token, verb, drafts={"reply": text}, keep_refusal=True, after=after
    )


@router.post("/{task_id}/hand-back")
def hand_back(
    request: Request, task_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    def verb(task: Task) -> None:
        inbox.do_hand_back(db, task=task, staff_id=staff.staff_id, ip=client_ip(request))

    return _perform(request, db, staff, task_id, csrf_token, verb)

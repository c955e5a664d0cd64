"""Actions on a feedback case from its page: each checks the CSRF token and the case's scope, runs a
`do_*` verb, and comes back to the case, or shows the refusal (409) with what was typed kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import FeedbackCase, RecordKind, Satisfaction, StaffSession, StaffUser
from backend.outbox.sender import kick
from backend.services import case_files, case_notice, case_queries, cases, inbox_queue
from backend.services.ids import parse_id
from backend.services.refusal import ActionRefused, NotSent, Reason
from backend.web.actions import perform
from backend.web.cases import NOTICE_CHANNELS, case_page_response, denied
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.ids import id_form
from backend.web.workflow import Workflow, add_workflow_routes
from bots.domain import Channel

router = APIRouter(prefix="/staff/cases")


# --- actions -------------------------------------------------------------------------------------


def _perform(
    request: Request,
    db: Session,
    staff: StaffSession,
    case_id: int,
    token: str,
    verb: Callable[[FeedbackCase], object],
    *,
    lead_only: bool = True,
    drafts: dict[str, str] | None = None,
    keep_refusal: bool = False,
    after: Callable[[], None] | None = None,
) -> Response:
    """Scope (the lead department's staff for what moves the task), the verb, then back to the case or
    its refusal (409) with what was typed kept in the form."""

    def find() -> FeedbackCase | Response:
        case = case_queries.case_for(db, user=staff.staff, case_id=case_id)
        return denied(request, db, staff, case_id) if case is None else case

    def checked(case: FeedbackCase) -> object:
        if lead_only and (
            case.task_id is None or not inbox_queue.may_handle(staff.staff, cases.task_of(db, case))
        ):
            raise ActionRefused(Reason.LEAD_DEPARTMENT_ONLY)
        return verb(case)

    def refused(case: FeedbackCase, exc: ActionRefused) -> Response:
        db.refresh(case)
        return case_page_response(request, db, staff, case, error=exc.reason, drafts=drafts, status=409)

    def done(case: FeedbackCase) -> Response:
        if after is not None:
            after()
        if case_queries.case_for(db, user=staff.staff, case_id=case_id) is None:
            return RedirectResponse("/staff/cases", status_code=303)  # transferred out of her departments
        return RedirectResponse(f"/staff/cases/{case_id}", status_code=303)

    return perform(
        db, staff, token, find=find, verb=checked, refused=refused, done=done, keep_refusal=keep_refusal
    )


def _closing(summary: str = Form(default="", max_length=cases.MAX_TEXT * 2)) -> dict[str, str]:
    return {"summary": summary}


add_workflow_routes(
    router,
    Workflow[FeedbackCase](
        id_name="case_id",
        perform=_perform,
        claim=lambda a, case: cases.do_claim_case(a.db, case=case, staff_id=a.staff_id, ip=a.ip),
        assign=lambda a, case, person: cases.do_assign_case(
            a.db, case=case, staff_id=a.staff_id, assignee=person, ip=a.ip
        ),
        transfer=lambda a, case, department: cases.do_transfer_case(
            a.db, case=case, staff_id=a.staff_id, department_id=department, ip=a.ip
        ),
        close_form=_closing,
        close=lambda a, case, fields: cases.do_close_case(
            a.db, case=case, staff_id=a.staff_id, summary=fields["summary"], ip=a.ip
        ),
        close_drafts=("summary",),
        reopen=lambda a, case: cases.do_reopen_case(a.db, case=case, staff_id=a.staff_id, ip=a.ip),
    ),
)


@router.post("/{case_id}/collaborate")
def collaborate(
    request: Request,
    case_id: int,
    db: SessionDep,
    staff: StaffDep,
    department: int = id_form(),
    assignee: str = Form(default="", max_length=12),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(case: FeedbackCase) -> None:
        chosen = parse_id(assignee)
        person = db.get(StaffUser, chosen) if chosen is not None else None
        if assignee and person is None:
            raise ActionRefused(Reason.ASSIGNEE_OUTSIDE_DEPARTMENT)
        cases.do_add_collaborator(
            db,
            case=case,
            staff_id=staff.staff_id,
            department_id=department,
            assignee=person,
            ip=client_ip(request),
        )

    return _perform(request, db, staff, case_id, csrf_token, verb)


@router.post("/{case_id}/record")
def add_record(
    request: Request,
    case_id: int,
    db: SessionDep,
    staff: StaffDep,
    kind: str = Form(max_length=32),
    text: str = Form(default="", max_length=cases.MAX_TEXT * 2),
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: str = Form(max_length=128),
) -> Response:
    """A handling record, with a file as its evidence if one is chosen; a refused file stores neither."""
    settings = get_settings()

    def verb(case: FeedbackCase) -> None:
        if kind not in set(RecordKind):
            raise ActionRefused(Reason.NO_SUCH_RECORD_KIND)
        record = cases.do_add_record(
            db, case=case, author=staff.staff, kind=RecordKind(kind), text=text, ip=client_ip(request)
        )
        if file is not None and file.filename:
            data = file.file.read(settings.max_attachment_bytes + 1)  # one byte over is enough to refuse
            case_files.do_attach(
                db,
                settings,
                case=case,
                staff_id=staff.staff_id,
                filename=file.filename,
                data=data,
                record=record,
                ip=client_ip(request),
            )

    return _perform(
        request,
        db,
        staff,
        case_id,
        csrf_token,
        verb,
        lead_only=False,
        drafts={"record": text, "record_kind": kind},
    )


@router.post("/{case_id}/validity")
def validity(
    request: Request,
    case_id: int,
    db: SessionDep,
    staff: StaffDep,
    valid: str = Form(max_length=8),
    reason: str = Form(default="", max_length=cases.MAX_REASON * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(case: FeedbackCase) -> None:
        if valid not in ("yes", "no"):
            raise ActionRefused(Reason.NO_SUCH_CHOICE)
        cases.do_set_validity(
            db, case=case, staff_id=staff.staff_id, valid=valid == "yes", reason=reason, ip=client_ip(request)
        )

    return _perform(request, db, staff, case_id, csrf_token, verb, drafts={"reason": reason})


@router.post("/{case_id}/satisfaction")
def satisfaction(
    request: Request,
    case_id: int,
    db: SessionDep,
    staff: StaffDep,
    value: str = Form(max_length=32),
    csrf_token: str = Form(max_length=128),
) -> Response:
    def verb(case: FeedbackCase) -> None:
        if value not in set(Satisfaction):
            raise ActionRefused(Reason.NO_SUCH_CHOICE)
        cases.do_record_satisfaction(
            db, case=case, staff_id=staff.staff_id, satisfaction=Satisfaction(value), ip=client_ip(request)
        )

    return _perform(request, db, staff, case_id, csrf_token, verb, lead_only=False)


@router.post("/{case_id}/notify")
def notify(
    request: Request,
    case_id: int,
    db: SessionDep,
    staff: StaffDep,
    channel: str = Form(max_length=16),
    text: str = Form(default="", max_length=case_notice.MAX_NOTICE * 2),
    csrf_token: str = Form(max_length=128),
) -> Response:
    """Send the outcome to the patient, or show why not with the draft kept (on the case, too)."""
    queued: list[int] = []

    def verb(case: FeedbackCase) -> None:
        if channel not in {c.value for c in NOTICE_CHANNELS}:
            raise ActionRefused(Reason.CHANNEL_NOT_SUPPORTED)
        result = case_notice.do_notify_outcome(
            db, case=case, staff_id=staff.staff_id, channel=Channel(channel), text=text, ip=client_ip(request)
        )
        if result.refused is not None:
            raise NotSent(result.refused)  # the draft on the case and the audit row are kept
        queued.extend([result.outbox_id] if result.outbox_id is not None else [])

    def after() -> None:
        for item_id in queued:
            kick(item_id)  # after the commit: the sender re-checks consent, quiet hours and windows

    return _perform(
        request,
        db,
        staff,
        case_id,
        csrf_token,
        verb,
        lead_only=False,
        drafts={"notice": text},
        keep_refusal=True,
        after=after,
    )

"""The follow-up plan editor under /staff/studio: the plans list, a new plan, the draft editor with its live
population preview, and pausing or resuming a published plan. Review, approval, history, diff and rollback
are the studio's own routes (backend/web/studio.py), as for every kind."""

from __future__ import annotations

import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from backend.audiences.plans import plan_population
from backend.content import revisions as rv
from backend.content.kinds import Problem
from backend.content.plan import KIND, plan_from_body, questionnaire_problems, skeleton, validate
from backend.content.plan_form import body_from_form, form_values
from backend.followup.plan_control import do_pause_plan, do_resume_plan, open_tasks_by_revision
from backend.followup.plan_list import STATES, PlanFilters, plan_rows, rows_csv
from backend.models import (
    ContentItem,
    ContentRevision,
    Department,
    EncounterKind,
    FollowUpPlan,
    QuestionnaireVersion,
    StaffSession,
    Ward,
)
from backend.models.base import utcnow
from backend.models.patients import EXCLUSION_FLAGS
from backend.services import audit
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render
from backend.web.studio import denied, item_url, revision_of, save_typed_draft
from bots.domain import Channel

router = APIRouter(prefix="/staff/studio")
PLAN_KEY = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


async def _form(request: Request) -> FormData:
    """The posted form with its repeated fields (checkboxes), read before the synchronous route runs."""
    return await request.form()


FormDataDep = Annotated[FormData, Depends(_form)]


def _lists(raw: FormData) -> dict[str, list[str]]:
    return {key: [v for v in raw.getlist(key) if isinstance(v, str)] for key in raw}


@router.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    filters = PlanFilters.parse(dict(request.query_params))
    rows = plan_rows(db, filters)
    audit.record(db, "plan.list", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    context = {
        "staff": staff,
        "rows": rows,
        "filters": filters,
        "states": STATES,
        "error": request.query_params.get("error", "")[:64],
    }
    return render(request, "staff/studio/plans.html", staff.staff.language, context)


@router.get("/plans/export.csv")
def plans_export(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    rows = plan_rows(db, PlanFilters.parse(dict(request.query_params)))
    audit.record(db, "plan.export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    return PlainTextResponse(
        rows_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="plans.csv"'},
    )


@router.post("/plans/new")
def new_plan(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    key: str = Form(default="", max_length=80),
    name: str = Form(default="", max_length=200),
) -> Response:
    """A new plan's first draft (a key already in the studio opens that plan)."""
    check_csrf(staff, csrf_token)
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    key = key.strip()
    if not PLAN_KEY.fullmatch(key):
        return RedirectResponse("/staff/studio/plans?error=plan_key", status_code=303)
    try:
        item = rv.get_item(db, KIND, key)
        return RedirectResponse(item_url(item), status_code=303)
    except ActionRefused:
        item = rv.get_item(db, KIND, key, create=True, clinical=True)
    draft = rv.do_start_draft(db, item, staff.staff, body=skeleton(name.strip() or key))
    return RedirectResponse(item_url(item, draft.number), status_code=303)


def _choices(db: Session) -> dict[str, Any]:
    published = db.scalars(sa.select(QuestionnaireVersion.questionnaire_id).distinct()).all()
    return {
        "departments": db.scalars(sa.select(Department).order_by(Department.id)).all(),
        "wards": db.scalars(sa.select(Ward).order_by(Ward.id)).all(),
        "questionnaires": sorted(published),
        "encounter_kinds": [k.value for k in EncounterKind],
        "channel_choices": [c.value for c in Channel],
        "flags": EXCLUSION_FLAGS,
    }


def _problems(db: Session, body: dict[str, Any]) -> list[Problem]:
    return validate(body) + questionnaire_problems(db, body)


def _editor(
    request: Request,
    db: Session,
    staff: StaffSession,
    item: ContentItem,
    revision: ContentRevision,
    *,
    body: dict[str, Any] | None = None,
    error: str = "",
    population: Any = None,
    status: int = 200,
) -> Response:
    shown = dict(revision.body if body is None else body)
    plan = db.scalar(sa.select(FollowUpPlan).where(FollowUpPlan.content_key == item.key))
    problems = _problems(db, shown)
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "form": form_values(shown),
        "problems": problems,
        "by_field": {p.where for p in problems},
        "error": error[:64],
        "plan": plan,
        "running": open_tasks_by_revision(db, plan.id) if plan is not None else {},
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
        "population": population,
        **_choices(db),
    }
    if population is not None:
        context["departments_by_id"] = {d.id: d for d in context["departments"]}
    return render(request, "staff/studio/plan.html", staff.staff.language, context, status)


@router.get("/items/plans/{key}/r/{number}", response_class=HTMLResponse)
def editor_page(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    return _editor(request, db, staff, *found, error=request.query_params.get("error", ""))


@router.post("/items/plans/{key}/r/{number}/save", response_class=HTMLResponse)
def save(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    form = _lists(raw)
    check_csrf(staff, (form.get("csrf_token") or [""])[0])
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = body_from_form(form)
    refused = save_typed_draft(db, item, number, staff, (form.get("version") or [""])[0], body)
    if refused is not None:  # the page comes back with what was typed, and says someone saved meanwhile
        reason, revision = refused
        return _editor(request, db, staff, item, revision, body=body, error=reason, status=409)
    return RedirectResponse(f"{item_url(item, number)}?saved=1", status_code=303)


@router.post("/items/plans/{key}/r/{number}/preview", response_class=HTMLResponse)
def preview(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, raw: FormDataDep
) -> Response:
    """The population of the form as typed, saved or not: the whole editor, or (for the editor's script,
    `fragment=1`) the preview alone. Nothing is stored but the audit row of who looked at which sample."""
    form = _lists(raw)
    check_csrf(staff, (form.get("csrf_token") or [""])[0])
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = body_from_form(form)
    population = None
    if not validate(body):
        population = plan_population(db, _unsaved(db, item.key, body), utcnow())
        audit.record(
            db,
            "plan.preview",
            staff_id=staff.staff_id,
            ip=client_ip(request),
            key=item.key,
            patients=[p.id for p in population.sample],
        )
    if (form.get("fragment") or [""])[0] == "1":
        context = {
            "staff": staff,
            "population": population,
            "problems": _problems(db, body),
            "departments_by_id": {d.id: d for d in db.scalars(sa.select(Department))},
        }
        return render(request, "staff/studio/_plan_preview.html", staff.staff.language, context)
    return _editor(request, db, staff, item, revision, body=body, population=population)


@router.post("/items/plans/{key}/r/{number}/submit")
def submit(
    request: Request,
    key: str,
    number: int,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    """The studio's submit, refusing as well a plan whose questionnaire is retired (publishing would)."""
    check_csrf(staff, csrf_token)
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    try:
        if problems := questionnaire_problems(db, revision.body):
            raise rv.ContentInvalid(problems)
        rv.do_submit(db, item, number, staff.staff)
    except ActionRefused as exc:
        db.rollback()
        return RedirectResponse(f"{item_url(item, number)}?error={exc.reason}", status_code=303)
    return RedirectResponse(f"{item_url(item, number)}?done=submit", status_code=303)


def _unsaved(db: Session, key: str, body: dict[str, Any]) -> FollowUpPlan:
    """The body as a plan row nobody saves: it keeps the published plan's id (its stable sample, and it is
    not its own overlap). Built outside the session, so the request's commit cannot store it."""
    plan = plan_from_body(body)
    published = db.scalar(sa.select(FollowUpPlan.id).where(FollowUpPlan.content_key == key))
    plan.id = published  # type: ignore[assignment]
    return plan


def _toggle(request: Request, key: str, db: Session, staff: StaffSession, pause: bool) -> Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    plan = db.scalar(sa.select(FollowUpPlan).where(FollowUpPlan.content_key == key))
    if plan is None:
        return denied(request, staff, missing=True)
    try:
        (do_pause_plan if pause else do_resume_plan)(db, plan, staff.staff)
    except ActionRefused as exc:
        db.rollback()
        return RedirectResponse(f"/staff/studio/plans?error={exc.reason}", status_code=303)
    return RedirectResponse(f"/staff/studio/plans?done={'paused' if pause else 'resumed'}", status_code=303)


@router.post("/plans/{key}/pause")
def pause(
    request: Request, key: str, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    return _toggle(request, key, db, staff, True)


@router.post("/plans/{key}/resume")
def resume(
    request: Request, key: str, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    return _toggle(request, key, db, staff, False)

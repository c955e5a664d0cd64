"""The content studio's pages under /staff/studio: home, the text editor, history, diff, and the
lifecycle buttons. Routes parse, call a verb of backend/content or a studio query, render."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import review, studio
from backend.content import revisions as rv
from backend.content.bundle import BundleError, seed_site
from backend.content.kinds import retirable
from backend.content.texts import WECHAT_TEXT_BYTES, merge_edits
from backend.models import ContentItem, ContentRevision, StaffSession
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.filtered import FormDep
from backend.web.local_time import from_local_field
from backend.web.staff import check_csrf, render
from bots.domain import LANGUAGES

router = APIRouter(prefix="/staff/studio")
ACTIONS = ("submit", "approve", "reject", "rollback")


def denied(request: Request, staff: StaffSession, missing: bool = False) -> Response:
    context = {"staff": staff, "missing": missing}
    return render(request, "staff/denied.html", staff.staff.language, context, 404 if missing else 403)


def _item(
    request: Request, db: SessionDep, staff: StaffSession, kind: str, key: str
) -> ContentItem | Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    try:
        return rv.get_item(db, kind, key)
    except ActionRefused:
        return denied(request, staff, missing=True)


def item_url(item: ContentItem, number: int | None = None) -> str:
    base = f"/staff/studio/items/{item.kind}/{item.key}"
    return base if number is None else f"{base}/r/{number}"


@router.get("", response_class=HTMLResponse)
def home_page(request: Request, db: SessionDep, staff: StaffDep, error: str = "") -> Response:
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    today = datetime.now(ZoneInfo(get_settings().default_timezone)).date()
    context = {"staff": staff, "home": studio.home(db, staff.staff, today), "error": error[:64]}
    return render(request, "staff/studio/home.html", staff.staff.language, context)


@router.post("/seed")
def seed(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    """The message and flow files into the studio: a new site's first published texts and flows, or a
    draft of what changed."""
    check_csrf(staff, csrf_token)
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    try:
        done, *_ = seed_site(db, get_settings().content_dir)
    except BundleError:
        db.rollback()  # the texts too: a site is seeded whole or not at all
        return RedirectResponse("/staff/studio?error=content_invalid", status_code=303)
    audit.record(
        db, "content.files_imported", staff_id=staff.staff_id, ip=client_ip(request), number=done.number
    )
    return RedirectResponse(f"/staff/studio/items/{done.kind}/{done.key}", status_code=303)


@router.get("/items/{kind}/{key}", response_class=HTMLResponse)
def item_page(
    request: Request, kind: str, key: str, db: SessionDep, staff: StaffDep, error: str = ""
) -> Response:
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    context = {
        "staff": staff,
        "item": item,
        "revisions": rv.revisions(db, item),
        "editors": review.editors(db),
        "error": error[:64],
        "retirable": retirable(item.kind),
    }
    return render(request, "staff/studio/item.html", staff.staff.language, context)


@router.post("/items/{kind}/{key}/draft")
def new_draft(
    request: Request,
    kind: str,
    key: str,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    draft = rv.do_start_draft(db, item, staff.staff)
    return RedirectResponse(item_url(item, draft.number), status_code=303)


@router.post("/items/{kind}/{key}/retire")
def retire(
    request: Request,
    kind: str,
    key: str,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    try:
        rv.do_retire(db, item, staff.staff)
    except ActionRefused as exc:
        db.rollback()
        return RedirectResponse(f"{item_url(item)}?error={exc.reason}", status_code=303)
    return RedirectResponse(item_url(item), status_code=303)


@router.post("/items/{kind}/{key}/review")
def set_review(
    request: Request,
    kind: str,
    key: str,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    clinical: str = Form(default=""),
    review_owner: str = Form(default="", max_length=16),
    review_due: str = Form(default="", max_length=16),
    sources: str = Form(default="", max_length=rv.MAX_NOTE),
) -> Response:
    check_csrf(staff, csrf_token)
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    try:
        due = date.fromisoformat(review_due) if review_due else None
    except ValueError:
        return RedirectResponse(f"{item_url(item)}?error={Reason.PUBLISH_TIME}", status_code=303)
    try:
        review.do_set_review(
            db,
            item,
            staff.staff,
            clinical=bool(clinical),
            review_owner_id=int(review_owner) if review_owner.isdigit() else None,
            review_due=due,
            sources=sources,
        )
    except ActionRefused as exc:
        db.rollback()
        return RedirectResponse(f"{item_url(item)}?error={exc.reason}", status_code=303)
    return RedirectResponse(item_url(item), status_code=303)


@router.get("/items/{kind}/{key}/diff", response_class=HTMLResponse)
def diff_page(
    request: Request, kind: str, key: str, db: SessionDep, staff: StaffDep, a: int = 0, b: int = 0
) -> Response:
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    try:
        compared = studio.compare(db, item, a, b)
    except ActionRefused:
        return denied(request, staff, missing=True)
    context = {"staff": staff, "item": item, "compared": compared, "languages": LANGUAGES}
    return render(request, "staff/studio/diff.html", staff.staff.language, context)


def _editor(
    request: Request,
    db: SessionDep,
    staff: StaffSession,
    item: ContentItem,
    revision: ContentRevision,
    values: dict[str, str],
    *,
    error: str = "",
    typed: dict[tuple[str, str], str] | None = None,
    status: int = 200,
) -> Response:
    filters = studio.Filters.parse(values)
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "sheet": studio.sheet(db, item, revision, filters),
        "languages": LANGUAGES,
        "typed": typed or {},
        "error": error[:64],
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
        "needs_approver": rv.needs_approver(db, item, revision),
        "wechat_limit": WECHAT_TEXT_BYTES,
        "page": studio.PAGE,
        "taken": values.get("taken", ""),
        "skipped": values.get("skipped", ""),
        "source_language": get_settings().studio_source_language,
    }
    return render(request, "staff/studio/texts.html", staff.staff.language, context, status)


def revision_of(
    request: Request, db: SessionDep, staff: StaffSession, kind: str, key: str, number: int
) -> tuple[ContentItem, ContentRevision] | Response:
    item = _item(request, db, staff, kind, key)
    if isinstance(item, Response):
        return item
    try:
        return item, rv.get_revision(db, item, number)
    except ActionRefused:
        return denied(request, staff, missing=True)


def save_typed_draft(
    db: Session,
    item: ContentItem,
    number: int,
    staff: StaffSession,
    typed_version: str,
    body: Mapping[str, Any],
    changelog: str | None = None,
) -> tuple[str, ContentRevision] | None:
    """Save what an editor typed as the draft, from the version her form showed. None when saved; on a
    refusal (a colleague saved meanwhile, a revision no longer a draft) the transaction is rolled back and
    the reason comes back with the revision as it now stands, for the page to show beside what was typed:
    nothing typed is lost."""
    version = int(typed_version) if typed_version.isdigit() else -1
    try:
        rv.do_save_draft(db, item, number, staff.staff, version=version, body=body, changelog=changelog)
    except ActionRefused as exc:
        db.rollback()
        db.expire_all()
        return exc.reason, rv.get_revision(db, item, number)
    return None


@router.get("/items/{kind}/{key}/r/{number}", response_class=HTMLResponse)
def editor_page(
    request: Request, kind: str, key: str, number: int, db: SessionDep, staff: StaffDep
) -> Response:
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    values = dict(request.query_params)
    return _editor(request, db, staff, *found, values, error=values.get("error", ""))


@router.get("/items/{kind}/{key}/r/{number}/export.csv")
def export(request: Request, kind: str, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    filters = studio.Filters.parse(dict(request.query_params))
    audit.record(db, "content.export", staff_id=staff.staff_id, ip=client_ip(request), key=key, number=number)
    return PlainTextResponse(
        studio.export_csv(db, item, revision, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-{key}-r{number}.csv"'},
    )


@router.post("/items/{kind}/{key}/r/{number}/save", response_class=HTMLResponse)
def save(
    request: Request, kind: str, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    edits = studio.edits_from_form(values)
    body = merge_edits(revision.body, edits)
    changelog = values.get("changelog", "")[: rv.MAX_NOTE]
    refused = save_typed_draft(db, item, number, staff, values.get("version", ""), body, changelog)
    if refused is not None:  # the page comes back with what was typed, beside the texts saved meanwhile
        reason, revision = refused
        return _editor(request, db, staff, item, revision, values, error=reason, typed=edits, status=409)
    keep = {k: values[k] for k in ("q", "show", "offset") if values.get(k)}
    query = "&".join(f"{k}={v}" for k, v in keep.items())
    return RedirectResponse(
        f"{item_url(item, number)}?saved=1{'&' + query if query else ''}", status_code=303
    )


def _publish_at(value: str) -> datetime | None:
    """A datetime-local field in the hospital's zone; empty: now."""
    try:
        return from_local_field(value)
    except ValueError:
        raise ActionRefused(Reason.PUBLISH_TIME) from None


@router.post("/items/{kind}/{key}/r/{number}/{action}")
def act(
    request: Request,
    kind: str,
    key: str,
    number: int,
    action: str,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    note: str = Form(default="", max_length=rv.MAX_NOTE),
    publish_at: str = Form(default="", max_length=32),
) -> Response:
    check_csrf(staff, csrf_token)
    found = revision_of(request, db, staff, kind, key, number)
    if isinstance(found, Response):
        return found
    item, _ = found
    if action not in ACTIONS:
        return denied(request, staff, missing=True)
    user = staff.staff
    target = number
    try:
        if action == "submit":
            rv.do_submit(db, item, number, user)
        elif action == "approve":
            rv.do_approve(db, item, number, user, publish_at=_publish_at(publish_at))
        elif action == "reject":
            rv.do_reject(db, item, number, user, note=note)
        else:
            target = rv.do_rollback(db, item, number, user).number
    except ActionRefused as exc:
        db.rollback()
        show = "&show=problems" if exc.reason == Reason.CONTENT_INVALID else ""  # straight to what to fix
        return RedirectResponse(f"{item_url(item, number)}?error={exc.reason}{show}", status_code=303)
    return RedirectResponse(f"{item_url(item, target)}?done={action}", status_code=303)

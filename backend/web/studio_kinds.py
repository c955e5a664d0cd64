"""The studio's editors for the canned replies, health-education articles and courses, and the provider
template mappings, on the shared editor routes (backend/web/studio_editor.py): their "open" and "new"
buttons, and what each page shows beside the form. History, diff, review and the lifecycle are the studio's
own routes."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from backend.admin.channel_store import template_samples
from backend.admin.channels import UNLIMITED_WECHAT_FIELDS, WECHAT_FIELD_LIMIT
from backend.app.settings import get_settings
from backend.content import canned, course, education, provider_templates
from backend.content.bundle import one_file_seeds
from backend.content.published import published_keys
from backend.models import ContentItem, ContentRevision
from backend.outbox.providers import template_defaults
from backend.web.deps import SessionDep, StaffDep
from backend.web.inbox import canned_file
from backend.web.staff import check_csrf
from backend.web.studio_editor import KindEditor, editor_router, open_item
from bots.domain import LANGUAGES

router = APIRouter(prefix="/staff/studio")
ARTICLE_KEY = re.compile(r"[a-z][a-z0-9_]{1,63}")


@router.post("/canned-replies/open")
def open_canned(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    return open_item(
        request,
        db,
        staff,
        csrf_token,
        kind=canned.KIND,
        key=canned.KEY,
        clinical=False,
        # the first draft starts from what the inbox offers now (the file), not from nothing
        skeleton=canned_file(get_settings().content_dir) or canned.skeleton(),
    )


@router.post("/education/new")
def new_article(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    key: str = Form(default="", max_length=80),
) -> Response:
    """A new article's first draft (an id already in the studio opens that article)."""
    key = key.strip()
    if not ARTICLE_KEY.fullmatch(key):
        check_csrf(staff, csrf_token)
        return RedirectResponse("/staff/studio?error=article_key", status_code=303)
    return open_item(
        request,
        db,
        staff,
        csrf_token,
        kind=education.KIND,
        key=key,
        clinical=True,
        skeleton=_article_file(key) or education.skeleton(key),
    )


def _article_file(key: str) -> dict[str, Any] | None:
    """The body of the article's file, when patients get it from one: its first draft starts there."""
    seeds = one_file_seeds(get_settings().content_dir)
    return next((body for kind, seed, body in seeds if (kind, seed) == (education.KIND, key)), None)


@router.post("/provider-templates/open")
def open_templates(
    request: Request, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    """The mappings' page; the first time, a draft of what is in use now (the template file's)."""
    body = template_defaults(get_settings(), db)
    return open_item(
        request,
        db,
        staff,
        csrf_token,
        kind=provider_templates.KIND,
        key=provider_templates.KEY,
        clinical=False,
        skeleton=body,
    )


@router.post("/courses/new")
def new_course(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    key: str = Form(default="", max_length=80),
) -> Response:
    """A new course's first draft (an id already in the studio opens that course)."""
    key = key.strip()
    if not course.COURSE_ID.fullmatch(key):
        check_csrf(staff, csrf_token)
        return RedirectResponse("/staff/studio?error=article_key", status_code=303)
    return open_item(
        request, db, staff, csrf_token, kind=course.KIND, key=key, clinical=False, skeleton=course.skeleton()
    )


def _course_extra(
    request: Request, db: Session, item: ContentItem, revision: ContentRevision, body: dict[str, Any]
) -> dict[str, Any]:
    found = body.get("articles")
    typed = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
    return {
        "lines": "\n".join(f"{e.get('day', '')} | {e.get('article', '')}" for e in typed),
        "published_articles": published_keys(db, education.KIND),
    }


def _templates_extra(
    request: Request, db: Session, item: ContentItem, revision: ContentRevision, body: dict[str, Any]
) -> dict[str, Any]:
    samples = template_samples(db, get_settings())
    return {
        "specs": provider_templates.specs(body),
        "channels": [c.value for c in provider_templates.CHANNELS],
        "fields_text": provider_templates.fields_text,
        "counts": provider_templates.counts(body, samples),
        "samples": samples,
        "limit": WECHAT_FIELD_LIMIT,
        "unlimited": sorted(UNLIMITED_WECHAT_FIELDS),
    }


def _canned_extra(
    request: Request, db: Session, item: ContentItem, revision: ContentRevision, body: dict[str, Any]
) -> dict[str, Any]:
    # one empty row at the end adds a reply
    rows = [*canned.replies(body), {"key": "", "category": "", "label": {}, "text": {}}]
    return {"rows": rows, "limits": {"label": canned.MAX_LABEL, "text": canned.MAX_TEXT}}


def _article_extra(
    request: Request, db: Session, item: ContentItem, revision: ContentRevision, body: dict[str, Any]
) -> dict[str, Any]:
    wanted = request.query_params.get("preview", "")
    shown = wanted if wanted in LANGUAGES else ""
    found = body.get("body")
    typed: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "missing": education.missing_languages(body),
        # the textareas: paragraphs as typed, a blank line between two
        "paragraphs": {lang: "\n\n".join(str(p) for p in typed.get(lang) or []) for lang in LANGUAGES},
        "preview_lang": shown,
        "preview": education.EducationArticles().preview(body, shown) if shown else None,
        "limits": {"title": education.MAX_TITLE, "summary": education.MAX_SUMMARY},
    }


CANNED = KindEditor(
    canned.KIND, "staff/studio/canned.html", lambda values, _key: canned.body_from_form(values), _canned_extra
)
ARTICLES = KindEditor(education.KIND, "staff/studio/article.html", education.body_from_form, _article_extra)
COURSES = KindEditor(course.KIND, "staff/studio/course.html", course.body_from_form, _course_extra)
TEMPLATES = KindEditor(
    provider_templates.KIND,
    "staff/studio/provider_templates.html",
    provider_templates.body_from_form,
    _templates_extra,
)
canned_editor = editor_router(CANNED)
templates_editor = editor_router(TEMPLATES)
course_editor = editor_router(COURSES)
article_editor = editor_router(ARTICLES)

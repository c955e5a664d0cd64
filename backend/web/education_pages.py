"""The patient's mobile page for a health-education article: `/e/<article>/<lang>` (public, no PHI). It shows
the article's published revision in the studio (or its file, before the studio holds it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from backend.dialogue.content import load_catalog
from backend.education.library import LANGUAGES, articles
from backend.web.deps import SessionDep, SettingsDep, templates
from bots.domain import pick_language

router = APIRouter()


@router.get("/e/{article_id}/{lang}", response_class=HTMLResponse)
def article_page(
    article_id: str, lang: str, request: Request, db: SessionDep, settings: SettingsDep
) -> Response:
    article = articles(db, settings.content_dir).get(article_id)
    shown = lang if lang in LANGUAGES else pick_language(settings.default_language)
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    status = 200 if article is not None and lang in LANGUAGES else 404
    return templates.TemplateResponse(
        request,
        "education/article.html",
        {
            "lang": shown,
            "t": lambda key, **kw: catalog.text(shown, key, **kw),
            "article": article if status == 200 else None,
        },
        status_code=status,
        # a publish shows within minutes; the page is the same for every patient
        headers={"Cache-Control": "public, max-age=300"},
    )

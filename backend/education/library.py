"""The health-education library: the articles patients are sent and read, in three languages.

Once an article is in the studio (kind `education`, backend/content/education.py) its published revision
is what patients get; an article retired there is gone. The files of content/education/*.yaml (one per
article, the title, a one-line summary and the paragraphs in zh-CN, vi and en side by side) seed the
studio and speak only for articles the studio does not hold yet. A file missing a language, a field or with
a wrong id is refused with the file and the problem named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.content import education as kind
from backend.models import ContentItem, ContentRevision
from bots.domain import pick_language

LANGUAGES = ("zh-CN", "vi", "en")
ARTICLE_ID = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class ArticleInvalid(ValueError):
    """An education file the library cannot use; the message names the file and the problem."""


@dataclass(frozen=True)
class Article:
    id: str
    departments: tuple[str, ...]  # department codes it is meant for; empty: any
    title: dict[str, str]
    summary: dict[str, str]
    body: dict[str, tuple[str, ...]]
    revision: int | None = None  # the studio's published revision; None: read from the files

    def text(self, field: str, lang: str) -> str:
        value: dict[str, str] = getattr(self, field)
        return value[pick_language(lang)]

    def paragraphs(self, lang: str) -> tuple[str, ...]:
        return self.body[pick_language(lang)]


def _texts(path: Path, raw: dict[str, Any], field: str) -> dict[str, Any]:
    value = raw.get(field)
    if not isinstance(value, dict):
        raise ArticleInvalid(f"{path.name}: {field} must give a text per language")
    for lang in LANGUAGES:
        text = value.get(lang)
        if field == "body":
            ok = isinstance(text, list) and bool(text) and all(isinstance(p, str) and p.strip() for p in text)
        else:
            ok = isinstance(text, str) and bool(text.strip())
        if not ok:
            raise ArticleInvalid(f"{path.name}: {field} has no {lang} text")
    return {lang: value[lang] for lang in LANGUAGES}


def load_article(path: Path) -> Article:
    try:
        raw = yaml_files.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ArticleInvalid(f"{path.name}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ArticleInvalid(f"{path.name}: expected a mapping")
    article_id = raw.get("id")
    if not isinstance(article_id, str) or not ARTICLE_ID.match(article_id) or article_id != path.stem:
        raise ArticleInvalid(f"{path.name}: id must be the file's name (lower case, digits, _)")
    departments = raw.get("departments") or []
    if not isinstance(departments, list) or not all(isinstance(d, str) for d in departments):
        raise ArticleInvalid(f"{path.name}: departments must be a list of department codes")
    body = _texts(path, raw, "body")
    return Article(
        id=article_id,
        departments=tuple(departments),
        title=_texts(path, raw, "title"),
        summary=_texts(path, raw, "summary"),
        body={lang: tuple(p.strip() for p in paragraphs) for lang, paragraphs in body.items()},
    )


@lru_cache(maxsize=4)
def library(content_dir: Path) -> dict[str, Article]:
    """Every article, by id (read once per content folder)."""
    folder = content_dir / "education"
    articles = [load_article(p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
    return {a.id: a for a in articles}


def article_from_body(key: str, number: int, body: dict[str, Any]) -> Article:
    """A published revision as an Article; a missing translation reads as English (the kind requires it)."""
    departments = body.get("departments")
    return Article(
        id=key,
        departments=tuple(str(d) for d in departments) if isinstance(departments, list) else (),
        title={lang: kind.text(body, "title", lang) for lang in LANGUAGES},
        summary={lang: kind.text(body, "summary", lang) for lang in LANGUAGES},
        body={lang: tuple(kind.paragraphs(body, lang)) for lang in LANGUAGES},
        revision=number,
    )


def articles(session: Session, content_dir: Path) -> dict[str, Article]:
    """Every article patients may get now, by id: the studio's published revisions, and the files' articles
    the studio never published (an article retired in the studio is not sent from its file)."""
    rows = session.execute(
        sa.select(ContentItem.key, ContentItem.published_number, ContentRevision.body)
        .outerjoin(
            ContentRevision,
            sa.and_(
                ContentRevision.item_id == ContentItem.id,
                ContentRevision.number == ContentItem.published_number,
            ),
        )
        .where(ContentItem.kind == kind.KIND)
    ).all()
    # an article the studio published once (retired since, or not) no longer comes from its file; a first
    # draft does not silence the file
    ever = sa.select(ContentRevision.item_id).where(ContentRevision.published_at.is_not(None))
    held = set(
        session.scalars(
            sa.select(ContentItem.key).where(ContentItem.kind == kind.KIND, ContentItem.id.in_(ever))
        )
    )
    out = {a.id: a for a in library(content_dir).values() if a.id not in held}
    for key, number, body in rows:
        if number is not None and isinstance(body, dict):
            out[key] = article_from_body(key, number, body)
    return out

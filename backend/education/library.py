"""The health-education library: articles authored in content/education/*.yaml, every text in three languages.

One file per article, with the title, a one-line summary (what chat channels carry) and the body's
paragraphs in zh-CN, vi and en side by side, so the languages cannot drift apart. A file missing a
language, a field or with a wrong id is refused with the file and the problem named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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

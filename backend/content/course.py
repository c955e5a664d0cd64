"""Education courses as a kind of the studio: an ordered list of published articles, each on a day after
the course starts.

A body is `{title: {lang: text}, articles: [{article: <id>, day: <n>}]}`; the item's key is the course id.
The pure validation checks the shape (English title required, whole days from 0 to 365 in order, no article
twice); the database check (`kinds.register(check=...)`) that every article has a published revision in the
studio, since a course only ever sends what was reviewed. Not clinical itself: its articles are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content import education
from backend.content.kinds import Change, Problem, register
from backend.models import ContentItem
from bots.domain import FALLBACK_LANGUAGE, LANGUAGES

KIND = "education_courses"
COURSE_ID = re.compile(r"[a-z][a-z0-9_]{1,63}")
MAX_DAY = 365
MAX_TITLE = 120


def steps(body: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(article, day) of the well-formed entries, in order."""
    found = body.get("articles")
    out = []
    for entry in found if isinstance(found, list) else []:
        if (
            isinstance(entry, Mapping)
            and isinstance(entry.get("article"), str)
            and type(entry.get("day")) is int
        ):
            out.append((entry["article"], entry["day"]))
    return out


def validate(body: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    title = body.get("title")
    if not isinstance(title, Mapping):
        problems.append(Problem("title", "not_a_table"))
    else:
        for lang in LANGUAGES:
            text = title.get(lang)
            if not isinstance(text, str) or not text.strip():
                problems.append(Problem("title", "missing", lang, blocking=lang == FALLBACK_LANGUAGE))
            elif len(text) > MAX_TITLE:
                problems.append(Problem("title", "too_long", f"{lang}: {len(text)} > {MAX_TITLE}"))
    found = body.get("articles")
    if not isinstance(found, list) or not found:
        return [*problems, Problem("articles", "not_a_list")]
    seen: set[str] = set()
    last = 0
    for index, entry in enumerate(found, 1):
        where = f"articles/{index}"
        if not isinstance(entry, Mapping):
            problems.append(Problem(where, "not_a_table"))
            continue
        article, day = entry.get("article"), entry.get("day")
        if not isinstance(article, str) or not education.ARTICLE_ID.fullmatch(article):
            problems.append(Problem(where, "bad_id", str(article or "")))
        elif article in seen:
            problems.append(Problem(where, "duplicate", article))
        else:
            seen.add(article)
        if type(day) is not int or not 0 <= day <= MAX_DAY:
            problems.append(Problem(where, "bad_day", str(day)))
        elif day < last:
            problems.append(Problem(where, "out_of_order", str(day)))
        else:
            last = day
    return problems


def check(session: Session, body: Mapping[str, Any]) -> list[Problem]:
    """The kind's validation, and every article published in the studio."""
    problems = validate(body)
    wanted = {article for article, _day in steps(body)}
    published = set(
        session.scalars(
            sa.select(ContentItem.key).where(
                ContentItem.kind == education.KIND,
                ContentItem.key.in_(wanted),
                ContentItem.published_number.is_not(None),
            )
        )
    )
    for index, (article, _day) in enumerate(steps(body), 1):
        if article not in published:
            problems.append(Problem(f"articles/{index}", "not_published", article))
    return problems


def _lines(body: Mapping[str, Any]) -> str:
    return "\n".join(f"{day} | {article}" for article, day in steps(body))


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """The title per language, and the articles with their days as one list."""
    changes = []
    old, new = before.get("title"), after.get("title")
    old_t = old if isinstance(old, Mapping) else {}
    new_t = new if isinstance(new, Mapping) else {}
    for lang in LANGUAGES:
        if old_t.get(lang) != new_t.get(lang):
            changes.append(Change("title", lang, old_t.get(lang), new_t.get(lang)))
    if _lines(before) != _lines(after):
        changes.append(Change("articles", None, _lines(before) or None, _lines(after) or None))
    return changes


def body_from_form(values: Mapping[str, str], key: str) -> dict[str, Any]:
    """`title|<lang>` and `articles`, one `day | article` a line. A day that is not a number is kept as
    typed, so the validator names it at its line."""
    entries: list[dict[str, Any]] = []
    for line in values.get("articles", "").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        day, _sep, article = line.partition("|")
        typed = day.strip()
        entries.append({"article": article.strip(), "day": int(typed) if typed.isdigit() else typed})
    title = {
        lang: values[f"title|{lang}"].strip() for lang in LANGUAGES if values.get(f"title|{lang}", "").strip()
    }
    return {"title": title, "articles": entries}


def skeleton() -> dict[str, Any]:
    return {"title": {}, "articles": []}


class EducationCourses:
    """The ContentKind of education courses."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        return {f"day {day}": article for article, day in steps(body)}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return False  # every article it sends was approved as clinical content on its own


register(EducationCourses(), check=check)

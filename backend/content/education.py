"""Health-education articles as a clinical kind of the studio.

A body is the mapping of a content/education/<id>.yaml file: `id`, `departments` (department codes it is
meant for; empty: any), and `title`, `summary` (the one line chat channels carry) and `body` (paragraphs)
in zh-CN, vi and en side by side. The item's key is the article id. English is required (a patient whose
language is missing reads it); a missing zh-CN or vi translation is flagged, not blocking. Every change is
clinical: a colleague with the approver grant publishes it, and the item carries a review owner, a
review-due date and its sources (backend/content/review.py). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backend.content.kinds import Change, Problem, register
from bots.domain import FALLBACK_LANGUAGE, LANGUAGES

KIND = "education"
ARTICLE_ID = re.compile(r"[a-z][a-z0-9_]{1,63}")
MAX_TITLE = 120
MAX_SUMMARY = 200  # one line in a chat message beside the link
MAX_PARAGRAPH = 4000
TEXTS = ("title", "summary")
PARTS = frozenset({"id", "departments", "title", "summary", "body"})


def _one_line(where: str, value: Any, limit: int) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem(where, "not_a_table")]
    found = [Problem(where, "unknown_language", str(lang)) for lang in value if lang not in LANGUAGES]
    for lang in LANGUAGES:
        text = value.get(lang)
        if text is None or (isinstance(text, str) and not text.strip()):
            found.append(Problem(where, "missing", lang, blocking=lang == FALLBACK_LANGUAGE))
        elif not isinstance(text, str):
            found.append(Problem(where, "not_text", lang))
        elif "\n" in text.strip():
            found.append(Problem(where, "not_one_line", lang))
        elif len(text) > limit:
            found.append(Problem(where, "too_long", f"{lang}: {len(text)} > {limit}"))
    return found


def _paragraphs(value: Any) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem("body", "not_a_table")]
    found = [Problem("body", "unknown_language", str(lang)) for lang in value if lang not in LANGUAGES]
    for lang in LANGUAGES:
        paragraphs = value.get(lang)
        if paragraphs is None or paragraphs == []:
            found.append(Problem("body", "missing", lang, blocking=lang == FALLBACK_LANGUAGE))
        elif not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
            found.append(Problem("body", "not_text", lang))
        elif any(not p.strip() for p in paragraphs):
            found.append(Problem("body", "empty", lang))
        elif any(len(p) > MAX_PARAGRAPH for p in paragraphs):
            found.append(Problem("body", "too_long", f"{lang}: > {MAX_PARAGRAPH}"))
    return found


def validate(body: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    article_id = body.get("id")
    if not isinstance(article_id, str) or not ARTICLE_ID.fullmatch(article_id):
        problems.append(Problem("id", "bad_id", str(article_id or "")))
    departments = body.get("departments", [])
    if not isinstance(departments, list) or not all(isinstance(d, str) and d for d in departments):
        problems.append(Problem("departments", "not_a_list"))
    for field, limit in (("title", MAX_TITLE), ("summary", MAX_SUMMARY)):
        problems += _one_line(field, body.get(field), limit)
    problems += _paragraphs(body.get("body"))
    problems += [Problem(str(extra), "unknown_part") for extra in sorted(set(body) - PARTS, key=str)]
    return problems


def missing_languages(body: Mapping[str, Any]) -> list[str]:
    """Languages some part of the article lacks (the editor's flag beside each column)."""
    return sorted({p.detail for p in validate(body) if p.code == "missing"}, key=LANGUAGES.index)


def _flat(body: Mapping[str, Any]) -> dict[tuple[str, str | None], str]:
    out: dict[tuple[str, str | None], str] = {}
    departments = body.get("departments")
    if isinstance(departments, list) and departments:
        out[("departments", None)] = ", ".join(str(d) for d in departments)
    for field in (*TEXTS, "body"):
        texts = body.get(field)
        for lang, value in texts.items() if isinstance(texts, Mapping) else []:
            text = "\n\n".join(str(p) for p in value) if isinstance(value, list) else str(value or "")
            if text:
                out[(field, str(lang))] = text
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Title, summary and body per language (the body's paragraphs separated by blank lines), and the
    departments."""
    old, new = _flat(before), _flat(after)
    return [
        Change(where, lang, old.get((where, lang)), new.get((where, lang)))
        for where, lang in sorted(set(old) | set(new), key=lambda p: (p[0], p[1] or ""))
        if old.get((where, lang)) != new.get((where, lang))
    ]


def text(body: Mapping[str, Any], field: str, lang: str) -> str:
    """The title or summary in `lang`, English when that translation is missing."""
    texts = body.get(field)
    if not isinstance(texts, Mapping):
        return ""
    return str(texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or "")


def paragraphs(body: Mapping[str, Any], lang: str) -> list[str]:
    texts = body.get("body")
    if not isinstance(texts, Mapping):
        return []
    found = texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or []
    return [str(p) for p in found] if isinstance(found, list) else []


def split_paragraphs(value: str) -> list[str]:
    """A textarea's paragraphs: separated by a blank line, each trimmed."""
    blocks = re.split(r"\n\s*\n", value.replace("\r\n", "\n"))
    return [" ".join(line.strip() for line in b.strip().split("\n")) for b in blocks if b.strip()]


def body_from_form(values: Mapping[str, str], key: str) -> dict[str, Any]:
    """The editor's fields (`title|<lang>`, `summary|<lang>`, `body|<lang>`, `departments`) as a body."""
    body: dict[str, Any] = {
        "id": key,
        "departments": [d.strip() for d in values.get("departments", "").split(",") if d.strip()],
    }
    for field in TEXTS:
        body[field] = {
            lang: values[f"{field}|{lang}"].strip()
            for lang in LANGUAGES
            if values.get(f"{field}|{lang}", "").strip()
        }
    body["body"] = {
        lang: split_paragraphs(values.get(f"body|{lang}", ""))
        for lang in LANGUAGES
        if split_paragraphs(values.get(f"body|{lang}", ""))
    }
    return body


def skeleton(key: str) -> dict[str, Any]:
    return {"id": key, "departments": [], "title": {}, "summary": {}, "body": {}}


class EducationArticles:
    """The ContentKind of health-education articles."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        return {
            "title": text(body, "title", lang),
            "summary": text(body, "summary", lang),
            "body": "\n\n".join(paragraphs(body, lang)),
        }

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return True  # what patients are told about their care is clinical, whatever changed


register(EducationArticles())

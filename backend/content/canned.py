"""Canned replies as a kind of the studio: the ready answers staff pick in the inbox, per language.

A body is the mapping of content/canned_replies.yaml: `replies`, an ordered list of
`{key, category, label: {lang: text}, text: {lang: text}}`. One item (key `inbox`) holds them all, since
staff see them as one list. Not clinical: any other editor approves a change (or the author publishes it
when the hospital allows self-publishing), as for message texts. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backend.content.kinds import Change, Problem, register
from bots.domain import FALLBACK_LANGUAGE, LANGUAGES

KIND = "canned_replies"
KEY = "inbox"
REPLY_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_TEXT = 1000  # the inbox's reply box takes this much (backend/services/inbox.py's MAX_REPLY)
MAX_LABEL = 40  # a label is a button in the reply form's list
MAX_CATEGORY = 40
FIELDS = ("label", "text")


def replies(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The body's replies that are mappings (the validator names the rest)."""
    found = body.get("replies")
    return [r for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []


def _texts(where: str, field: str, value: Any, limit: int) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem(f"{where}/{field}", "not_a_table")]
    found = []
    for lang in value:
        if lang not in LANGUAGES:
            found.append(Problem(f"{where}/{field}", "unknown_language", str(lang)))
    for lang in LANGUAGES:
        text = value.get(lang)
        if text is None or (isinstance(text, str) and not text.strip()):
            # English is what a patient whose language is missing gets: without it, nothing
            found.append(Problem(f"{where}/{field}", "missing", lang, blocking=lang == FALLBACK_LANGUAGE))
        elif not isinstance(text, str):
            found.append(Problem(f"{where}/{field}", "not_text", lang))
        elif len(text) > limit:
            found.append(Problem(f"{where}/{field}", "too_long", f"{lang}: {len(text)} > {limit}"))
    return found


def validate(body: Mapping[str, Any]) -> list[Problem]:
    found = body.get("replies")
    if not isinstance(found, list):
        return [Problem("replies", "not_a_list")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, reply in enumerate(found, 1):
        if not isinstance(reply, Mapping):
            problems.append(Problem(f"#{index}", "not_a_table"))
            continue
        key = reply.get("key")
        where = key if isinstance(key, str) and key else f"#{index}"
        if not isinstance(key, str) or not REPLY_KEY.fullmatch(key):
            problems.append(Problem(where, "bad_key", str(key or "")))
        elif key in seen:
            problems.append(Problem(where, "duplicate", key))
        else:
            seen.add(key)
        category = reply.get("category", "")
        if not isinstance(category, str) or len(category) > MAX_CATEGORY:
            problems.append(Problem(f"{where}/category", "too_long", str(category)[:MAX_CATEGORY]))
        problems += _texts(where, "label", reply.get("label"), MAX_LABEL)
        problems += _texts(where, "text", reply.get("text"), MAX_TEXT)
        for extra in set(reply) - {"key", "category", *FIELDS}:
            problems.append(Problem(where, "unknown_part", str(extra)))
    return problems


def _flat(body: Mapping[str, Any]) -> dict[tuple[str, str | None], str]:
    """(where, language) -> value, for every field of every reply."""
    out: dict[tuple[str, str | None], str] = {}
    for reply in replies(body):
        key = str(reply.get("key", ""))
        category = reply.get("category")
        if category:
            out[(f"{key}/category", None)] = str(category)
        for field in FIELDS:
            texts = reply.get(field)
            for lang, text in texts.items() if isinstance(texts, Mapping) else []:
                if text:
                    out[(f"{key}/{field}", str(lang))] = str(text)
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Per reply, field and language; a reply added or removed shows all its fields; a new order is one
    change."""
    old, new = _flat(before), _flat(after)
    changes = [
        Change(where, lang, old.get((where, lang)), new.get((where, lang)))
        for where, lang in sorted(set(old) | set(new), key=lambda p: (p[0], p[1] or ""))
        if old.get((where, lang)) != new.get((where, lang))
    ]
    order_a = [str(r.get("key")) for r in replies(before)]
    order_b = [str(r.get("key")) for r in replies(after)]
    kept = [k for k in order_a if k in order_b]
    if kept != [k for k in order_b if k in order_a]:
        changes.append(Change("order", None, " ".join(order_a), " ".join(order_b)))
    return changes


def text_of(reply: Mapping[str, Any], field: str, lang: str) -> str:
    """A reply's label or text in `lang`, English when that language has none."""
    texts = reply.get(field)
    if not isinstance(texts, Mapping):
        return ""
    return str(texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or "")


def body_from_form(values: Mapping[str, str]) -> dict[str, Any]:
    """The editor's rows (`r|<n>|key`, `r|<n>|category`, `r|<n>|label|<lang>`, `r|<n>|text|<lang>`,
    `r|<n>|remove`) as a body, in the rows' order; a row left wholly empty adds nothing."""
    rows: dict[int, dict[str, Any]] = {}
    for name, value in values.items():
        parts = name.split("|")
        if len(parts) < 3 or parts[0] != "r" or not parts[1].isdigit():
            continue
        row = rows.setdefault(int(parts[1]), {"label": {}, "text": {}})
        if len(parts) == 3 and parts[2] in ("key", "category", "remove"):
            row[parts[2]] = value.strip()
        elif len(parts) == 4 and parts[2] in FIELDS and parts[3] in LANGUAGES:
            row[parts[2]][parts[3]] = value.strip()
    out = []
    for _n, row in sorted(rows.items()):
        if row.pop("remove", ""):
            continue
        filled = [row.get("key"), row.get("category"), *row["label"].values(), *row["text"].values()]
        if not any(filled):
            continue
        reply: dict[str, Any] = {"key": row.get("key", "")}
        if row.get("category"):
            reply["category"] = row["category"]
        for field in FIELDS:
            reply[field] = {lang: row[field][lang] for lang in LANGUAGES if row[field].get(lang)}
        out.append(reply)
    return {"replies": out}


def skeleton() -> dict[str, Any]:
    return {"replies": []}


class CannedReplies:
    """The ContentKind of the inbox's canned replies."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        return {str(r.get("key")): text_of(r, "text", lang) for r in replies(body)}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return False  # staff read them before sending and may edit them: not clinical content


register(CannedReplies())

"""The questionnaire kind of the studio: a body is the authored definition (the mapping of a
content/questionnaires/*.yaml file). Validation is the questionnaire model's own (the loader's rules, then
the per-channel pre-flight publishing runs); publishing stores the next frozen questionnaire version, which
plans send and responses keep pointing at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.orm import Session

from backend.content.kinds import Change, Problem, register
from questionnaires import channels
from questionnaires.loader import definition_problems, parse_questionnaire
from questionnaires.model import LANGS, Questionnaire

KIND = "questionnaires"
# Parts of a definition whose change alters what staff are told about a patient: finding rules, totals
# and their bands, and option scores. A change there is clinical (a second person with the grant).
CLINICAL_PARTS = ("rules", "scores")


def skeleton(qid: str) -> dict[str, Any]:
    """A new questionnaire's first draft: nothing in it yet, so it shows the editor what to fill in."""
    return {"id": qid, "version": 1, "kind": "follow_up", "title": dict.fromkeys(LANGS, ""), "items": []}


def _where(message: str) -> str:
    # The loader's messages start with where the problem is ("pain/min: ...", "rule r1: ...").
    return message.split(": ", 1)[0] if ": " in message else ""


def validate(body: Mapping[str, Any]) -> list[Problem]:
    problems = [Problem(_where(str(e)), "definition", str(e)) for e in definition_problems(body)]
    if problems:
        return problems
    q = parse_questionnaire(body)
    return [
        Problem(r.item_id, "channel", f"{r.channel.value} ({lang}): {r.problem}") for lang, r in _refusals(q)
    ]


def _refusals(q: Questionnaire) -> Iterator[tuple[str, channels.Refusal]]:
    from backend.dialogue.content import load_voice_phrases

    for lang in LANGS:
        try:
            channels.preflight(q, lang, load_voice_phrases(lang))
        except channels.PublishRefused as refused:
            for refusal in refused.refusals:
                yield lang, refusal


def _keyed(entry: Any, index: int) -> str:
    if isinstance(entry, Mapping):
        for name in ("id", "code"):
            if isinstance(entry.get(name), str | int) and not isinstance(entry.get(name), bool):
                return str(entry[name])
    return f"#{index + 1}"


def _is_texts(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and set(value) <= set(LANGS)


def flatten(body: Any, path: str = "") -> dict[tuple[str, str | None], str]:
    """Every leaf of a definition as (path, language or None) -> text, items and options by their ids,
    so that a diff names "items/pain/text" in "vi" rather than a list position."""
    out: dict[tuple[str, str | None], str] = {}
    if _is_texts(body):
        for lang, text in body.items():
            out[(path, lang)] = str(text)
    elif isinstance(body, Mapping):
        for key, value in body.items():
            out.update(flatten(value, f"{path}/{key}" if path else str(key)))
    elif isinstance(body, list) and all(isinstance(e, Mapping) for e in body) and body:
        for index, entry in enumerate(body):
            out.update(flatten(entry, f"{path}/{_keyed(entry, index)}"))
    else:
        out[(path, None)] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return out


def _normal(body: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's single condition may stand without a list in a file; the editor writes a list. The
    same rule either way is no change."""
    out = dict(body)
    if isinstance(out.get("rules"), list):
        out["rules"] = [
            {**r, "when": [r["when"]]} if isinstance(r, Mapping) and isinstance(r.get("when"), Mapping) else r
            for r in out["rules"]
        ]
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    old, new = flatten(_normal(before)), flatten(_normal(after))
    # the version number is CareLoop's bookkeeping (publishing numbers it), not an editor's change
    keys = sorted((k for k in set(old) | set(new) if k[0] != "version"), key=lambda k: (k[0], k[1] or ""))
    return [
        Change(where, lang, old.get((where, lang)), new.get((where, lang)))
        for where, lang in keys
        if old.get((where, lang)) != new.get((where, lang))
    ]


def touches_clinical(published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    return any(
        c.where.startswith(CLINICAL_PARTS) or c.where.endswith("/score") for c in diff(published or {}, body)
    )


class Questionnaires:
    """The ContentKind of questionnaires."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        q = parse_questionnaire(body)
        return {item.id: item.text[lang] for item in q.walk()}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return touches_clinical(published, body)


def _materialise(session: Session, key: str, body: Mapping[str, Any], staff_id: int | None) -> None:
    from backend.followup.catalog import do_publish_next

    do_publish_next(session, {**body, "id": key}, staff_id=staff_id)


register(Questionnaires(), materialise=_materialise, retirable=False)

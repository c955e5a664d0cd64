"""What the studio's pages show: the editor's home, one revision's texts side by side with their problems
and channel costs (filtered, exportable), the history, and the diff of any two revisions."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.kinds import Change, Problem, kind_of
from backend.content.questionnaire import KIND as QUESTIONNAIRES
from backend.content.texts import Cost, changed_in, cost, diff, keys_of, stale, validate
from backend.models import ContentItem, ContentRevision, QuestionnaireVersion, RevisionState, StaffUser
from bots.domain import LANGUAGES

PAGE = 100  # keys per editor page: 3 fields each stays under the form parser's 1000-field limit
SHOWS = ("all", "missing", "stale", "problems", "changed")


@dataclass(frozen=True)
class Home:
    items: list[ContentItem]
    my_drafts: list[tuple[ContentItem, ContentRevision]]
    awaiting: list[tuple[ContentItem, ContentRevision]]
    overdue: list[ContentItem]
    # published questionnaires not yet in the studio (they came from the files): (id, latest version)
    outside: list[tuple[str, int]] = field(default_factory=list)


def awaiting(session: Session, user: StaffUser) -> list[tuple[ContentItem, ContentRevision]]:
    """Revisions in review that `user` may approve."""
    rows = session.execute(
        sa.select(ContentItem, ContentRevision)
        .join(ContentRevision, ContentRevision.item_id == ContentItem.id)
        .where(ContentRevision.state == RevisionState.IN_REVIEW)
        .order_by(ContentRevision.submitted_at)
    ).all()
    return [(i, r) for i, r in rows if rv.may_approve(session, i, r, user) is None]


def home(session: Session, user: StaffUser, today: date) -> Home:
    items = list(session.scalars(sa.select(ContentItem).order_by(ContentItem.kind, ContentItem.key)))
    mine = session.execute(
        sa.select(ContentItem, ContentRevision)
        .join(ContentRevision, ContentRevision.item_id == ContentItem.id)
        .where(
            ContentRevision.author_id == user.id,
            ContentRevision.state.in_((RevisionState.DRAFT, RevisionState.IN_REVIEW, RevisionState.APPROVED)),
        )
        .order_by(ContentRevision.updated_at.desc())
    ).all()
    overdue = [i for i in items if i.clinical and i.review_due is not None and i.review_due < today]
    inside = {i.key for i in items if i.kind == QUESTIONNAIRES}
    versions = session.execute(
        sa.select(QuestionnaireVersion.questionnaire_id, sa.func.max(QuestionnaireVersion.version))
        .group_by(QuestionnaireVersion.questionnaire_id)
        .order_by(QuestionnaireVersion.questionnaire_id)
    ).all()
    outside = [(str(q), int(v)) for q, v in versions if q not in inside]
    return Home(items, [(i, r) for i, r in mine], awaiting(session, user), overdue, outside)


@dataclass(frozen=True)
class Filters:
    q: str = ""  # part of a key or of any language's text
    show: str = "all"
    offset: int = 0

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> Filters:
        show = values.get("show", "all")
        offset = values.get("offset", "0")
        return cls(
            q=values.get("q", "").strip()[:200],
            show=show if show in SHOWS else "all",
            offset=int(offset) if offset.isdigit() else 0,
        )


@dataclass
class Row:
    key: str
    texts: dict[str, str]
    missing: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)
    costs: dict[str, Cost] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    changed: bool = False  # differs from the published revision


@dataclass(frozen=True)
class Sheet:
    rows: list[Row]  # the page shown
    total: int  # rows matching the filter
    filters: Filters
    counts: dict[str, int]  # missing, stale, problems over the whole revision


def sheet(session: Session, item: ContentItem, revision: ContentRevision, filters: Filters) -> Sheet:
    rows, counts = _rows(session, item, revision)
    chosen = [r for r in rows if _matches(r, filters)]
    shown = chosen[filters.offset : filters.offset + PAGE]
    for row in shown:  # channel costs only for the rows on the page: they are the dearest to compute
        row.costs = {lang: cost(text) for lang, text in row.texts.items() if text}
    return Sheet(shown, len(chosen), filters, counts)


# (database, item id, last published number) -> when each (key, language) last changed over the published
# history up to that revision, and that revision's body. Published revisions never change, so this holds
# until another is published; the editor then diffs only the revision shown against it.
_HISTORY: dict[tuple[str, int, int], tuple[dict[tuple[str, str], int], dict[str, Any]]] = {}
_KEEP = 8


def _published_history(
    session: Session, item: ContentItem, before: int
) -> tuple[dict[tuple[str, str], int], dict[str, Any]]:
    numbers = list(
        session.scalars(
            sa.select(ContentRevision.number)
            .where(
                ContentRevision.item_id == item.id,
                ContentRevision.published_at.is_not(None),
                ContentRevision.number < before,
            )
            .order_by(ContentRevision.number)
        )
    )
    if not numbers:
        return {}, {}
    key = (get_settings().database_url, item.id, numbers[-1])
    cached = _HISTORY.get(key)
    if cached is None:
        bodies = session.execute(
            sa.select(ContentRevision.number, ContentRevision.body)
            .where(ContentRevision.item_id == item.id, ContentRevision.number.in_(numbers))
            .order_by(ContentRevision.number)
        ).all()
        cached = (changed_in([(n, b) for n, b in bodies]), dict(bodies[-1][1]))
        if len(_HISTORY) >= _KEEP:
            _HISTORY.pop(next(iter(_HISTORY)))
        _HISTORY[key] = cached
    return cached


def stale_pairs(session: Session, item: ContentItem, revision: ContentRevision) -> set[tuple[str, str]]:
    """(key, language) translations of `revision` older than their source text, over the published
    history before it."""
    history, last = _published_history(session, item, revision.number)
    changed = dict(history)
    for change in diff(last, revision.body):
        if change.lang is None:
            continue
        if change.after is None:
            changed.pop((change.where, change.lang), None)
        else:
            changed[(change.where, change.lang)] = revision.number
    return stale(changed, keys_of(revision.body), get_settings().studio_source_language)


def clear_cache() -> None:
    _HISTORY.clear()


def _rows(session: Session, item: ContentItem, revision: ContentRevision) -> tuple[list[Row], dict[str, int]]:
    body = revision.body
    current = rv.published_revision(session, item)
    base = current.body if current is not None and current.id != revision.id else body
    keys = keys_of(body)
    old = stale_pairs(session, item, revision)
    problems: dict[str, list[Problem]] = {}
    for problem in validate(body):
        problems.setdefault(problem.where, []).append(problem)
    rows = []
    for key in keys:
        texts = {lang: body.get(lang, {}).get(key, "") for lang in LANGUAGES}
        row = Row(
            key,
            texts,
            missing={lang for lang in LANGUAGES if not texts[lang]},
            stale={lang for lang in LANGUAGES if (key, lang) in old},
            problems=[p for p in problems.get(key, []) if p.code != "missing"],
            changed=any(base.get(lang, {}).get(key) != body.get(lang, {}).get(key) for lang in LANGUAGES),
        )
        rows.append(row)
    counts = {
        "missing": sum(bool(r.missing) for r in rows),
        "stale": sum(bool(r.stale) for r in rows),
        "problems": sum(bool(r.problems) for r in rows),
        "changed": sum(r.changed for r in rows),
    }
    return rows, counts


def _matches(row: Row, filters: Filters) -> bool:
    if filters.show == "missing" and not row.missing:
        return False
    if filters.show == "stale" and not row.stale:
        return False
    if filters.show == "problems" and not row.problems:
        return False
    if filters.show == "changed" and not row.changed:
        return False
    q = filters.q.casefold()
    return not q or q in row.key.casefold() or any(q in t.casefold() for t in row.texts.values())


def export_csv(session: Session, item: ContentItem, revision: ContentRevision, filters: Filters) -> str:
    """Every row matching the filter (not only the page shown), for translators and reviewers."""
    rows = [r for r in _rows(session, item, revision)[0] if _matches(r, filters)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", *LANGUAGES, "missing", "stale", *(f"sms_segments_{lang}" for lang in LANGUAGES)])
    for row in rows:
        row.costs = {lang: cost(text) for lang, text in row.texts.items() if text}
        values = [row.key, *(_cell(row.texts[lang]) for lang in LANGUAGES)]
        values += [" ".join(sorted(row.missing)), " ".join(sorted(row.stale))]
        values += [str(row.costs[lang].sms_segments) if lang in row.costs else "" for lang in LANGUAGES]
        writer.writerow(values)
    return out.getvalue()


def _cell(text: str) -> str:
    # a text that starts like a formula stays text in a spreadsheet (see services/spreadsheet.py)
    from backend.services.spreadsheet import formula_safe

    return str(formula_safe(text))


@dataclass(frozen=True)
class Compared:
    before: ContentRevision
    after: ContentRevision
    changes: list[Change]

    def by_key(self) -> list[tuple[str, list[Change]]]:
        grouped: dict[str, list[Change]] = {}
        for change in self.changes:
            grouped.setdefault(change.where, []).append(change)
        return list(grouped.items())


def compare(session: Session, item: ContentItem, a: int, b: int) -> Compared:
    before, after = rv.get_revision(session, item, a), rv.get_revision(session, item, b)
    return Compared(before, after, kind_of(item.kind).diff(before.body, after.body))


def edits_from_form(form: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """Fields named t|<lang>|<key> (a key may hold dots, never a bar)."""
    edits = {}
    for name, value in form.items():
        parts = name.split("|")
        if len(parts) == 3 and parts[0] == "t" and parts[1] in LANGUAGES and parts[2]:
            edits[(parts[2], parts[1])] = value
    return edits

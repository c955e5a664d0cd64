"""The hospital's red-flag phrases as a clinical kind of the studio, and keeping the installed ones current.

A body is nlu/safety_site.py's: extra phrases per red-flag category and language, and benign exceptions.
Every change is clinical (a second person with the approver grant publishes it). Validation is
`nlu.safety_site.problems`: empty or too short phrases, a phrase that would raise an alarm on a message
known to be benign, an exception that would hide an emergency the rules catch today.

Publishing installs the revision in the publishing process at once; every other process (web workers, RQ
workers) installs the published revision at its next inbound message: `sync` reads the published
revision's number, one indexed row, and reads the body only when it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.kinds import Change, Problem, register
from backend.models import ContentItem, ContentRevision
from nlu import safety_site as site
from nlu.red_flags import Emergency

KIND = "safety_lexicon"
KEY = "site"  # one lexicon per installation


def validate(body: Mapping[str, Any]) -> list[Problem]:
    return [Problem(p.where, p.code, p.detail, p.blocking) for p in site.problems(body)]


def _lists(body: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(where, language) -> phrases, for every list in a body ("phrases/chest_pain", "exceptions")."""
    out: dict[tuple[str, str], list[str]] = {}
    phrases = body.get("phrases")
    for category, by_lang in phrases.items() if isinstance(phrases, Mapping) else []:
        if isinstance(by_lang, Mapping):
            for lang, values in by_lang.items():
                out[(f"phrases/{category}", str(lang))] = site.phrase_list(values)
    exceptions = body.get("exceptions")
    for lang, values in exceptions.items() if isinstance(exceptions, Mapping) else []:
        out[("exceptions", str(lang))] = site.phrase_list(values)
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Per category (or the exceptions) and language: the phrases before and after, one a line."""
    old, new = _lists(before), _lists(after)
    changes = []
    for where, lang in sorted(set(old) | set(new)):
        a, b = old.get((where, lang), []), new.get((where, lang), [])
        if a != b:
            changes.append(Change(where, lang, "\n".join(a) if a else None, "\n".join(b) if b else None))
    return changes


def lines(text: str) -> list[str]:
    """A textarea's phrases: one a line, blank lines dropped, each trimmed."""
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def body_from_form(values: Mapping[str, str]) -> dict[str, Any]:
    """The editor's textareas (`phrases|<category>|<language>`, `exceptions|<language>`) as a body."""
    body = site.skeleton()
    for e in Emergency:
        for lang in site.LANGS:
            body["phrases"][e.value][lang] = lines(values.get(f"phrases|{e.value}|{lang}", ""))
    for lang in site.LANGS:
        body["exceptions"][lang] = lines(values.get(f"exceptions|{lang}", ""))
    return body


class SafetyLexicon:
    """The ContentKind of the hospital's red-flag phrases."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        return {
            where: ", ".join(values) for (where, in_lang), values in _lists(body).items() if in_lang == lang
        }

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return True  # what counts as an emergency is clinical, whatever changed


# Which database and revision the installed lexicon came from: tests (and a server pointed at another
# database) must not carry one database's phrases into another.
_source: tuple[str, int | None] | None = None


def _install(number: int | None, body: Mapping[str, Any] | None) -> None:
    global _source
    site.install(site.from_body(body, number) if body is not None else site.EMPTY)
    _source = (get_settings().database_url, number)


def sync(session: Session) -> site.SiteLexicon:
    """Install the published lexicon if it is not the installed one; returns what is installed."""
    number = session.scalar(
        sa.select(ContentItem.published_number).where(ContentItem.kind == KIND, ContentItem.key == KEY)
    )
    if _source == (get_settings().database_url, number):
        return site.active()
    body = None
    if number is not None:
        body = session.scalar(
            sa.select(ContentRevision.body)
            .join(ContentItem, ContentItem.id == ContentRevision.item_id)
            .where(ContentItem.kind == KIND, ContentItem.key == KEY, ContentRevision.number == number)
        )
    _install(number, body)
    return site.active()


def _materialise(session: Session, key: str, body: Mapping[str, Any], staff_id: int | None) -> None:
    """Publishing: the publishing process reads the new phrases from its next message on."""
    number = session.scalar(
        sa.select(ContentItem.published_number).where(ContentItem.kind == KIND, ContentItem.key == key)
    )
    _install(number, body)


def published_hook(key: str) -> None:
    """After a publish or a retirement: the next `sync` reads the database again (a retirement has no
    body to install, and a publish rolled back must not stay installed)."""
    global _source
    _source = None


def reset() -> None:
    """Nothing installed, nothing remembered (tests, between databases)."""
    global _source
    site.install(site.EMPTY)
    _source = None


register(SafetyLexicon(), published_hook, materialise=_materialise)

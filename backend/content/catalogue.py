"""The message catalogue the bot speaks from: the published revision in the database once the site is
seeded, the files before that; and the revision a conversation is pinned to.

Revisions are immutable, so a catalogue built from one is cached by its number for good; which number is
published is one indexed row read per new conversation (pinned ones read nothing). Keys the published
revision lacks (a new flow deployed before its texts were imported) fall back to the files.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.texts import KIND
from backend.dialogue.content import catalog_tables, load_catalog
from backend.models import ContentItem, ContentRevision, RevisionState
from bots.catalog import Catalog

DIALOGUES = "dialogues"  # the item's key: content/dialogues/messages


def current_number(session: Session) -> int | None:
    """The published revision of the dialogue texts; None before the site is seeded."""
    return session.scalar(
        sa.select(ContentItem.published_number).where(ContentItem.kind == KIND, ContentItem.key == DIALOGUES)
    )


_BUILT: dict[tuple[str, int], Catalog] = {}
_KEEP = 16  # revisions in use at once: the published one and those older conversations are pinned to


def catalog_at(session: Session, number: int | None) -> Catalog:
    """The catalogue of revision `number` (None: the files). Read with the caller's session: a turn holds
    SQLite's write lock, and a second connection would wait for it."""
    settings = get_settings()
    if number is None:
        return load_catalog(settings.content_dir, settings.hospital_name)
    cached = _BUILT.get((settings.database_url, number))
    if cached is not None:
        return cached
    body = _body(session, number)
    built = _over_files(body)
    if len(_BUILT) >= _KEEP:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[(settings.database_url, number)] = built
    return built


def _body(session: Session, number: int) -> dict[str, dict[str, str]]:
    body = session.scalar(
        sa.select(ContentRevision.body)
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(ContentItem.kind == KIND, ContentItem.key == DIALOGUES, ContentRevision.number == number)
    )
    if body is None:
        raise KeyError(number)
    return dict(body)


@lru_cache(maxsize=4)
def _file_tables(content_dir: Path) -> dict[str, dict[str, object]]:
    # the message files are read once per process (parsing them took most of a draft preview's time)
    return catalog_tables(content_dir)


def _over_files(body: dict[str, dict[str, str]]) -> Catalog:
    settings = get_settings()
    files = _file_tables(settings.content_dir)
    tables = {lang: {**files.get(lang, {}), **body.get(lang, {})} for lang in files}
    return Catalog.merge(tables, defaults={"hospital": settings.hospital_name})


def latest_draft(session: Session) -> int | None:
    """The newest revision of the texts not yet published (a draft, or one in review): what a preview of
    drafts speaks."""
    return session.scalar(
        sa.select(sa.func.max(ContentRevision.number))
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(
            ContentItem.kind == KIND,
            ContentItem.key == DIALOGUES,
            ContentRevision.state.in_((RevisionState.DRAFT, RevisionState.IN_REVIEW, RevisionState.APPROVED)),
        )
    )


_DRAFTS: dict[tuple[str, int], tuple[int, Catalog]] = {}


def draft_catalog(session: Session, number: int) -> Catalog:
    """Any revision's texts; KeyError for an unknown one. A draft changes under its number, so the built
    catalogue is kept with the revision's version (a save bumps it) and read again only when that moved:
    one indexed row read per preview turn instead of building 600 keys x 3 languages (bench/README.md)."""
    version = session.scalar(
        sa.select(ContentRevision.version)
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(ContentItem.kind == KIND, ContentItem.key == DIALOGUES, ContentRevision.number == number)
    )
    if version is None:
        raise KeyError(number)
    cache_key = (get_settings().database_url, number)
    cached = _DRAFTS.get(cache_key)
    if cached is not None and cached[0] == version:
        return cached[1]
    built = _over_files(_body(session, number))
    if len(_DRAFTS) >= _KEEP:
        _DRAFTS.pop(next(iter(_DRAFTS)))
    _DRAFTS[cache_key] = (version, built)
    return built


def current_catalog(session: Session) -> Catalog:
    """For a message outside a conversation (a reminder, a notice): the texts published now."""
    return catalog_at(session, current_number(session))


def pin(session: Session, pinned: int | None, starting: bool) -> tuple[Catalog, int | None]:
    """The catalogue of a turn and the revision to keep on the conversation: the pinned one while its
    flow runs (None: the files, for a run started before the site was seeded); the published one when a
    run starts (no state yet, or the last run ended)."""
    number = current_number(session) if starting else pinned
    try:
        return catalog_at(session, number), number
    except KeyError:  # the pinned revision is gone (a restored backup): the published texts
        number = current_number(session)
        return catalog_at(session, number), number


def clear_cache() -> None:
    _BUILT.clear()
    _DRAFTS.clear()
    _file_tables.cache_clear()

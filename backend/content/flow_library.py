"""The flows the bot runs: the published revision in the database once a flow is seeded, the files before
that; and each revision by its number, which is the flow version a conversation's state is pinned to.

A flow revision's number is its version: a run starts on the published revision and the engine keeps
(flow id, version) in the conversation's state for the rest of the run, so a conversation started on
revision 1 finishes on revision 1 after revision 2 is published. Revisions never change once published,
so a parsed flow is cached by its number for good; which number is published is one indexed row read
when a run (or a sub-flow) starts. A version the database lacks (a conversation started on the files
before the site was seeded) is read from the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.catalogue import catalog_at, current_number
from backend.content.flows import KIND, Flows, Known, validate
from backend.content.kinds import Problem, register
from backend.dialogue.content import load_flow
from backend.dialogue.flow_ports import ACTIONS, CHOICE_SOURCES
from backend.models import ContentItem, ContentRevision
from bots.flows import Flow, FlowError, parse_flow
from nlu.intents import known_intents

_BUILT: dict[tuple[str, str, int], Flow] = {}
_KEEP = 256  # (flow, revision) pairs in use at once: the published ones and those conversations hold


def as_flow(key: str, number: int, body: Mapping[str, Any]) -> Flow:
    """The body parsed as the engine runs it: its id is the item's key, its version the revision's number."""
    return parse_flow({**body, "id": key, "version": number})


# built once: building and cache-keying a statement per call costs about as much as running it (turns.py)
_PUBLISHED = sa.select(ContentItem.published_number).where(
    ContentItem.kind == KIND, ContentItem.key == sa.bindparam("flow_id")
)


def published_number(session: Session, flow_id: str) -> int | None:
    return session.scalar(_PUBLISHED, {"flow_id": flow_id})


def flow_at(session: Session, flow_id: str, number: int) -> Flow:
    """Revision `number` of a flow, if it was ever published; KeyError otherwise."""
    cache_key = (get_settings().database_url, flow_id, number)
    cached = _BUILT.get(cache_key)
    if cached is not None:
        return cached
    body = session.scalar(
        sa.select(ContentRevision.body)
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(
            ContentItem.kind == KIND,
            ContentItem.key == flow_id,
            ContentRevision.number == number,
            ContentRevision.published_at.is_not(None),  # a draft is run by the simulator only
        )
    )
    if body is None:
        raise KeyError(f"{flow_id} r{number}")
    flow = as_flow(flow_id, number, body)
    if len(_BUILT) >= _KEEP:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[cache_key] = flow
    return flow


_DRAFT_FLOWS: dict[tuple[str, str, int], tuple[int, Flow]] = {}
_KEEP_DRAFTS = 32


def draft_at(session: Session, flow_id: str, number: int) -> Flow:
    """Revision `number` of a flow in any state, parsed; kept with its version (a save bumps it), so a
    preview's turns read one indexed row instead of parsing a 200-step draft each time. KeyError for an
    unknown revision or one that does not parse."""
    where = (ContentItem.kind == KIND, ContentItem.key == flow_id, ContentRevision.number == number)
    joined = sa.select(ContentRevision.version).join(ContentItem, ContentItem.id == ContentRevision.item_id)
    version = session.scalar(joined.where(*where))
    if version is None:
        raise KeyError(number)
    cache_key = (get_settings().database_url, flow_id, number)
    cached = _DRAFT_FLOWS.get(cache_key)
    if cached is not None and cached[0] == version:
        return cached[1]
    body = session.scalar(
        sa.select(ContentRevision.body)
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(*where)
    )
    try:
        flow = as_flow(flow_id, number, body or {})
    except FlowError as exc:  # a draft with problems cannot run: the page says so
        raise KeyError(number) from exc
    if len(_DRAFT_FLOWS) >= _KEEP_DRAFTS:
        _DRAFT_FLOWS.pop(next(iter(_DRAFT_FLOWS)))
    _DRAFT_FLOWS[cache_key] = (version, flow)
    return flow


class DatabaseFlows:
    """bots.ports.FlowLibrary over the published revisions, with the files for flows not yet seeded.
    `drafts` stand in for the published revision of their flow (the simulator previewing a draft)."""

    def __init__(self, session: Session, content_dir: Path, drafts: Mapping[str, Flow] | None = None) -> None:
        self.session, self.content_dir = session, content_dir
        self.drafts = dict(drafts or {})

    def get(self, flow_id: str, version: int | None = None) -> Flow:
        draft = self.drafts.get(flow_id)
        if draft is not None and version in (None, draft.version):
            return draft
        number = published_number(self.session, flow_id) if version is None else version
        if number is not None:
            try:
                return flow_at(self.session, flow_id, number)
            except KeyError:
                pass
        return load_flow(self.content_dir, flow_id, version)

    def ids(self) -> list[str]:
        """Every flow: those in the studio and those still only in the files."""
        files = {p.stem for p in (self.content_dir / "dialogues").glob("*.yaml")}
        stored = self.session.scalars(sa.select(ContentItem.key).where(ContentItem.kind == KIND))
        return sorted(files | set(stored))


def text_keys(session: Session) -> set[str]:
    """Every key the published catalogue (over the files) holds, in any language."""
    return _catalogue_facts(session)[0]


_TEXTS: dict[tuple[str, int], tuple[set[str], dict[str, str]]] = {}


def _catalogue_facts(session: Session) -> tuple[set[str], dict[str, str]]:
    """The published catalogue's keys, and per key its texts in every language run together (the slots
    they read); per published number, which never changes."""
    number = current_number(session)
    cache_key = (get_settings().database_url, number or 0)
    found = _TEXTS.get(cache_key)
    if found is None:
        messages = catalog_at(session, number).messages
        texts: dict[str, str] = {}
        for table in messages.values():
            for key, text in table.items():
                texts[key] = f"{texts.get(key, '')} {text}"
        found = _TEXTS[cache_key] = (set(texts), texts)
        if len(_TEXTS) > 8:
            _TEXTS.pop(next(iter(_TEXTS)))
    return found


def known(session: Session) -> Known:
    """What a flow may name, as this site has it now: texts, intents, the ports' actions and lists, flows."""
    keys, texts = _catalogue_facts(session)
    flows = DatabaseFlows(session, get_settings().content_dir).ids()
    return Known(
        keys=keys, texts=texts, intents=known_intents(), actions=ACTIONS, sources=CHOICE_SOURCES, flows=flows
    )


def check(session: Session, body: Mapping[str, Any]) -> list[Problem]:
    return validate(body, known=known(session))


def clear_cache() -> None:
    _BUILT.clear()
    _TEXTS.clear()
    _DRAFT_FLOWS.clear()


# Not retirable: the menu and running conversations name a flow; a new revision replaces it.
register(Flows(), check=check, retirable=False)

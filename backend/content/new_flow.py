"""A dialogue flow started from nothing in the studio: its name, a first step, and what that step says,
either a text the catalogue already holds or new words typed in each language (which go into the texts'
draft under a key of the flow's own, reviewed and published with the texts like every other text).

The flow is a draft like any other: the editor adds steps in the editor, submits it, and a colleague
publishes it. Patients reach it from where an editor points at it: a choice of the main menu (or of any
flow) that runs it (`flow:`), which the validation checks is a flow that exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.catalogue import DIALOGUES
from backend.content.flows import KIND
from backend.content.texts import KIND as TEXTS
from backend.models import ContentItem, ContentRevision, StaffUser
from backend.models.content import RevisionState
from backend.services.refusal import ActionRefused
from bots.domain import LANGUAGES

NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
MAX_TEXT = 2000


class NewFlowRefused(Exception):
    """The new flow cannot be made as asked; `reason` is a code the studio's page words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewFlow:
    flow_id: str
    first_step: str
    say: str  # a text key: one the catalogue holds, or the new one for `texts`
    texts: Mapping[str, str]  # language -> the first step's words; empty: `say` names an existing text


def skeleton(flow_id: str, first_step: str, say: str) -> dict[str, Any]:
    """The smallest flow that runs: one step that says its text and ends."""
    return {
        "id": flow_id,
        "version": 1,
        "start": first_step,
        "steps": {first_step: {"say": say, "end": True}},
    }


def parse(flow_id: str, first_step: str, say: str, texts: Mapping[str, str]) -> NewFlow:
    """The form's fields checked (pure): names of lower-case letters, digits and underscores; typed words
    (any language) make a new key `<flow>.<step>`, else `say` must name a text."""
    flow_id, first_step, say = flow_id.strip(), first_step.strip() or "start", say.strip()
    if not NAME.fullmatch(flow_id) or flow_id == "new":
        raise NewFlowRefused("flow_id")
    if not NAME.fullmatch(first_step):
        raise NewFlowRefused("step_name")
    typed = {lang: texts[lang].strip() for lang in LANGUAGES if texts.get(lang, "").strip()}
    if any(len(t) > MAX_TEXT for t in typed.values()):
        raise NewFlowRefused("text_length")
    if typed:
        return NewFlow(flow_id, first_step, f"{flow_id}.{first_step}", typed)
    if not say:
        raise NewFlowRefused("first_text")
    return NewFlow(flow_id, first_step, say, {})


def do_create_flow(
    session: Session, user: StaffUser, new: NewFlow, *, file_flows: set[str]
) -> tuple[ContentItem, ContentRevision]:
    """The flow's item and its first draft (audited by the revision service); typed words go into the
    texts' newest draft (a new draft when none is open). Refused, with nothing changed, when the name is
    taken by a flow of the studio or of the files."""
    taken = session.scalar(
        sa.select(ContentItem.id).where(ContentItem.kind == KIND, ContentItem.key == new.flow_id)
    )
    if taken is not None or new.flow_id in file_flows:
        raise NewFlowRefused("flow_exists")
    if new.texts:
        _add_texts(session, user, new.say, new.texts)
    item = rv.get_item(session, KIND, new.flow_id, create=True)
    draft = rv.do_start_draft(session, item, user, body=skeleton(new.flow_id, new.first_step, new.say))
    return item, draft


def _add_texts(session: Session, user: StaffUser, key: str, texts: Mapping[str, str]) -> None:
    try:
        item = rv.get_item(session, TEXTS, DIALOGUES)
    except ActionRefused as exc:
        raise NewFlowRefused("texts_not_in_studio") from exc
    draft = session.scalar(
        sa.select(ContentRevision)
        .where(ContentRevision.item_id == item.id, ContentRevision.state == RevisionState.DRAFT)
        .order_by(ContentRevision.number.desc())
        .limit(1)
    )
    if draft is None:
        draft = rv.do_start_draft(session, item, user)
    body = {lang: dict(table) for lang, table in dict(draft.body).items()}
    for lang, text in texts.items():
        body.setdefault(lang, {})[key] = text
    rv.do_save_draft(session, item, draft.number, user, version=draft.version, body=body)

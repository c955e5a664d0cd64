"""The call's fixed prompts as the studio shows them: a filtered view of the message catalogue, not a store
of their own.

The opening disclosure, read-back, say-or-press, goodbye and the other fixed wording of a call are the
`voice.*` keys of the dialogue texts (backend/web/voice_stream.py's script reads them from the texts
published when the call starts). Keeping them there keeps one lifecycle, one translation workflow (PO
files, stale marks) and one pinning rule; the studio's voice-prompt page lists them with a "play" preview
synthesised by the call's own text-to-speech, and edits them in the texts editor filtered to `voice.`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.catalogue import DIALOGUES, catalog_at, latest_draft
from backend.content.texts import KIND
from backend.models import ContentItem
from bots.catalog import Catalog, CatalogError
from bots.domain import LANGUAGES

PREFIX = "voice."
# what a read-back says where the caller's answer goes, in the preview
SAMPLE = {"answer": "3"}


@dataclass(frozen=True)
class Prompt:
    key: str
    texts: dict[str, str]  # as authored, per language; "" when missing


def prompt_keys(body: Mapping[str, Any]) -> list[str]:
    """The voice prompts' keys in a catalogue body ({lang: {key: text}})."""
    keys = {str(k) for table in body.values() if isinstance(table, Mapping) for k in table}
    return sorted(k for k in keys if k.startswith(PREFIX))


def prompts(catalog: Catalog) -> list[Prompt]:
    tables = catalog.messages
    return [
        Prompt(key, {lang: str(tables.get(lang, {}).get(key, "")) for lang in LANGUAGES})
        for key in prompt_keys(tables)
    ]


def shown_revision(session: Session) -> int | None:
    """The revision the page shows: the newest draft or revision in review, else the published one (None:
    the texts are not in the studio yet, and the files speak)."""
    return latest_draft(session) or session.scalar(
        sa.select(ContentItem.published_number).where(ContentItem.kind == KIND, ContentItem.key == DIALOGUES)
    )


def spoken(session: Session, number: int | None, key: str, lang: str) -> str:
    """What a call on revision `number` says for `key` in `lang` ({hospital} filled, a sample answer);
    KeyError for a key that is not a voice prompt or a revision that does not exist."""
    if not key.startswith(PREFIX) or lang not in LANGUAGES:
        raise KeyError(key)
    try:
        return catalog_at(session, number).text(lang, key, **SAMPLE)
    except CatalogError:
        raise KeyError(key) from None

"""Translation exchange with agencies as PO files (Babel): one file per target language, the key as the
message context, the source-language text as msgid, the translation as msgstr; a stale translation is
marked fuzzy. Importing takes back only translations whose source text is still the one sent."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from backend.content.texts import keys_of
from bots.domain import LANGUAGES


class PoError(ValueError):
    """A file that is not a readable PO catalogue for this language: nothing was taken from it."""


@dataclass
class Taken:
    """What an import did: translations set, keys skipped because their source text changed since the
    export (or the key is gone), and entries left empty."""

    body: dict[str, dict[str, str]]
    updated: list[str] = field(default_factory=list)
    source_changed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    empty: int = 0


def export_po(
    body: Mapping[str, Any], lang: str, source: str, stale: set[tuple[str, str]] | None = None
) -> bytes:
    if lang not in LANGUAGES or source not in LANGUAGES or lang == source:
        raise PoError(f"cannot translate {source} into {lang}")
    catalog = Catalog(locale=lang.replace("-", "_"), project="CareLoop", fuzzy=False)
    for key in keys_of(body):
        text = body.get(source, {}).get(key)
        if not text:
            continue  # nothing to translate from yet
        flags = ["python-brace-format"]
        if stale and (key, lang) in stale:
            flags.append("fuzzy")
        catalog.add(text, body.get(lang, {}).get(key, ""), context=key, flags=flags)
    out = io.BytesIO()
    write_po(out, catalog, width=0, sort_output=True)
    return out.getvalue()


def import_po(body: Mapping[str, Any], data: bytes, lang: str, source: str) -> Taken:
    """`body` with the file's translations into `lang`; the caller validates the result as for any edit."""
    if lang not in LANGUAGES or lang == source:
        raise PoError(f"cannot take translations into {lang}")
    try:
        catalog = read_po(io.BytesIO(data), abort_invalid=True)
    except Exception as exc:  # Babel raises several kinds for a malformed file
        raise PoError(f"not a PO file: {exc}") from None
    if catalog.locale is not None and str(catalog.locale) != lang.replace("-", "_"):
        raise PoError(f"the file is for {catalog.locale}, not {lang}")
    entries = [m for m in catalog if m.id and isinstance(m.id, str) and m.context]
    if not entries:
        raise PoError("not a PO file of CareLoop texts: no entry names its key")
    taken = Taken({lg: dict(body.get(lg, {})) for lg in LANGUAGES})
    for message in entries:
        key = str(message.context)
        current = taken.body[source].get(key)
        translation = message.string if isinstance(message.string, str) else ""
        if current is None:
            taken.unknown.append(key)
        elif current != message.id:
            taken.source_changed.append(key)
        elif not translation.strip():
            taken.empty += 1
        elif taken.body[lang].get(key) != translation:
            taken.body[lang][key] = translation
            taken.updated.append(key)
    return taken

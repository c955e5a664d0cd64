"""Staff UI message catalogues (Babel .po files under backend/i18n), loaded once per language."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from bots.domain import pick_language

CATALOG_DIR = Path(__file__).parent


@lru_cache(maxsize=8)
def translations(lang: str) -> NullTranslations:
    lang = pick_language(lang)
    path = CATALOG_DIR / f"{lang.replace('-', '_')}.po"
    if not path.exists():
        return NullTranslations()  # English is the source language
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def negotiate(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header."""
    for item in (accept_language or "").split(","):
        tag = item.split(";")[0].strip()
        if tag:
            lang = pick_language(tag)
            if lang != "en" or tag.lower().startswith("en"):
                return lang
    return "en"

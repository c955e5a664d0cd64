"""What every patient page shares: the large-text toggle, the language switch, and WeChat's in-app browser.

WeChat's in-app browser (user agent "MicroMessenger") covers the bottom of the page with its own
toolbar and, when the keyboard opens, leaves `position: fixed` elements where they were, so a fixed
composer hides what the patient is typing or floats over the messages. Pages opened there get the
`in-wechat` class, and the stylesheet keeps the composer in the page's flow (sticky) instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from bots.catalog import Catalog
from bots.domain import LANGUAGES


def in_wechat(request: Request) -> bool:
    return "micromessenger" in request.headers.get("user-agent", "").lower()


def tools(catalog: Catalog, lang: str, *, action: str | None = None, client_id: str = "") -> dict[str, Any]:
    """The controls' texts; with `action` (the chat's message route) also the language switch, which
    posts the language's own name as a message, so the bot switches as if the patient had typed it."""
    languages = (
        [
            {"code": code, "name": catalog.text(code, "common.language_name"), "current": code == lang}
            for code in LANGUAGES
        ]
        if action
        else []
    )
    return {
        "large_text_label": catalog.text(lang, "pages.large_text"),
        "language_label": catalog.text(lang, "pages.language"),
        "languages": languages,
        "action": action,
        "client_id": client_id,
    }

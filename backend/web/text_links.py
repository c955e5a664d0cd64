"""Plain message text as safe HTML with its web addresses made clickable (the chat page and its script).

Bot texts carry links as plain text ("Fill in the form: https://…/q/…"); a patient on a phone must be
able to tap them. Everything is escaped first; only http(s) addresses become anchors, and trailing
punctuation of the sentence (".", ")", "。") stays outside the link.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

URL = re.compile(r"https?://[^\s<>\"'，。、；！？（）]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def split_links(text: str) -> list[tuple[str, bool]]:
    """The text as (piece, is_link) runs, in order; joining the pieces gives the text back."""
    runs: list[tuple[str, bool]] = []
    at = 0
    for match in URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(url)
        if start > at:
            runs.append((text[at:start], False))
        runs.append((url, True))
        at = end
    if at < len(text):
        runs.append((text[at:], False))
    return runs


def linkify(text: str) -> Markup:
    """Escaped text with each http(s) address as an anchor that opens in the same tab."""
    out = [
        Markup('<a href="{0}" rel="noopener">{0}</a>').format(piece) if is_link else escape(piece)
        for piece, is_link in split_links(text)
    ]
    return Markup("").join(out)

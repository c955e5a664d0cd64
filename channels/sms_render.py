"""Plain-text rendering of `Outbound` for SMS (and WhatsApp free-form), and numbered replies back to choices.

Layout, one part after another on its own line(s):

- `Text`: as is.
- `Choices`: one numbered line per option, "1. Yes", numbered on across several `Choices` parts so
  every number in a message is unique.
- `Link`: "label: url" (just the url when the label is empty).
- `MediaRef`: its url on a line (SMS carries no media in CN/VN; WhatsApp attaches it instead, see
  `render_sms(..., with_media=False)`).

A reply is mapped back with `numbered_choice(reply, outbound)`, given the message it answers (the
`Outbound` or its `to_json()` as stored in the outbox): "1", " 1. ", "１", "#1", "(1)" give the first
option's payload. Option *text* ("Yes", "有") is left to the deterministic answer parser in `nlu`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from bots.messages import Choice, Choices, Link, MediaRef, Outbound, Text

_NUMBER_REPLY = re.compile(r"^[#(\[]?\s*(\d{1,2})\s*[.)\]、,，:]?$")


def render_sms(outbound: Outbound, *, with_media: bool = True) -> str:
    """The message body; `with_media=False` leaves media out (the caller attaches them)."""
    lines: list[str] = []
    number = 0
    for part in outbound.parts:
        if isinstance(part, Text):
            if part.text:
                lines.append(part.text)
        elif isinstance(part, Choices):
            for option in part.options:
                number += 1
                lines.append(f"{number}. {option.label}")
        elif isinstance(part, Link):
            lines.append(f"{part.label}: {part.url}" if part.label else part.url)
        elif with_media:
            lines.append(part.url)
    return "\n".join(lines)


def choices_of(outbound: Outbound | Sequence[Mapping[str, Any]]) -> list[Choice]:
    """Every option of the message in the order `render_sms` numbers them."""
    if not isinstance(outbound, Outbound):
        outbound = Outbound.from_json([dict(item) for item in outbound])
    return [option for part in outbound.parts if isinstance(part, Choices) for option in part.options]


def numbered_choice(reply: str, outbound: Outbound | Sequence[Mapping[str, Any]]) -> str | None:
    """The payload of the option the reply's number picks in `outbound`, or None (not a number in range)."""
    match = _NUMBER_REPLY.match(unicodedata.normalize("NFKC", reply).strip())
    if match is None:
        return None
    options = choices_of(outbound)
    index = int(match.group(1))
    if 1 <= index <= len(options):
        return options[index - 1].payload
    return None


def media_of(outbound: Outbound) -> list[MediaRef]:
    return [part for part in outbound.parts if isinstance(part, MediaRef)]


def has_choices(outbound: Outbound) -> bool:
    return any(isinstance(part, Choices) and part.options for part in outbound.parts)

"""The web chat channel: the patient page's posts become `Inbound`; `Outbound` parts become page items."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bots.domain import Channel
from bots.messages import Inbound, InboundKind, Outbound

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class MessageTooLong(ValueError):
    """The patient's message exceeds the channel's size limit."""


class BadPost(ValueError):
    """The post is malformed (no text and no choice, a bad client id)."""


def address_for(patient_id: int) -> str:
    return f"web:{patient_id}"


def new_client_id() -> str:
    return uuid.uuid4().hex


def inbound_from_post(
    *,
    patient_id: int,
    text: str | None,
    choice: str | None,
    client_id: str | None,
    received_at: datetime,
    max_bytes: int,
) -> Inbound:
    text = (text or "").strip()
    choice = (choice or "").strip() or None
    if len(text.encode("utf-8")) > max_bytes:
        raise MessageTooLong(f"message over {max_bytes} bytes")
    if not text and choice is None:
        raise BadPost("empty message")
    if choice is not None and len(choice) > 64:
        raise BadPost("choice too long")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise BadPost("bad client id")
    return Inbound(
        channel=Channel.WEBCHAT,
        sender=address_for(patient_id),
        provider_message_id=f"web:{patient_id}:{client_id or new_client_id()}",
        received_at=received_at,
        text=text,
        choice=choice,
    )


def conversation_started(patient_id: int, conversation_id: int, at: datetime) -> Inbound:
    """The page was opened: one start event per conversation (deduplicated by its id)."""
    return Inbound(
        channel=Channel.WEBCHAT,
        sender=address_for(patient_id),
        provider_message_id=f"start:{conversation_id}",
        received_at=at,
        kind=InboundKind.CONVERSATION_STARTED,
    )


class Author(StrEnum):
    """Who wrote a message on the page: patients must be able to tell a person from the bot."""

    PATIENT = "patient"
    BOT = "bot"
    STAFF = "staff"


@dataclass(frozen=True)
class PageItem:
    id: int
    mine: bool  # sent by the patient
    text: str
    choices: list[dict[str, str]]
    links: list[dict[str, str]]
    author: Author = Author.BOT
    by: str = ""  # the label shown above a message that is not the patient's own ("Care team · nurse")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mine": self.mine,
            "text": self.text,
            "choices": self.choices,
            "links": self.links,
            "author": self.author.value,
            "by": self.by,
        }


def render(
    message_id: int,
    inbound: bool,
    text: str,
    parts: list[dict[str, Any]] | None,
    *,
    author: Author | None = None,
    by: str = "",
) -> PageItem:
    if inbound:
        return PageItem(message_id, True, text, [], [], Author.PATIENT)
    outbound = Outbound.from_json(parts or [{"type": "text", "text": text}])
    data = outbound.to_json()
    choices = [opt for p in data if p["type"] == "choices" for opt in p["options"]]
    links = [{"url": p["url"], "label": p["label"]} for p in data if p["type"] == "link"]
    return PageItem(message_id, False, outbound.text, choices, links, author or Author.BOT, by)

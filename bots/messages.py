"""The one message model every channel speaks: `Inbound` from patients, `Outbound` parts to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bots.domain import Channel


class InboundKind(StrEnum):
    MESSAGE = "message"
    CONVERSATION_STARTED = "conversation_started"
    FOLLOWED = "followed"  # WeChat subscribe (with `scene` when it came from a QR code)
    UNFOLLOWED = "unfollowed"  # WeChat unsubscribe: the channel is gone
    SCANNED = "scanned"  # an existing follower scanned a QR code (`scene`)


@dataclass(frozen=True, slots=True)
class MediaRef:
    url: str
    mime_type: str
    media_id: str | None = None  # the provider's handle (WeChat MediaId), to fetch the bytes later


@dataclass(frozen=True, slots=True)
class Inbound:
    channel: Channel
    sender: str
    provider_message_id: str
    received_at: datetime
    text: str = ""
    choice: str | None = None
    media: tuple[MediaRef, ...] = ()
    kind: InboundKind = InboundKind.MESSAGE
    scene: str | None = None  # the QR code's scene value (WeChat), e.g. a department's code


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Choice:
    payload: str
    label: str


@dataclass(frozen=True, slots=True)
class Choices:
    options: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    label: str


Part = Text | Choices | Link | MediaRef


@dataclass(frozen=True, slots=True)
class Outbound:
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """The plain text of the message, for logs of length and the staff timeline."""
        return "\n".join(p.text for p in self.parts if isinstance(p, Text))

    def to_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in self.parts:
            if isinstance(part, Text):
                out.append({"type": "text", "text": part.text})
            elif isinstance(part, Choices):
                out.append(
                    {
                        "type": "choices",
                        "options": [{"payload": c.payload, "label": c.label} for c in part.options],
                    }
                )
            elif isinstance(part, Link):
                out.append({"type": "link", "url": part.url, "label": part.label})
            else:
                out.append({"type": "media", "url": part.url, "mime_type": part.mime_type})
        return out

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Outbound:
        parts: list[Part] = []
        for item in data:
            kind = item["type"]
            if kind == "text":
                parts.append(Text(item["text"]))
            elif kind == "choices":
                parts.append(Choices(tuple(Choice(o["payload"], o["label"]) for o in item["options"])))
            elif kind == "link":
                parts.append(Link(item["url"], item["label"]))
            elif kind == "media":
                parts.append(MediaRef(item["url"], item["mime_type"]))
            else:
                raise ValueError(f"unknown outbound part type {kind!r}")
        return cls(tuple(parts))

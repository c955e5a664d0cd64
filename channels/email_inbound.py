"""Mail that comes back to us: bounce reports (RFC 3464 DSNs) and mailto unsubscribe requests.

Our MTA pipes two kinds of address to `/hooks/email` with the raw message and its envelope recipient:
`bounces+<item token>@<domain>` (the VERP envelope sender of everything we send) and
`unsubscribe+<token>@<domain>` (the mailto half of `List-Unsubscribe`). This module reads them with the
standard library's `email` package and says what they are; the backend checks the tokens and acts.

A DSN is `multipart/report; report-type=delivery-status` whose second part (`message/delivery-status`)
holds one block of per-message fields and a block per recipient with `Action`, `Status` (an RFC 3463
code such as 5.1.1), `Final-Recipient` and `Diagnostic-Code`. Anything else sent to a bounce address
(an auto-reply, a non-standard bounce) is reported as `MalformedPayload` and stored nowhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

from channels.base import MalformedPayload

_ADDRESS = re.compile(r"^(bounces|unsubscribe)\+([a-z0-9-]{1,80})@", re.IGNORECASE)
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})")
MAX_MAIL = 64 * 1024  # the hook's body limit: a DSN returns headers or the whole original, a few kB


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's block of a DSN."""

    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. "5.1.1"
    final_recipient: str | None = None
    diagnostic: str | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    @property
    def hard(self) -> bool:
        """A permanent failure of the address itself (RFC 3463: 5.1.x addressing, 5.2.1 mailbox
        disabled), as opposed to one message refused (too large, content) or a full mailbox."""
        return self.failed and (self.status.startswith("5.1.") or self.status == "5.2.1")


@dataclass(frozen=True, slots=True)
class Dsn:
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str | None = None  # from the returned headers, when the reporter quotes them


@dataclass(frozen=True, slots=True)
class Routed:
    """Which of our addresses a mail came to, and the token in it."""

    kind: str  # "bounces" or "unsubscribe"
    token: str


def route(recipient: str) -> Routed:
    match = _ADDRESS.match(recipient.strip().strip("<>"))
    if match is None:
        raise MalformedPayload("not one of our bounce or unsubscribe addresses")
    return Routed(match.group(1).lower(), match.group(2).lower())


def parse_mail(raw: bytes) -> EmailMessage:
    if not raw or len(raw) > MAX_MAIL:
        raise MalformedPayload("empty or oversized mail")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    if not parsed.keys():
        raise MalformedPayload("no headers")
    return parsed


def envelope_recipient(mail: EmailMessage) -> str | None:
    """Where the MTA delivered it, when it did not say: Delivered-To / X-Original-To, else To."""
    for name in ("Delivered-To", "X-Original-To", "To"):
        value = mail.get(name)
        if value:
            addresses = getattr(value, "addresses", ())
            return str(addresses[0].addr_spec) if addresses else str(value)
    return None


def _fields(block: Message) -> dict[str, str]:
    return {key.lower(): " ".join(str(value).split()) for key, value in block.items()}  # unfolded


def _address(field: str | None) -> str | None:
    """`rfc822; lan@example.vn` -> `lan@example.vn`."""
    if not field:
        return None
    return field.split(";", 1)[-1].strip() or None


def parse_dsn(mail: EmailMessage) -> Dsn:
    if mail.get_content_type() != "multipart/report":
        raise MalformedPayload("not a multipart/report")
    if str(mail.get_param("report-type") or "").lower() != "delivery-status":
        raise MalformedPayload("not a delivery-status report")
    parts = mail.iter_parts()
    status_part = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        raise MalformedPayload("no message/delivery-status part")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise MalformedPayload("a delivery-status part names no recipient")
    recipients = []
    for block in blocks[1:]:  # the first block is about the message, the rest one per recipient
        if not isinstance(block, Message):
            raise MalformedPayload("a delivery-status block that is not a header block")
        fields = _fields(block)
        status = _STATUS.match(fields.get("status", ""))
        action = fields.get("action", "").lower()
        if status is None or action not in {"failed", "delayed", "delivered", "relayed", "expanded"}:
            raise MalformedPayload("a recipient block without a valid Action and Status")
        recipients.append(
            RecipientStatus(
                action=action,
                status=status.group(0),
                final_recipient=_address(fields.get("final-recipient")),
                diagnostic=fields.get("diagnostic-code"),
            )
        )
    return Dsn(tuple(recipients), _original_message_id(mail))


def _original_message_id(mail: EmailMessage) -> str | None:
    for part in mail.iter_parts():
        kind = part.get_content_type()
        original: Message | None = None
        if kind == "message/rfc822":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            original = first if isinstance(first, Message) else None
        elif kind == "text/rfc822-headers":
            headers = part.get_payload(decode=True)
            if isinstance(headers, bytes):
                original = message_from_bytes(headers, policy=policy.default)
        if original is not None and original.get("Message-ID"):
            return str(original["Message-ID"]).strip()
    return None

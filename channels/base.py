"""The small interface every messaging adapter offers: send a `Delivery`, parse provider callbacks.

Adapters never import `backend`. The outbound pipeline (backend) decides *whether* and *when* a
message may go (consent, exclusions, quiet hours, caps) and hands the adapter a `Delivery` with the
plaintext address; the adapter decides *how* it goes on its channel (numbered lines on SMS, buttons
on WeChat/WhatsApp, a template outside the provider's free-form window) and reports the outcome as a
`SendResult` or raises `SendFailed`. Webhook parsing functions raise the three request errors below,
which routes turn into 403 / 400 without storing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bots.domain import Channel
from bots.messages import Outbound


class ForgedRequest(Exception):
    """The provider's signature is missing or wrong: answer 403, store nothing."""


class MalformedPayload(ValueError):
    """The body is not what the provider documents (bad XML/JSON/form fields): answer 400."""


class ReplayedRequest(Exception):
    """A correctly signed request that is too old to be fresh (WeChat: over 5 minutes): answer 403."""


class DeliveryStatus(StrEnum):
    """Provider delivery states, mapped from each provider's own names."""

    QUEUED = "queued"  # accepted by the provider, not yet sent to the handset
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # the provider gave up (permanent)
    UNDELIVERED = "undelivered"


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """A provider-approved template, for sends outside the free-form window.

    `provider_id` is the WeChat template_id or the Twilio Content SID; `variables` fill it
    (WeChat: data keys such as "first", "keyword1"; Twilio: "1", "2", ...); `url` is where a WeChat
    template message opens.
    """

    key: str  # our name for it, e.g. "followup_invite"
    provider_id: str
    variables: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class MailContext:
    """What an email needs beyond the message parts, all decided by the backend: the subject and footer
    in the patient's language, the outbox item's token (the Message-ID and the VERP bounce address are
    made from it, so a resend carries the same ones) and the signed unsubscribe token and link."""

    subject: str
    item_token: str
    unsubscribe_token: str
    unsubscribe_url: str  # https, RFC 8058 one-click (POST) and a confirmation page (GET)
    footer: str = ""  # why she gets this mail and how to stop it, in her language
    unsubscribe_label: str = ""
    auto_submitted: bool = True  # RFC 3834: not written by a person at the time it was sent


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row, ready for an adapter. `to` is the plaintext address (E.164 phone, openid)."""

    reference: str  # our outbox id: the idempotency key and what status callbacks are matched on
    to: str
    outbound: Outbound
    lang: str
    window_open: bool = True  # the provider's session window (WeChat 48 h, WhatsApp 24 h) is open
    template: TemplateRef | None = None  # used when the window is closed
    status_callback: str | None = None  # absolute URL the provider reports delivery status to
    mail: MailContext | None = None  # email only
    # an emergency's guidance or a staff alert: after an ambiguous attempt, a duplicate is better than none
    time_critical: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider accepted: its message ids (one per request/segment group) and the status."""

    provider_message_ids: tuple[str, ...]
    status: DeliveryStatus = DeliveryStatus.QUEUED


class SendFailed(Exception):
    """The provider refused or could not be reached.

    `permanent=False` (timeouts, 5xx, rate limits) means retry later with backoff;
    `permanent=True` means do not retry; `invalid_address=True` additionally means the number or
    account cannot receive anything (mark the contact invalid); `window_closed=True` means the
    free-form window had closed and a template is needed.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        invalid_address: bool = False,
        window_closed: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or invalid_address
        self.invalid_address = invalid_address
        self.window_closed = window_closed
        self.retry_after = retry_after
        self.code = code


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery-status callback: which message, its new state, the provider's error code if any."""

    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    at: datetime | None = None
    invalid_address: bool = False  # the error code says the number/account cannot receive


class Sender(Protocol):
    """An outbound adapter. Synchronous (vendor SDKs are): call it from a worker, never the event loop."""

    channel: Channel

    def send(self, delivery: Delivery) -> SendResult: ...


@runtime_checkable
class LooksUp(Protocol):
    """An adapter whose provider has no idempotency key but can list what it accepted. Before a resend
    after an ambiguous attempt (a timeout, a worker killed mid-call) the sender asks it whether the
    provider already has the message; only when it has no record is the message sent again."""

    def find_sent(self, delivery: Delivery, since: datetime) -> SendResult | None: ...


@runtime_checkable
class ResendPolicy(Protocol):
    """An adapter whose provider can neither dedupe every resend nor list what it accepted (WeChat).
    After an ambiguous attempt the sender asks it whether this message may go again; when not, the item
    is not resent but marked for a person to look at (`ambiguous_unconfirmed`)."""

    def may_resend(
        self, delivery: Delivery, ambiguous_since: datetime, ambiguous: int, now: datetime
    ) -> bool:
        """`ambiguous_since`: when the first ambiguous attempt began; `ambiguous`: how many there were."""
        ...

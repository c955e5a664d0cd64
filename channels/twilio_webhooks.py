"""Twilio's webhooks for SMS and WhatsApp: signature check, incoming messages, delivery-status callbacks.

Routes call `verify_twilio` first with the *public* URL Twilio was configured with (from settings),
not the URL the request arrived on: behind a TLS-terminating proxy the app sees http://10.0.0.5:8000/...
while Twilio signed https://care.example.org/..., so rebuilding the URL from the request would reject
every genuine webhook. Form parameters are passed exactly as received (Twilio may add new ones; all of
them are signed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from twilio.request_validator import RequestValidator

from bots.domain import Channel
from bots.messages import Inbound, MediaRef
from channels.base import ForgedRequest, MalformedPayload, StatusUpdate
from channels.sms_twilio import E164, INVALID_ADDRESS_CODES, TWILIO_STATUS

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio sends at most ten MediaUrlN

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def verify_twilio(url: str, params: Mapping[str, str], signature: str | None, auth_token: str) -> None:
    """Raise ForgedRequest unless `signature` (X-Twilio-Signature) signs `url` + `params` with the token."""
    if not signature or not auth_token:
        raise ForgedRequest("X-Twilio-Signature missing (or no auth token configured)")
    if not RequestValidator(auth_token).validate(url, params, signature):
        raise ForgedRequest("X-Twilio-Signature does not match")


def parse_twilio_message(params: Mapping[str, str], *, now: datetime | None = None) -> Inbound:
    """An incoming SMS or WhatsApp message (WhatsApp when From is "whatsapp:+..."), as an `Inbound`."""
    message_sid = _sid(params, "MessageSid")
    channel, sender = _address(_required(params, "From"))
    media = tuple(_media(params))
    # A tap on a quick-reply button (Content template) carries the option's payload; SMS has none.
    payload = (params.get("ButtonPayload") or None) if channel is Channel.WHATSAPP else None
    return Inbound(
        channel=channel,
        sender=sender,
        provider_message_id=message_sid,
        received_at=now or datetime.now(UTC),
        text=params.get("Body", ""),
        choice=payload,
        media=media,
    )


def parse_twilio_status(params: Mapping[str, str], *, now: datetime | None = None) -> StatusUpdate:
    """A delivery-status callback (MessageStatus, ErrorCode) as a `StatusUpdate`."""
    message_sid = _sid(params, "MessageSid")
    raw = params.get("MessageStatus") or params.get("SmsStatus") or ""
    status = TWILIO_STATUS.get(raw.strip().lower())
    if status is None:
        raise MalformedPayload(f"unknown or missing MessageStatus {raw!r}")
    error_code = (params.get("ErrorCode") or "").strip() or None
    if error_code is not None and not error_code.isdigit():
        raise MalformedPayload("ErrorCode is not a number")
    return StatusUpdate(
        provider_message_id=message_sid,
        status=status,
        error_code=error_code,
        at=now or datetime.now(UTC),
        invalid_address=error_code in INVALID_ADDRESS_CODES,
    )


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise MalformedPayload(f"missing {name}")
    return value


def _sid(params: Mapping[str, str], name: str) -> str:
    value = _required(params, name)
    if not _SID.match(value):
        raise MalformedPayload(f"{name} is not a Twilio SID")
    return value


def _address(raw: str) -> tuple[Channel, str]:
    channel, number = Channel.SMS, raw.strip()
    if number.startswith(WHATSAPP_PREFIX):
        channel, number = Channel.WHATSAPP, number.removeprefix(WHATSAPP_PREFIX)
    if not E164.match(number):
        raise MalformedPayload("From is not an E.164 number")
    return channel, number


def _media(params: Mapping[str, str]) -> list[MediaRef]:
    raw = params.get("NumMedia", "0") or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise MalformedPayload("NumMedia is not a number from 0 to 10")
    media: list[MediaRef] = []
    for index in range(int(raw)):
        url = _required(params, f"MediaUrl{index}")
        if not url.startswith("https://"):
            raise MalformedPayload(f"MediaUrl{index} is not an https URL")
        mime = _required(params, f"MediaContentType{index}")
        media_sid = url.rstrip("/").rsplit("/", 1)[-1]
        media.append(MediaRef(url, mime, media_sid if _SID.match(media_sid) else None))
    return media

"""SMS through a generic HTTP gateway (local providers in CN/VN), and its signed callbacks.

The contract a gateway (or the adapter in front of one) implements:

Send — ``POST {url}`` with ``Authorization: Bearer {token}`` and a JSON body::

    {"to": "+8613800138000", "text": "...", "reference": "<our outbox id>",
     "callback_url": "<absolute URL or null>", "from": "<sender, only when configured>"}

Carriers' registrations, each only when configured: ``"signature"`` (the registered 签名, without
【】) on Chinese numbers (+86); ``"from"`` is the registered brandname on Vietnamese numbers (+84);
``"template_id"`` and ``"template_params"`` (an object) when the message has a carrier-registered template.

- ``2xx`` with ``{"id": "<gateway message id>"}``: accepted. `reference` is our idempotency key: a
  gateway that sees the same reference twice must not send twice (our retries rely on it).
- ``4xx`` with ``{"error": {"code": "invalid_number" | "unsubscribed" | <other>, "message": "..."}}``:
  refused; ``invalid_number`` marks the contact invalid, ``unsubscribed`` means the patient opted out
  with the provider, anything else is a permanent refusal.
- ``429`` (with an optional ``Retry-After`` in seconds) and ``5xx``: try again later.

Callbacks — the gateway ``POST``s JSON to `callback_url` (status) or to our inbound URL (patient
messages), with header ``X-Signature: <hex HMAC-SHA256 of the raw body, keyed by the token>``
(a ``sha256=`` prefix is accepted)::

    {"type": "status", "id": "<gateway message id>", "status": "queued" | "sent" | "delivered" |
     "failed" | "undelivered", "error_code": "invalid_number" | <other> | null,
     "at": "<ISO 8601 with offset, optional>"}
    {"type": "inbound", "id": "<gateway message id>", "from": "+84912345678", "text": "...",
     "at": "<ISO 8601 with offset, optional>"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from bots.domain import Channel
from bots.messages import Inbound
from channels.base import (
    Delivery,
    DeliveryStatus,
    ForgedRequest,
    MalformedPayload,
    SendFailed,
    SendResult,
    StatusUpdate,
)
from channels.sms_render import render_sms
from channels.sms_twilio import E164

SIGNATURE_HEADER = "X-Signature"
INVALID_NUMBER = "invalid_number"
UNSUBSCRIBED = "unsubscribed"

_STATUSES = {s.value: s for s in DeliveryStatus}


class HttpGatewaySms:
    """`channels.base.Sender` for SMS through the generic gateway described in the module docstring."""

    channel = Channel.SMS

    def __init__(
        self,
        *,
        url: str,
        token: str,
        sender: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        signature: str | None = None,
        brandname: str | None = None,
    ) -> None:
        self.url = url
        self.sender = sender
        self.signature, self.brandname = signature, brandname
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        self._client.close()

    def send(self, delivery: Delivery) -> SendResult:
        if not E164.match(delivery.to):
            raise SendFailed("not an E.164 number", permanent=True, invalid_address=True, code="not_e164")
        text = render_sms(delivery.outbound)
        if not text.strip():
            raise SendFailed("nothing to send: the message renders empty", permanent=True, code="empty")
        body: dict[str, Any] = {
            "to": delivery.to,
            "text": text,
            "reference": delivery.reference,
            "callback_url": delivery.status_callback,
        }
        body.update(registration(delivery, self.sender, self.signature, self.brandname))
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise SendFailed("SMS gateway did not answer in time", permanent=False, code="timeout") from exc
        except httpx.TransportError as exc:
            raise SendFailed(
                f"SMS gateway unreachable: {type(exc).__name__}", permanent=False, code="network"
            ) from exc
        if response.is_success:
            message_id = _json(response).get("id")
            if not isinstance(message_id, str) or not message_id:
                # It was accepted (2xx): retrying could send twice, so this is not transient.
                raise SendFailed("SMS gateway accepted without an id", permanent=True, code="no_id")
            return SendResult(provider_message_ids=(message_id,))
        raise _failure(response)


def registration(
    delivery: Delivery, sender: str | None, signature: str | None, brandname: str | None
) -> dict[str, Any]:
    """What the recipient's carriers require beside the text: the Chinese signature, the Vietnamese
    brandname as the sender, the registered template."""
    fields: dict[str, Any] = {}
    if brandname and delivery.to.startswith("+84"):
        fields["from"] = brandname
    elif sender:
        fields["from"] = sender
    if signature and delivery.to.startswith("+86"):
        fields["signature"] = signature
    if delivery.template is not None:
        fields["template_id"] = delivery.template.provider_id
        fields["template_params"] = dict(delivery.template.variables)
    return fields


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _failure(response: httpx.Response) -> SendFailed:
    status = response.status_code
    error = _json(response).get("error")
    code = str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
    reason = f"SMS gateway {status}" + (f" {code}" if code else "")
    if code == INVALID_NUMBER:
        return SendFailed(reason, permanent=True, invalid_address=True, code=code)
    if status == 429 or status >= 500:
        return SendFailed(
            reason, permanent=False, retry_after=_retry_after(response), code=code or str(status)
        )
    return SendFailed(reason, permanent=True, code=code or str(status))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP date: let the caller's backoff decide


def gateway_signature(body: bytes, token: str) -> str:
    """The hex HMAC-SHA256 of the raw body keyed by the token (what the gateway puts in X-Signature)."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def parse_gateway_callback(body: bytes, signature_header: str | None, token: str) -> Inbound | StatusUpdate:
    """Verify and parse one gateway callback. ForgedRequest (bad/missing signature), MalformedPayload."""
    given = (signature_header or "").strip().removeprefix("sha256=").lower()
    if not token or not given or not hmac.compare_digest(given, gateway_signature(body, token)):
        raise ForgedRequest("SMS gateway signature missing or wrong")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedPayload("SMS gateway callback is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("SMS gateway callback is not a JSON object")
    message_id = _text(data, "id")
    at = _time(data.get("at"))
    kind = data.get("type")
    if kind == "status":
        status = _STATUSES.get(_text(data, "status"))
        if status is None:
            raise MalformedPayload(f"unknown status {data.get('status')!r}")
        error_code = data.get("error_code")
        if error_code is not None and not isinstance(error_code, str | int):
            raise MalformedPayload("error_code must be a string")
        code = str(error_code) if error_code not in (None, "") else None
        return StatusUpdate(message_id, status, code, at, invalid_address=code == INVALID_NUMBER)
    if kind == "inbound":
        sender = _text(data, "from")
        if not E164.match(sender):
            raise MalformedPayload("inbound 'from' is not an E.164 number")
        text = data.get("text", "")
        if not isinstance(text, str):
            raise MalformedPayload("inbound 'text' must be a string")
        return Inbound(Channel.SMS, sender, message_id, at or datetime.now(UTC), text=text)
    raise MalformedPayload(f"unknown callback type {kind!r}")


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"missing or empty {key!r}")
    return value


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload("'at' must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedPayload("'at' is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise MalformedPayload("'at' has no UTC offset")
    return parsed.astimezone(UTC)

"""SMS through Twilio's Messages API (the `twilio` SDK), and the Twilio error mapping WhatsApp shares.

`TwilioSms.send` renders the `Outbound` as plain text (numbered choices, "label: url" links) and makes
one Messages request; Twilio cuts a long body into concatenated segments itself (see
`channels.segments` to count them beforehand). The sender is an E.164 number (sent as `From`) or a
Messaging Service SID "MG…" (sent as `MessagingServiceSid`, Twilio picks the number).

Errors become `SendFailed`:

- invalid number / cannot receive SMS (21211, 21214, 21217, 21401, 21612, 21614, 30005, 30006,
  63003, 63024): `invalid_address`;
- 21610, the recipient texted STOP to our number: permanent, `code="21610"` (the backend records the
  opt-out; Twilio refuses everything until the patient texts START);
- HTTP 429, 5xx, timeouts, refused/broken connections: transient (retry with backoff);
- any other 4xx (bad credentials 20003, geo permission 21408, body too long 21617, ...): permanent;
  21408 is about our account's country permissions, not the number, so it does not mark it invalid.

Twilio's Messages API has no idempotency key: a request that timed out may still have been accepted.
So before a resend after an ambiguous attempt the outbox calls `find_sent`, which reads the Messages
list filtered by To (and From) and looks for an outbound message with the same body created since the
ambiguous attempt began; only when there is none is the message sent again. The SDK's own retries are
off (one request).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
from requests.utils import get_environ_proxies
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bots.domain import Channel
from channels.base import Delivery, DeliveryStatus, SendFailed, SendResult
from channels.sms_render import render_sms

DEFAULT_API_BASE = "https://api.twilio.com"
MAX_BODY = 1600  # Twilio refuses longer bodies (error 21617)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")

# Error codes that say the address itself cannot receive (at send time or in a status callback).
INVALID_ADDRESS_CODES = frozenset(
    {"21211", "21214", "21217", "21401", "21612", "21614", "30005", "30006", "63003", "63024"}
)
UNSUBSCRIBED_CODE = "21610"
WINDOW_CLOSED_CODE = "63016"  # WhatsApp: free-form message outside the 24-hour session

TWILIO_STATUS = {  # Twilio's message states, as answered on create and posted to status callbacks
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "canceled": DeliveryStatus.FAILED,
}


def twilio_client(
    *,
    account_sid: str,
    auth_token: str,
    api_base: str = DEFAULT_API_BASE,
    timeout: float = 10.0,
    http_client: HttpClient | None = None,
) -> Client:
    """A Twilio REST client whose API domain is `api_base` (a local fake in tests, a proxy in some sites).

    The SDK has no constructor option for the base URL; each domain object keeps it in its public
    `base_url` attribute (twilio.base.domain.Domain), which is what we set. `environment` pins the
    TWILIO_* variables empty: our settings object is the one source, and a stray TWILIO_EDGE would
    rewrite the host.
    """
    client = Client(
        account_sid,
        auth_token,
        http_client=http_client or http_client_for(api_base, timeout),
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.api.base_url = api_base.rstrip("/")
    _ = client.messages  # the SDK imports its resource modules on first use: do it here, not mid-send
    return client


def http_client_for(api_base: str, timeout: float) -> TwilioHttpClient:
    """The SDK's keep-alive HTTP client, with requests' environment settings (HTTPS_PROXY / NO_PROXY,
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE) read once here instead of on every request: with trust_env
    requests walks the whole process environment twice per message, about a quarter of a send's CPU.
    A change to those variables takes effect when the adapter is built again (a restart)."""
    http = TwilioHttpClient(timeout=timeout, proxy=get_environ_proxies(api_base) or None)
    assert http.session is not None  # pool_connections (the default) keeps one session
    http.session.trust_env = False
    http.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return http


def create_message(client: Client, params: Mapping[str, Any]) -> SendResult:
    """One Messages request; every failure becomes a `SendFailed` (see the module docstring)."""
    try:
        message = client.messages.create(**params)
    except (TwilioRestException, TwilioServiceException) as exc:
        raise failure_from_twilio(exc) from exc
    except requests.Timeout as exc:
        raise SendFailed("Twilio did not answer in time", permanent=False, code="timeout") from exc
    except requests.RequestException as exc:
        raise SendFailed(
            f"Twilio unreachable: {type(exc).__name__}", permanent=False, code="network"
        ) from exc
    status = TWILIO_STATUS.get(str(message.status), DeliveryStatus.QUEUED)
    return SendResult(provider_message_ids=(str(message.sid),), status=status)


CLOCK_SKEW = timedelta(minutes=2)  # Twilio's date_created against our clock
LOOKUP_LIMIT = 50  # the newest messages to the number; ours, if accepted, is among the last few


def find_message(
    client: Client, *, to: str, sender: str | None, body: str, since: datetime
) -> SendResult | None:
    """The outbound message with this body that Twilio accepted for `to` since `since`, if any (the
    Messages list, newest first, filtered by To and From). A failed lookup is a transient `SendFailed`:
    the caller must not resend blind."""
    filters: dict[str, Any] = {"to": to, "limit": LOOKUP_LIMIT}
    if sender and E164.match(sender.removeprefix("whatsapp:")):
        filters["from_"] = sender
    try:
        messages = client.messages.list(**filters)
    except (TwilioRestException, TwilioServiceException) as exc:
        failed = failure_from_twilio(exc)
        raise SendFailed(f"lookup: {failed.reason}", permanent=False, code="lookup_failed") from exc
    except requests.RequestException as exc:
        raise SendFailed(f"lookup: {type(exc).__name__}", permanent=False, code="lookup_failed") from exc
    for message in messages:
        created = message.date_created
        if (
            str(message.direction or "").startswith("outbound")
            and message.body == body
            and created is not None
            and created >= since - CLOCK_SKEW
        ):
            status = TWILIO_STATUS.get(str(message.status), DeliveryStatus.QUEUED)
            return SendResult(provider_message_ids=(str(message.sid),), status=status)
    return None


def failure_from_twilio(exc: TwilioRestException | TwilioServiceException) -> SendFailed:
    status = int(exc.status)
    code = str(exc.code) if exc.code is not None else None
    reason = f"Twilio {status}" + (f" error {code}" if code else "")
    if code in INVALID_ADDRESS_CODES:
        return SendFailed(reason, permanent=True, invalid_address=True, code=code)
    if code == WINDOW_CLOSED_CODE:
        return SendFailed(reason, permanent=True, window_closed=True, code=code)
    if status == 429 or status >= 500:
        return SendFailed(reason, permanent=False, code=code or str(status))
    return SendFailed(reason, permanent=True, code=code)


def check_body(body: str) -> None:
    if not body.strip():
        raise SendFailed("nothing to send: the message renders empty", permanent=True, code="empty")
    if len(body) > MAX_BODY:
        raise SendFailed(
            f"message of {len(body)} characters exceeds Twilio's {MAX_BODY}", permanent=True, code="21617"
        )


class TwilioSms:
    """`channels.base.Sender` for SMS through Twilio."""

    channel = Channel.SMS

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 10.0,
        http_client: HttpClient | None = None,
    ) -> None:
        if not (E164.match(sender) or MESSAGING_SERVICE_SID.match(sender)):
            raise ValueError("sender must be an E.164 number or a Messaging Service SID (MG…)")
        self.sender = sender
        self.client = twilio_client(
            account_sid=account_sid,
            auth_token=auth_token,
            api_base=api_base,
            timeout=timeout,
            http_client=http_client,
        )

    def send(self, delivery: Delivery) -> SendResult:
        if not E164.match(delivery.to):
            raise SendFailed("not an E.164 number", permanent=True, invalid_address=True, code="not_e164")
        body = render_sms(delivery.outbound)
        check_body(body)
        params: dict[str, Any] = {"to": delivery.to, "body": body}
        if MESSAGING_SERVICE_SID.match(self.sender):
            params["messaging_service_sid"] = self.sender
        else:
            params["from_"] = self.sender
        if delivery.status_callback:
            params["status_callback"] = delivery.status_callback
        return create_message(self.client, params)

    def find_sent(self, delivery: Delivery, since: datetime) -> SendResult | None:
        """`channels.base.LooksUp`: did Twilio accept this delivery since `since`?"""
        body = render_sms(delivery.outbound)
        sender = None if MESSAGING_SERVICE_SID.match(self.sender) else self.sender
        return find_message(self.client, to=delivery.to, sender=sender, body=body, since=since)

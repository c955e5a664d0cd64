"""WhatsApp through Twilio: free-form messages inside the 24-hour session, approved templates outside it.

Which message goes, given the `Delivery`:

1. Window open and no choices: a free-form body, rendered like SMS; the first media part is attached
   (`MediaUrl`; WhatsApp takes one per message), any others stay as links in the text.
2. Choices and a template given (window open or not): the template. Twilio only sends WhatsApp
   quick-reply buttons from a Content template (`ContentSid`), so a question with options goes as its
   template when we have one; the tap comes back as `ButtonPayload` (see `twilio_webhooks`).
3. Choices, window open, no template: free-form with numbered lines ("1. Yes"), answered like SMS.
4. Window closed: only an approved template may go (`ContentSid` + `ContentVariables` JSON); with no
   template we raise `SendFailed(permanent=True, window_closed=True)` and make no request.

Twilio's 63016 (the window closed between our check and the send) maps to `window_closed` too, so the
backend can retry with a template. Addresses go as "whatsapp:+E164".
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from twilio.http import HttpClient

from bots.domain import Channel
from bots.messages import Link, MediaRef, Outbound, Part
from channels.base import Delivery, SendFailed, SendResult, TemplateRef
from channels.sms_render import has_choices, render_sms
from channels.sms_twilio import (
    DEFAULT_API_BASE,
    E164,
    MESSAGING_SERVICE_SID,
    check_body,
    create_message,
    find_message,
    twilio_client,
)
from channels.twilio_webhooks import WHATSAPP_PREFIX


def whatsapp_address(number: str) -> str:
    """ "whatsapp:+E164" for an E.164 number (or one already prefixed)."""
    return number if number.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + number


class TwilioWhatsApp:
    """`channels.base.Sender` for WhatsApp through Twilio (see the module docstring for what goes when)."""

    channel = Channel.WHATSAPP

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
        bare = sender.removeprefix(WHATSAPP_PREFIX)
        if not (E164.match(bare) or MESSAGING_SERVICE_SID.match(sender)):
            raise ValueError("sender must be an E.164 WhatsApp number or a Messaging Service SID (MG…)")
        self.sender = sender if MESSAGING_SERVICE_SID.match(sender) else whatsapp_address(bare)
        self.client = twilio_client(
            account_sid=account_sid,
            auth_token=auth_token,
            api_base=api_base,
            timeout=timeout,
            http_client=http_client,
        )

    def send(self, delivery: Delivery) -> SendResult:
        number = delivery.to.removeprefix(WHATSAPP_PREFIX)
        if not E164.match(number):
            raise SendFailed("not an E.164 number", permanent=True, invalid_address=True, code="not_e164")
        params: dict[str, Any] = {"to": whatsapp_address(number)}
        if MESSAGING_SERVICE_SID.match(self.sender):
            params["messaging_service_sid"] = self.sender
        else:
            params["from_"] = self.sender
        if delivery.status_callback:
            params["status_callback"] = delivery.status_callback

        template = delivery.template
        if template is not None and (not delivery.window_open or has_choices(delivery.outbound)):
            params.update(_template_params(template))
        elif delivery.window_open:
            params.update(_free_form_params(delivery.outbound))
        else:
            raise SendFailed(
                "WhatsApp session window closed and no approved template given",
                permanent=True,
                window_closed=True,
                code="window_closed",
            )
        return create_message(self.client, params)

    def find_sent(self, delivery: Delivery, since: datetime) -> SendResult | None:
        """`channels.base.LooksUp` for free-form messages (their body is ours to compare). A template's
        body is rendered by Twilio, so a template send is not looked up: it may go twice."""
        number = delivery.to.removeprefix(WHATSAPP_PREFIX)
        templated = delivery.template is not None and (
            not delivery.window_open or has_choices(delivery.outbound)
        )
        if not E164.match(number) or templated or not delivery.window_open:
            return None
        try:
            body = _free_form_params(delivery.outbound).get("body")
        except SendFailed:
            return None
        if not body:
            return None
        sender = None if MESSAGING_SERVICE_SID.match(self.sender) else self.sender
        return find_message(self.client, to=whatsapp_address(number), sender=sender, body=body, since=since)


def _template_params(template: TemplateRef) -> dict[str, Any]:
    params: dict[str, Any] = {"content_sid": template.provider_id}
    if template.variables:
        params["content_variables"] = json.dumps(dict(template.variables), ensure_ascii=False)
    return params


def _free_form_params(outbound: Outbound) -> dict[str, Any]:
    attached: MediaRef | None = None
    parts: list[Part] = []
    for part in outbound.parts:
        if isinstance(part, MediaRef):
            if attached is None:
                attached = part
                continue
            part = Link(part.url, "")  # WhatsApp takes one media per message: the rest go as links
        parts.append(part)
    body = render_sms(Outbound(tuple(parts)))
    if attached is None:
        check_body(body)
        return {"body": body}
    params: dict[str, Any] = {"media_url": [attached.url]}
    if body.strip():
        check_body(body)
        params["body"] = body
    return params

"""The WeChat sender: one customer-service message per `Outbound` inside 48 hours, a template outside.

WeChat allows only a few customer-service messages per patient interaction (five per message
within 48 hours; three within a minute of a follow or scan), so all parts of an `Outbound` go out
as ONE message: text lines and links (`<a href>`) as a text message, or a `msgmenu` when the
message offers choices (a tap comes back as text with `bizmsgmenuid` = the choice payload).
Outside the window only an approved template may be sent.

What happens when WeChat may have the message but did not say so (a timeout, a worker killed mid-call),
from WeChat's documentation: the template API takes `client_msg_id`, a de-duplication id ("for the same
openid and client_msg_id only one message is sent; valid for 10 minutes, not guaranteed beyond"), so a
template carries our outbox reference and is resent only while its first ambiguous attempt is under
`TEMPLATE_DEDUPE` old; later it is not resent automatically but marked for a look. The customer-service
API has no such id and nothing lists what it delivered, so a customer-service message (a reply in a
conversation the patient is having: a missing answer is worse than a repeated one) is resent once after
an ambiguous attempt, at most one duplicate, and after a second ambiguous attempt it is marked too.
Time-critical content (an emergency's guidance, a staff alert) is always resent: a duplicate is better
than an emergency nobody heard of.

The client helpers (`make_client`, `create_qr_code`, `oauth_*`, `fetch_media`) live in
`channels.wechat_client` and are re-exported here for callers that think of them as outbound.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bots.domain import Channel
from bots.messages import Choice, Choices, Link, MediaRef, Outbound, Part, Text
from channels.base import Delivery, DeliveryStatus, SendFailed, SendResult, TemplateRef
from channels.wechat_client import (
    CareLoopWeChatClient,
    WeChatApiError,
    call,
    create_qr_code,
    fault_of,
    fetch_media,
    make_client,
    oauth_authorize_url,
    oauth_openid,
)

__all__ = [
    "CareLoopWeChatClient",
    "WeChatApiError",
    "WeChatSender",
    "create_qr_code",
    "fetch_media",
    "make_client",
    "oauth_authorize_url",
    "oauth_openid",
    "render_custom_message",
    "render_template_data",
]

WINDOW_CLOSED_ERRCODES = frozenset({45015})  # "response out of time limit": the 48 hours are over
INVALID_ADDRESS_ERRCODES = frozenset({43004, 40003, 43019})  # unfollowed, invalid openid, blacklisted


def _link(url: str, label: str) -> str:
    # A double quote would end the href early; everything else WeChat shows as typed.
    return f'<a href="{url.replace(chr(34), "%22")}">{label}</a>'


def _line(part: Part) -> str:
    if isinstance(part, Text):
        return part.text
    if isinstance(part, Link):
        return _link(part.url, part.label)
    if isinstance(part, MediaRef):
        # Sending media needs an uploaded media_id; inside the one-message quota a link is what fits.
        return _link(part.url, part.url)
    raise TypeError(f"not a line part: {part!r}")


def render_custom_message(to: str, outbound: Outbound) -> dict[str, Any]:
    """The customer-service message body for `outbound`: `msgmenu` when it offers choices, else `text`.

    Parts before the first choices become the menu's head, parts after them its tail.
    """
    head: list[str] = []
    tail: list[str] = []
    options: list[Choice] = []
    for part in outbound.parts:
        if isinstance(part, Choices):
            options.extend(part.options)
        else:
            (tail if options else head).append(_line(part))
    if options:
        return {
            "touser": to,
            "msgtype": "msgmenu",
            "msgmenu": {
                "head_content": "\n".join(head),
                "list": [{"id": o.payload, "content": o.label} for o in options],
                "tail_content": "\n".join(tail),
            },
        }
    content = "\n".join(head)
    if not content.strip():
        raise SendFailed("nothing to send: the outbound has no text", permanent=True, code="empty")
    return {"touser": to, "msgtype": "text", "text": {"content": content}}


def render_template_data(template: TemplateRef) -> dict[str, dict[str, str]]:
    return {key: {"value": value} for key, value in template.variables.items()}


def send_failed(exc: BaseException) -> SendFailed | None:
    """Map a failed WeChat call to `SendFailed`; None when `exc` is not a provider or network failure."""
    fault = fault_of(exc)
    if fault is None:
        return None
    if fault.errcode in WINDOW_CLOSED_ERRCODES:
        return SendFailed(fault.reason, permanent=True, window_closed=True, code=fault.code)
    if fault.errcode in INVALID_ADDRESS_ERRCODES:
        return SendFailed(fault.reason, permanent=True, invalid_address=True, code=fault.code)
    return SendFailed(fault.reason, permanent=not fault.transient, code=fault.code)


# WeChat keeps client_msg_id for 10 minutes; a minute's margin for clocks and the time a send takes
TEMPLATE_DEDUPE = timedelta(minutes=9)
# customer-service messages have no id: after this many ambiguous attempts, no further resend
CUSTOM_AMBIGUOUS_RESENDS = 1


def may_resend(
    *, template: bool, time_critical: bool, ambiguous_since: datetime, ambiguous: int, now: datetime
) -> bool:
    """The resend policy after ambiguous attempts (see the module's docstring)."""
    if time_critical:
        return True
    if template:
        return now - ambiguous_since < TEMPLATE_DEDUPE
    return ambiguous <= CUSTOM_AMBIGUOUS_RESENDS


class WeChatSender:
    """`channels.base.Sender` for a WeChat official account.

    Takes a wechatpy `WeChatClient` (build it with `make_client`) or a zero-argument factory of one,
    called once on first use so a worker can construct senders before it forks.
    """

    channel = Channel.WECHAT

    def __init__(self, client: Any | Callable[[], Any]) -> None:
        self._client: Any = None if callable(client) else client
        self._factory: Callable[[], Any] | None = client if callable(client) else None

    @property
    def client(self) -> Any:
        if self._client is None:
            assert self._factory is not None
            self._client = self._factory()
        return self._client

    def send(self, delivery: Delivery) -> SendResult:
        api = self.client.message
        request: Callable[[], Any]
        if delivery.window_open:
            body = render_custom_message(delivery.to, delivery.outbound)
            status = DeliveryStatus.SENT  # WeChat reports nothing further for customer-service messages
            if body["msgtype"] == "msgmenu":
                request = partial(api.send_msg_menu, delivery.to, body["msgmenu"])
            else:
                request = partial(api.send_text, delivery.to, body["text"]["content"])
        elif delivery.template is not None:
            template = delivery.template
            status = DeliveryStatus.QUEUED  # TEMPLATESENDJOBFINISH will report the outcome
            payload: dict[str, Any] = {
                "touser": delivery.to,
                "template_id": template.provider_id,
                "data": render_template_data(template),
                # WeChat's de-duplication id: a resend within 10 minutes is not delivered twice
                "client_msg_id": delivery.reference,
            }
            if template.url:
                payload["url"] = template.url
            # wechatpy's send_template has no client_msg_id; the same endpoint and token handling
            request = partial(api._post, "message/template/send", data=payload)
        else:
            raise SendFailed(
                "the 48-hour window is closed and no template was given",
                permanent=True,
                window_closed=True,
                code="window_closed",
            )
        try:
            result = call(self.client, request)
        except Exception as exc:  # requests, wechatpy and redis (token store) errors share no base class
            failure = send_failed(exc)
            if failure is None:
                raise
            raise failure from exc
        if not isinstance(result, dict):
            raise SendFailed("wechat answered something that is not JSON", permanent=False, code="not_json")
        msgid = result.get("msgid")
        ids = (str(msgid),) if msgid not in (None, "") else (delivery.reference,)
        return SendResult(provider_message_ids=ids, status=status)

    def may_resend(
        self, delivery: Delivery, ambiguous_since: datetime, ambiguous: int, now: datetime
    ) -> bool:
        """`channels.base.ResendPolicy`: a template while WeChat still dedupes it, a customer-service
        message once."""
        template = not delivery.window_open and delivery.template is not None
        return may_resend(
            template=template,
            time_critical=delivery.time_critical,
            ambiguous_since=ambiguous_since,
            ambiguous=ambiguous,
            now=now,
        )

"""Provider webhooks: Twilio (SMS, WhatsApp, status), the generic SMS gateway and the WeChat account.

Every route verifies the provider's signature before anything is stored (403 otherwise), refuses
malformed bodies with 400, stores the inbound exactly once (a duplicate delivery answers 200 and changes
nothing), commits, and only then starts the turn job. Providers get their answer at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from backend.app.db import session_scope
from backend.app.settings import Environment, Settings
from backend.models.base import utcnow
from backend.outbox.overrides import effective_settings
from backend.outbox.sender import do_record_status
from backend.security.ephemeral import ephemeral
from backend.services.inbound import Received, after_commit, do_receive
from backend.web.webhook_auth import BodyDep, WebhookRefused, refusal_response, twilio_form
from bots.domain import Channel
from bots.messages import Inbound
from channels.base import ForgedRequest, MalformedPayload, ReplayedRequest, StatusUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/hooks")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# The routes open their own session (session_scope) and read the settings themselves rather than
# take SessionDep and SettingsDep: FastAPI runs each sync dependency (and both halves of a generator
# one) in the thread pool, three hops more per webhook besides the route's own.


def _store(inbound: Inbound) -> Received:
    with session_scope() as db:
        received = do_receive(db, inbound)
    after_commit(received)
    return received


def _status(channel: Channel, update: StatusUpdate) -> None:
    with session_scope() as db:
        if not do_record_status(db, channel, update, utcnow()):
            log.info("status callback for an unknown %s message", channel.value)


@router.post("/twilio/messages")
def twilio_message(request: Request, body: BodyDep) -> Response:
    """Incoming SMS and WhatsApp messages (WhatsApp senders carry the `whatsapp:` prefix)."""
    from channels.twilio_webhooks import parse_twilio_message

    settings = effective_settings()
    try:
        params = twilio_form(request, settings, body)
        inbound = parse_twilio_message(params, now=utcnow())
    except (WebhookRefused, ForgedRequest, MalformedPayload) as exc:
        return refusal_response(exc)
    _store(inbound)
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/twilio/status")
def twilio_status(request: Request, body: BodyDep) -> Response:
    from channels.twilio_webhooks import parse_twilio_status

    settings = effective_settings()
    try:
        params = twilio_form(request, settings, body)
        update = parse_twilio_status(params)
    except (WebhookRefused, ForgedRequest, MalformedPayload) as exc:
        return refusal_response(exc)
    whatsapp = any(params.get(k, "").startswith("whatsapp:") for k in ("To", "From"))
    _status(Channel.WHATSAPP if whatsapp else Channel.SMS, update)
    return Response(status_code=204)


@router.post("/sms-gateway")
def sms_gateway(request: Request, body: BodyDep) -> Response:
    """The generic HTTP SMS gateway's callbacks: inbound replies and delivery reports."""
    from channels.sms_gateway import parse_gateway_callback

    settings = effective_settings()
    if settings.sms_gateway_token is None:
        return PlainTextResponse("sms gateway is not configured", status_code=404)
    try:
        parsed = parse_gateway_callback(
            body,
            request.headers.get("X-Signature"),
            settings.sms_gateway_token.get_secret_value(),
        )
    except (WebhookRefused, ForgedRequest, MalformedPayload) as exc:
        return refusal_response(exc)
    if isinstance(parsed, StatusUpdate):
        _status(Channel.SMS, parsed)
    else:
        _store(parsed)
    return PlainTextResponse("ok")


def _wechat_keys(settings: Settings) -> tuple[str, str | None, str]:
    if settings.wechat_token is None or settings.wechat_app_id is None:
        raise WebhookRefused(404, "wechat is not configured")
    aes = settings.wechat_encoding_aes_key
    if aes is None and settings.env is Environment.PRODUCTION:
        # The settings refuse this at start; a token saved in the console without its EncodingAESKey
        # is refused here. Plain mode signs the timestamp and nonce, not the body.
        raise WebhookRefused(503, "wechat plain mode is refused in production: set the EncodingAESKey")
    return (
        settings.wechat_token.get_secret_value(),
        aes.get_secret_value() if aes else None,
        settings.wechat_app_id,
    )


@router.get("/wechat")
def wechat_verify(request: Request) -> Response:
    """WeChat's server URL check: echo `echostr` when the signature is ours."""
    from channels.wechat_inbound import verify_url

    settings = effective_settings()
    q: Mapping[str, str] = request.query_params
    try:
        token, _, _ = _wechat_keys(settings)
        echo = verify_url(
            token=token,
            signature=q.get("signature", ""),
            timestamp=q.get("timestamp", ""),
            nonce=q.get("nonce", ""),
            echostr=q.get("echostr", ""),
        )
    except (WebhookRefused, ForgedRequest) as exc:
        return refusal_response(exc)
    return PlainTextResponse(echo)


@router.post("/wechat")
def wechat_message(request: Request, body: BodyDep) -> Response:
    """Messages and events; WeChat waits 5 s at most, so answer `success` and reply through the outbox."""
    from channels.wechat_inbound import parse_webhook

    settings = effective_settings()
    try:
        token, aes_key, app_id = _wechat_keys(settings)
        parsed = parse_webhook(
            body,
            dict(request.query_params),
            token=token,
            aes_key=aes_key,
            app_id=app_id,
            now=utcnow(),
            nonces=ephemeral(settings.redis_url),
        )
    except (WebhookRefused, ForgedRequest, MalformedPayload, ReplayedRequest) as exc:
        return refusal_response(exc)
    if isinstance(parsed, StatusUpdate):
        _status(Channel.WECHAT, parsed)
    elif parsed is not None:
        _store(parsed)
    return PlainTextResponse("success")

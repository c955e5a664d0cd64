"""Provider webhooks: Twilio (SMS, WhatsApp, status), the generic SMS gateway and the WeChat account.

Every route verifies the provider's signature before anything is stored (403 otherwise), refuses
malformed bodies with 400, stores the inbound exactly once (a duplicate delivery answers 200 and changes
nothing), commits, and only then starts the turn job. Providers get their answer at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.models.base import utcnow
from backend.outbox.sender import do_record_status
from backend.security.ephemeral import ephemeral
from backend.services.inbound import Received, after_commit, do_receive
from bots.domain import Channel
from bots.messages import Inbound
from channels.base import ForgedRequest, MalformedPayload, ReplayedRequest, StatusUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/hooks")
MAX_BODY = 64 * 1024  # providers send a few KB; anything larger is not theirs
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def _raw_body(request: Request) -> bytes:
    """Read in the event loop; the routes themselves are plain `def`s, so their database work and
    signature checks run in the thread pool instead of blocking the loop."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, "body too large")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "body too large")
    return body


BodyDep = Annotated[bytes, Depends(_raw_body)]


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(400, "malformed form body") from exc


def _public_url(settings: Settings, request: Request) -> str:
    """The URL the provider signed: our public URL (we may be behind a proxy), this path and query."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_url}{request.url.path}{query}"


def _refusal(exc: Exception) -> Response:
    if isinstance(exc, _Refused):
        return PlainTextResponse(exc.reason, status_code=exc.status)
    if isinstance(exc, ForgedRequest | ReplayedRequest):
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(f"malformed: {exc}", status_code=400)


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


def _twilio_token(settings: Settings) -> str:
    if settings.twilio_auth_token is None:
        raise _Refused(404, "twilio is not configured")
    return settings.twilio_auth_token.get_secret_value()


def _twilio_checked(request: Request, settings: Settings, body: bytes) -> dict[str, str]:
    from channels.twilio_webhooks import verify_twilio

    params = _form(body)
    verify_twilio(
        _public_url(settings, request),
        params,
        request.headers.get("X-Twilio-Signature"),
        _twilio_token(settings),
    )
    return params


@router.post("/twilio/messages")
def twilio_message(request: Request, body: BodyDep) -> Response:
    """Incoming SMS and WhatsApp messages (WhatsApp senders carry the `whatsapp:` prefix)."""
    from channels.twilio_webhooks import parse_twilio_message

    settings = get_settings()
    try:
        params = _twilio_checked(request, settings, body)
        inbound = parse_twilio_message(params, now=utcnow())
    except (_Refused, ForgedRequest, MalformedPayload) as exc:
        return _refusal(exc)
    _store(inbound)
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/twilio/status")
def twilio_status(request: Request, body: BodyDep) -> Response:
    from channels.twilio_webhooks import parse_twilio_status

    settings = get_settings()
    try:
        params = _twilio_checked(request, settings, body)
        update = parse_twilio_status(params)
    except (_Refused, ForgedRequest, MalformedPayload) as exc:
        return _refusal(exc)
    whatsapp = any(params.get(k, "").startswith("whatsapp:") for k in ("To", "From"))
    _status(Channel.WHATSAPP if whatsapp else Channel.SMS, update)
    return Response(status_code=204)


@router.post("/sms-gateway")
def sms_gateway(request: Request, body: BodyDep) -> Response:
    """The generic HTTP SMS gateway's callbacks: inbound replies and delivery reports."""
    from channels.sms_gateway import parse_gateway_callback

    settings = get_settings()
    if settings.sms_gateway_token is None:
        return PlainTextResponse("sms gateway is not configured", status_code=404)
    try:
        parsed = parse_gateway_callback(
            body,
            request.headers.get("X-Signature"),
            settings.sms_gateway_token.get_secret_value(),
        )
    except (_Refused, ForgedRequest, MalformedPayload) as exc:
        return _refusal(exc)
    if isinstance(parsed, StatusUpdate):
        _status(Channel.SMS, parsed)
    else:
        _store(parsed)
    return PlainTextResponse("ok")


def _wechat_keys(settings: Settings) -> tuple[str, str | None, str]:
    if settings.wechat_token is None or settings.wechat_app_id is None:
        raise _Refused(404, "wechat is not configured")
    aes = settings.wechat_encoding_aes_key
    return (
        settings.wechat_token.get_secret_value(),
        aes.get_secret_value() if aes else None,
        settings.wechat_app_id,
    )


@router.get("/wechat")
def wechat_verify(request: Request) -> Response:
    """WeChat's server URL check: echo `echostr` when the signature is ours."""
    from channels.wechat_inbound import verify_url

    settings = get_settings()
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
    except (_Refused, ForgedRequest) as exc:
        return _refusal(exc)
    return PlainTextResponse(echo)


@router.post("/wechat")
def wechat_message(request: Request, body: BodyDep) -> Response:
    """Messages and events; WeChat waits 5 s at most, so answer `success` and reply through the outbox."""
    from channels.wechat_inbound import parse_webhook

    settings = get_settings()
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
    except (_Refused, ForgedRequest, MalformedPayload, ReplayedRequest) as exc:
        return _refusal(exc)
    if isinstance(parsed, StatusUpdate):
        _status(Channel.WECHAT, parsed)
    elif parsed is not None:
        _store(parsed)
    return PlainTextResponse("success")

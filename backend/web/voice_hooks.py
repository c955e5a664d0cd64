"""Twilio voice webhooks: the answer URL (TwiML connecting the Media Stream), status and recording callbacks.

Each is signature-checked like the SMS webhooks (RequestValidator over CARELOOP_PUBLIC_URL + path and
query); a forged request gets 403 and changes nothing, a malformed one 400.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings
from backend.models import VoiceCall
from backend.models.base import utcnow
from backend.voice.call_media import stream_parameters, stream_url
from backend.voice.calls import (
    call_by_provider,
    call_to_answer,
    do_record_answered_by,
    do_record_call_status,
    do_record_recording,
)
from backend.web.deps import ProviderSettingsDep
from backend.web.ids import IdQuery
from backend.web.webhook_auth import BodyDep, WebhookRefused, refusal_response, twilio_form
from channels.base import ForgedRequest
from voice_ai.gateway import GatewayName, MalformedCallback
from voice_ai.gateway_twilio import (
    answered_by,
    connect_stream_twiml,
    hangup_twiml,
    parse_call_status,
    parse_recording_callback,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/hooks/twilio/voice")
GATEWAY = GatewayName.TWILIO


class _AboutACall(Protocol):
    @property
    def provider_id(self) -> str: ...


U = TypeVar("U", bound=_AboutACall)


@router.post("/answer")
def answer(request: Request, settings: ProviderSettingsDep, body: BodyDep, call: IdQuery) -> Response:
    """Twilio asks what to do once answering-machine detection is done: connect our stream."""
    try:
        params = twilio_form(request, settings, body)
    except (WebhookRefused, ForgedRequest) as exc:
        return refusal_response(exc)
    by = answered_by(params.get("AnsweredBy"))
    with session_scope() as db:
        row = call_to_answer(db, call, params.get("CallSid"))
        if row is None:
            return Response(hangup_twiml(), media_type="text/xml")
        if by is not None:
            do_record_answered_by(db, row, by)
    return Response(
        connect_stream_twiml(stream_url(settings), stream_parameters(settings, call, by)),
        media_type="text/xml",
    )


def _provider_callback(
    request: Request,
    settings: Settings,
    body: bytes,
    parse: Callable[[Mapping[str, str]], U],
    apply: Callable[[Session, VoiceCall, U], object],
    what: str,
) -> Response:
    """A signed callback about a call the gateway names by its own id: parsed, then applied to that call."""
    try:
        parsed = parse(twilio_form(request, settings, body))
    except (WebhookRefused, ForgedRequest, MalformedCallback) as exc:
        return refusal_response(exc)
    with session_scope() as db:
        row = call_by_provider(db, GATEWAY, parsed.provider_id)
        if row is None:
            log.info("%s callback for an unknown call", what)
        else:
            apply(db, row, parsed)
    return Response(status_code=204)


@router.post("/status")
def status(request: Request, settings: ProviderSettingsDep, body: BodyDep) -> Response:
    return _provider_callback(
        request,
        settings,
        body,
        parse_call_status,
        lambda db, row, update: do_record_call_status(db, row, update, utcnow()),
        "voice status",
    )


@router.post("/recording")
def recording(request: Request, settings: ProviderSettingsDep, body: BodyDep) -> Response:
    return _provider_callback(
        request, settings, body, parse_recording_callback, do_record_recording, "recording"
    )

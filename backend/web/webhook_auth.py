"""Checking provider webhooks before anything is stored: a bounded body, a strict form parse, Twilio's
signature over our public URL, and the plain-text answer each refusal gets (403 forged, 400 malformed,
404 not configured, 413 too large)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse

from backend.app.settings import Settings
from channels.base import ForgedRequest, ReplayedRequest

MAX_BODY = 64 * 1024  # providers send a few KB; anything larger is not theirs


class WebhookRefused(Exception):
    """The request is not one we answer (not configured, a malformed body); `status` is the HTTP code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def read_body(request: Request) -> bytes:
    """Read in the event loop; the routes themselves are plain `def`s, so their database work and
    signature checks run in the thread pool instead of blocking the loop."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, "body too large")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "body too large")
    return body


BodyDep = Annotated[bytes, Depends(read_body)]


def parse_form(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, strictly: anything else is a 400."""
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRefused(400, "malformed form body") from exc


def public_url(settings: Settings, request: Request) -> str:
    """The URL the provider signed: our public URL (we may be behind a proxy), this path and query."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_url}{request.url.path}{query}"


def refusal_response(exc: Exception) -> Response:
    """What a provider is told when its request is refused; the reason never echoes its body."""
    if isinstance(exc, WebhookRefused):
        return PlainTextResponse(exc.reason, status_code=exc.status)
    if isinstance(exc, ForgedRequest | ReplayedRequest):
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(f"malformed: {exc}", status_code=400)


def twilio_token(settings: Settings) -> str:
    if settings.twilio_auth_token is None:
        raise WebhookRefused(404, "twilio is not configured")
    return settings.twilio_auth_token.get_secret_value()


def twilio_form(request: Request, settings: Settings, body: bytes) -> dict[str, str]:
    """The form fields of a Twilio webhook whose `X-Twilio-Signature` verifies (ForgedRequest if not)."""
    from channels.twilio_webhooks import verify_twilio

    params = parse_form(body)
    verify_twilio(
        public_url(settings, request),
        params,
        request.headers.get("X-Twilio-Signature"),
        twilio_token(settings),
    )
    return params

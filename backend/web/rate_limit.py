"""Rate limits on patients' link routes (`/c/`, `/q/`, `/f/`, `/s/`, `/a/`), per link and per address, as
a pure ASGI middleware in front of the routes.

A link is a bearer credential anyone who holds it can replay: without a limit one link posted 300 chat
messages in 9 s, and 30 feedback posts made 30 high-priority complaint tasks. Counts are kept in fixed
windows in the shared store (Redis when configured, the process otherwise: backend/security/ephemeral.py).
A request over a limit is answered 429 before the route runs, so nothing of it is stored, and what was
accepted before stays; the patient gets a page (or JSON for the chat page's script, which keeps the draft)
in their browser's language saying to wait a minute. Per-address limits are generous: patients on one
mobile carrier often share an address."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.i18n import negotiate
from backend.security.client_address import client_address
from backend.security.ephemeral import ephemeral

LINK_KINDS = frozenset({"c", "q", "f", "s", "a"})


@dataclass(frozen=True)
class Limit:
    per_link: int
    per_address: int
    window_seconds: int


# A patient types a chat message every few seconds at most, and the chat page polls every 1.5 s (40 a
# minute); the form page saves 0.8 s after each change (a quick patient: one a second or two); a
# feedback page is sent a few times, with a correction or two.
POSTS = Limit(per_link=30, per_address=300, window_seconds=60)
FORM_POSTS = Limit(per_link=60, per_address=600, window_seconds=60)
FEEDBACK_POSTS = Limit(per_link=10, per_address=60, window_seconds=600)
READS = Limit(per_link=120, per_address=1200, window_seconds=60)


def limit_for(kind: str, method: str) -> tuple[str, Limit]:
    """The class of a request (its counters' name) and its limits."""
    if method in ("GET", "HEAD"):
        return "read", READS
    if kind == "f":
        return "feedback", FEEDBACK_POSTS
    if kind == "q":
        return "form", FORM_POSTS
    return "post", POSTS


def _link_of(path: str) -> tuple[str, str] | None:
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[1] not in LINK_KINDS or not parts[2]:
        return None
    return parts[1], parts[2]


class PatientRateLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link = _link_of(str(scope.get("path", ""))) if scope["type"] == "http" else None
        if link is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        kind, token = link
        name, limit = limit_for(kind, request.method)
        settings = get_settings()
        address = client_address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            tuple(settings.trusted_proxies),
        )
        store = ephemeral(settings.redis_url)
        digest = hashlib.sha256(token.encode()).hexdigest()[:24]  # the token itself is a credential

        def count() -> tuple[int, int]:
            return (
                store.hit(f"rate:link:{name}:{kind}:{digest}", limit.window_seconds),
                store.hit(f"rate:address:{name}:{address}", limit.window_seconds),
            )

        per_link, per_address = await to_thread.run_sync(count) if settings.redis_url else count()
        address_limit = limit.per_address * settings.patient_address_limit_scale
        if per_link > limit.per_link or (address_limit and per_address > address_limit):
            await _too_many(request, limit)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _too_many(request: Request, limit: Limit) -> Response:
    from backend.web.deps import templates

    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    accept = request.headers.get("accept-language")
    lang = negotiate(accept) if accept else settings.default_language
    message = catalog.text(lang, "link.too_many")
    headers = {"Retry-After": str(limit.window_seconds)}
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {"error": "too_many_requests", "message": message}, status_code=429, headers=headers
        )
    context = {"lang": lang, "title": catalog.text(lang, "link.too_many_title"), "message": message}
    return templates.TemplateResponse(request, "chat/refused.html", context, status_code=429, headers=headers)

"""Security headers on every response, as a pure ASGI middleware (Starlette's BaseHTTPMiddleware
costs a task group and a memory stream per request, a measurable part of a chat turn)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # links carry tokens
    "X-Frame-Options": "DENY",
    # form-action: a form injected into a page cannot post its fields elsewhere; base-uri: no <base> to
    # re-point relative URLs; frame-ancestors: CSP's own word for X-Frame-Options.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
# Production: browsers use https only for a year once they have seen this (CARELOOP_PUBLIC_URL is https).
HSTS = "max-age=31536000; includeSubDomains"
NO_STORE_PREFIXES = ("/staff", "/c/", "/q/", "/f/")  # pages with patient data or signed links


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = {**HEADERS, "Strict-Transport-Security": HSTS} if hsts else HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)

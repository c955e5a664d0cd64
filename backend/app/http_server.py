"""uvicorn as `careloop serve` runs it: its options, and a header-read timeout uvicorn lacks.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but arms no timer while a request's
headers arrive: a client that connects and sends nothing, or a header byte every few seconds, holds a
connection (and its memory) for ever, and a few thousand such clients exhaust the server (slowloris).
`HeaderTimeoutProtocol` closes a connection whose request line and headers are not complete within
`http_header_timeout_seconds` of its first byte (or of the connection, for the first request)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.app.settings import Settings, get_settings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        seconds = get_settings().http_header_timeout_seconds
        self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a keep-alive connection's next request: its headers get the same time

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "factory": True,
        "log_level": "warning",
        "access_log": False,
        "http": HeaderTimeoutProtocol,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        # X-Forwarded-For and -Proto are believed only from CARELOOP_TRUSTED_PROXIES (uvicorn would
        # otherwise trust 127.0.0.1 or whatever FORWARDED_ALLOW_IPS says, beside our own setting).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }

"""`careloop serve` closes connections that hold it without sending a request: headers that do not arrive
within the header timeout (slowloris), and idle keep-alive connections."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.app.http_server import HeaderTimeoutProtocol, uvicorn_options
from backend.app.settings import get_settings
from tests.rasa_fixtures import free_port
from tests.serve_process import start_serve


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[int]:
    database = tmp_path / "careloop.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "CARELOOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CARELOOP_HTTP_HEADER_TIMEOUT_SECONDS": "1",
        "CARELOOP_HTTP_KEEP_ALIVE_SECONDS": "1",
    }
    env.pop("REDIS_URL", None)
    proc = start_serve(env, port)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (reading whatever it sends first)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


def test_slow_or_missing_headers_are_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as silent:
        assert _closed_within(silent, 4)
    with socket.create_connection(("127.0.0.1", server)) as slow:
        started = time.monotonic()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        assert _closed_within(slow, 4)
        assert time.monotonic() - started < 3.5


def test_a_complete_request_is_answered_and_an_idle_connection_then_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        client.settimeout(3)
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_within(client, 4)  # keep-alive: 1 s


def test_serve_uses_the_timeouts() -> None:
    options = uvicorn_options(get_settings())
    assert options["http"] is HeaderTimeoutProtocol
    assert options["timeout_keep_alive"] == get_settings().http_keep_alive_seconds

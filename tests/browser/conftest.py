"""Browser fixtures: the real server in a subprocess, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve_process import ForkedServer, Zygote

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SERVER = pytest.StashKey[ForkedServer]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failed browser test shows the tail of the server's output beside the browser's error."""
    report = yield
    server = item.stash.get(_SERVER, None)
    if report.when == "call" and report.failed and server is not None:
        report.sections.append(("server output", server.output() or "(nothing)"))
    return report


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """This worker's server factory (tests/serve_zygote.py): the product imported once, a server forked
    per test."""
    factory = Zygote(dict(os.environ), tmp_path_factory.mktemp("servers"))
    yield factory
    factory.close()


@pytest.fixture
def live_server(database_url: str, request: pytest.FixtureRequest, zygote: Zygote) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database_url, "CARELOOP_PUBLIC_URL": base}
    proc = zygote.serve(env, port)
    request.node.stash[_SERVER] = proc
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()

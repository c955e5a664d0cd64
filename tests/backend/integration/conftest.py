"""The HL7 listener under test: the real MLLP server on a free local port, in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.integration.listener import build_listener
from backend.integration.receiver import Receiver, ReceiverConfig


@pytest.fixture
def hl7_address(database_url: str) -> Iterator[tuple[str, int]]:
    """(host, port) of a running listener writing to the test's database; stopped after the test."""
    settings = get_settings()
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(max_workers=settings.hl7_workers)
    listener = build_listener(
        settings, Receiver(session_factory(), ReceiverConfig.from_settings(settings)), pool
    )
    address: list[tuple[str, int]] = []
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        address.append(loop.run_until_complete(listener.start("127.0.0.1", 0)))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="hl7-listener", daemon=True)
    thread.start()
    assert started.wait(10)
    yield address[0]
    asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    pool.shutdown(wait=True)

"""One connection's slow database work does not hold up another's: each message is applied in the pool."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.integration.listener import build_listener
from backend.integration.mllp import Event, Frame
from backend.integration.receiver import Receiver, ReceiverConfig
from tests.backend.integration.hl7_peer import MllpPeer, adt


class SlowReceiver(Receiver):
    """The real receiver, with a 5-second stall (a slow disk, a lock wait) for one control id."""

    def handle(self, event: Event, peer: str) -> bytes:
        if isinstance(event, Frame) and b"|SLOW|" in event.payload:
            time.sleep(5)
        return super().handle(event, peer)


@pytest.fixture
def slow_listener(database_url: str) -> Iterator[tuple[str, int]]:
    settings = get_settings()
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(max_workers=4)
    listener = build_listener(
        settings, SlowReceiver(session_factory(), ReceiverConfig.from_settings(settings)), pool
    )
    # the loop runs in its own thread from the start: this thread may have another test's loop set
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    address = asyncio.run_coroutine_threadsafe(listener.start("127.0.0.1", 0), loop).result(10)
    yield address
    asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    pool.shutdown(wait=True)


def test_a_slow_message_does_not_block_other_connections(slow_listener: tuple[str, int]) -> None:
    slow_ack: list[str] = []
    with MllpPeer(*slow_listener) as slow, MllpPeer(*slow_listener) as quick:
        sender = threading.Thread(
            target=lambda: slow_ack.append(slow.send(adt("A01", "SLOW", mrn="S1")).code)
        )
        sender.start()
        time.sleep(0.3)  # the slow one is being applied
        assert quick.send(adt("A08", "QUICK", mrn="Q1", visit="VQ")).code == "AA"
        assert slow_ack == []  # answered while the slow one was still stalled
        sender.join(15)
    assert slow_ack == ["AA"]

"""Rasa's breaker shared across processes: each `NluClient` here stands for one RQ child process (a new
client, its own memory), all on one real Redis. Rasa is a local socket that accepts and never answers."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from backend.dialogue.nlu_breaker import FAILURES_KEY, OPEN_KEY, TRIAL_KEY, SharedBreaker
from backend.security.ephemeral import MemoryEphemeral, RedisEphemeral
from nlu.client import NluClient, NluUnavailable

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


class Counting(httpx.HTTPTransport):
    """The real transport, counting the requests that went out to the network."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


@pytest.fixture
def hanging_rasa() -> Iterator[str]:
    """A server that accepts connections and never replies: Rasa stuck."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def redis_store() -> Iterator[RedisEphemeral]:
    store = RedisEphemeral(REDIS_URL, MemoryEphemeral())
    yield store
    Redis.from_url(REDIS_URL).delete(*(f"careloop:{k}" for k in (OPEN_KEY, FAILURES_KEY, TRIAL_KEY)))


def _child(url: str, store: RedisEphemeral, open_for: int = 30) -> tuple[NluClient, Counting]:
    transport = Counting()
    breaker = SharedBreaker(store, open_for=open_for)
    return NluClient(url, read_timeout=0.3, breaker=breaker, transport=transport), transport


@pytest.mark.redis
def test_three_children_failing_once_each_open_the_breaker_for_the_next(
    hanging_rasa: str, redis_store: RedisEphemeral
) -> None:
    for _ in range(3):
        client, transport = _child(hanging_rasa, redis_store)
        with pytest.raises(NluUnavailable):
            client.parse(f"where is the clinic {uuid.uuid4().hex}")
        assert transport.sent == 1  # one status read that timed out
    later, transport = _child(hanging_rasa, redis_store)
    started = time.monotonic()
    with pytest.raises(NluUnavailable, match="circuit open"):
        later.parse("where is the clinic")
    assert transport.sent == 0 and time.monotonic() - started < 0.1  # no network, no wait


@pytest.mark.redis
def test_after_the_open_period_one_child_tries_and_its_failure_reopens_it(
    hanging_rasa: str, redis_store: RedisEphemeral
) -> None:
    for _ in range(3):
        client, _ = _child(hanging_rasa, redis_store, open_for=1)
        with pytest.raises(NluUnavailable):
            client.parse("hello")
    time.sleep(1.2)  # the open key expired: half-open
    first, second = SharedBreaker(redis_store, open_for=1), SharedBreaker(redis_store, open_for=1)
    assert first.allow() is True and second.allow() is False  # one trial at a time, across processes
    first.record_failure()
    assert first.is_open() and not second.allow()


def test_a_success_closes_it_for_everyone() -> None:
    store = MemoryEphemeral()
    one, two = SharedBreaker(store), SharedBreaker(store)
    for _ in range(3):
        one.record_failure()
    assert not two.allow()
    store.forget(OPEN_KEY)  # as when the open period ends
    assert two.allow()  # the trial
    two.record_success()
    assert one.allow() and two.allow() and store.peek(FAILURES_KEY) is None


def test_failures_below_the_threshold_keep_it_closed() -> None:
    store = MemoryEphemeral()
    breaker = SharedBreaker(store, failure_threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow() and not breaker.is_open()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow()  # the success in between started the count again

"""The Rasa client against the real Rasa server: intents, cache, outage, breaker, held-out accuracy."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from nlu.client import MAX_CHARS, BreakerState, CircuitBreaker, NluClient, NluUnavailable, normalise
from nlu.evaluate import evaluate
from tests.nlu.conftest import Relay

ACCURACY_FLOOR = 0.85  # the suite fails below 85 % held-out intent accuracy in any language


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call so the type checker does not narrow it between reads."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_normalise_folds_width_case_and_spacing() -> None:
    assert normalise("  Ｉ  want\tTO\nbook ") == "i want to book"
    assert normalise("我想　挂号") == "我想 挂号"
    assert normalise("TÔI muốn") == "tôi muốn"


def test_breaker_opens_after_consecutive_failures_then_half_opens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, open_for=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN and not breaker.allow()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.2
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # nobody else while it runs
    breaker.record_failure()  # trial failed: open again for a full period
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert state_of(breaker) is BreakerState.CLOSED and breaker.allow()


def test_server_errors_and_bad_bodies_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        return httpx.Response(500, text="boom")

    with (
        NluClient(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(NluUnavailable, match="500"),
    ):
        client.parse("hello")

    not_an_object = httpx.MockTransport(lambda r: httpx.Response(200, text="[]"))
    with NluClient(transport=not_an_object) as client, pytest.raises(NluUnavailable):
        client.parse("hello")


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I'd like to book an appointment with cardiology tomorrow", "book"),
        ("我想挂皮肤科的号", "book"),
        ("tôi muốn hủy lịch khám", "cancel"),
        ("toi muon doi lich kham sang thu sau", "reschedule"),
        ("where can I park my car", "faq_parking"),
        ("探视时间是几点", "faq_visiting_hours"),
    ],
)
def test_parse_returns_the_intent(rasa_url: str, text: str, intent: str) -> None:
    with NluClient(rasa_url) as client:
        understanding = client.parse(text)
    assert understanding.intent == intent
    assert 0.0 < understanding.confidence <= 1.0


@pytest.mark.rasa
def test_parse_returns_entities(rasa_url: str) -> None:
    with NluClient(rasa_url) as client:
        understanding = client.parse("book cardiology for next tuesday")
    kinds = {e.kind for e in understanding.entities}
    assert "department" in kinds
    for entity in understanding.entities:
        assert entity.text == normalise("book cardiology for next tuesday")[entity.start : entity.end]


@pytest.mark.rasa
def test_cache_hit_does_not_call_the_server_twice(relay: Relay) -> None:
    with NluClient(relay.url) as client:
        first = client.parse("I want to see a doctor on Friday")
        again = client.parse("  I WANT to see a doctor   on Ｆｒｉｄａｙ ")  # same normalised text
        other = client.parse("cancel my appointment")
    assert again == first
    assert other.intent == "cancel"
    assert relay.parse_requests == 2
    assert client.requests_sent == 2


@pytest.mark.rasa
def test_server_gone_fails_fast_opens_the_breaker_and_recovers(relay: Relay) -> None:
    now = [0.0]  # the breaker's clock, moved by hand: no waiting out its open time
    breaker = CircuitBreaker(failure_threshold=2, open_for=1.0, clock=lambda: now[0])
    with NluClient(relay.url, breaker=breaker, status_ttl=0.0) as client:
        assert client.parse("hello").intent == "greet"
        relay.stop()
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(NluUnavailable):
                client.parse("where is the pharmacy")
            assert time.monotonic() - started < 2.5  # connect/read timeouts are about a second
        assert state_of(breaker) is BreakerState.OPEN
        started = time.monotonic()
        with pytest.raises(NluUnavailable, match="circuit open"):
            client.parse("where is the pharmacy")
        assert time.monotonic() - started < 0.05  # open: no network at all
        relay.start()
        now[0] += 1.1
        assert state_of(breaker) is BreakerState.HALF_OPEN
        assert client.parse("where is the pharmacy").intent == "faq_directions"
        assert state_of(breaker) is BreakerState.CLOSED


def test_rasa_is_sent_at_most_the_first_512_characters_of_the_normalised_text() -> None:
    sent: list[str] = []

    def rasa(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        sent.append(json.loads(request.content)["text"])
        return httpx.Response(200, json={"text": sent[-1], "intent": {"name": "complain", "confidence": 0.9}})

    essay = "The  NURSE was rude. " + "Nothing was explained to us. " * 150
    with NluClient(transport=httpx.MockTransport(rasa)) as client:
        assert client.parse(essay).intent == "complain"
        assert client.parse(essay + " and more") == client.parse(essay)  # the same first 512: cached
    assert sent == [normalise(essay)[:MAX_CHARS].rstrip()]
    assert len(sent[0]) <= MAX_CHARS == 512


def test_many_turns_at_once_read_the_model_status_once() -> None:
    statuses: list[int] = []
    gate = threading.Event()

    def rasa(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            statuses.append(1)
            gate.wait(2.0)  # a slow /status: every other turn arrives while it is in flight
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        text = json.loads(request.content)["text"]
        return httpx.Response(200, json={"text": text, "intent": {"name": "greet", "confidence": 0.9}})

    clock = FakeClock()
    with NluClient(transport=httpx.MockTransport(rasa), clock=clock, status_ttl=60.0) as client:
        with ThreadPoolExecutor(max_workers=16) as pool:
            cold = [pool.submit(client.parse, f"hello {n}") for n in range(16)]
            time.sleep(0.2)
            gate.set()
            assert {f.result().intent for f in cold} == {"greet"}
        assert statuses == [1]
        clock.now += 61  # expired: one re-read, the others use the last answer meanwhile
        gate.clear()
        with ThreadPoolExecutor(max_workers=16) as pool:
            warm = [pool.submit(client.parse, f"hi {n}") for n in range(16)]
            time.sleep(0.2)
            gate.set()
            assert {f.result().intent for f in warm} == {"greet"}
        assert statuses == [1, 1]


@pytest.mark.rasa
def test_a_pasted_essay_is_read_on_its_first_sentences_quickly_and_never_opens_the_breaker(
    rasa_url: str,
) -> None:
    filler = " ".join(f"and then on day {n} nothing was explained to us at all" for n in range(80))
    with NluClient(rasa_url) as client:
        for n in range(4):  # four different 4 KB messages in a row
            text = f"the nurse was rude, i want to complain. {n} {filler}"[:4000]
            started = time.monotonic()
            assert client.parse(text).intent == "complain"
            assert time.monotonic() - started < 1.0
        assert state_of(client.breaker) is BreakerState.CLOSED


@pytest.mark.rasa
def test_hung_server_times_out_in_about_a_second(silent_server: str) -> None:
    with NluClient(silent_server) as client:
        started = time.monotonic()
        with pytest.raises(NluUnavailable):
            client.parse("hello")
        assert time.monotonic() - started < 2.0


def test_nothing_listening_is_unavailable_at_once() -> None:
    with NluClient("http://127.0.0.1:9") as client:
        started = time.monotonic()
        with pytest.raises(NluUnavailable):
            client.parse("hello")
        assert time.monotonic() - started < 1.5


@pytest.mark.rasa
@pytest.mark.parametrize("language", ["zh", "vi", "en"])
def test_held_out_accuracy_per_language(rasa_url: str, language: str) -> None:
    with NluClient(rasa_url, read_timeout=30.0) as client:
        report = evaluate(client, language)
    assert report.accuracy >= ACCURACY_FLOOR, report.errors

"""A typed client for Rasa's `/model/parse`: short timeouts, a circuit breaker and a result cache.

Rasa is the expensive, fallible last step of understanding (docs/architecture.md): when it is down or slow
the caller gets `NluUnavailable` within about a second, and after `failure_threshold` consecutive
failures the breaker opens and calls fail at once, without touching the network, for `open_for`
seconds; then one trial call (half-open) decides whether it closes again.

Results are cached on (model fingerprint, normalised text): NFKC, case-folded, whitespace collapsed.
The normalised text, cut to its first `max_chars` characters, is also what Rasa parses, so a cached
result is exactly what Rasa would say; entity offsets refer to that text. The cut keeps one patient's
pasted essay from costing Rasa 20 normal parses (4 KB took 0.4-1 s here, past the read timeout, and
three in a row would open the breaker for every patient). The fingerprint comes from `/status` (re-read every
`status_ttl` seconds), so a retrained model never serves stale answers.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx

DEFAULT_URL = "http://127.0.0.1:5005"
MAX_CHARS = 512  # what Rasa reads of a message; intents are said in the first sentences
FALLBACK_INTENT = "nlu_fallback"  # what Rasa's FallbackClassifier answers below its threshold


class NluUnavailable(Exception):
    """Rasa could not answer: down, slow, erroring, or the breaker is open."""


@dataclass(frozen=True, slots=True)
class Entity:
    kind: str  # date, time, department, doctor, number, symptom
    value: str  # after synonym mapping
    text: str  # as written in the (normalised) message
    start: int
    end: int
    confidence: float | None


@dataclass(frozen=True, slots=True)
class Understanding:
    intent: str
    confidence: float
    entities: tuple[Entity, ...]

    @property
    def is_fallback(self) -> bool:
        return self.intent == FALLBACK_INTENT


def normalise(text: str) -> str:
    """The cache key's text: NFKC (full-width to ASCII), case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker(Protocol):
    """What the client asks of its circuit breaker; CircuitBreaker is the in-process one."""

    failure_threshold: int

    def allow(self) -> bool: ...

    def record_success(self) -> None: ...

    def record_failure(self) -> None: ...


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `open_for` seconds lets one trial
    call through (half-open): success closes it, failure opens it again for another `open_for`."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        open_for: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_for = open_for
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.open_for:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one trial call at a time."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False


class _Lru:
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Understanding] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Understanding | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: Understanding) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class NluClient:
    """Thread-safe; one per process. `transport` is httpx's seam for tests of the outside world."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 1.0,
        breaker: Breaker | None = None,
        cache_size: int = 10_000,
        status_ttl: float = 60.0,
        max_chars: int = MAX_CHARS,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.breaker: Breaker = breaker or CircuitBreaker(clock=clock)
        self._cache = _Lru(cache_size)
        self._status_ttl = status_ttl
        self._max_chars = max_chars
        self._clock = clock
        self._model: tuple[str, float] | None = None  # (fingerprint, read at)
        self._status_lock = threading.Lock()  # one /status read at a time, not one per waiting turn
        self.requests_sent = 0  # parse requests that reached the network; for tests and metrics

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NluClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def parse(self, text: str) -> Understanding:
        """Rasa's reading of free text, from the cache when the same model already parsed it."""
        norm = normalise(text)[: self._max_chars].rstrip()
        key = (self.model_fingerprint(), norm)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        body = self._call("POST", "/model/parse", {"text": norm})
        self.requests_sent += 1
        understanding = _understanding(body)
        self._cache.put(key, understanding)
        return understanding

    def model_fingerprint(self) -> str:
        """The loaded model's identity from `/status` (its file name, else model id), cached briefly."""
        model = self._model
        if model is not None and self._clock() - model[1] < self._status_ttl:
            return model[0]
        if not self._status_lock.acquire(blocking=False):  # another thread is reading /status
            if model is not None:
                return model[0]  # the last answer serves meanwhile
            with self._status_lock:  # nothing to serve yet: share the outcome of the read in flight
                pass
            if self._model is None:
                raise NluUnavailable("Rasa /status could not be read")
            return self._model[0]
        try:
            model = self._model
            if model is not None and self._clock() - model[1] < self._status_ttl:
                return model[0]  # read by another thread just before
            now = self._clock()
            body = self._call("GET", "/status", None)
            fingerprint = str(body.get("model_file") or body.get("model_id") or "")
            if not fingerprint:
                raise NluUnavailable("Rasa has no model loaded")
            self._model = (fingerprint, now)
            return fingerprint
        finally:
            self._status_lock.release()

    def _call(self, method: str, path: str, payload: dict[str, str] | None) -> dict[str, Any]:
        if not self.breaker.allow():
            raise NluUnavailable(f"circuit open: Rasa failed {self.breaker.failure_threshold} times in a row")
        try:
            response = self._http.request(method, path, json=payload)
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict):
                raise ValueError(f"unexpected body from {path}: {type(body).__name__}")
        except (httpx.HTTPError, ValueError) as exc:
            self.breaker.record_failure()
            raise NluUnavailable(f"Rasa {method} {path} failed: {exc!r}") from exc
        self.breaker.record_success()
        return body


def _understanding(body: dict[str, Any]) -> Understanding:
    intent = body.get("intent") or {}
    entities = tuple(
        Entity(
            kind=str(e["entity"]),
            value=str(e.get("value", "")),
            text=str(body.get("text", ""))[int(e.get("start", 0)) : int(e.get("end", 0))],
            start=int(e.get("start", 0)),
            end=int(e.get("end", 0)),
            confidence=float(e["confidence_entity"]) if e.get("confidence_entity") is not None else None,
        )
        for e in body.get("entities") or ()
    )
    return Understanding(
        intent=str(intent.get("name") or FALLBACK_INTENT),
        confidence=float(intent.get("confidence") or 0.0),
        entities=entities,
    )

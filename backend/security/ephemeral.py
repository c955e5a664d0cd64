"""Short-lived facts every process must share: WeChat nonces seen inside the replay window, request
counts for rate limits, whether Rasa's circuit breaker is open. In Redis when REDIS_URL is set; in this
process otherwise (one process serves then), and for the moment Redis does not answer, so a Redis outage
never turns a request into a 500."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from functools import lru_cache
from typing import Any, Protocol

log = logging.getLogger(__name__)
MAX_KEYS = 100_000  # the in-process store forgets the oldest keys beyond this (memory stays bounded)


class Ephemeral(Protocol):
    def remember(self, key: str, value: str, ttl_seconds: int) -> str | None:
        """Keep `value` under `key` for `ttl_seconds` unless the key is there already. Returns the value
        already there, or None when this call stored it."""

    def hit(self, key: str, window_seconds: int) -> int:
        """Count one event for `key` in its window (which starts at the key's first event and lasts
        `window_seconds`); the count including this one."""

    def peek(self, key: str) -> str | None:
        """The value under `key` while it lives, without changing it."""

    def forget(self, key: str) -> None:
        """Drop `key` (no error when it is not there)."""


class MemoryEphemeral:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> str | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= now:
            del self._values[key]
            return None
        return found[0]

    def _put(self, key: str, value: str, expires: float, now: float) -> None:
        if len(self._values) >= MAX_KEYS:
            for stale in [k for k, (_, at) in self._values.items() if at <= now]:
                del self._values[stale]
            while len(self._values) >= MAX_KEYS:  # insertion order: the oldest first
                del self._values[next(iter(self._values))]
        self._values[key] = (value, expires)

    def remember(self, key: str, value: str, ttl_seconds: int) -> str | None:
        with self._lock:
            now = self._clock()
            existing = self._live(key, now)
            if existing is not None:
                return existing
            self._put(key, value, now + ttl_seconds, now)
            return None

    def hit(self, key: str, window_seconds: int) -> int:
        with self._lock:
            now = self._clock()
            found = self._values.get(key)
            if found is None or found[1] <= now:
                self._put(key, "1", now + window_seconds, now)
                return 1
            count = int(found[0]) + 1
            self._values[key] = (str(count), found[1])
            return count

    def peek(self, key: str) -> str | None:
        with self._lock:
            return self._live(key, self._clock())

    def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)


class RedisEphemeral:
    def __init__(self, url: str, fallback: MemoryEphemeral) -> None:
        from redis import Redis

        self._redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._fallback = fallback

    def remember(self, key: str, value: str, ttl_seconds: int) -> str | None:
        from redis import RedisError

        try:
            if self._redis.set(f"careloop:{key}", value, nx=True, ex=ttl_seconds):
                return None
            existing = self._redis.get(f"careloop:{key}")
            return existing.decode() if isinstance(existing, bytes) else None
        except RedisError:
            log.warning("redis unavailable: %s kept in this process", key.split(":", 1)[0])
            return self._fallback.remember(key, value, ttl_seconds)

    def hit(self, key: str, window_seconds: int) -> int:
        from redis import RedisError

        name = f"careloop:{key}"
        try:
            with self._redis.pipeline() as pipe:  # MULTI/EXEC: the window starts at its first hit
                pipe.set(name, 0, nx=True, ex=window_seconds)
                pipe.incr(name)
                _, count = pipe.execute()
            return int(count)
        except RedisError:
            log.warning("redis unavailable: %s counted in this process", key.split(":", 1)[0])
            return self._fallback.hit(key, window_seconds)

    def peek(self, key: str) -> str | None:
        from redis import RedisError

        try:
            value = self._redis.get(f"careloop:{key}")
        except RedisError:
            return self._fallback.peek(key)
        return value.decode() if isinstance(value, bytes) else None

    def forget(self, key: str) -> None:
        from redis import RedisError

        with contextlib.suppress(RedisError):
            self._redis.delete(f"careloop:{key}")
        self._fallback.forget(key)


_memory = MemoryEphemeral()


@lru_cache(maxsize=4)
def _redis_store(url: str) -> RedisEphemeral:
    return RedisEphemeral(url, _memory)


def ephemeral(redis_url: str | None) -> Ephemeral:
    """The shared store: Redis at `redis_url`, or this process's."""
    return _redis_store(redis_url) if redis_url else _memory


def reset_ephemeral() -> None:
    """Forget everything kept in this process (tests)."""
    global _memory
    _memory = MemoryEphemeral()
    _redis_store.cache_clear()

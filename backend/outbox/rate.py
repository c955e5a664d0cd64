"""Per-sender send rate: at most N messages a second per provider sender id, across every worker.

Each send reserves the next free slot of its sender (GCRA: the sender's "theoretical arrival time" moves
on by 1/N per send) and sleeps until it. The slot is kept in Redis, reserved by one Lua script that reads
Redis's own clock, so every worker on every machine shares one schedule whatever their clocks say. When
Redis cannot be reached the slot is kept in this process instead: each worker then holds the rate on its
own (so W workers may together send up to W times it until Redis is back), and nothing waits for Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
KEY_PREFIX = "careloop:send-rate:"

# KEYS[1] the sender's slot; ARGV[1] the interval between sends in microseconds. Returns the microseconds
# to wait before this send. Redis's TIME, not the callers' clocks: workers' clocks differ.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return tat - now
"""


def reserve_local(slots: dict[str, float], key: str, interval: float, now: float) -> float:
    """The same reservation on a process's own clock: seconds to wait before this send."""
    tat = max(slots.get(key, now), now)
    slots[key] = tat + interval
    return tat - now


class SendRate:
    """Waits for a sender's next slot. `rates` gives messages per second by sender key; a sender
    without one is not limited."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis: Any = None
        self._script: Any = None
        if redis_url:
            from redis import Redis

            self._redis = Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            self._script = self._redis.register_script(_RESERVE)
        self._slots: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        self._down_logged = False

    def wait(self, key: str, per_second: float | None) -> float:
        """Block until this send may go; returns the seconds waited."""
        if not per_second or per_second <= 0:
            return 0.0
        delay = self.reserve(key, 1.0 / per_second)
        if delay > 0:
            self._sleep(delay)
        return delay

    def reserve(self, key: str, interval: float) -> float:
        if self._script is not None:
            from redis import RedisError

            try:
                micros = self._script(keys=[KEY_PREFIX + key], args=[round(interval * 1_000_000)])
                self._down_logged = False
                return int(micros) / 1_000_000
            except RedisError:
                if not self._down_logged:  # once per outage, not once per message
                    log.warning("redis unavailable: send rates are held per process until it is back")
                    self._down_logged = True
        with self._lock:
            return reserve_local(self._slots, key, interval, self._clock())


_shared: list[SendRate] = []
_making = threading.Lock()


def send_rate(redis_url: str | None) -> SendRate:
    """This process's limiter (built once; the Redis client is made lazily and is fork-safe)."""
    with _making:
        if not _shared:
            _shared.append(SendRate(redis_url))
        return _shared[0]


def reset_send_rate() -> None:
    with _making:
        _shared.clear()

"""Riding out a Redis outage: the worker and the scheduler start again when Redis comes back, instead of
exiting and leaving the queue unserved until someone restarts them by hand."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# Seconds to wait before each new attempt while Redis stays away; the last repeats.
BACKOFF: tuple[float, ...] = (1, 2, 5, 10, 20)
# A run that lasted this long was healthy: the next outage starts the backoff from the beginning.
HEALTHY_RUN_SECONDS = 60.0


def redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisDown
    from redis.exceptions import TimeoutError as RedisTimeout

    return (RedisDown, RedisTimeout)


def run_through_outages(
    run: Callable[[], object],
    what: str,
    *,
    backoff: Sequence[float] = BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call `run` until it returns: it returns when its process is asked to stop (a signal) or has no
    more work (a burst worker). A lost Redis connection is waited out and `run` is called again, with
    fresh connections, since what it held (locks, registrations) went with the old server."""
    failures = 0
    while True:
        started = clock()
        try:
            run()
            return
        except redis_errors() as exc:
            if clock() - started >= HEALTHY_RUN_SECONDS:
                failures = 0
            delay = backoff[min(failures, len(backoff) - 1)]
            failures += 1
            log.warning("%s lost Redis (%s); starting again in %.0f s", what, type(exc).__name__, delay)
            sleep(delay)

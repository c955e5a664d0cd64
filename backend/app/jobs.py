"""Running jobs: on RQ when REDIS_URL is set, inline (same function, same arguments) when it is not."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from backend.app.settings import get_settings

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _queue(redis_url: str, name: str) -> Any:
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(redis_url))


def runs_inline() -> bool:
    """True without REDIS_URL: jobs run in the process (and request) that queues them."""
    return not get_settings().redis_url


def enqueue(func: Callable[..., Any], *args: Any) -> None:
    """Queue `func(*args)`. Callers queue only work a database sweep can find again, so neither an
    unreachable Redis nor, inline, the job's own failure is raised: both are logged and left to it."""
    settings = get_settings()
    if settings.redis_url:
        from redis.exceptions import ConnectionError as RedisDown
        from redis.exceptions import TimeoutError as RedisTimeout

        queue = _queue(settings.redis_url, settings.job_queue)
        try:
            # On a pipeline (MULTI/EXEC) RQ's writes for the job (register the queue, save the job, push
            # its id) go in one round trip instead of two; a real worker runs the job just the same.
            with queue.connection.pipeline() as pipe:
                queue.enqueue(func, *args, retry=_retry(), pipeline=pipe)
                pipe.execute()
        except (RedisDown, RedisTimeout):
            # What is queued here is already stored (a message received, an outbox item, a job row) and a
            # database sweep finds it; failing the caller would turn a stored message into a 500 and a
            # provider's retry.
            log.warning("queue unreachable; %s left for the periodic sweep", func.__name__)
        return
    try:
        func(*args)
    except Exception:
        log.exception("inline job %s failed; the periodic sweep will retry it", func.__name__)


def _retry() -> Any:
    from rq import Retry

    return Retry(max=3, interval=[5, 30, 120])

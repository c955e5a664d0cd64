"""Running jobs: on RQ when REDIS_URL is set, inline (same function, same arguments) when it is not.

A job may carry a mark (a Redis key, set in the same transaction as the job is queued, cleared by the job
when it starts): a sweep that finds the mark knows the job is already waiting and does not queue it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from backend.app.queues import JobQueue
from backend.app.settings import get_settings

log = logging.getLogger(__name__)
# A mark outlives its job only if the job was lost with it still queued; after this the sweep queues again.
MARK_TTL_SECONDS = 3600


@lru_cache(maxsize=8)  # four queues (backend/app/queues.py), and room for a changed setting
def _queue(redis_url: str, name: str) -> Any:
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(redis_url))


def runs_inline() -> bool:
    """True without REDIS_URL: jobs run in the process (and request) that queues them."""
    return not get_settings().redis_url


def _mark_key(prefix: str, mark: str) -> str:
    return f"{prefix}:queued:{mark}"


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: JobQueue = JobQueue.DEFAULT,
    mark: str | None = None,
    unless_marked: bool = False,
) -> bool:
    """Queue `func(*args)` on `queue`. Callers queue only work a database sweep can find again, so
    neither an unreachable Redis nor, inline, the job's own failure is raised: both are logged and left
    to it. With `mark`, the mark is set with the job; with `unless_marked` too, nothing is queued while
    the mark is set (the job is still waiting). Returns whether the job was queued (or run inline)."""
    settings = get_settings()
    if settings.redis_url:
        from redis.exceptions import ConnectionError as RedisDown
        from redis.exceptions import TimeoutError as RedisTimeout

        rq_queue = _queue(settings.redis_url, settings.queue_name(queue))
        key = _mark_key(settings.job_queue, mark) if mark else None
        try:
            if key and unless_marked and rq_queue.connection.exists(key):
                return False
            # On a pipeline (MULTI/EXEC) RQ's writes for the job (register the queue, save the job, push
            # its id) go in one round trip instead of two; a real worker runs the job just the same.
            with rq_queue.connection.pipeline() as pipe:
                rq_queue.enqueue(func, *args, retry=_retry(), pipeline=pipe)
                if key:
                    pipe.set(key, 1, ex=MARK_TTL_SECONDS)
                pipe.execute()
            return True
        except (RedisDown, RedisTimeout):
            # What is queued here is already stored (a message received, an outbox item, a job row) and a
            # database sweep finds it; failing the caller would turn a stored message into a 500 and a
            # provider's retry.
            log.warning("queue unreachable; %s left for the periodic sweep", func.__name__)
            return False
    try:
        func(*args)
    except Exception:
        log.exception("inline job %s failed; the periodic sweep will retry it", func.__name__)
    return True


def clear_mark(mark: str) -> None:
    """Called by a marked job as it starts, before it reads its work: what arrives after this needs a
    job of its own. Without Redis (inline) there are no marks. If Redis cannot be reached here the
    mark stays until it expires (MARK_TTL_SECONDS), and until then the sweep skips the work it marks."""
    settings = get_settings()
    if not settings.redis_url:
        return
    from redis.exceptions import RedisError

    try:
        _queue(settings.redis_url, settings.queue_name(JobQueue.DEFAULT)).connection.delete(
            _mark_key(settings.job_queue, mark)
        )
    except RedisError:
        log.warning("queue unreachable; mark %s left to expire", mark)


def _retry() -> Any:
    from rq import Retry

    return Retry(max=3, interval=[5, 30, 120])

"""RQ queues by urgency, and when a periodic job's last copy still counts as waiting: pure decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class JobQueue(StrEnum):
    """Where a job waits. Workers take from the first non-empty queue in CARELOOP_WORKER_QUEUES' order,
    so the upkeep that restores service after an outage (the sweeps, the heartbeat, the audit sealer)
    and the replies patients wait for never queue behind a backlog of inbound turns."""

    SYSTEM = "system"  # periodic jobs (the scheduler's)
    SENDS = "sends"  # outbox sends
    TURNS = "turns"  # inbound turns
    DEFAULT = "default"  # the rest: media fetches, long work (imports, batches)


DEFAULT_ORDER = "system,sends,turns,default"

# A periodic job's copy that is queued or running is not queued again; RQ's own statuses.
_WAITING = frozenset({"queued", "deferred", "scheduled"})


def queue_name(prefix: str, kind: JobQueue) -> str:
    """The RQ queue's name: CARELOOP_JOB_QUEUE itself for the default queue (the name it always had)."""
    return prefix if kind is JobQueue.DEFAULT else f"{prefix}-{kind.value}"


def parse_order(text: str) -> tuple[JobQueue, ...]:
    """CARELOOP_WORKER_QUEUES as queues: comma-separated names, each once; a queue left out is not
    served by that worker (a deployment can run workers for sends alone)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {kind.value for kind in JobQueue}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if len(set(names)) != len(names):
        raise ValueError("each queue may be named once")
    if not names:
        raise ValueError("name at least one queue")
    return tuple(JobQueue(name) for name in names)


def still_pending(status: str | None, started_at: datetime | None, now: datetime, timeout: timedelta) -> bool:
    """True when a periodic job's last copy will still run, or runs now: queuing another would only
    add a copy behind it. A copy marked started longer ago than its timeout belonged to a worker
    that was killed (RQ marks it failed only at its next maintenance), so it no longer counts."""
    if status in _WAITING:
        return True
    if status == "started":
        return started_at is not None and now - started_at < timeout
    return False

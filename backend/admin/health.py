"""The system health page's checks: each a small pure function over facts gathered once, saying OK,
warning or failing with a reason code the page translates and the figures behind it.

`gather` (in backend/admin/health_facts.py) reads Redis/RQ, the scheduler's heartbeat, Rasa, the
outbox, the HL7 log and the disks; everything here is decision only, tested without any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

QUEUE_WARN = timedelta(minutes=1)
QUEUE_FAIL = timedelta(minutes=5)
# the heartbeat job runs every minute; two missed beats is a hint, five a stopped scheduler
BEAT_WARN = timedelta(minutes=2)
BEAT_FAIL = timedelta(minutes=5)
PROVIDER_WARN = 0.10  # share of the last hour's sends that failed
PROVIDER_FAIL = 0.50
DISK_FAIL_PERCENT = 98


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"

    @property
    def rank(self) -> int:
        return (Status.OK, Status.WARNING, Status.FAILING).index(self)


@dataclass(frozen=True)
class Check:
    name: str  # "queue", "workers", "scheduler", "rasa", "provider:sms", "adt", "disk:media" …
    status: Status
    reason: str  # a code the page translates, e.g. "queue_backlog"
    figures: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "reason": self.reason, **self.figures}


@dataclass(frozen=True)
class QueueFacts:
    inline: bool  # no Redis configured: jobs run in the process that queues them
    reachable: bool = True
    queued: int = 0
    oldest_enqueued_at: datetime | None = None
    workers: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ProviderFacts:
    channel: str
    sent: int  # accepted by the provider in the last hour
    failed: int  # failed for good in the last hour
    last_success: datetime | None


@dataclass(frozen=True)
class DiskFacts:
    label: str  # "media" or "data"
    exists: bool
    folder_bytes: int = 0
    total_bytes: int = 0
    free_bytes: int = 0


@dataclass(frozen=True)
class BackupFacts:
    last: datetime | None  # when the newest archive in the backup folder was made
    max_age: timedelta


@dataclass(frozen=True)
class Facts:
    now: datetime
    queue: QueueFacts
    scheduler_beat: datetime | None
    rasa: bool | None  # None: no Rasa configured
    providers: tuple[ProviderFacts, ...]
    last_adt: datetime | None
    disks: tuple[DiskFacts, ...]
    disk_warning_percent: int = 90
    his_sources: int = 0  # enabled HIS sources pulled on a schedule
    his_failing: tuple[str, ...] = ()  # the names of those whose last pull failed
    backup: BackupFacts | None = None  # None: no backup folder configured


def _age(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def check_queue(queue: QueueFacts, now: datetime) -> Check:
    if queue.inline:
        return Check("queue", Status.OK, "inline")
    if not queue.reachable:
        return Check("queue", Status.FAILING, "redis_unreachable")
    age = _age(now, queue.oldest_enqueued_at)
    figures = {"queued": queue.queued, "oldest_seconds": age, "failed_jobs": queue.failed}
    if age is not None and age >= QUEUE_FAIL.total_seconds():
        return Check("queue", Status.FAILING, "queue_backlog", figures)
    if age is not None and age >= QUEUE_WARN.total_seconds():
        return Check("queue", Status.WARNING, "queue_slow", figures)
    return Check("queue", Status.OK, "queue_moving" if queue.queued else "queue_empty", figures)


def check_workers(queue: QueueFacts) -> Check:
    if queue.inline:
        return Check("workers", Status.OK, "inline")
    if not queue.reachable:
        return Check("workers", Status.FAILING, "redis_unreachable")
    if queue.workers == 0:
        return Check("workers", Status.FAILING, "no_workers", {"workers": 0})
    return Check("workers", Status.OK, "workers_running", {"workers": queue.workers})


def check_scheduler(beat: datetime | None, now: datetime) -> Check:
    age = _age(now, beat)
    if age is None:
        return Check("scheduler", Status.FAILING, "no_heartbeat")
    figures = {"beat_seconds_ago": age}
    if age >= BEAT_FAIL.total_seconds():
        return Check("scheduler", Status.FAILING, "heartbeat_stale", figures)
    if age >= BEAT_WARN.total_seconds():
        return Check("scheduler", Status.WARNING, "heartbeat_late", figures)
    return Check("scheduler", Status.OK, "heartbeat_fresh", figures)


def check_rasa(reachable: bool | None) -> Check:
    if reachable is None:
        return Check("rasa", Status.OK, "not_configured")
    if not reachable:
        return Check("rasa", Status.FAILING, "unreachable")
    return Check("rasa", Status.OK, "reachable")


def check_provider(provider: ProviderFacts, now: datetime) -> Check:
    name = f"provider:{provider.channel}"
    tried = provider.sent + provider.failed
    figures = {
        "sent": provider.sent,
        "failed": provider.failed,
        "error_rate": round(provider.failed / tried, 3) if tried else 0.0,
        "last_success_seconds_ago": _age(now, provider.last_success),
    }
    if not tried:
        return Check(name, Status.OK, "provider_idle", figures)
    rate = provider.failed / tried
    if rate >= PROVIDER_FAIL:
        return Check(name, Status.FAILING, "provider_failing", figures)
    if rate >= PROVIDER_WARN:
        return Check(name, Status.WARNING, "provider_errors", figures)
    return Check(name, Status.OK, "provider_sending", figures)


def check_adt(last: datetime | None, now: datetime) -> Check:
    """Shown, not judged: whether silence matters depends on working hours, which the HL7 feed watch
    (backend/integration/feed.py, /healthz/hl7) already decides."""
    if last is None:
        return Check("adt", Status.OK, "no_adt_yet")
    return Check("adt", Status.OK, "adt_received", {"last_seconds_ago": _age(now, last)})


def check_his(sources: int, failing: tuple[str, ...]) -> Check:
    """A HIS source that cannot be read leaves CareLoop's data stale but the rest running: a warning."""
    if not sources:
        return Check("his", Status.OK, "no_his_sources")
    figures = {"his_sources": sources, "his_failing": len(failing), "his_failing_names": ", ".join(failing)}
    if failing:
        return Check("his", Status.WARNING, "his_failing", figures)
    return Check("his", Status.OK, "his_pulling", figures)


def check_disk(disk: DiskFacts, warning_percent: int) -> Check:
    name = f"disk:{disk.label}"
    if not disk.exists:
        return Check(name, Status.WARNING, "folder_missing")
    used = 100 * (disk.total_bytes - disk.free_bytes) / disk.total_bytes if disk.total_bytes else 0.0
    figures = {
        "folder_bytes": disk.folder_bytes,
        "disk_used_percent": round(used, 1),
        "free_bytes": disk.free_bytes,
    }
    if used >= DISK_FAIL_PERCENT:
        return Check(name, Status.FAILING, "disk_full", figures)
    if used >= warning_percent:
        return Check(name, Status.WARNING, "disk_filling", figures)
    return Check(name, Status.OK, "disk_room", figures)


def check_backup(backup: BackupFacts | None, now: datetime) -> Check:
    """The newest backup's age: a warning past the configured age, failing when there is none."""
    if backup is None:
        return Check("backup", Status.OK, "backup_not_configured")
    if backup.last is None:
        return Check("backup", Status.FAILING, "no_backup")
    age = max(timedelta(0), now - backup.last)
    figures = {"backup_age_hours": round(age.total_seconds() / 3600, 1)}
    if age > backup.max_age:
        return Check("backup", Status.WARNING, "backup_old", figures)
    return Check("backup", Status.OK, "backup_recent", figures)


def all_checks(facts: Facts) -> list[Check]:
    return [
        check_queue(facts.queue, facts.now),
        check_workers(facts.queue),
        check_scheduler(facts.scheduler_beat, facts.now),
        check_rasa(facts.rasa),
        *(check_provider(p, facts.now) for p in facts.providers),
        check_adt(facts.last_adt, facts.now),
        check_his(facts.his_sources, facts.his_failing),
        *(check_disk(d, facts.disk_warning_percent) for d in facts.disks),
        check_backup(facts.backup, facts.now),
    ]


def overall(checks: list[Check]) -> Status:
    return max((c.status for c in checks), key=lambda s: s.rank, default=Status.OK)

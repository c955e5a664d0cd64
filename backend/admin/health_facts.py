"""Gathering the facts the health checks judge (backend/admin/health.py): Redis/RQ, the scheduler's
heartbeat, Rasa, the outbox's last hour, the last ADT message, and the media and data folders' disks.
Each outside system gets a short timeout: a page about a stuck system must not hang with it."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin.health import BackupFacts, DiskFacts, Facts, ProviderFacts, QueueFacts
from backend.app.queues import JobQueue
from backend.app.settings import REPO_ROOT, Settings
from backend.models import Heartbeat, HisSource, Hl7Message, OutboxItem, OutboxStatus
from backend.models.base import utcnow

log = logging.getLogger(__name__)
SCHEDULER = "periodic"  # the Heartbeat row the periodic jobs keep fresh
TIMEOUT_SECONDS = 2.0
FOLDER_WALK_LIMIT = 200_000  # files counted per folder; a bigger folder shows at least this much
SUCCESS = (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.READ)


def queue_facts(settings: Settings) -> QueueFacts:
    if not settings.redis_url:
        return QueueFacts(inline=True)
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue, Worker

    try:
        connection = Redis.from_url(
            settings.redis_url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        # every queue a job can wait on (backend/app/queues.py): a backlog of turns shows as much as
        # a stuck sweep
        queues = [Queue(settings.queue_name(kind), connection=connection) for kind in JobQueue]
        oldest: datetime | None = None
        for queue in queues:
            first = queue.get_job_ids(0, 1)
            job = queue.fetch_job(first[0]) if first else None
            at = job.enqueued_at if job is not None else None
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=UTC)  # RQ keeps UTC without a zone
            if at is not None and (oldest is None or at < oldest):
                oldest = at
        return QueueFacts(
            inline=False,
            queued=sum(queue.count for queue in queues),
            oldest_enqueued_at=oldest,
            workers=len({w.name for queue in queues for w in Worker.all(queue=queue)}),
            failed=sum(queue.failed_job_registry.count for queue in queues),
        )
    except RedisError:
        log.warning("health: Redis unreachable", exc_info=True)
        return QueueFacts(inline=False, reachable=False)


def rasa_reachable(settings: Settings) -> bool | None:
    if not settings.nlu_url:
        return None
    try:
        response = httpx.get(
            f"{settings.nlu_url.rstrip('/')}/version", timeout=TIMEOUT_SECONDS, trust_env=False
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def provider_facts(session: Session, now: datetime) -> tuple[ProviderFacts, ...]:
    """Per channel: sends accepted and failures in the last hour, and the last accepted send ever."""
    since = now - timedelta(hours=1)
    success = OutboxItem.status.in_(SUCCESS)
    hour = session.execute(
        sa.select(
            OutboxItem.channel,
            sa.func.count().filter(success, OutboxItem.sent_at >= since),
            sa.func.count().filter(
                OutboxItem.status == OutboxStatus.FAILED,
                sa.func.coalesce(OutboxItem.status_at, OutboxItem.created_at) >= since,
            ),
        )
        .where(
            sa.or_(OutboxItem.sent_at >= since, OutboxItem.created_at >= since, OutboxItem.status_at >= since)
        )
        .group_by(OutboxItem.channel)
    ).all()
    last = dict(
        session.execute(
            sa.select(OutboxItem.channel, sa.func.max(OutboxItem.sent_at))
            .where(success)
            .group_by(OutboxItem.channel)
        ).all()
    )
    counts = {channel: (int(sent), int(failed)) for channel, sent, failed in hour}
    channels = sorted(set(counts) | set(last), key=str)
    return tuple(
        ProviderFacts(str(c.value), *counts.get(c, (0, 0)), last_success=last.get(c)) for c in channels
    )


def last_adt(session: Session) -> datetime | None:
    return session.scalar(
        sa.select(sa.func.max(Hl7Message.received_at)).where(Hl7Message.message_type.startswith("ADT"))
    )


def _folder_bytes(path: Path) -> int:
    total, seen = 0, 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            seen += 1
            if seen > FOLDER_WALK_LIMIT:
                return total
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while we walked
    return total


def disk_facts(label: str, path: Path) -> DiskFacts:
    if not path.is_dir():
        return DiskFacts(label, exists=False)
    usage = shutil.disk_usage(path)
    return DiskFacts(label, True, _folder_bytes(path), usage.total, usage.free)


def data_folder(settings: Settings) -> Path:
    """Where CareLoop keeps its own files: the SQLite database's folder, else the checkout's var/."""
    if settings.is_sqlite:
        database = sa.make_url(settings.database_url).database
        if database:
            return Path(database).resolve().parent
    return REPO_ROOT / "var"


def gather(session: Session, settings: Settings, now: datetime | None = None) -> Facts:
    now = now or utcnow()
    beat = session.scalar(sa.select(Heartbeat.at).where(Heartbeat.name == SCHEDULER))
    return Facts(
        now=now,
        queue=queue_facts(settings),
        scheduler_beat=beat,
        rasa=rasa_reachable(settings),
        providers=provider_facts(session, now),
        last_adt=last_adt(session),
        disks=(disk_facts("media", settings.media_dir), disk_facts("data", data_folder(settings))),
        disk_warning_percent=settings.health_disk_warning_percent,
        **his_facts(session),
        backup=backup_facts(settings),
    )


def his_facts(session: Session) -> dict[str, Any]:
    from backend.imports.his_sources import failing

    enabled = session.scalar(
        sa.select(sa.func.count()).select_from(HisSource).where(HisSource.enabled.is_(True))
    )
    return {"his_sources": int(enabled or 0), "his_failing": tuple(s.name for s in failing(session))}


def backup_facts(settings: Settings) -> BackupFacts | None:
    if settings.backup_dir is None:
        return None
    from backend.backup.service import newest_backup

    newest = newest_backup(settings.backup_dir)
    last = None if newest is None else datetime.fromisoformat(newest.created_at)
    return BackupFacts(last=last, max_age=timedelta(hours=settings.backup_max_age_hours))


def do_beat(session: Session, name: str = SCHEDULER, now: datetime | None = None) -> None:
    """Mark `name` alive now (one row per loop, overwritten)."""
    now = now or utcnow()
    updated = session.execute(sa.update(Heartbeat).where(Heartbeat.name == name).values(at=now))
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.add(Heartbeat(name=name, at=now))

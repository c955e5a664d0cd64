"""`careloop scheduler`: RQ's cron scheduler, except that a periodic job still queued or running is not
queued again, so a backlog never holds copies of the same sweep (19 of the audit sealer were once found
waiting behind 2,000 turns, see bench/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis import Redis
from rq.cron import CronJob, CronScheduler
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.utils import now as rq_now

from backend.app.queues import still_pending

# RQ's default job timeout (periodic jobs are registered without their own): a copy marked started for
# longer was killed with its worker.
RUNNING_AT_MOST = timedelta(seconds=180)


def last_copy_pending(connection: Redis, cron_job: CronJob, now: datetime) -> bool:
    """Whether the last job queued for `cron_job` (RQ keeps each cron job's history) is queued or running."""
    ids = cron_job.get_job_ids(connection, 0, 0)
    if not ids:
        return False
    try:
        job = Job.fetch(ids[0], connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    started_at = job.started_at
    if started_at is not None and started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)  # RQ keeps UTC without a zone
    return still_pending(status.value if status else None, started_at, now, RUNNING_AT_MOST)


class OneCopyScheduler(CronScheduler):
    """A due job whose last copy is still pending is skipped until its next time, not queued again."""

    def enqueue_jobs(self) -> list[CronJob]:
        enqueue_time = rq_now()
        enqueued: list[CronJob] = []
        for cron_job in self.get_jobs():
            if not cron_job.should_run():
                continue
            if last_copy_pending(self.connection, cron_job, enqueue_time):
                # RQ's scheduler logger: the one `careloop scheduler` prints, next to its "Enqueued job" lines
                self.log.info("periodic job %s still queued or running; not queued again", cron_job.name)
            else:
                cron_job.enqueue(self.connection)
                enqueued.append(cron_job)
            cron_job.set_enqueue_time(enqueue_time)
        return enqueued

"""A HIS source's pulls through the import's own jobs: the pull is an import dry run whose rows come from
the source's query instead of an upload; its confirm is the import's confirm, after whose last committed
chunk the watermark advances. The periodic sweep starts the pulls that are due, and confirms those of
sources set to apply on their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.imports import his_pull, storage
from backend.imports.his_sources import PullOutcome, do_start_pull
from backend.models import HisSource, WorkJob, WorkState
from backend.services import audit
from backend.work.runs import Progress, WorkCancelled, WorkError


def source_of(params: dict[str, Any]) -> int | None:
    value = params.get("his_source")
    return int(value) if value else None


def _record(
    source_id: int, outcome: PullOutcome, error: str | None = None, watermark: str | None = None
) -> None:
    with session_scope() as session:
        source = session.get(HisSource, source_id, with_for_update=True)
        if source is None:
            return
        source.last_outcome, source.last_error = outcome.value, (error or None) and error[:500]
        if watermark is not None:
            source.watermark = _later(source.watermark, watermark)


def _later(current: str | None, candidate: str) -> str:
    """The watermark never goes back (an older dry run confirmed after a newer one)."""
    old = his_pull.parse_mark(current) if current else None
    new = his_pull.parse_mark(candidate)
    return current if old is not None and (new is None or new < old) else candidate  # type: ignore[return-value]


def pulled_dry_run(
    progress: Progress, source_id: int, run: Callable[[Progress, dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Read the source's rows from its watermark into a stored file, then dry-run them as `run` does an
    upload. Where nothing is left to apply the watermark advances at once; else when the confirm ends."""
    with session_scope() as session:
        source = session.get(HisSource, source_id)
        if source is None:
            raise WorkError("the HIS source no longer exists")
        url, query, column, current = source.url, source.query, source.watermark_column, source.watermark
    since = his_pull.parse_mark(current) if current else None

    def read(count: int) -> None:
        progress.done = count  # the bar counts the rows read; the dry run then counts them again
        progress.save()

    try:
        timeout = get_settings().his_connect_timeout_seconds
        file, pulled = his_pull.pull(url, query, since, connect_timeout=timeout, on_rows=read)
        result = run(progress, {**progress.params, "file": file})
        plan = storage.plan_path(progress.job_id)
        mark = his_pull.next_watermark(file, plan, column, current)
    except WorkError as exc:
        _record(source_id, PullOutcome.FAILED, str(exc))
        raise
    except WorkCancelled:
        _record(source_id, PullOutcome.FAILED, "cancelled")  # by staff, on the job's page
        raise
    except Exception as exc:
        _record(source_id, PullOutcome.FAILED, f"internal error ({type(exc).__name__})")
        raise
    held = int(progress.counts.get("with problems", 0))
    result.update(his_source=source_id, pulled=pulled, watermark=mark, held=held)
    if result.get("writes"):
        _record(source_id, PullOutcome.AWAITING)
        return result
    # nothing to commit: every row is unchanged or held, so the rows before the watermark are in CareLoop
    _record(source_id, PullOutcome.HELD if held else PullOutcome.APPLIED, watermark=mark)
    storage.file_path(file).unlink(missing_ok=True)
    plan.unlink(missing_ok=True)
    return result


def after_confirm(dry_result: dict[str, Any]) -> None:
    """Every chunk of a pulled dry run committed: the watermark moves past what it applied."""
    source_id = source_of(dry_result)
    if source_id is None:
        return
    outcome = PullOutcome.HELD if dry_result.get("held") else PullOutcome.APPLIED
    _record(source_id, outcome, watermark=dry_result.get("watermark"))


def confirm_failed(dry_result: dict[str, Any], error: str) -> None:
    source_id = source_of(dry_result)
    if source_id is not None:
        _record(source_id, PullOutcome.FAILED, error)


def pending_confirm(session: Session, source: HisSource) -> WorkJob | None:
    """The confirm of the source's last pull that is still waiting or running, if any."""
    from backend.imports.service import confirms_of

    if not source.last_job_id:
        return None
    return next((c for c in confirms_of(session, source.last_job_id) if not c.state.finished), None)


def due_pulls(session: Session, now: datetime) -> list[int]:
    """Jobs to launch (after the caller commits): a confirm for a source that applies on its own and whose
    pull found rows to apply, and a pull for each enabled source whose interval has passed since its last
    one and whose last one is settled. A pull waiting for a person to confirm it holds its source."""
    from backend.imports.service import confirms_of, do_start_confirm

    started: list[int] = []
    for source in session.scalars(
        sa.select(HisSource).where(HisSource.enabled.is_(True)).order_by(HisSource.id)
    ):
        last = session.get(WorkJob, source.last_job_id) if source.last_job_id else None
        if last is not None and not last.state.finished:
            continue
        if last is not None and last.state is WorkState.DONE and (last.result or {}).get("writes"):
            confirms = confirms_of(session, last.id)
            if any(not c.state.finished for c in confirms):
                continue
            if not any(c.state is WorkState.DONE for c in confirms):
                if source.auto_apply and not confirms:
                    job = do_start_confirm(session, last, staff_id=None)
                    audit.record(
                        session, "his_source.auto_apply", subject=("his_source", source.id), job=job.id
                    )
                    started.append(job.id)
                continue  # waiting for a person (a failed confirm too: someone must look)
        if (
            source.last_run_at is None
            or source.last_run_at + timedelta(minutes=source.interval_minutes) <= now
        ):
            started.append(do_start_pull(session, source, by=None).id)
    return started

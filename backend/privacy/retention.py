"""Retention per kind of data: message texts and attachments, call recordings, raw HL7 payloads,
uploaded import files, patients' data exports and long-work job logs. A periodic job blanks or deletes
what is older than its setting, in short transactions, and writes one audit row per kind saying how
many rows or files it changed. (The audit trail's own retention is not done here.)

Blanking rather than deleting keeps what other rows point to (a task points to its message) and the
counts statistics need; a message that belongs to a complaint still open is kept until it is closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.models import (
    CaseProgress,
    ErasureTombstone,
    FeedbackCase,
    Message,
    OutreachBatch,
    VoiceCall,
    WorkJob,
    WorkState,
)
from backend.models.base import utcnow
from backend.services import audit

log = logging.getLogger(__name__)
# one run never holds the database longer than this many batches per kind; the next run carries on
MAX_BATCHES = 200


def _not_json_null(column: sa.orm.InstrumentedAttribute[object]) -> sa.ColumnElement[bool]:
    """Set: neither SQL NULL nor the JSON `null` the ORM stores for None."""
    return sa.and_(column.is_not(None), sa.cast(column, sa.Text) != "null")


def blank_messages(session: Session, cutoff: datetime, batch: int) -> int:
    open_cases = sa.select(FeedbackCase.id).where(FeedbackCase.progress != CaseProgress.CLOSED)
    ids = session.scalars(
        sa.select(Message.id)
        .where(
            Message.created_at < cutoff,
            sa.or_(Message.text != "", _not_json_null(Message.media), _not_json_null(Message.parts)),
            sa.or_(Message.case_id.is_(None), Message.case_id.not_in(open_cases)),
        )
        .order_by(Message.id)
        .limit(batch)
    ).all()
    if not ids:
        return 0
    from backend.privacy.erasure import remove_media_file

    for media in session.scalars(sa.select(Message.media).where(Message.id.in_(ids))):
        for item in media or []:
            remove_media_file(item.get("stored"))
    session.execute(
        sa.update(Message)
        .where(Message.id.in_(ids))
        .values(text="", media=sa.null(), parts=sa.null(), choice=None)
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def remove_recordings(session: Session, cutoff: datetime, batch: int) -> int:
    """Recordings past their period, and every recording of an anonymised or erased patient whatever its
    age: deleted at the gateway first, the link forgotten only once the gateway said it is gone, so a
    gateway that is down leaves the link for the next run. The audio files of answers go with them."""
    from backend.outbox.overrides import effective_settings
    from backend.privacy.erasure import remove_media_file
    from backend.voice.recordings import RecordingUnavailable, delete_recording

    settings = effective_settings(session)  # the gateway's credentials as the console has them
    wiped = sa.select(ErasureTombstone.patient_id)
    calls = session.scalars(
        sa.select(VoiceCall)
        .where(
            sa.or_(
                sa.and_(
                    VoiceCall.created_at < cutoff,
                    sa.or_(
                        VoiceCall.recording_url.is_not(None),
                        sa.cast(VoiceCall.transcripts, sa.Text).like('%"audio": "%'),
                    ),
                ),
                sa.and_(VoiceCall.patient_id.in_(wiped), VoiceCall.recording_url.is_not(None)),
            )
        )
        .order_by(VoiceCall.id)
        .limit(batch)
    ).all()
    changed = 0
    for call in calls:
        if call.recording_url:
            try:
                delete_recording(settings, call)
            except RecordingUnavailable as exc:
                log.warning("recording of call %s not deleted at the gateway: %s", call.id, exc)
                continue
        for line in call.transcripts:
            remove_media_file(line.get("audio"))
        call.transcripts = [{**line, "audio": None} if "audio" in line else line for line in call.transcripts]
        call.recording_id, call.recording_url = None, None
        changed += 1
    return changed


def remove_recordings_of(patient_id: int) -> int:
    """Right after an anonymisation or erasure: her recordings deleted at the gateway now (the hourly
    job retries any the gateway refused)."""
    from backend.outbox.overrides import effective_settings
    from backend.voice.recordings import RecordingUnavailable, delete_recording

    settings, removed = effective_settings(), 0
    with session_scope() as session:
        for call in session.scalars(
            sa.select(VoiceCall).where(
                VoiceCall.patient_id == patient_id, VoiceCall.recording_url.is_not(None)
            )
        ):
            try:
                delete_recording(settings, call)
            except RecordingUnavailable as exc:
                log.warning("recording of call %s not deleted at the gateway: %s", call.id, exc)
                continue
            call.recording_id, call.recording_url = None, None
            removed += 1
    return removed


def delete_work_logs(session: Session, cutoff: datetime, batch: int) -> int:
    referenced = sa.select(OutreachBatch.job_id).where(OutreachBatch.job_id.is_not(None))
    ids = session.scalars(
        sa.select(WorkJob.id)
        .where(
            WorkJob.state.in_([WorkState.DONE, WorkState.FAILED, WorkState.CANCELLED]),
            WorkJob.finished_at < cutoff,
            WorkJob.id.not_in(referenced),
        )
        .order_by(WorkJob.id)
        .limit(batch)
    ).all()
    if ids:
        session.execute(sa.delete(WorkJob).where(WorkJob.id.in_(ids)))
    return len(ids)


def purge_hl7(session: Session, cutoff: datetime, batch: int) -> int:
    """The integration's own purge (held messages wait for review); its cutoff is hl7_retention_days."""
    from backend.integration.upkeep import purge_hl7_messages

    return purge_hl7_messages(session, get_settings().hl7_retention_days)


def _old_files(folder: Path, cutoff: datetime, keep: Callable[[Path], bool]) -> list[Path]:
    if not folder.is_dir():
        return []
    limit = cutoff.timestamp()
    return [p for p in folder.iterdir() if p.is_file() and p.stat().st_mtime < limit and not keep(p)]


def delete_import_files(session: Session, cutoff: datetime, batch: int) -> int:
    """Uploads and plans no unfinished import still needs (its parameters name the file's hash or id)."""
    unfinished = [
        str(params)
        for params in session.scalars(
            sa.select(WorkJob.params).where(WorkJob.state.in_([WorkState.QUEUED, WorkState.RUNNING]))
        )
    ]

    def needed(path: Path) -> bool:
        stem = path.stem.removeprefix("plan-").removeprefix("reconciliation-")
        return any(stem in params for params in unfinished)

    files = _old_files(get_settings().import_dir, cutoff, needed)[:batch]
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)


def delete_exports(session: Session, cutoff: datetime, batch: int) -> int:
    files = _old_files(get_settings().data_export_dir, cutoff, lambda p: False)[:batch]
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)


@dataclass(frozen=True)
class RetentionRule:
    kind: str
    days: Callable[[Settings], int]
    apply: Callable[[Session, datetime, int], int]


RULES: tuple[RetentionRule, ...] = (
    RetentionRule("messages", lambda s: s.retention_message_days, blank_messages),
    RetentionRule("call_recordings", lambda s: s.retention_recording_days, remove_recordings),
    RetentionRule("hl7_payloads", lambda s: s.hl7_retention_days, purge_hl7),
    RetentionRule("import_files", lambda s: s.retention_import_file_days, delete_import_files),
    RetentionRule("data_exports", lambda s: s.retention_import_file_days, delete_exports),
    RetentionRule("work_logs", lambda s: s.retention_work_log_days, delete_work_logs),
)


def enforce(now: datetime | None = None, settings: Settings | None = None) -> dict[str, int]:
    """Apply every rule in batches (each its own transaction); one audit row per kind that changed
    anything. A rule that fails is logged and the others still run."""
    settings = settings or get_settings()
    now = now or utcnow()
    done: dict[str, int] = {}
    for rule in RULES:
        cutoff = now - timedelta(days=rule.days(settings))
        total, started = 0, time.monotonic()
        try:
            for _ in range(MAX_BATCHES):
                with session_scope() as session:
                    changed = rule.apply(session, cutoff, settings.retention_batch_size)
                total += changed
                if changed < settings.retention_batch_size:
                    break
        except Exception:
            log.exception("retention of %s failed after %d changes", rule.kind, total)
        done[rule.kind] = total
        if total:
            with session_scope() as session:
                audit.record(
                    session,
                    "retention.applied",
                    kind=rule.kind,
                    changed=total,
                    cutoff=cutoff.isoformat(),
                    seconds=round(time.monotonic() - started, 2),
                )
    return done

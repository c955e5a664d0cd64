"""Retention per kind of data: old message texts and attachments, recordings, HL7 payloads, import files,
exports and work logs are blanked or deleted in batches; newer ones and held ones are kept; each kind
that changed writes one audit row."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import AuditEvent, CaseProgress, Message, VoiceCall, WorkJob, WorkState
from backend.models.base import utcnow
from backend.privacy import retention
from tests import factories
from tests.backend.privacy.helpers import open_complaint, rich_patient
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches


def test_old_messages_are_blanked_in_batches_and_new_or_held_ones_kept(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_RETENTION_BATCH_SIZE", "2")
    monkeypatch.setenv("CARELOOP_RETENTION_MESSAGE_DAYS", "30")
    reset_caches()
    now = utcnow()
    person = factories.patient(db)
    conv = factories.conversation(db, person)
    old = [factories.reply(db, conv, f"old {i}", at=now - timedelta(days=40)) for i in range(5)]
    new = factories.reply(db, conv, "yesterday", at=now - timedelta(days=1))
    case = open_complaint(db, person)
    held = factories.reply(db, conv, "the complaint itself", at=now - timedelta(days=40))
    held.case_id = case.id
    db.commit()
    done = retention.enforce(now=now)
    assert done["messages"] == 5
    db.expire_all()
    assert [db.get(Message, m.id).text for m in old] == [""] * 5  # type: ignore[union-attr]
    assert db.get(Message, new.id).text == "yesterday"  # type: ignore[union-attr]
    assert db.get(Message, held.id).text == "the complaint itself"  # type: ignore[union-attr]
    [row] = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "retention.applied")).all()
    assert row.detail["kind"] == "messages" and row.detail["changed"] == 5
    # a second run finds nothing more, and writes no row
    assert retention.enforce(now=now)["messages"] == 0
    # once the complaint is closed its message follows the rule too
    case.progress = CaseProgress.CLOSED
    db.merge(case)
    db.commit()
    assert retention.enforce(now=now)["messages"] == 1


def test_recordings_and_their_audio_files_go_after_their_period(db: Session, twilio: FakeTwilio) -> None:
    rich = rich_patient(db, gateway=twilio)
    db.commit()
    settings = get_settings()
    assert retention.enforce(now=utcnow())["call_recordings"] == 0  # a day old: kept
    done = retention.enforce(now=utcnow() + timedelta(days=settings.retention_recording_days + 1))
    assert done["call_recordings"] == 1
    db.expire_all()
    call = db.get(VoiceCall, rich.call.id)
    assert call is not None and call.recording_url is None
    assert call.transcripts[0]["audio"] is None and call.transcripts[0]["heard"]  # the words stay
    assert not (settings.media_dir / rich.audio_file).exists()
    assert twilio.recordings == {}  # deleted at the gateway, not only forgotten here


def test_old_import_files_exports_and_work_logs_are_deleted(db: Session) -> None:
    settings = get_settings()
    now = utcnow()
    folder = settings.import_dir
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh, needed = (folder / f"{c * 64}.upload" for c in "abc")
    for path in (stale, fresh, needed):
        path.write_bytes(b"mrn,name\n")
    old_time = (now - timedelta(days=settings.retention_import_file_days + 1)).timestamp()
    os.utime(stale, (old_time, old_time))
    os.utime(needed, (old_time, old_time))
    export_dir = settings.data_export_dir
    export_dir.mkdir(parents=True, exist_ok=True)
    old_export = export_dir / "export-1.pdf.sealed"
    old_export.write_bytes(b"x")
    os.utime(old_export, (old_time, old_time))
    db.add(WorkJob(kind="import.confirm", params={"sha256": "c" * 64}, state=WorkState.RUNNING))
    finished = WorkJob(
        kind="import.confirm",
        params={},
        state=WorkState.DONE,
        finished_at=now - timedelta(days=settings.retention_work_log_days + 1),
    )
    recent = WorkJob(kind="import.confirm", params={}, state=WorkState.DONE, finished_at=now)
    db.add_all([finished, recent])
    db.commit()
    finished_id, recent_id = finished.id, recent.id
    done = retention.enforce(now=now)
    assert (done["import_files"], done["data_exports"], done["work_logs"]) == (1, 1, 1)
    assert not stale.exists() and fresh.exists() and needed.exists()  # an unfinished import still needs it
    assert not old_export.exists()
    db.expire_all()
    assert db.get(WorkJob, finished_id) is None and db.get(WorkJob, recent_id) is not None

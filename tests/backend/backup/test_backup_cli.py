"""`careloop backup-key`, `backup`, `restore` and `audit verify` as an operator runs them: exit codes and
what they print, a restore into the configured empty database, a verify that names a tampered row."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.app.cli import main
from backend.app.settings import Settings, get_settings
from backend.models import AuditEvent
from backend.models.base import utcnow
from tests.backend.backup.conftest import BACKUP_KEY, fresh_target


def test_backup_restore_and_verify_from_the_command_line(
    source: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file, archive = tmp_path / "keys" / "backup.key", tmp_path / "careloop.backup"
    key_file.parent.mkdir()
    assert main(["backup-key", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert main(["backup-key", str(key_file)]) == 2  # never overwritten
    assert main(["backup", str(archive)]) == 2  # no key configured: refused with a hint
    assert "no backup key" in capsys.readouterr().err

    assert main(["backup", str(archive), "--key-file", str(key_file)]) == 0
    assert "rows in" in capsys.readouterr().out
    assert main(["backup", str(archive), "--key-file", str(key_file)]) == 2  # an archive is never overwritten
    assert main(["restore", str(archive), "--check", "--key-file", str(key_file)]) == 0
    assert "archive is whole" in capsys.readouterr().out
    # restoring over the live source database is refused: it is not empty
    assert main(["restore", str(archive), "--key-file", str(key_file)]) == 2
    assert "not empty" in capsys.readouterr().err

    for target in fresh_target(source, tmp_path):
        monkeypatch.setenv("DATABASE_URL", target.database_url)
        monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(target.media_dir))
        get_settings.cache_clear()
        assert main(["restore", str(archive), "--key-file", str(key_file)]) == 0
        assert main(["audit", "verify"]) == 0
        assert "audit chain holds" in capsys.readouterr().out
        engine = sa.create_engine(target.database_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            victim = conn.scalar(sa.select(sa.func.min(AuditEvent.id)))
            conn.execute(sa.text("UPDATE audit_events SET ip = '10.0.0.9' WHERE id = :id"), {"id": victim})
        engine.dispose()
        assert main(["audit", "verify"]) == 1
        assert f"audit row {victim}:" in capsys.readouterr().err
        get_settings.cache_clear()


def test_the_health_page_reads_the_newest_backups_manifest_beside_it(
    source: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`careloop backup` leaves its manifest beside the archive (no key, no patient); the health check
    takes the newest one whose archive is still there, and warns past CARELOOP_BACKUP_MAX_AGE_HOURS."""
    from backend.admin.health import check_backup
    from backend.admin.health_facts import backup_facts
    from backend.backup.service import make_backup, sidecar

    folder = tmp_path / "backups"
    monkeypatch.setenv("CARELOOP_BACKUP_DIR", str(folder))
    monkeypatch.setenv("CARELOOP_BACKUP_MAX_AGE_HOURS", "2")
    get_settings.cache_clear()
    settings = get_settings()
    assert check_backup(backup_facts(settings), utcnow()).reason == "no_backup"
    archive = folder / "careloop-1.backup"
    manifest = make_backup(source, archive, BACKUP_KEY, media=False)
    kept = sidecar(archive).read_text(encoding="utf-8")
    assert base64.b64encode(BACKUP_KEY).decode() not in kept and '"patients": 2' in kept
    made = datetime.fromisoformat(manifest.created_at)
    facts = backup_facts(settings)
    assert facts is not None and facts.last == made
    assert check_backup(facts, made + timedelta(hours=1)).reason == "backup_recent"
    assert check_backup(facts, made + timedelta(hours=3)).reason == "backup_old"
    archive.unlink()  # a manifest whose archive is gone is not a backup
    assert check_backup(backup_facts(settings), made).reason == "no_backup"

"""Each data-rights test has its own tombstone file and export folder (the session's are shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.app import settings


@pytest.fixture(autouse=True)
def _own_privacy_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_TOMBSTONE_FILE", str(tmp_path / "tombstones.jsonl"))
    monkeypatch.setenv("CARELOOP_DATA_EXPORT_DIR", str(tmp_path / "exports"))
    settings.get_settings.cache_clear()

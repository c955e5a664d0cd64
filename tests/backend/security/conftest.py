"""Each test here gets its own import and export folders: key rotation and `keys status` walk those
folders by name, so files another test left in the worker's shared folders would be counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.app.settings import get_settings


@pytest.fixture(autouse=True)
def _own_file_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_IMPORT_DIR", str(tmp_path / "imports"))
    monkeypatch.setenv("CARELOOP_DATA_EXPORT_DIR", str(tmp_path / "exports"))
    get_settings.cache_clear()

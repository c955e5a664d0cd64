"""Each data-rights test has its own tombstone file and export folder (the session's are shared)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.app import settings
from tests.channels.fake_twilio import FakeTwilio


@pytest.fixture(autouse=True)
def _own_privacy_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_TOMBSTONE_FILE", str(tmp_path / "tombstones.jsonl"))
    monkeypatch.setenv("CARELOOP_DATA_EXPORT_DIR", str(tmp_path / "exports"))
    settings.get_settings.cache_clear()


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """A local Twilio that keeps recordings and answers their DELETE as Twilio documents it."""
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        settings.get_settings.cache_clear()
        yield fake

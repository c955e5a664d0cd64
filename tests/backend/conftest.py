"""Fixtures of the backend tests: the app's understanding pointed at the real Rasa server."""

from __future__ import annotations

import pytest

from tests.conftest import reset_caches


@pytest.fixture
def with_rasa(rasa_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """CARELOOP_NLU_URL names the session's real Rasa server (tests/rasa_fixtures.py)."""
    monkeypatch.setenv("CARELOOP_NLU_URL", rasa_url)
    reset_caches()
    return rasa_url

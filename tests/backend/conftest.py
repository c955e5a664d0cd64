"""Fixtures of the backend tests: the app's understanding pointed at the real Rasa server, a fresh
in-process store of nonces and request counts."""

from __future__ import annotations

import pytest

from backend.security.ephemeral import reset_ephemeral
from tests.conftest import reset_caches


@pytest.fixture(autouse=True)
def _fresh_ephemeral() -> None:
    """Each test starts with no remembered nonces or rate-limit counts in this process."""
    reset_ephemeral()


@pytest.fixture
def with_rasa(rasa_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """CARELOOP_NLU_URL names the session's real Rasa server (tests/rasa_fixtures.py)."""
    monkeypatch.setenv("CARELOOP_NLU_URL", rasa_url)
    reset_caches()
    return rasa_url

"""Settings refuse weak secrets, and production refuses development shortcuts."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from backend.app.settings import Settings

GOOD = {"secret_key": "s" * 40, "data_key": base64.b64encode(bytes(32)).decode()}


def make(**overrides: object) -> Settings:
    return Settings(**{**GOOD, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("secret_key", "changeme", "at least 32"),
        ("secret_key", "short", "at least 32"),
        ("data_key", "not base64!!", "must be base64"),
        ("data_key", base64.b64encode(bytes(16)).decode(), "32 bytes"),
    ],
)
def test_weak_or_malformed_secrets_are_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**{field: value})


def test_production_refuses_sqlite_and_plain_http() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        make(env="production", public_url="https://h.example")
    with pytest.raises(ValidationError, match="https"):
        make(env="production", DATABASE_URL="postgresql+psycopg://h/db", public_url="http://h.example")


def test_production_forces_secure_cookies() -> None:
    settings = make(
        env="production", DATABASE_URL="postgresql+psycopg://h/db", public_url="https://h.example/"
    )
    assert settings.cookie_secure is True
    assert settings.public_url == "https://h.example"


def test_empty_redis_url_means_inline_jobs() -> None:
    assert make(REDIS_URL="").redis_url is None

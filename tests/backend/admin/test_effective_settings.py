"""The effective settings: every field once, where its value came from, secrets never shown."""

from __future__ import annotations

from backend.admin.effective_settings import MASK, Source, effective, mask_url_password
from backend.app.settings import Settings, get_settings


def test_sources_follow_pydantics_order_environment_then_file_then_default() -> None:
    settings = get_settings()
    environ = {"careloop_secret_key": "x", "DATABASE_URL": "y"}  # names compared without case
    file_values = {"CARELOOP_HOSPITAL_NAME": "H", "CARELOOP_SECRET_KEY": "z", "CARELOOP_COOKIE_SECURE": None}
    rows = {row.name: row for row in effective(settings, environ, file_values)}
    assert list(rows) == list(Settings.model_fields)
    assert rows["secret_key"].source is Source.ENVIRONMENT
    assert rows["database_url"].source is Source.ENVIRONMENT
    assert rows["hospital_name"].source is Source.ENV_FILE
    assert rows["cookie_secure"].source is Source.DEFAULT  # a name without a value sets nothing
    assert rows["session_idle_minutes"].source is Source.DEFAULT


def test_secrets_are_masked_and_unset_ones_blank() -> None:
    settings = get_settings()
    rows = {row.name: row for row in effective(settings, {}, {})}
    assert rows["secret_key"].secret and rows["secret_key"].value == MASK
    assert rows["data_key"].value == MASK
    assert settings.secret_key.get_secret_value() not in {row.value for row in rows.values()}
    assert rows["twilio_auth_token"].secret and rows["twilio_auth_token"].value == ""
    assert not rows["hospital_name"].secret and rows["hospital_name"].value == settings.hospital_name


def test_passwords_in_urls_are_masked() -> None:
    assert (
        mask_url_password("postgresql+psycopg://care:s3cret@db/careloop")
        == f"postgresql+psycopg://care:{MASK}@db/careloop"
    )
    assert mask_url_password("redis://:pw@127.0.0.1:6379/0") == f"redis://:{MASK}@127.0.0.1:6379/0"
    assert mask_url_password("sqlite:///var/careloop.db") == "sqlite:///var/careloop.db"
    assert mask_url_password("http://127.0.0.1:5005") == "http://127.0.0.1:5005"

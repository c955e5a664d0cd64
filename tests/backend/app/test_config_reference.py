"""docs/configuration.md is what the Settings field descriptions render to, and every field has one."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.app import config_reference
from backend.app.settings import REPO_ROOT, Settings

REFERENCE = REPO_ROOT / "docs" / "configuration.md"


def test_every_settings_field_has_a_description() -> None:
    missing = config_reference.undocumented_fields(Settings)
    assert not missing, f"give these Settings fields a Field(description=...): {', '.join(missing)}"


def test_committed_reference_is_current() -> None:
    stale = "docs/configuration.md is stale; refresh it with `" + config_reference.REFRESH_COMMAND + "`"
    assert REFERENCE.exists(), stale
    assert REFERENCE.read_text(encoding="utf-8") == config_reference.render(Settings), stale


def test_reference_names_every_environment_variable_once() -> None:
    text = config_reference.render(Settings)
    for name, field in Settings.model_fields.items():
        assert text.count(f"| `{config_reference.env_name(name, field)}` |") == 1, name
    assert "| `DATABASE_URL` |" in text and "| `REDIS_URL` |" in text  # aliases, not the prefix
    assert str(REPO_ROOT) not in text  # the page does not depend on where it was rendered


class _Sample(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLE_")

    documented: int = Field(default=3, ge=1, le=9, description="a knob")
    forgotten: str | None = None
    secret: str = Field(validation_alias="OTHER_NAME", description="no default")


def test_undocumented_field_is_named() -> None:
    assert config_reference.undocumented_fields(_Sample) == ["forgotten"]


def test_row_shows_name_default_limits_and_description() -> None:
    text = config_reference.render(_Sample)
    assert "| `SAMPLE_DOCUMENTED` | `3` (1–9) | a knob |" in text
    assert "| `SAMPLE_FORGOTTEN` | unset |  |" in text
    assert "| `OTHER_NAME` | required | no default |" in text

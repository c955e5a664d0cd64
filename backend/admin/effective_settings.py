"""The effective settings page: every Settings field, its value now, and where the value came from
(the admin console's channel settings, the environment, the .env file, or the default), with secrets
never shown.

Pydantic settings reads the environment first, then the .env file, then the field's default; the same
order decides the source here (names compared without case, as pydantic-settings does by default).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from backend.app.config_reference import env_name, show_value

# a password in a URL (postgresql://user:pw@host, redis://:pw@host)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@/\s]+)(?P<at>@)", re.I)
MASK = "••••••"


class Source(StrEnum):
    CONSOLE = "console"  # stored in the admin console (channel settings), over the environment
    ENVIRONMENT = "environment"
    ENV_FILE = "env_file"
    DEFAULT = "default"


@dataclass(frozen=True)
class SettingRow:
    name: str
    variable: str
    value: str  # what the page shows: secrets as MASK (set) or "" (unset)
    source: Source
    secret: bool
    description: str


def is_secret(annotation: object) -> bool:
    """SecretStr, or SecretStr | None."""
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def mask_url_password(text: str) -> str:
    return URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)


def effective(
    settings: BaseSettings,
    environ: Mapping[str, str],
    file_values: Mapping[str, str | None],
    console: Collection[str] = (),
) -> list[SettingRow]:
    """One row per field in declaration order. `environ` and `file_values` are what the process and the
    .env file hold (only their names matter here; the value comes from `settings`); `console` names the
    fields the admin console has set (`settings` then holds its values)."""
    in_env = {name.lower() for name in environ}
    in_file = {name.lower() for name, value in file_values.items() if value is not None}
    rows = []
    for name, field in type(settings).model_fields.items():
        variable = env_name(name, field, type(settings))
        if name in console:
            source = Source.CONSOLE
        elif variable.lower() in in_env:
            source = Source.ENVIRONMENT
        elif variable.lower() in in_file:
            source = Source.ENV_FILE
        else:
            source = Source.DEFAULT
        value = getattr(settings, name)
        secret = is_secret(field.annotation)
        if secret:
            shown = MASK if value is not None and value.get_secret_value() else ""
        elif value is None:
            shown = ""
        else:
            shown = mask_url_password(show_value(value))
        rows.append(SettingRow(name, variable, shown, source, secret, (field.description or "").strip()))
    return rows


def file_values(path: Path) -> dict[str, str | None]:
    return dict(dotenv_values(path)) if path.is_file() else {}

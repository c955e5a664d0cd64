"""The configuration reference (docs/configuration.md), rendered from the Settings field descriptions.

Refresh it with `PYTHONPATH=. python -m backend.app.config_reference > docs/configuration.md`; a test fails
when the committed file differs from what this renders, or when a field has no description.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python
from pydantic_settings import BaseSettings

from backend.app.settings import REPO_ROOT, Settings

CHECKOUT = "<checkout>"  # stands for REPO_ROOT, so the file does not depend on where it was rendered

HEADER = """# Configuration

<!-- Generated from the field descriptions of `Settings` by `{command}`; do not edit by hand. -->

CareLoop reads one settings object, once, from the environment and from `var/careloop.env`
(`careloop init` writes that file with random keys; it is never committed; `CARELOOP_ENV_FILE` names
another file). The environment wins over the file. Start-up refuses a weak `CARELOOP_SECRET_KEY`, a
`CARELOOP_DATA_KEY` that is not 32 bytes of base64, and, in production, SQLite or a plain-http public URL.

`{checkout}` is the directory of the checkout.

| variable | default (allowed) | description |
| --- | --- | --- |
"""


def env_name(name: str, field: FieldInfo, settings_cls: type[BaseSettings] = Settings) -> str:
    """The environment variable a field is read from: its alias, else the class prefix + its name."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def show_value(value: Any) -> str:
    """A default as a reader would write it in the environment."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, dict | list):
        # dates, paths and nested models (voice sites, model directories) as the JSON one would set
        value = json.dumps(to_jsonable_python(value, exclude_none=True))
    return str(value).replace(str(REPO_ROOT), CHECKOUT)


def default_text(field: FieldInfo) -> str:
    """`required`, `unset` (None) or the default, in backticks."""
    if field.default_factory is not None:
        return f"`{show_value(field.get_default(call_default_factory=True, validated_data={}))}`"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "unset"
    return f"`{show_value(field.default)}`"


def _bounds(field: FieldInfo) -> str:
    """The numeric limits validation enforces: `0–23`, `≥ 1` or `> 0, ≤ 100`."""
    limits: dict[str, Any] = {}
    for rule in field.metadata:
        limits.update({attr: getattr(rule, attr) for attr in ("ge", "gt", "le", "lt") if hasattr(rule, attr)})
    if "ge" in limits and "le" in limits:
        return f"{limits['ge']}–{limits['le']}"
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return ", ".join(f"{symbols[attr]} {value}" for attr, value in limits.items() if value is not None)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def undocumented_fields(settings_cls: type[BaseSettings] = Settings) -> list[str]:
    """Fields without a description (the reference would have an empty cell for them)."""
    fields = settings_cls.model_fields.items()
    return [name for name, field in fields if not (field.description or "").strip()]


def render(settings_cls: type[BaseSettings] = Settings) -> str:
    """The whole Markdown page, one table row per field in declaration order."""
    rows = []
    for name, field in settings_cls.model_fields.items():
        default = default_text(field)
        bounds = _bounds(field)
        if bounds:
            default = f"{default} ({bounds})"
        description = (field.description or "").strip()
        variable = env_name(name, field, settings_cls)
        rows.append(f"| `{variable}` | {_cell(default)} | {_cell(description)} |")
    return HEADER.format(command=REFRESH_COMMAND, checkout=CHECKOUT) + "\n".join(rows) + "\n"


REFRESH_COMMAND = f"PYTHONPATH=. python -m {__spec__.name if __spec__ else __name__} > docs/configuration.md"


if __name__ == "__main__":
    missing = undocumented_fields()
    if missing:
        raise SystemExit(f"Settings fields without a description: {', '.join(missing)}")
    print(render(), end="")

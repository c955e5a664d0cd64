"""Channel settings as the sender uses them: the environment's settings with what the admin console
stored over them (`channel_settings` rows), and the provider templates of content/channels/templates.yaml
with the console's mappings over them.

Precedence, for each value: the console's row, else the environment (or the .env file), else the
default. Every process rereads the rows at most `REFRESH` after its last look (a few rows, one query), so
a change made in the console reaches every worker within that time; the process that made it sees it at
once (`invalidate`). A changed set of values rebuilds the channel adapters.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from backend.app.settings import Settings, get_settings

log = logging.getLogger(__name__)
REFRESH = 10.0  # seconds

# The settings the console may set over the environment. Secrets among them are stored encrypted.
CONSOLE_SETTINGS = (
    "sms_provider",
    "twilio_sms_from",
    "twilio_whatsapp_from",
    "sms_gateway_url",
    "sms_gateway_token",
    "sms_gateway_sender",
    "sms_signature",
    "sms_brandname",
    "sms_template_ids",
    "send_rates",
    "twilio_account_sid",
    "twilio_auth_token",
    "wechat_app_id",
    "wechat_app_secret",
    "wechat_token",
    "wechat_encoding_aes_key",
)
TEMPLATE_PREFIX = "template:"  # rows "template:<key>:<channel>" hold {"id": ..., "fields": {...}}


def template_row(key: str, channel: str) -> str:
    return f"{TEMPLATE_PREFIX}{key}:{channel}"


@dataclass(frozen=True)
class Overrides:
    values: dict[str, Any] = field(default_factory=dict)  # Settings field -> typed value
    templates: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # key -> channel -> spec


def typed(name: str, raw: Any) -> Any:
    """A stored value as the Settings field's type (SecretStr, the SMS provider enum, dicts)."""
    annotation: Any = Settings.model_fields[name].annotation
    return TypeAdapter(annotation).validate_python(raw)


def from_rows(rows: list[tuple[str, Any, str | None]]) -> Overrides:
    """(name, value, secret) rows to overrides; a row that no longer fits its setting is left out (the
    environment's value applies) rather than stopping every send."""
    values: dict[str, Any] = {}
    templates: dict[str, dict[str, dict[str, Any]]] = {}
    for name, value, secret in rows:
        if name.startswith(TEMPLATE_PREFIX):
            key, _, channel = name.removeprefix(TEMPLATE_PREFIX).rpartition(":")
            if isinstance(value, dict) and value.get("id"):
                templates.setdefault(key, {})[channel] = value
            continue
        if name not in CONSOLE_SETTINGS:
            continue
        try:
            values[name] = typed(name, secret if secret is not None else value)
        except ValidationError:
            log.warning("channel setting %s stored in the console no longer fits; the default applies", name)
    return Overrides(values, templates)


_cached: list[Overrides] = []
_checked = [0.0]
_lock = threading.Lock()


def _load(session: Session | None) -> Overrides:
    from backend.app.db import session_scope
    from backend.models import ChannelSetting

    query = sa.select(ChannelSetting.name, ChannelSetting.value, ChannelSetting.secret)
    if session is not None:
        return from_rows([(name, value, secret) for name, value, secret in session.execute(query)])
    with session_scope() as own:
        return from_rows([(name, value, secret) for name, value, secret in own.execute(query)])


def current(session: Session | None = None) -> Overrides:
    """The console's values, reread when older than `REFRESH`. Inside a transaction pass its session: a
    second connection would wait for the first one's write lock on SQLite."""
    with _lock:
        if _cached and time.monotonic() - _checked[0] < REFRESH:
            return _cached[0]
        try:
            fresh = _load(session)
        except sa.exc.SQLAlchemyError:  # no table yet (before migrating) or the database is down
            if _cached:
                return _cached[0]
            fresh = Overrides()
        _checked[0] = time.monotonic()
        if _cached and fresh != _cached[0]:
            from backend.outbox.providers import forget_adapters

            forget_adapters()
        _cached[:] = [fresh]
        return fresh


def effective_settings(session: Session | None = None) -> Settings:
    """The settings the sender uses: the environment's with the console's values over them."""
    values = current(session).values
    settings = get_settings()
    return settings.model_copy(update=values) if values else settings


def invalidate() -> None:
    """Reread at the next use (after this process changed a row)."""
    with _lock:
        _checked[0] = 0.0


def forget() -> None:
    with _lock:
        _cached.clear()
        _checked[0] = 0.0

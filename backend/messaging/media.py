"""Patients' images and voice notes: fetched from the provider by a job, stored encrypted under `media_dir`.

Providers keep inbound media only for a while (WeChat: 3 days), so a job copies each file as soon as
the message is stored. Files are sealed with AES-GCM under the data key (the message id is bound in),
named by random ids, and only ever served to staff who may view the patient, with an audit row.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings
from backend.models import Direction, Message
from backend.outbox.overrides import effective_settings
from backend.security.crypto import current_cipher
from bots.domain import Channel

log = logging.getLogger(__name__)


class MediaTooLarge(ValueError):
    """Over `max_media_bytes`: not stored."""


def media_kind(message_id: int) -> str:
    """What a message's media file is sealed with (bound in as associated data)."""
    return f"media:{message_id}"


def seal_to_file(settings: Settings, kind: str, data: bytes) -> str:
    """Seal `data` (with `kind` bound in) into a new randomly named file under `media_dir`; its name."""
    name = f"{secrets.token_hex(16)}.bin"
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    (settings.media_dir / name).write_bytes(current_cipher().seal(kind, data))
    return name


def unseal_file(settings: Settings, kind: str, name: str) -> bytes:
    if not name.endswith(".bin") or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return current_cipher().unseal(kind, (settings.media_dir / name).read_bytes())


def store_blob(settings: Settings, message_id: int, data: bytes) -> str:
    if len(data) > settings.max_media_bytes:
        raise MediaTooLarge(f"{len(data)} bytes")
    return seal_to_file(settings, media_kind(message_id), data)


def load_blob(settings: Settings, message_id: int, name: str) -> bytes:
    return unseal_file(settings, media_kind(message_id), name)


def _download(channel: Channel, item: dict[str, Any], settings: Settings) -> tuple[bytes, str]:
    if channel is Channel.WECHAT and item.get("media_id"):
        from backend.outbox.providers import wechat_client
        from channels.wechat_client import fetch_media

        return fetch_media(wechat_client(), str(item["media_id"]))
    if channel in (Channel.SMS, Channel.WHATSAPP) and item.get("url"):
        # Twilio media URLs need the account's credentials (HTTP Basic) and redirect to storage.
        auth = None
        if settings.twilio_account_sid and settings.twilio_auth_token:
            auth = (settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
        with (
            httpx.Client(timeout=settings.send_timeout_seconds, follow_redirects=True, auth=auth) as client,
            client.stream("GET", str(item["url"])) as response,
        ):
            response.raise_for_status()
            data = bytearray()
            for chunk in response.iter_bytes():
                data.extend(chunk)
                if len(data) > settings.max_media_bytes:
                    raise MediaTooLarge(f"over {settings.max_media_bytes} bytes")
            mime = response.headers.get("content-type") or item.get("mime_type") or "application/octet-stream"
            return bytes(data), str(mime).split(";")[0].strip()
    raise LookupError("no way to fetch this media")


def fetch_inbound_media(message_id: int) -> int:
    """Job: copy each not-yet-stored media item of an inbound message. Returns how many were stored.
    A transient failure raises, so RQ retries the job; a permanent one is recorded on the item."""
    settings = effective_settings()  # the providers' credentials as the admin console has them
    with session_scope() as session:
        message = session.get(Message, message_id)
        if message is None or not message.media:
            return 0
        channel, items = message.channel, [dict(m) for m in message.media]
    stored = 0
    for item in items:
        if item.get("stored") or item.get("error"):
            continue
        try:
            data, mime = _download(channel, item, settings)
            item.update(stored=store_blob(settings, message_id, data), size=len(data), mime_type=mime)
            stored += 1
        except MediaTooLarge:
            item["error"] = "too_large"
        except LookupError:
            item["error"] = "unfetchable"
        except Exception as exc:
            if getattr(exc, "transient", True) is False:
                item["error"] = getattr(exc, "code", None) or type(exc).__name__
            else:
                _save(message_id, items)
                raise
    _save(message_id, items)
    log.info("media message=%s stored=%d", message_id, stored)
    return stored


def _save(message_id: int, items: list[dict[str, Any]]) -> None:
    with session_scope() as session:
        message = session.get(Message, message_id)
        if message is not None:
            message.media = items


def messages_missing_media(session: Session, now: datetime, window: int = 20_000) -> list[int]:
    """Inbound messages among the latest `window` with a media item neither stored nor given up on,
    older than a minute: their fetch job was lost (Redis was down when it was queued, its worker died).
    A window of ids rather than of time: the primary key bounds the scan, and a lost job is found
    within minutes, long before the provider drops the file."""
    newest = session.scalar(sa.select(sa.func.max(Message.id))) or 0
    rows = session.execute(
        sa.select(Message.id, Message.media)
        .where(
            Message.id > newest - window,
            Message.direction == Direction.INBOUND,
            Message.media.is_not(None),
            Message.created_at < now - timedelta(minutes=1),
        )
        .order_by(Message.id)
    )
    return [
        message_id
        for message_id, media in rows
        if any(not item.get("stored") and not item.get("error") for item in media or [])
    ]

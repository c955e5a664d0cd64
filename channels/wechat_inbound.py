"""WeChat official-account webhooks: verify the signature, decrypt safe-mode bodies, map XML to `Inbound`.

Routes call `verify_url` for the GET that WeChat sends when the callback URL is configured, and
`parse_webhook` for every POST. `parse_webhook` returns an `Inbound` for what a patient did, a
`StatusUpdate` for a template message's delivery report (TEMPLATESENDJOBFINISH), and `None` for
events CareLoop does not act on (VIEW, LOCATION, ...). It raises the request errors of
`channels.base`, which routes turn into 403/400 without storing anything.

In plain mode WeChat signs only `timestamp` and `nonce`, not the body, so a captured query string
could carry a forged body for as long as the timestamp is fresh. Safe mode (EncodingAESKey) signs
and encrypts the body; when an `aes_key` is configured, unencrypted requests are refused. Given a
`NonceMemory`, every verified request's timestamp and nonce are remembered for the replay window with a
digest of the body: the same request again (WeChat's own retry) passes to the idempotent store, the same
signature with another body is refused as a replay, in either mode.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import xmltodict  # wechatpy's own XML parser; entities are disabled by default
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from bots.domain import Channel
from bots.messages import Inbound, InboundKind, MediaRef
from channels.base import DeliveryStatus, ForgedRequest, MalformedPayload, ReplayedRequest, StatusUpdate

_SCENE_PREFIX = "qrscene_"
_VOICE_MIME = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg"}
_IMAGE_MIME = "image/jpeg"  # WeChat serves PicUrl images as JPEG
_VIDEO_MIME = "video/mp4"


class NonceMemory(Protocol):
    def remember(self, key: str, value: str, ttl_seconds: int) -> str | None:
        """Keep `value` under `key` unless there already; returns what was there, or None."""


def signature_of(*values: str) -> str:
    """WeChat's signature: SHA-1 of the values sorted and joined (token, timestamp, nonce[, Encrypt])."""
    return hashlib.sha1("".join(sorted(values)).encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's scheme


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def verify_url(*, token: str, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
    """Answer WeChat's URL check: return `echostr` when the signature is right, else raise ForgedRequest."""
    if not _same(signature_of(token, timestamp, nonce), signature):
        raise ForgedRequest("wechat url check: bad signature")
    return echostr


def parse_webhook(
    body: bytes,
    query: Mapping[str, str],
    *,
    token: str,
    aes_key: str | None,
    app_id: str,
    now: datetime,
    max_age_seconds: int = 300,
    nonces: NonceMemory | None = None,
) -> Inbound | StatusUpdate | None:
    """Verify, decrypt and map one POST from WeChat (see the module docstring for the three outcomes)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    timestamp, nonce = query.get("timestamp"), query.get("nonce")
    if not timestamp or not nonce:
        raise ForgedRequest("wechat webhook: timestamp or nonce missing")
    encrypted = query.get("encrypt_type", "raw").lower() == "aes"
    if encrypted:
        if aes_key is None:
            raise MalformedPayload("wechat webhook is encrypted but no EncodingAESKey is configured")
        fields = _decrypt(body, query.get("msg_signature"), timestamp, nonce, token, aes_key, app_id)
    else:
        if aes_key is not None:
            raise ForgedRequest("wechat webhook: safe mode is configured, unencrypted request refused")
        if not _same(signature_of(token, timestamp, nonce), query.get("signature")):
            raise ForgedRequest("wechat webhook: bad signature")
        fields = _parse_xml(body)
    max_age = timedelta(seconds=max_age_seconds)
    _check_fresh(_epoch(timestamp, "timestamp"), now, max_age)
    if nonces is not None:
        digest = hashlib.sha256(body).hexdigest()
        # Remembered for twice the window: a timestamp may be that far ahead of our clock, or behind it.
        seen = nonces.remember(f"wechat-nonce:{timestamp}:{nonce}", digest, 2 * max_age_seconds)
        if seen is not None and seen != digest:
            raise ReplayedRequest("wechat webhook: a signature seen before, with another body")
    created = _epoch(_field(fields, "CreateTime"), "CreateTime")
    _check_fresh(created, now, max_age)
    return _map(fields, created)


def _decrypt(
    body: bytes, msg_signature: str | None, timestamp: str, nonce: str, token: str, aes_key: str, app_id: str
) -> dict[str, Any]:
    outer = _parse_xml(body)
    encrypt = _field(outer, "Encrypt")
    # Only the Encrypt element is signed: in "compatible" mode the plaintext copy beside it is not.
    if not _same(signature_of(token, timestamp, nonce, encrypt), msg_signature):
        raise ForgedRequest("wechat webhook: bad msg_signature")
    try:
        plain = WeChatCrypto(token, aes_key, app_id).decrypt_message(
            {"Encrypt": encrypt}, msg_signature, timestamp, nonce
        )
    except InvalidSignatureException as exc:
        raise ForgedRequest("wechat webhook: bad msg_signature") from exc
    except InvalidAppIdException as exc:
        raise ForgedRequest("wechat webhook: encrypted for another app id") from exc
    except (ValueError, TypeError, IndexError, struct.error) as exc:
        raise MalformedPayload("wechat webhook: Encrypt does not decrypt") from exc
    return _parse_xml(plain.encode("utf-8") if isinstance(plain, str) else plain)


def _parse_xml(body: bytes) -> dict[str, Any]:
    try:
        doc = xmltodict.parse(body)
    except Exception as exc:  # expat raises its own ExpatError; entity declarations raise ValueError
        raise MalformedPayload(f"wechat webhook: not XML ({exc})") from exc
    fields = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(fields, dict):
        raise MalformedPayload("wechat webhook: no <xml> root")
    return fields


def _field(fields: Mapping[str, Any], name: str) -> str:
    value = _optional(fields, name)
    if value is None:
        raise MalformedPayload(f"wechat webhook: <{name}> missing")
    return value


def _optional(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"wechat webhook: <{name}> is not text")
    return value


def _epoch(value: str, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise MalformedPayload(f"wechat webhook: bad {name} {value!r}") from exc


def _check_fresh(at: datetime, now: datetime, max_age: timedelta) -> None:
    # The same tolerance applies to clocks running ahead: a far-future stamp is as suspect as an old one.
    if abs(now - at) > max_age:
        raise ReplayedRequest(f"wechat webhook: {at.isoformat()} is outside {max_age} of {now.isoformat()}")


def _map(fields: Mapping[str, Any], created: datetime) -> Inbound | StatusUpdate | None:
    sender = _field(fields, "FromUserName")
    msg_type = _field(fields, "MsgType").lower()
    if msg_type == "event":
        return _map_event(fields, sender, created)

    def message(**kw: Any) -> Inbound:
        return Inbound(
            channel=Channel.WECHAT,
            sender=sender,
            provider_message_id=_field(fields, "MsgId"),
            received_at=created,
            **kw,
        )

    if msg_type == "text":
        # A tap on a msgmenu option arrives as text carrying the option's id in bizmsgmenuid.
        return message(text=_optional(fields, "Content") or "", choice=_optional(fields, "bizmsgmenuid"))
    if msg_type == "image":
        media = MediaRef(
            url=_optional(fields, "PicUrl") or "", mime_type=_IMAGE_MIME, media_id=_field(fields, "MediaId")
        )
        return message(media=(media,))
    if msg_type == "voice":
        fmt = (_optional(fields, "Format") or "amr").lower()
        mime = _VOICE_MIME.get(fmt, f"audio/{fmt}")
        media = MediaRef(url="", mime_type=mime, media_id=_field(fields, "MediaId"))
        return message(text=(_optional(fields, "Recognition") or "").strip(), media=(media,))
    if msg_type in ("video", "shortvideo"):
        media = MediaRef(url="", mime_type=_VIDEO_MIME, media_id=_field(fields, "MediaId"))
        return message(media=(media,))
    return None  # location, link, file: nothing the flows can answer


def event_id(sender: str, create_time: str, event: str) -> str:
    """The deduplication id of an event, which WeChat sends without a MsgId: sender, CreateTime and event,
    as WeChat's documentation advises. It is stored in plain text, so the openid goes in as a digest. A
    follow starts a conversation ("start:", as the web chat page opening does): the bot greets."""
    digest = hashlib.sha256(sender.encode()).hexdigest()[:24]
    return f"{'start:' if event.lower() == 'subscribe' else ''}{digest}:{create_time}:{event}"


def _map_event(fields: Mapping[str, Any], sender: str, created: datetime) -> Inbound | StatusUpdate | None:
    event = _field(fields, "Event")
    kind = event.lower()
    key = _optional(fields, "EventKey")
    if kind == "templatesendjobfinish":
        return _template_status(fields, created)

    def inbound(kind: InboundKind, **kw: Any) -> Inbound:
        return Inbound(
            channel=Channel.WECHAT,
            sender=sender,
            provider_message_id=event_id(sender, _field(fields, "CreateTime"), event),
            received_at=created,
            kind=kind,
            **kw,
        )

    if kind == "subscribe":
        scene = key[len(_SCENE_PREFIX) :] if key and key.startswith(_SCENE_PREFIX) else None
        return inbound(InboundKind.FOLLOWED, scene=scene or None)
    if kind == "unsubscribe":
        return inbound(InboundKind.UNFOLLOWED)
    if kind == "scan":
        return inbound(InboundKind.SCANNED, scene=key or None)
    if kind == "click":
        if not key:
            raise MalformedPayload("wechat webhook: CLICK without EventKey")
        return inbound(InboundKind.MESSAGE, choice=key)
    return None


def _template_status(fields: Mapping[str, Any], created: datetime) -> StatusUpdate:
    status = (_optional(fields, "Status") or "").strip()
    msg_id = _field(fields, "MsgID")
    if status == "success":
        return StatusUpdate(provider_message_id=msg_id, status=DeliveryStatus.DELIVERED, at=created)
    reason = status.removeprefix("failed:").strip() or "unknown"
    # "user block": the patient switched off this account's messages; it cannot reach them any more.
    return StatusUpdate(
        provider_message_id=msg_id,
        status=DeliveryStatus.FAILED,
        error_code=reason,
        at=created,
        invalid_address=reason == "user block",
    )

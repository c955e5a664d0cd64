"""The tokens in our email addresses and links: one per outbox item (Message-ID, VERP bounce address) and
one per patient and purpose (the unsubscribe link and mailto).

Both are the id in clear and an 80-bit HMAC under a key derived from the secret key, in lower-case
letters, digits and hyphens only: they sit in the local part of an email address, which some MTAs
lower-case, and they must come out the same every time (a resend carries the same Message-ID). An
unsubscribe token never expires: RFC 8058 expects the link in an old mail to keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from backend.app.settings import Settings
from backend.messaging.links import LinkInvalid
from bots.domain import ConsentPurpose

_ITEM = re.compile(r"^(\d{1,18})-([0-9a-f]{20})$")
_UNSUBSCRIBE = re.compile(r"^(\d{1,18})-([a-z]{1,16})-([0-9a-f]{20})$")


def _mac(settings: Settings, label: str, text: str) -> str:
    key = hashlib.sha256(b"careloop/email/" + settings.secret_key.get_secret_value().encode("utf-8")).digest()
    return hmac.new(key, f"{label}:{text}".encode(), hashlib.sha256).hexdigest()[:20]


def item_token(settings: Settings, item_id: int) -> str:
    return f"{item_id}-{_mac(settings, 'item', str(item_id))}"


def read_item_token(settings: Settings, token: str) -> int:
    match = _ITEM.match(token.lower())
    if match is None or not hmac.compare_digest(match.group(2), _mac(settings, "item", match.group(1))):
        raise LinkInvalid
    return int(match.group(1))


def item_from_message_id(settings: Settings, message_id: str) -> int:
    """Our outbox item from a Message-ID we made (`<careloop.<item token>@domain>`)."""
    local = message_id.strip().strip("<>").split("@", 1)[0]
    if not local.startswith("careloop."):
        raise LinkInvalid
    return read_item_token(settings, local.removeprefix("careloop."))


def unsubscribe_token(settings: Settings, patient_id: int, purpose: ConsentPurpose) -> str:
    text = f"{patient_id}-{purpose.value}"
    return f"{text}-{_mac(settings, 'unsubscribe', text)}"


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[int, ConsentPurpose]:
    match = _UNSUBSCRIBE.match(token.lower())
    if match is None:
        raise LinkInvalid
    patient_id, purpose, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(settings, "unsubscribe", f"{patient_id}-{purpose}")):
        raise LinkInvalid
    try:
        return int(patient_id), ConsentPurpose(purpose)
    except ValueError as exc:
        raise LinkInvalid from exc


def unsubscribe_url(settings: Settings, patient_id: int, purpose: ConsentPurpose) -> str:
    return f"{settings.public_url}/m/u/{unsubscribe_token(settings, patient_id, purpose)}"

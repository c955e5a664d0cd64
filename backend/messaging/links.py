"""Signed, expiring links for patients (`/c/` chat, `/q/` form, `/f/` feedback) and their short forms.

Stored messages never hold a link itself (a link is a bearer credential): they hold a reference,
`careloop-link:<kind>.<id>.<days>`, which `render_links` turns into the link when the message is sent
or shown to its patient.

The long tokens are itsdangerous's (about 40 characters). SMS pays per segment, and a Chinese or
Vietnamese SMS segment holds only 67 characters, so messages carry `/s/<code>` instead: the kind, the
id and an expiry hour in base 36, with a 72-bit HMAC, about 20 characters, no database row. Opening
it checks the signature and expiry and redirects to a fresh long link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from backend.app.settings import Settings
from bots.domain import Channel
from bots.messages import Link, Outbound, Part, Text


class LinkKind(StrEnum):
    CHAT = "c"  # payload: patient id
    FORM = "q"  # payload: questionnaire response id
    CALENDAR = "a"  # payload: appointment id (its .ics file, /a/<token>)
    FEEDBACK = "f"  # payload: patient id (the complaint/praise page)


class LinkInvalid(Exception):
    """Forged, damaged, or for another purpose: answer 404."""


class LinkExpired(Exception):
    """Genuine but too old: answer 410."""


def _serializer(settings: Settings, kind: LinkKind) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=f"careloop-link-{kind.value}")


def make_token(settings: Settings, kind: LinkKind, subject_id: int, *, until: int | None = None) -> str:
    """`until` (epoch seconds) ends the link sooner than its kind's lifetime: it is signed into the token."""
    return str(_serializer(settings, kind).dumps(subject_id if until is None else [subject_id, until]))


def make_url(settings: Settings, kind: LinkKind, subject_id: int, *, until: int | None = None) -> str:
    return f"{settings.public_url}/{kind.value}/{make_token(settings, kind, subject_id, until=until)}"


def read_token(settings: Settings, kind: LinkKind, token: str, max_age_seconds: int) -> int:
    try:
        value = _serializer(settings, kind).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkExpired from exc
    except BadSignature as exc:
        raise LinkInvalid from exc
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        value, until = value
        if time.time() >= until:
            raise LinkExpired
    if type(value) is not int:
        raise LinkInvalid
    return value


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(value: int) -> str:
    out = ""
    while True:
        value, digit = divmod(value, 36)
        out = _DIGITS[digit] + out
        if value == 0:
            return out


def _short_sig(settings: Settings, body: str) -> str:
    key = hashlib.sha256(
        b"careloop-short-link\x00" + settings.secret_key.get_secret_value().encode()
    ).digest()
    return base64.urlsafe_b64encode(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:9]).decode()


def make_short_url(
    settings: Settings, kind: LinkKind, subject_id: int, *, days: int, now: float | None = None
) -> str:
    """A short signed link that expires `days` from now (to the hour)."""
    expires_hour = int((now if now is not None else time.time()) // 3600) + days * 24
    # "." separates the fields: it is URL-safe and, unlike "-" and "_", not in the signature's alphabet
    body = f"{kind.value}{_b36(subject_id)}.{_b36(expires_hour)}"
    return f"{settings.public_url}/s/{body}.{_short_sig(settings, body)}"


def link_for(settings: Settings, kind: LinkKind, subject_id: int, channel: Channel, *, days: int) -> str:
    """The link a message on `channel` carries: short on SMS and WhatsApp (paid per 67-character
    segment), the full signed link elsewhere."""
    if channel in (Channel.SMS, Channel.WHATSAPP):
        return make_short_url(settings, kind, subject_id, days=days)
    return make_url(settings, kind, subject_id)


def _read_short(settings: Settings, code: str, now: float) -> tuple[LinkKind, int, int]:
    body, _, sig = code.rpartition(".")
    if not body or not hmac.compare_digest(_short_sig(settings, body).encode(), sig.encode()):
        raise LinkInvalid
    head, _, expires = body.partition(".")
    try:
        kind, subject_id, expires_hour = LinkKind(head[:1]), int(head[1:], 36), int(expires, 36)
    except ValueError as exc:
        raise LinkInvalid from exc
    if now // 3600 >= expires_hour:
        raise LinkExpired
    return kind, subject_id, expires_hour


def read_short(settings: Settings, code: str, *, now: float | None = None) -> tuple[LinkKind, int]:
    kind, subject_id, _ = _read_short(settings, code, now if now is not None else time.time())
    return kind, subject_id


def open_short(settings: Settings, code: str, *, now: float | None = None) -> str:
    """The full link a short code leads to, ending when the code ends: a full link made without that end
    would give a code opened on its last day the full link's whole life again, on each opening."""
    kind, subject_id, expires_hour = _read_short(settings, code, now if now is not None else time.time())
    return make_url(settings, kind, subject_id, until=expires_hour * 3600)


_REF = re.compile(r"careloop-link:([a-z])\.(\d{1,10})\.(\d{1,4})")


def link_ref(kind: LinkKind, subject_id: int, *, days: int) -> str:
    """What a stored message holds in place of a link: the link's kind, subject and lifetime, no token."""
    return f"careloop-link:{kind.value}.{subject_id}.{days}"


def render_links(settings: Settings, text: str, channel: Channel) -> str:
    """The text with each link reference replaced by a link minted now for `channel` (short on SMS)."""

    def mint(match: re.Match[str]) -> str:
        try:
            kind = LinkKind(match[1])
        except ValueError:
            return match[0]
        return link_for(settings, kind, int(match[2]), channel, days=int(match[3]))

    return _REF.sub(mint, text)


def hide_link_refs(text: str) -> str:
    """What staff see of a stored message: a link symbol where the patient got a link (staff pages show no
    patient's credential, and the reference means nothing to a reader)."""
    return _REF.sub("🔗", text)


def render_outbound(settings: Settings, outbound: Outbound, channel: Channel) -> Outbound:
    """The outbound with its link references minted, at the moment it is sent or shown."""

    def part(p: Part) -> Part:
        if isinstance(p, Text):
            return Text(render_links(settings, p.text, channel))
        if isinstance(p, Link):
            return Link(render_links(settings, p.url, channel), p.label)
        return p

    return Outbound(tuple(part(p) for p in outbound.parts))

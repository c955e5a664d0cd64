"""Signed, expiring links for patients (`/c/<token>` chat): what they grant and for how long."""

from __future__ import annotations

from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from backend.settings import Settings


class LinkKind(StrEnum):
    CHAT = "c"  # payload: patient id
    FORM = "q"  # payload: questionnaire response id


class LinkInvalid(Exception):
    """Forged, damaged, or for another purpose: answer 404."""


class LinkExpired(Exception):
    """Genuine but too old: answer 410."""


def _serializer(settings: Settings, kind: LinkKind) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=f"careloop-link-{kind.value}")


def make_token(settings: Settings, kind: LinkKind, subject_id: int) -> str:
    return str(_serializer(settings, kind).dumps(subject_id))


def make_url(settings: Settings, kind: LinkKind, subject_id: int) -> str:
    return f"{settings.public_url}/{kind.value}/{make_token(settings, kind, subject_id)}"


def read_token(settings: Settings, kind: LinkKind, token: str, max_age_seconds: int) -> int:
    try:
        value = _serializer(settings, kind).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkExpired from exc
    except BadSignature as exc:
        raise LinkInvalid from exc
    if not isinstance(value, int):
        raise LinkInvalid
    return value

"""Closed sets shared by every engine and adapter: channels, consent purposes, languages."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    WEBCHAT = "webchat"
    WECHAT = "wechat"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    EMAIL = "email"


class ConsentPurpose(StrEnum):
    CARE = "care"
    MARKETING = "marketing"
    RESEARCH = "research"


LANGUAGES = ("zh-CN", "vi", "en")
FALLBACK_LANGUAGE = "en"


def pick_language(wanted: str | None) -> str:
    """The supported language closest to `wanted` ('zh' -> 'zh-CN', 'vi-VN' -> 'vi')."""
    if not wanted:
        return FALLBACK_LANGUAGE
    lowered = wanted.lower()
    for lang in LANGUAGES:
        if lowered == lang.lower() or lowered.split("-")[0] == lang.lower().split("-")[0]:
            return lang
    return FALLBACK_LANGUAGE

"""Rasa's reading of free text for the turn engine: one client per process, never an error for a turn.

The engine asks only when its deterministic parsing found nothing (docs/architecture.md: cheapest first).
Rasa down, slow or unsure gives None, and the flow re-asks or hands off as it would without Rasa.
"""

from __future__ import annotations

import logging
import threading

from backend.app.settings import get_settings
from backend.dialogue.nlu_breaker import SharedBreaker
from backend.security.ephemeral import ephemeral
from bots.ports import Reading
from nlu.client import NluClient, NluUnavailable

log = logging.getLogger(__name__)
_clients: dict[str, NluClient] = {}
_lock = threading.Lock()


def _client(url: str) -> NluClient:
    with _lock:
        if url not in _clients:
            redis_url = get_settings().redis_url
            # with Redis, turns run in RQ's forked children: the breaker's state must outlive each one
            breaker = SharedBreaker(ephemeral(redis_url)) if redis_url else None
            _clients[url] = NluClient(url, breaker=breaker)
        return _clients[url]


def reset_nlu() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def intent_of(text: str) -> str | None:
    """The intent Rasa is confident of, or None (no Rasa configured, Rasa unavailable, low confidence)."""
    reading = reading_of(text)
    return reading.intent if reading else None


def reading_of(text: str) -> Reading | None:
    """The intent Rasa is confident of with its entities (kind, value), or None as for intent_of."""
    settings = get_settings()
    if not settings.nlu_url or not text.strip():
        return None
    try:
        understanding = _client(settings.nlu_url).parse(text)
    except NluUnavailable as exc:
        log.warning("nlu unavailable: %s", exc)
        return None
    if understanding.is_fallback or understanding.confidence < settings.nlu_min_confidence:
        return None
    return Reading(understanding.intent, tuple((e.kind, e.value) for e in understanding.entities))

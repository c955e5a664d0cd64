"""The reading of free text for the turn engine: Rasa first, the embedded classifier when Rasa cannot answer.

The engine asks only when its deterministic parsing found nothing (docs/architecture.md: cheapest first).
Rasa (when `CARELOOP_NLU_URL` is set) answers first; when it is not configured, unavailable or unsure,
the embedded intent classifier (nlu/intents.py, trained on the same data) answers with the same
contract. Nobody sure gives None, and the flow re-asks or hands off. Never an error for a turn.
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
    """The intent Rasa or the embedded classifier is confident of, or None."""
    reading = reading_of(text)
    return reading.intent if reading else None


def reading_of(text: str) -> Reading | None:
    """The intent with its entities (kind, value): Rasa's when it is confident, else the embedded
    classifier's (no entities) when it is, else None."""
    if not text.strip():
        return None
    settings = get_settings()
    found = _rasa(settings.nlu_url, settings.nlu_min_confidence, text) if settings.nlu_url else None
    if found is None and settings.nlu_embedded:
        found = _embedded(text)
    return found


def _rasa(url: str, min_confidence: float, text: str) -> Reading | None:
    try:
        understanding = _client(url).parse(text)
    except NluUnavailable as exc:
        log.warning("nlu unavailable: %s", exc)
        return None
    if understanding.is_fallback or understanding.confidence < min_confidence:
        return None
    return Reading(understanding.intent, tuple((e.kind, e.value) for e in understanding.entities))


def warm_embedded() -> None:
    """Load the embedded intent classifier now (about 0.4 s from its disk cache) rather than in each
    turn: processes that fork a child per job call this first, so every child starts with it loaded."""
    if get_settings().nlu_embedded:
        from nlu.intents import default_intents

        default_intents()


def _embedded(text: str) -> Reading | None:
    from nlu.intents import default_intents  # lazy: numpy and the model load only when free text comes

    model = default_intents()
    guess = model.guess(text) if model is not None else None
    return Reading(guess.intent) if guess is not None else None

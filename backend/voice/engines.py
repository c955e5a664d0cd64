"""Speech engines per language from settings: one prompt synthesizer, a recogniser per call, and the
start-up check of the vosk models an operator installed (path and SHA-256 per language).

A model that is missing, is not a vosk model, does not match its checksum, has no checksum set, or does
not load is refused with an error in the log naming the language and what is wrong; its language then
goes by keypad (English by pocketsphinx's bundled model while `voice_pocketsphinx_fallback` is on).
Nothing here raises at start: a bad model costs speech in one language, not the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from backend.app.settings import Settings
from bots.domain import LANGUAGES
from voice_ai.asr import ModelMissing, Recogniser
from voice_ai.asr_vosk import load_model, model_sha256
from voice_ai.tts import EspeakSynthesizer, TtsEngine

log = logging.getLogger(__name__)


class ModelState(StrEnum):
    LOADED = "loaded"
    NOT_SET = "not_set"  # no model configured for the language
    MISSING = "missing"  # the directory is not there, or is not a vosk model
    NO_CHECKSUM = "no_checksum"
    MISMATCH = "mismatch"
    BROKEN = "broken"  # the files match but vosk could not load them


class Engine(StrEnum):
    """How a language's closed questions are heard."""

    VOSK = "vosk"
    POCKETSPHINX = "pocketsphinx"
    KEYPAD = "keypad"


@dataclass(frozen=True, slots=True)
class ModelStatus:
    lang: str
    state: ModelState
    path: Path | None = None
    expected: str | None = None  # the checksum in settings
    found: str | None = None  # the checksum of the files on disk
    problem: str = ""  # what the log said, for the status page

    @property
    def loaded(self) -> bool:
        return self.state is ModelState.LOADED


@lru_cache(maxsize=16)
def _checked(lang: str, path: Path, expected: str | None) -> ModelStatus:
    """Hashing and loading take seconds: once per process for each (language, directory, checksum)."""
    try:
        found = model_sha256(path)
    except ModelMissing as exc:
        status = ModelStatus(lang, ModelState.MISSING, path, expected, problem=str(exc))
    else:
        if expected is None:
            problem = f"no checksum set (CARELOOP_VOICE_VOSK_MODEL_SHA256); the files hash to {found}"
            status = ModelStatus(lang, ModelState.NO_CHECKSUM, path, None, found, problem)
        elif found != expected:
            problem = f"checksum mismatch: the files hash to {found}, the setting says {expected}"
            status = ModelStatus(lang, ModelState.MISMATCH, path, expected, found, problem)
        else:
            try:
                load_model(path)
            except Exception as exc:  # vosk raises plain Exceptions for a model it cannot read
                status = ModelStatus(
                    lang, ModelState.BROKEN, path, expected, found, f"vosk could not load it: {exc}"
                )
            else:
                status = ModelStatus(lang, ModelState.LOADED, path, expected, found)
    if not status.loaded:
        log.error("voice: vosk model for %s at %s refused: %s", lang, path, status.problem)
    return status


def model_status(settings: Settings, lang: str) -> ModelStatus:
    path = settings.voice_vosk_models.get(lang)
    if path is None:
        return ModelStatus(lang, ModelState.NOT_SET)
    return _checked(lang, Path(path), settings.voice_vosk_model_sha256.get(lang))


def engine_for(settings: Settings, lang: str) -> Engine:
    if model_status(settings, lang).loaded:
        return Engine.VOSK
    if lang == "en" and settings.voice_pocketsphinx_fallback:
        return Engine.POCKETSPHINX
    return Engine.KEYPAD


@lru_cache(maxsize=4)
def synthesizer(cache_dir: Path, engine: TtsEngine = TtsEngine.CLI) -> EspeakSynthesizer:
    return EspeakSynthesizer(cache_dir, engine=engine)


def check_models(settings: Settings) -> list[ModelStatus]:
    """At start-up: each language's model checked (and loaded) once; what is refused is logged, and a
    model set for a language the product does not speak is logged too (a typo such as "zh-cn")."""
    for lang in sorted(set(settings.voice_vosk_models) - set(LANGUAGES)):
        log.error(
            "voice: a vosk model is set for %r, which is not one of %s; ignored", lang, ", ".join(LANGUAGES)
        )
    statuses = [model_status(settings, lang) for lang in LANGUAGES]
    log.info("voice: speech by language: %s", {lang: engine_for(settings, lang).value for lang in LANGUAGES})
    return statuses


def recogniser(settings: Settings, lang: str) -> Recogniser:
    """vosk with the language's checked model; pocketsphinx's bundled en-US model for English where
    allowed; else ModelMissing, and the call goes by keypad."""
    status = model_status(settings, lang)
    if status.loaded and status.path is not None:
        from voice_ai.asr_vosk import VoskRecogniser

        return VoskRecogniser(status.path, 8000)
    if lang == "en" and settings.voice_pocketsphinx_fallback:
        from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser

        return PocketsphinxRecogniser(8000)
    why = status.problem or "set CARELOOP_VOICE_VOSK_MODELS and CARELOOP_VOICE_VOSK_MODEL_SHA256"
    raise ModelMissing(f"no usable vosk model for {lang!r}: {why}")


def confirm_below(settings: Settings, recogniser: Recogniser) -> float:
    """The recogniser's read-back threshold: answers heard less surely are confirmed before storing."""
    thresholds = {
        "pocketsphinx": settings.voice_confirm_below_pocketsphinx,
        "vosk": settings.voice_confirm_below_vosk,
    }
    return thresholds.get(recogniser.engine, 1.0)  # an engine never measured: read every answer back


def transcriber(settings: Settings, lang: str) -> Recogniser | None:
    """Open answers: pocketsphinx's language model for English; elsewhere the audio is kept for staff."""
    if lang == "en" and settings.voice_pocketsphinx_fallback:
        from voice_ai.asr_pocketsphinx import PocketsphinxTranscriber

        return PocketsphinxTranscriber(8000)
    return None


@dataclass(frozen=True, slots=True)
class SpeechRow:
    """One language on the voice status page: how its closed questions are heard, and its model."""

    lang: str
    engine: Engine
    model: ModelStatus


def speech_rows(settings: Settings) -> list[SpeechRow]:
    return [SpeechRow(lang, engine_for(settings, lang), model_status(settings, lang)) for lang in LANGUAGES]

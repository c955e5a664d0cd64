"""Speech engines per language from settings: one prompt synthesizer, a recogniser per call."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from backend.app.settings import Settings
from voice_ai.asr import ModelMissing, Recogniser
from voice_ai.asr_vosk import check_model_dir
from voice_ai.tts import EspeakSynthesizer, TtsEngine


@lru_cache(maxsize=4)
def synthesizer(cache_dir: Path, engine: TtsEngine = TtsEngine.CLI) -> EspeakSynthesizer:
    return EspeakSynthesizer(cache_dir, engine=engine)


def check_models(settings: Settings) -> None:
    """At start-up: every configured vosk directory exists and is a model (ModelMissing names it)."""
    for model_dir in settings.voice_vosk_models.values():
        check_model_dir(model_dir)


def recogniser(settings: Settings, lang: str) -> Recogniser:
    """vosk with the language's model; pocketsphinx's bundled en-US model for English where allowed."""
    model_dir = settings.voice_vosk_models.get(lang)
    if model_dir is not None:
        from voice_ai.asr_vosk import VoskRecogniser

        return VoskRecogniser(model_dir, 8000)
    if lang == "en" and settings.voice_pocketsphinx_fallback:
        from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser

        return PocketsphinxRecogniser(8000)
    raise ModelMissing(
        f"no vosk model directory for {lang!r}: set CARELOOP_VOICE_VOSK_MODELS (JSON, language -> directory)"
    )


def transcriber(settings: Settings, lang: str) -> Recogniser | None:
    """Open answers: pocketsphinx's language model for English; elsewhere the audio is kept for staff."""
    if lang == "en" and settings.voice_pocketsphinx_fallback:
        from voice_ai.asr_pocketsphinx import PocketsphinxTranscriber

        return PocketsphinxTranscriber(8000)
    return None

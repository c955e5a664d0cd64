"""Prompts: a `Synthesizer` Protocol; espeak-ng (pyttsx3 or its CLI) to 8 kHz mu-law, cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from voice_ai.audio import TELEPHONE_RATE, pcm16_to_ulaw, read_wav, resample

FORMAT_VERSION = "1"  # part of the cache key: bump when the rendering changes


class TtsEngine(StrEnum):
    """What renders espeak-ng's voices: its command line, or pyttsx3's espeak driver."""

    CLI = "cli"
    PYTTSX3 = "pyttsx3"


class Synthesizer(Protocol):
    def synthesize(self, text: str, lang: str) -> bytes:
        """8 kHz mu-law audio of `text` in `lang`. Blocking: run it in a thread pool."""
        ...


@dataclass(frozen=True, slots=True)
class Voice:
    name: str  # espeak-ng voice: "cmn", "vi", "en-us"
    rate: int = 160  # words per minute


DEFAULT_VOICES: Mapping[str, Voice] = {
    "zh-CN": Voice("cmn", 150),
    "vi": Voice("vi", 150),
    "en": Voice("en-us", 160),
}


class SynthesisError(RuntimeError):
    pass


def _cli(text: str, voice: Voice) -> bytes:
    """espeak-ng's own CLI: one process per prompt, so nothing is shared between threads."""
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program; the text is one argument, not a shell line
            ["espeak-ng", "-v", voice.name, "-s", str(voice.rate), "--stdout", text],  # noqa: S607
            capture_output=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError as e:
        raise SynthesisError("espeak-ng is not installed (make system-deps)") from e
    except subprocess.CalledProcessError as e:
        raise SynthesisError(f"espeak-ng failed: {e.stderr.decode(errors='replace').strip()}") from e
    return done.stdout


_PYTTSX3_LOCK = threading.Lock()  # pyttsx3 keeps one engine per driver in the process: not thread-safe


def _pyttsx3(text: str, voice: Voice) -> bytes | None:
    """pyttsx3's espeak driver, one prompt per file; None when it cannot be used here."""
    try:
        import pyttsx3
    except ImportError:
        return None
    with _PYTTSX3_LOCK, tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "prompt.wav"
        try:
            engine: Any = pyttsx3.init("espeak")
            ids = {v.id.rsplit("/", 1)[-1].lower(): v.id for v in engine.getProperty("voices")}
            if voice.name.lower() not in ids:
                return None
            engine.setProperty("voice", ids[voice.name.lower()])
            engine.setProperty("rate", voice.rate)
            engine.save_to_file(text, str(target))
            engine.runAndWait()
        except (RuntimeError, OSError):
            return None
        # Older pyttsx3 releases wrote only the last of several queued files: check ours exists.
        return target.read_bytes() if target.exists() and target.stat().st_size > 44 else None


class EspeakSynthesizer:
    """espeak-ng voices per language, rendered once per (text, voice, rate) into `cache_dir`.

    `engine` is pyttsx3 (the project's choice; falls back to the CLI when pyttsx3 or its voice is
    unavailable) or the CLI. `last_engine` says which one rendered the last uncached prompt."""

    def __init__(
        self,
        cache_dir: Path,
        voices: Mapping[str, Voice] = DEFAULT_VOICES,
        engine: TtsEngine = TtsEngine.PYTTSX3,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.voices = dict(voices)
        self.engine = TtsEngine(engine)  # a value from settings or a caller: ValueError if unknown
        self.last_engine: TtsEngine | None = None

    def voice(self, lang: str) -> Voice:
        try:
            return self.voices[lang]
        except KeyError:
            raise SynthesisError(f"no voice configured for {lang!r}") from None

    def cache_path(self, text: str, voice: Voice) -> Path:
        key = hashlib.sha256("\x1f".join([FORMAT_VERSION, voice.name, str(voice.rate), text]).encode())
        return self.cache_dir / f"{key.hexdigest()}.ulaw"

    def synthesize(self, text: str, lang: str) -> bytes:
        voice = self.voice(lang)
        path = self.cache_path(text, voice)
        if path.exists():
            return path.read_bytes()
        wav = _pyttsx3(text, voice) if self.engine is TtsEngine.PYTTSX3 else None
        self.last_engine = TtsEngine.PYTTSX3 if wav is not None else TtsEngine.CLI
        if wav is None:
            wav = _cli(text, voice)
        pcm, rate = read_wav(wav)
        audio = pcm16_to_ulaw(resample(pcm, rate, TELEPHONE_RATE))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(audio)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole prompt or none
        return audio


async def synthesize_async(
    synth: Synthesizer, text: str, lang: str, executor: Executor | None = None
) -> bytes:
    """`synth.synthesize` off the event loop (habit 7)."""
    return await asyncio.get_running_loop().run_in_executor(executor, synth.synthesize, text, lang)

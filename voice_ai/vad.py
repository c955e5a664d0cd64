"""End of caller speech: webrtcvad over 20 ms frames above an adaptive noise floor; speech start,
trailing silence, no-input timeout.

webrtcvad alone calls the first frames of a noisy line speech (measured: white noise at RMS 100-1000 on
a mu-law line started an "utterance" at 0 ms that ended at 780 ms, before the caller said anything, so
a quiet "yes" after it was never heard; at RMS 1000 the utterance never ended). A frame is therefore
voiced only when webrtcvad says so and it is `margin_db` above the line's background level, tracked
while nobody speaks: down at once to a quieter frame, up slowly (`floor_rise_db_per_s`), so a short
quiet answer a few dB above the background still counts and the background itself never does.
Measured on espeak-ng "yes" over white noise through mu-law, 3 seeds each: noise alone (RMS 30-1000)
never starts speech; "yes" at 0.1 of full level is heard over noise up to RMS 300 and at 0.03 up to
RMS 100 with a 4 dB margin (at 6 dB, 1 of 3 and none).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from voice_ai.audio import FRAME_MS, frame_bytes

RATES = (8000, 16000)


class FrameClassifier(Protocol):
    def is_speech(self, frame: bytes, rate: int) -> bool: ...


def webrtc_classifier(aggressiveness: int = 2) -> FrameClassifier:
    """webrtcvad's classifier (0 least, 3 most aggressive at calling frames non-speech)."""
    try:
        import webrtcvad
    except ImportError as e:  # pragma: no cover - a dependency in pyproject.toml
        raise RuntimeError("voice activity detection needs webrtcvad (pip install webrtcvad-wheels)") from e
    vad: FrameClassifier = webrtcvad.Vad(aggressiveness)
    return vad


@dataclass(frozen=True, slots=True)
class VadConfig:
    start_ms: int = 60  # this much voiced audio within the last start_window_ms starts speech
    start_window_ms: int = 100
    end_silence_ms: int = 700  # unvoiced audio after speech that ends the utterance
    no_input_ms: int = 5000  # no speech at all within this long after listening began
    max_utterance_ms: int = 15000  # a caller who never stops (or a noisy line) is cut here
    preroll_ms: int = 300  # audio kept from before speech started, so the first word is whole
    margin_db: float = 4.0  # a voiced frame is at least this far above the background level
    floor_rise_db_per_s: float = 3.0  # how fast the background estimate follows a line getting noisier


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int  # from when listening began


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: int
    audio: bytes  # the utterance, pre-roll and trailing silence included
    cut: bool = False  # ended by max_utterance_ms, not by silence


@dataclass(frozen=True, slots=True)
class NoInput:
    at_ms: int


VadEvent = SpeechStarted | SpeechEnded | NoInput


def level_db(frame: bytes) -> float:
    """RMS of a frame of 16-bit PCM in dB (0 for digital silence)."""
    samples = memoryview(frame).cast("h")
    if not len(samples):
        return 0.0
    power = sum(s * s for s in samples) / len(samples)
    return 10 * math.log10(power) if power > 1 else 0.0


class NoiseFloor:
    """The line's background level in dB, followed while nobody speaks; kept across questions."""

    def __init__(self, rise_db_per_frame: float) -> None:
        self.rise = rise_db_per_frame
        self.level: float | None = None

    def above(self, level: float) -> float:
        return level - self.level if self.level is not None else 0.0

    def follow(self, level: float) -> None:
        if self.level is None or level < self.level:
            self.level = level
        else:
            self.level = min(level, self.level + self.rise)


class Endpointer:
    """Feed whole 20 ms frames of 16-bit PCM; each call returns what happened on that frame.

    After SpeechEnded or NoInput the endpointer is done until `reset()` (the next question)."""

    def __init__(
        self, rate: int, classifier: FrameClassifier | None = None, config: VadConfig | None = None
    ) -> None:
        if rate not in RATES:
            raise ValueError(f"VAD takes 8000 or 16000 Hz audio, not {rate}")
        self.rate = rate
        self.config = config or VadConfig()
        self.classifier = classifier or webrtc_classifier()
        self._frame = frame_bytes(rate)
        self.floor = NoiseFloor(self.config.floor_rise_db_per_s * FRAME_MS / 1000)
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.elapsed_ms = 0
        self.in_speech = False
        self.done = False
        self._recent: deque[bool] = deque(maxlen=max(1, c.start_window_ms // FRAME_MS))
        self._preroll: deque[bytes] = deque(maxlen=max(1, c.preroll_ms // FRAME_MS))
        self._audio: list[bytes] = []
        self._silence_ms = 0
        self._speech_ms = 0

    def push(self, frame: bytes) -> VadEvent | None:
        if len(frame) != self._frame:
            raise ValueError(
                f"a {FRAME_MS} ms frame at {self.rate} Hz is {self._frame} bytes, not {len(frame)}"
            )
        if self.done:
            return None
        c = self.config
        self.elapsed_ms += FRAME_MS
        level = level_db(frame)
        if self.floor.level is None:
            self.floor.follow(level)  # the first frame: the best guess of the background there is
        voiced = self.floor.above(level) >= c.margin_db and self.classifier.is_speech(frame, self.rate)
        # The background is followed while nobody speaks, and down at once to any quieter frame (a pause).
        if (not voiced and not self.in_speech) or self.floor.above(level) < 0:
            self.floor.follow(level)
        if not self.in_speech:
            self._recent.append(voiced)
            self._preroll.append(frame)
            if sum(self._recent) * FRAME_MS >= c.start_ms:
                self.in_speech = True
                self._audio = list(self._preroll)
                self._speech_ms = len(self._audio) * FRAME_MS
                return SpeechStarted(self.elapsed_ms - self._speech_ms)
            if self.elapsed_ms >= c.no_input_ms:
                self.done = True
                return NoInput(self.elapsed_ms)
            return None
        self._audio.append(frame)
        self._speech_ms += FRAME_MS
        self._silence_ms = 0 if voiced else self._silence_ms + FRAME_MS
        if self._silence_ms >= c.end_silence_ms or self._speech_ms >= c.max_utterance_ms:
            self.done = True
            cut = self._silence_ms < c.end_silence_ms
            return SpeechEnded(self.elapsed_ms, b"".join(self._audio), cut=cut)
        return None

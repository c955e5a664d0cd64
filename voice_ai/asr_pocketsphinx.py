"""pocketsphinx with its bundled en-US model and a JSGF grammar built from the question's words."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from voice_ai.asr import Recognition, clean_grammar
from voice_ai.audio import ASR_RATE, Resampler

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[a-z0-9' ]+$")


def jsgf(phrases: Sequence[str]) -> str:
    """A JSGF grammar accepting exactly one of the phrases."""
    return "#JSGF V1.0;\ngrammar answer;\npublic <answer> = " + " | ".join(phrases) + ";\n"


class PocketsphinxRecogniser:
    """The wheel's en-US model is 16 kHz: 8 kHz telephone audio is resampled up on the way in.

    Phrases with a word missing from the model's dictionary are left out of the grammar (logged):
    pocketsphinx cannot listen for a word it cannot pronounce.

    Its confidence (the best path's posterior) is not calibrated: measured on espeak-ng speech through
    the phone path, correct recognitions score 0.24-0.5, so `calibrated` is False."""

    calibrated = False

    def __init__(self, sample_rate: int = 8000) -> None:
        try:
            from pocketsphinx import Config, Decoder
        except ImportError as e:  # pragma: no cover - a dependency in pyproject.toml
            raise RuntimeError("pocketsphinx is not installed (pip install pocketsphinx)") from e
        if sample_rate not in (8000, ASR_RATE):
            raise ValueError(f"pocketsphinx takes 8000 or 16000 Hz audio here, not {sample_rate}")
        self.sample_rate = sample_rate
        self._decoder: Any = Decoder(Config(lm=None, samprate=ASR_RATE, loglevel="FATAL"))
        self._resampler: Resampler | None = None
        self._active = False
        self._phrases: set[str] = set()
        self.skipped: list[str] = []

    def _known(self, phrase: str) -> bool:
        return bool(_SAFE.match(phrase)) and all(
            self._decoder.lookup_word(w) is not None for w in phrase.split()
        )

    def start(self, grammar: Sequence[str]) -> None:
        phrases = clean_grammar(grammar)
        usable = [p for p in phrases if self._known(p)]
        self.skipped = [p for p in phrases if p not in usable]
        if self.skipped:
            log.info("pocketsphinx: not in the dictionary, not listened for: %s", self.skipped)
        if not usable:
            raise ValueError(f"no phrase of the grammar is in pocketsphinx's dictionary: {phrases}")
        if self._active:
            self._decoder.end_utt()
        self._phrases = set(usable)
        self._decoder.add_jsgf_string("answer", jsgf(usable))
        self._decoder.activate_search("answer")
        self._resampler = Resampler(self.sample_rate, ASR_RATE) if self.sample_rate != ASR_RATE else None
        self._decoder.start_utt()
        self._active = True

    def accept(self, pcm: bytes) -> None:
        if not self._active:
            raise RuntimeError("start() the recogniser with a grammar first")
        data = self._resampler.process(pcm) if self._resampler else pcm
        if data:
            self._decoder.process_raw(data, no_search=False, full_utt=False)

    def result(self) -> Recognition:
        if not self._active:
            raise RuntimeError("start() the recogniser with a grammar first")
        if self._resampler:
            tail = self._resampler.flush()
            if tail:
                self._decoder.process_raw(tail, no_search=False, full_utt=False)
        self._decoder.end_utt()
        self._active = False
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return Recognition("", 0.0)
        if hyp.hypstr.strip() not in self._phrases:
            # The search ended inside a phrase (measured: "correct" decoded as "i", the start of
            # "i did"): a partial path is not an answer.
            return Recognition("", 0.0)
        # hyp.prob is the posterior of the best path (as a probability in pocketsphinx 5).
        return Recognition(hyp.hypstr.strip(), max(0.0, min(1.0, float(hyp.prob))))


class PocketsphinxTranscriber:
    """Open answers: the bundled en-US language model, no grammar. Rough (a first draft for staff, who
    also get the audio); slow, about 0.5 s of CPU per second of speech here."""

    calibrated = False

    def __init__(self, sample_rate: int = 8000) -> None:
        from pocketsphinx import Config, Decoder

        self.sample_rate = sample_rate
        self._decoder: Any = Decoder(Config(samprate=ASR_RATE, loglevel="FATAL"))
        self._pcm: list[bytes] = []

    def start(self, grammar: Sequence[str]) -> None:
        self._pcm = []  # the grammar is ignored: anything may be said

    def accept(self, pcm: bytes) -> None:
        self._pcm.append(pcm)

    def result(self) -> Recognition:
        data = b"".join(self._pcm)
        if self.sample_rate != ASR_RATE:
            r = Resampler(self.sample_rate, ASR_RATE)
            data = r.process(data) + r.flush()
        self._decoder.start_utt()
        self._decoder.process_raw(data, no_search=False, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return Recognition("", 0.0)
        return Recognition(hyp.hypstr.strip(), max(0.0, min(1.0, float(hyp.prob))))

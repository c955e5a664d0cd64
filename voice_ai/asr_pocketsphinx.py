"""pocketsphinx with its bundled en-US model and a word graph built from the question's phrases.

Loaded models are shared: a process keeps idle decoders and lends one to each utterance (loading one
costs 0.1-0.2 s of CPU and 20-40 MB; the language model of open answers more), so a call does not
load its own. Each utterance is decoded as a whole, and nothing carries over from one to the next.
"""

from __future__ import annotations

import logging
import re
import threading
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from voice_ai.asr import Recognition, clean_grammar
from voice_ai.audio import ASR_RATE, FRAME_MS, Resampler
from voice_ai.word_graph import word_graph

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[a-z0-9' ]+$")
# Speech is whatever rises above LOUD (16-bit samples) in a 20 ms frame; a margin of quiet is kept
# either side. Cepstral mean normalisation then averages the speech, not the line's silence.
# When the search ends inside a phrase (or finds none), the utterance is decoded again with more,
# then less, quiet around it: where the audio is cut decides whether the last word's path reaches the
# grammar's end. Measured on 798 espeak-ng utterances of 9 questionnaires' grammars: 704 right and
# 74 wrong against 700 and 73 with one margin only (the rest nothing heard), for 10 % more CPU.
LOUD = 200
MARGINS_MS = (100, 200, 40)
DITHER_SEED = 1  # the front end is re-made (reseeded) for each utterance: the same audio, the same result


def _config(grammar: bool) -> Any:
    from pocketsphinx import Config

    # dither: telephone audio resampled to 16 kHz has nothing above 4 kHz, and the VAD's padding is
    # digital silence; without a little noise those bands' log energies run off to the floor and the
    # utterance's cepstral mean with them (measured: "dissatisfied" heard as "satisfied").
    if grammar:
        return Config(lm=None, samprate=ASR_RATE, dither=True, seed=DITHER_SEED, loglevel="FATAL")
    return Config(samprate=ASR_RATE, loglevel="FATAL")


class _Pool:
    """Idle decoders of one configuration; one utterance uses one decoder at a time."""

    def __init__(self, grammar: bool) -> None:
        self.grammar = grammar
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.loaded = 0

    @contextmanager
    def decoder(self) -> Iterator[Any]:
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        if decoder is None:
            try:
                from pocketsphinx import Decoder
            except ImportError as e:  # pragma: no cover - a dependency in pyproject.toml
                raise RuntimeError("pocketsphinx is not installed (pip install pocketsphinx)") from e
            decoder = Decoder(_config(self.grammar))
            self.loaded += 1
        try:
            yield decoder
        finally:
            with self._lock:
                self._idle.append(decoder)


GRAMMAR_DECODERS = _Pool(grammar=True)
LM_DECODERS = _Pool(grammar=False)


def speech_only(pcm: bytes, rate: int, margin_ms: int) -> bytes:
    """The stretch from the first to the last loud frame, margin_ms either side (all of it if none)."""
    samples = array("h", pcm[: len(pcm) // 2 * 2])
    size = rate * FRAME_MS // 1000
    peaks = [max(map(abs, samples[at : at + size])) for at in range(0, len(samples) - size + 1, size)]
    loud = [i for i, peak in enumerate(peaks) if peak > LOUD]
    if not loud:
        return pcm
    margin = margin_ms // FRAME_MS
    first, last = max(0, loud[0] - margin), loud[-1] + 1 + margin
    return samples[first * size : last * size].tobytes()


def _to_asr_rate(pcm: bytes, rate: int) -> bytes:
    if rate == ASR_RATE:
        return pcm
    resampler = Resampler(rate, ASR_RATE)
    return resampler.process(pcm) + resampler.flush()


def _decode(decoder: Any, pcm: bytes) -> Any:
    decoder.reinit_feat()  # a fresh front end (26 us): no noise estimate or dither state from before
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)  # the whole utterance: batch CMN
    decoder.end_utt()
    return decoder.hyp()


class PocketsphinxRecogniser:
    """The wheel's en-US model is 16 kHz: 8 kHz telephone audio is resampled up on the way in.

    Phrases with a word missing from the model's dictionary are left out of the grammar (logged):
    pocketsphinx cannot listen for a word it cannot pronounce. The grammar is the phrases' word graph
    (voice_ai.word_graph), switched in for each utterance.

    Its confidence is the best path's posterior: not a probability of being right (correct recognitions
    of espeak-ng speech score 0.24-0.5), but it does separate right from wrong, so it gets its own
    read-back threshold (docs/voice.md, "Confidence and read-back")."""

    engine = "pocketsphinx"

    def __init__(self, sample_rate: int = 8000) -> None:
        if sample_rate not in (8000, ASR_RATE):
            raise ValueError(f"pocketsphinx takes 8000 or 16000 Hz audio here, not {sample_rate}")
        self.sample_rate = sample_rate
        self._pcm: list[bytes] | None = None
        self._phrases: list[str] = []
        self.skipped: list[str] = []

    def _known(self, phrase: str) -> bool:
        if not _SAFE.match(phrase):
            return False
        with GRAMMAR_DECODERS.decoder() as decoder:
            return all(decoder.lookup_word(w) is not None for w in phrase.split())

    def start(self, grammar: Sequence[str]) -> None:
        phrases = clean_grammar(grammar)
        usable = [p for p in phrases if self._known(p)]
        self.skipped = [p for p in phrases if p not in usable]
        if self.skipped:
            log.info("pocketsphinx: not in the dictionary, not listened for: %s", self.skipped)
        if not usable:
            raise ValueError(f"no phrase of the grammar is in pocketsphinx's dictionary: {phrases}")
        self._phrases, self._pcm = usable, []

    def accept(self, pcm: bytes) -> None:
        if self._pcm is None:
            raise RuntimeError("start() the recogniser with a grammar first")
        self._pcm.append(pcm)

    def result(self) -> Recognition:
        if self._pcm is None:
            raise RuntimeError("start() the recogniser with a grammar first")
        pcm, self._pcm = b"".join(self._pcm), None
        graph = word_graph(self._phrases)
        arcs = [(a, b, p, w) if w is not None else (a, b, p) for a, b, p, w in graph.arcs]
        with GRAMMAR_DECODERS.decoder() as decoder:
            decoder.add_fsg("answer", decoder.create_fsg("answer", graph.start, graph.final, arcs))
            decoder.activate_search("answer")
            for margin in MARGINS_MS:
                audio = _to_asr_rate(speech_only(pcm, self.sample_rate, margin), self.sample_rate)
                hyp = _decode(decoder, audio)
                text = hyp.hypstr.strip() if hyp is not None else ""
                # Nothing, or the search ended inside a phrase (measured: "correct" decoded as "i",
                # the start of "i did"): a partial path is not an answer.
                if text in self._phrases:
                    # hyp.prob is the posterior of the best path (as a probability in pocketsphinx 5).
                    return Recognition(text, max(0.0, min(1.0, float(hyp.prob))))
        return Recognition("", 0.0)


class PocketsphinxTranscriber:
    """Open answers: the bundled en-US language model, no grammar. Rough (a first draft for staff, who
    also get the audio); slow, about 0.5 s of CPU per second of speech here."""

    engine = "pocketsphinx"

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self._pcm: list[bytes] = []

    def start(self, grammar: Sequence[str]) -> None:
        self._pcm = []  # the grammar is ignored: anything may be said

    def accept(self, pcm: bytes) -> None:
        self._pcm.append(pcm)

    def result(self) -> Recognition:
        audio = _to_asr_rate(b"".join(self._pcm), self.sample_rate)
        with LM_DECODERS.decoder() as decoder:
            hyp = _decode(decoder, audio)
        if hyp is None or not hyp.hypstr.strip():
            return Recognition("", 0.0)
        return Recognition(hyp.hypstr.strip(), max(0.0, min(1.0, float(hyp.prob))))

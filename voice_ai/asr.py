"""Speech recognition behind one small Protocol: a grammar per question, PCM in, (text, confidence) out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str  # "" when nothing in the grammar was heard
    confidence: float  # 0..1


class Recogniser(Protocol):
    sample_rate: int  # of the PCM passed to accept(): 8000 or 16000
    engine: str  # "pocketsphinx", "vosk": each engine's confidence has its own read-back threshold

    def start(self, grammar: Sequence[str]) -> None:
        """Listen for one of these phrases (the current question's words); starts a new utterance."""
        ...

    def accept(self, pcm: bytes) -> None:
        """16-bit little-endian mono PCM at `sample_rate`. Blocking: decode in a thread pool."""
        ...

    def result(self) -> Recognition:
        """Ends the utterance and says what was heard."""
        ...


class ModelMissing(RuntimeError):
    """A speech model directory is not there; the message names it."""


def clean_grammar(grammar: Sequence[str]) -> list[str]:
    """Distinct non-empty phrases, lower case, single-spaced, in the order given."""
    return list(dict.fromkeys(" ".join(p.lower().split()) for p in grammar if p.strip()))


async def recognise_async(
    recogniser: Recogniser, pcm: bytes, executor: Executor | None = None
) -> Recognition:
    """accept() then result() for one utterance, off the event loop (habit 7)."""

    def run() -> Recognition:
        recogniser.accept(pcm)
        return recogniser.result()

    return await asyncio.get_running_loop().run_in_executor(executor, run)


def heard_with_spotting(
    decode: Callable[[Sequence[str]], Recognition], grammar: Sequence[str], spot: Sequence[str]
) -> Recognition:
    """One utterance of a closed question: decoded with the answer's grammar and with the spotting
    grammar (a person, red flags); `decode(phrases)` decodes the same audio with those phrases.

    Each grammar forces its nearest phrase, so both usually find one. When both do and they differ, the
    two phrases alone decide it: the audio is decoded once more with just those two, and the spotted one
    counts only if it wins. Measured on real recordings of digits (one speaker, asterisk-core-sounds,
    bench/voice_calibration.py section 3): the spotting grammar alone heard a person or a red flag in 10
    of 44 plain digit answers ("three" as "operator", a quiet "seven" as "i cannot breathe"); weighed
    head to head, none (nor in 66 tries at three noise levels and two gains). On
    espeak-ng the spotted phrase still wins for "i cannot breathe", "i can't breathe", "i fainted",
    "nurse", "operator"; "stroke" lost to "zero" (docs/voice.md)."""
    heard = decode(grammar)
    if not spot:
        return heard
    spotted = decode(spot)
    if not spotted.text:
        return heard
    if not heard.text or heard.text == spotted.text:
        return spotted
    duel = decode([heard.text, spotted.text])
    return spotted if duel.text == spotted.text else heard

"""The embedded intent classifier: Rasa's intents read without Rasa, for when Rasa is absent, down or unsure.

It is the generic classifier of nlu/classifier.py trained on Rasa's own NLU data (nlu/rasa/data), so it
serves the same intents under the same contract: an intent with a confidence, or nothing when unsure
(below `THRESHOLD`, or `out_of_scope`). It has no entities; a flow asks for what Rasa would have read.

Like the safety net it is optional: `default_intents()` is None when numpy or scikit-learn cannot be
imported or the model cannot be trained, and the turn then re-asks as it would without any NLU.

Measured on two held-out sets it was never trained on (docs/nlu.md, bench/README.md): Rasa's
(nlu/rasa/tests) and a second one of patients' phrasing of public hospital FAQ questions (nlu/heldout).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads only when the model is asked for
    from nlu.classifier import TextClassifier

log = logging.getLogger(__name__)

# The probability below which the classifier's best intent is "unsure". With 23 intents the best one's
# probability is often 0.2-0.4 even when right. Chosen on Rasa's held-out set (nlu/rasa/tests) before the
# second set was written: accuracy there is flat from 0.10 to 0.15 in every language and falls after
# (zh 0.957 at 0.15, 0.945 at 0.20, 0.914 at 0.25), so 0.15 is the highest threshold that loses nothing.
THRESHOLD = 0.15
OUT_OF_SCOPE = "out_of_scope"
MAX_CHARS = 512  # as nlu/client.py sends Rasa: intents are said in the first sentences
HELDOUT_DIR = Path(__file__).resolve().parent / "heldout"
RASA_DATA = Path(__file__).resolve().parent / "rasa" / "data"
LANGUAGES = ("zh", "vi", "en")


@dataclass(frozen=True, slots=True)
class IntentGuess:
    intent: str
    confidence: float


class IntentModel:
    """A trained classifier with the contract of a Rasa parse: the intent, or None when unsure."""

    def __init__(self, model: TextClassifier, threshold: float = THRESHOLD) -> None:
        self.model, self.threshold = model, threshold

    def best(self, text: str) -> IntentGuess:
        """The most likely intent whatever its probability (for evaluation)."""
        intent, p = self.model.predict(text[:MAX_CHARS])
        return IntentGuess(intent, p)

    def guess(self, text: str) -> IntentGuess | None:
        if not text.strip():
            return None
        found = self.best(text)
        if found.intent == OUT_OF_SCOPE or found.confidence < self.threshold:
            return None
        return found


def training_pairs() -> list[tuple[str, str]]:
    from nlu.classifier import load_rasa_examples, rasa_files

    return load_rasa_examples(rasa_files())


@cache
def known_intents() -> frozenset[str]:
    """Every intent Rasa's NLU data (all languages) teaches: the intents a menu's choice may name. Read
    without numpy, for the studio's validation."""
    import yaml

    found: set[str] = set()
    for path in sorted(RASA_DATA.glob("*/*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        blocks = document.get("nlu") or [] if isinstance(document, dict) else []
        found |= {str(b["intent"]) for b in blocks if isinstance(b, dict) and b.get("intent")}
    return frozenset(found)


@cache
def default_intents() -> IntentModel | None:
    """The model trained on Rasa's training data (from the disk cache after the first time), or None."""
    try:
        from nlu.classifier import train
    except ImportError:
        log.warning("embedded intent classifier unavailable (numpy or scikit-learn missing)")
        return None
    try:
        return IntentModel(train(training_pairs(), name="intents"))
    except Exception:  # a model that cannot be trained leaves the turn as it is without NLU
        log.exception("embedded intent classifier could not be trained")
        return None


# --- measurement -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accuracy:
    language: str
    correct: int
    total: int
    misses: tuple[tuple[str, str, str], ...]  # (text, expected, got)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def measure(model: IntentModel, language: str, examples: Sequence[tuple[str, str]]) -> Accuracy:
    """Held-out accuracy as nlu/evaluate.py scores Rasa: unsure counts as out_of_scope."""
    misses = []
    for text, expected in examples:
        found = model.guess(text)
        got = found.intent if found else OUT_OF_SCOPE
        if got != expected:
            misses.append((text, expected, got))
    return Accuracy(language, len(examples) - len(misses), len(examples), tuple(misses))


def heldout(directory: Path, languages: Iterable[str] = LANGUAGES) -> dict[str, list[tuple[str, str]]]:
    """(text, intent) per language from a directory of Rasa-format held-out files ({lang}.yml)."""
    from nlu.classifier import load_rasa_examples

    return {lang: load_rasa_examples([directory / f"{lang}.yml"]) for lang in languages}

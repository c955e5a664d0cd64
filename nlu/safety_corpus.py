"""The labelled safety messages (nlu/safety_data/): loading the splits, checking the held-out hash, scoring.

Shared by the tests, the bench and the classifier's training, so all three read the same files the
same way. The held-out split is only ever scored, never trained on (see `training_pairs`).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "safety_data"
LANGUAGES = ("zh", "vi", "en")
SPLITS = ("train", "heldout")
EMERGENCY = "emergency"
BENIGN = "benign"


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    label: str  # EMERGENCY or BENIGN
    category: str  # an Emergency value, or the kind of benign message
    lang: str
    split: str


def load(split: str, lang: str) -> list[Labelled]:
    path = DATA_DIR / split / f"{lang}.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Labelled(r["text"], r["label"], r["category"], lang, split) for r in rows]


def load_all(split: str) -> list[Labelled]:
    return [row for lang in LANGUAGES for row in load(split, lang)]


def heldout_mismatches() -> list[str]:
    """Held-out files whose SHA-256 differs from the one recorded when the split was committed."""
    bad = []
    for line in (DATA_DIR / "heldout.sha256").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def training_pairs() -> list[tuple[str, str]]:
    """(text, label) for the safety classifier: an Emergency value, or "benign". Training split only."""
    return [(r.text, r.category if r.label == EMERGENCY else BENIGN) for r in load_all("train")]


@dataclass(frozen=True, slots=True)
class Score:
    recall: float  # emergencies flagged / emergencies
    false_alarm: float  # benign messages flagged / benign messages
    emergencies: int
    benign: int
    missed: tuple[Labelled, ...]
    false_alarms: tuple[Labelled, ...]


def score(rows: Iterable[Labelled], flags: Callable[[str], bool]) -> Score:
    rows = list(rows)
    emergencies = [r for r in rows if r.label == EMERGENCY]
    benign = [r for r in rows if r.label == BENIGN]
    missed = tuple(r for r in emergencies if not flags(r.text))
    alarms = tuple(r for r in benign if flags(r.text))
    return Score(
        recall=1 - len(missed) / len(emergencies) if emergencies else 1.0,
        false_alarm=len(alarms) / len(benign) if benign else 0.0,
        emergencies=len(emergencies),
        benign=len(benign),
        missed=missed,
        false_alarms=alarms,
    )

"""Held-out evaluation of the running Rasa server: per-intent precision/recall/F1 and accuracy per language.

Sends every example of nlu/rasa/tests/{zh,vi,en}.yml to `/model/parse` of the server that is actually
serving (rather than `rasa test nlu`, which loads its own copy of the model for minutes and needs
Rasa's virtualenv): what is measured is what patients get. Prints a table per language and ends
with one JSON line: {"accuracy_zh": ..., "accuracy_vi": ..., "accuracy_en": ..., ...}.

Scoring rule: Rasa's `nlu_fallback` (FallbackClassifier, below its confidence threshold) counts as
`out_of_scope`, because the dialogue treats both the same way (clarify, then hand off); for every
other expected intent a fallback is a miss.

    python -m nlu.evaluate [--url http://127.0.0.1:5005]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.client import DEFAULT_URL, FALLBACK_INTENT, NluClient

TESTS_DIR = Path(__file__).resolve().parent / "rasa" / "tests"
LANGUAGES = ("zh", "vi", "en")
# [text](entity), [text]{"entity": ...}, [text]{...}(...) annotations, as Rasa's YAML writes them.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str


@dataclass(frozen=True, slots=True)
class IntentScore:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class LanguageReport:
    language: str
    accuracy: float
    scores: tuple[IntentScore, ...]
    errors: tuple[tuple[str, str, str], ...]  # (text, expected, predicted)


def strip_annotations(text: str) -> str:
    return _ANNOTATION.sub(r"\1", text)


def load_examples(path: Path) -> list[Example]:
    """Intent examples from a Rasa 3 NLU YAML file, entity annotations removed."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    examples: list[Example] = []
    for block in data.get("nlu") or ():
        if "intent" not in block:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                examples.append(Example(strip_annotations(line[2:].strip()), str(block["intent"])))
    return examples


def score(language: str, pairs: list[tuple[Example, str]]) -> LanguageReport:
    true_positive: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    for example, got in pairs:
        expected[example.intent] += 1
        predicted[got] += 1
        if got == example.intent:
            true_positive[example.intent] += 1
    scores = []
    for intent in sorted(expected):
        tp = true_positive[intent]
        precision = tp / predicted[intent] if predicted[intent] else 0.0
        recall = tp / expected[intent]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(IntentScore(intent, precision, recall, f1, expected[intent]))
    accuracy = sum(true_positive.values()) / len(pairs) if pairs else 0.0
    errors = tuple((e.text, e.intent, got) for e, got in pairs if got != e.intent)
    return LanguageReport(language, accuracy, tuple(scores), errors)


def evaluate(client: NluClient, language: str, *, workers: int = 4) -> LanguageReport:
    examples = load_examples(TESTS_DIR / f"{language}.yml")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        intents = list(pool.map(lambda e: client.parse(e.text).intent, examples))
    intents = ["out_of_scope" if intent == FALLBACK_INTENT else intent for intent in intents]
    return score(language, list(zip(examples, intents, strict=True)))


def render(report: LanguageReport) -> str:
    header = f"{'intent':<22}  prec   rec    f1   n"
    lines = [f"== {report.language}: accuracy {report.accuracy:.3f}", header]
    lines += [
        f"{s.intent:<22} {s.precision:5.2f} {s.recall:5.2f} {s.f1:5.2f} {s.support:3d}" for s in report.scores
    ]
    lines += [f"  miss: {text!r} expected {want}, got {got}" for text, want, got in report.errors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    # Generous timeouts: this is a batch job, not a patient waiting.
    with NluClient(args.url, read_timeout=30.0, connect_timeout=5.0) as client:
        reports = [evaluate(client, language) for language in LANGUAGES]
        fingerprint = client.model_fingerprint()
    for report in reports:
        print(render(report))
    summary: dict[str, object] = {f"accuracy_{r.language}": round(r.accuracy, 4) for r in reports}
    summary["examples"] = {r.language: sum(s.support for s in r.scores) for r in reports}
    summary["model"] = fingerprint
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

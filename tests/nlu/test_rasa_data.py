"""The Rasa project's data: every intent and entity in three languages, held-out sets never trained on."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from nlu import artifacts
from nlu.client import normalise
from nlu.evaluate import LANGUAGES, TESTS_DIR, load_examples, strip_annotations

DATA_DIR = artifacts.RASA_DIR / "data"
INTENTS = {
    "greet", "goodbye", "affirm", "deny", "book", "reschedule", "cancel", "my_appointments",
    "consent_grant", "consent_revoke", "complain", "praise", "suggest", "report_symptom", "ask_human",
    "help", "stop", "faq_visiting_hours", "faq_parking", "faq_billing", "faq_report_pickup",
    "faq_directions", "out_of_scope",
}  # fmt: skip
ENTITIES = {"date", "time", "department", "doctor", "number", "symptom"}
_ENTITY = re.compile(r"\[[^\]]+\]\(([^)]+)\)")


def training_lines(language: str) -> list[tuple[str, str]]:
    """(intent, raw example with annotations) for every training example of a language."""
    found = []
    for path in sorted((DATA_DIR / language).glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or ():
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    found.append((str(block["intent"]), line.strip()[2:].strip()))
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_intent_has_enough_training_and_test_examples(language: str) -> None:
    train = Counter(intent for intent, _ in training_lines(language))
    test = Counter(e.intent for e in load_examples(TESTS_DIR / f"{language}.yml"))
    assert set(train) == INTENTS
    assert set(test) == INTENTS
    assert min(train.values()) >= 15, train
    assert min(test.values()) >= 7, test


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entity_kind_is_annotated_and_no_other(language: str) -> None:
    kinds = {kind for _, line in training_lines(language) for kind in _ENTITY.findall(line)}
    assert kinds == ENTITIES


def test_no_held_out_example_is_trained_on() -> None:
    trained = {
        normalise(strip_annotations(line)) for language in LANGUAGES for _, line in training_lines(language)
    }
    leaked = [
        e.text
        for language in LANGUAGES
        for e in load_examples(TESTS_DIR / f"{language}.yml")
        if normalise(e.text) in trained
    ]
    assert leaked == []


def test_no_example_is_trained_under_two_intents() -> None:
    seen: dict[str, set[str]] = {}
    for language in LANGUAGES:
        for intent, line in training_lines(language):
            seen.setdefault(normalise(strip_annotations(line)), set()).add(intent)
    assert {text: intents for text, intents in seen.items() if len(intents) > 1} == {}


def test_the_model_key_covers_training_data_but_not_the_held_out_sets() -> None:
    files = artifacts.training_files()
    assert artifacts.CONFIG in files
    assert all(path.suffix in {".yml", ".txt"} for path in files)
    assert not any(TESTS_DIR in path.parents for path in files)
    assert {p.parent.name for p in files if p.parent.parent == DATA_DIR} == set(LANGUAGES)
    assert artifacts.model_fingerprint() == artifacts.model_fingerprint()
    assert artifacts.model_path(Path("/c")).name == f"{artifacts.model_fingerprint()}.tar.gz"

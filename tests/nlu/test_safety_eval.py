"""The labelled safety set: its shape, the held-out split's integrity, and the figures the rules must hold."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest

from nlu import safety_corpus as corpus
from nlu.red_flags import Emergency
from nlu.safety import SafetyKind, scan


def rules_flag(text: str) -> bool:
    return any(hit.kind is SafetyKind.EMERGENCY for hit in scan(text))


@cache
def rows(split: str) -> tuple[corpus.Labelled, ...]:
    return tuple(corpus.load_all(split))


def test_the_heldout_split_is_the_one_committed_before_the_rules_changed() -> None:
    assert corpus.heldout_mismatches() == []


@pytest.mark.parametrize("lang", corpus.LANGUAGES)
def test_each_language_has_enough_messages_of_every_category(lang: str) -> None:
    every = [r for split in corpus.SPLITS for r in rows(split) if r.lang == lang]
    labels = Counter(r.label for r in every)
    assert labels[corpus.EMERGENCY] >= 200 and labels[corpus.BENIGN] >= 200, labels
    categories = Counter(r.category for r in every if r.label == corpus.EMERGENCY)
    assert set(categories) == {e.value for e in Emergency}
    assert min(categories.values()) >= 15, categories
    for split in corpus.SPLITS:  # both splits hold every category, so each is scored on all of them
        assert {r.category for r in rows(split) if r.lang == lang and r.label == corpus.EMERGENCY} == set(
            categories
        )


def test_labels_are_closed_and_no_text_is_in_both_splits() -> None:
    assert {r.label for split in corpus.SPLITS for r in rows(split)} == {corpus.EMERGENCY, corpus.BENIGN}
    train = {r.text for r in rows("train")}
    assert [r.text for r in rows("heldout") if r.text in train] == []


def test_the_classifier_never_trains_on_heldout_texts() -> None:
    trained = {text for text, _ in corpus.training_pairs()}
    assert trained == {r.text for r in rows("train")}
    assert trained.isdisjoint(r.text for r in rows("heldout"))


@pytest.mark.parametrize("lang", corpus.LANGUAGES)
def test_rules_alone_recall_on_the_heldout_split(lang: str) -> None:
    """Every model down: the rules by themselves catch at least 90 % of held-out emergencies."""
    score = corpus.score([r for r in rows("heldout") if r.lang == lang], rules_flag)
    assert score.recall >= 0.90, [r.text for r in score.missed]


@pytest.mark.parametrize("lang", corpus.LANGUAGES)
def test_rules_alone_false_alarms_on_the_heldout_split(lang: str) -> None:
    score = corpus.score([r for r in rows("heldout") if r.lang == lang], rules_flag)
    assert score.false_alarm <= 0.05, [r.text for r in score.false_alarms]


@pytest.mark.parametrize("lang", corpus.LANGUAGES)
def test_rules_and_classifier_false_alarms_on_the_heldout_split(lang: str) -> None:
    from nlu.safety import assess

    def flag(text: str) -> bool:
        return assess(text).emergency is not None

    score = corpus.score([r for r in rows("heldout") if r.lang == lang], flag)
    assert score.false_alarm <= 0.05, [r.text for r in score.false_alarms]


@pytest.mark.parametrize("lang", corpus.LANGUAGES)
def test_the_rules_hold_the_whole_training_split(lang: str) -> None:
    """The rules were tuned on the training split: a change that loses any of it shows up here."""
    score = corpus.score([r for r in rows("train") if r.lang == lang], rules_flag)
    assert score.recall >= 0.98 and score.false_alarm <= 0.02, (
        [r.text for r in score.missed],
        [r.text for r in score.false_alarms],
    )


CATEGORY_CASES = [(lang, e.value) for lang in corpus.LANGUAGES for e in Emergency]


@pytest.mark.parametrize(("lang", "category"), CATEGORY_CASES)
def test_every_category_is_caught_on_the_training_split(lang: str, category: str) -> None:
    """All but at most one training message of each category (one Chinese headache message never
    names the head: "一秒钟之内就痛到极点" is left to the classifier rather than to a rule that would
    fire on any pain)."""
    cases = [r for r in rows("train") if r.lang == lang and r.category == category]
    missed = [r.text for r in cases if not rules_flag(r.text)]
    assert cases and len(missed) <= 1, missed


@pytest.mark.parametrize(("lang", "category"), CATEGORY_CASES)
def test_every_category_holds_on_the_heldout_split(lang: str, category: str) -> None:
    """A guard against a category breaking, not a target: with six or so held-out messages per category
    and language, at least 60 % must be caught by the rules alone (the per-language floor is 90 %)."""
    cases = [r for r in rows("heldout") if r.lang == lang and r.category == category]
    caught = sum(rules_flag(r.text) for r in cases)
    assert cases and caught / len(cases) >= 0.6, (caught, len(cases))


def test_ordinary_messages_rarely_alarm() -> None:
    """Rasa's held-out NLU examples (booking, directions, consent, complaints, mild symptoms): neither
    the rules nor the classifier learnt from them, and at most 1 % may raise an emergency."""
    from pathlib import Path

    from nlu.classifier import load_rasa_examples
    from nlu.safety import assess

    tests = sorted((Path(corpus.DATA_DIR).parent / "rasa" / "tests").glob("*.yml"))
    texts = [text for text, _ in load_rasa_examples(tests)]
    flagged = [text for text in texts if assess(text).emergency is not None]
    assert len(texts) > 400 and len(flagged) / len(texts) <= 0.01, flagged

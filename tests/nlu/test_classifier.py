"""The embedded classifier: generic training and answers, determinism, its disk cache, Rasa's data as
intents, and the safety net built on it (which the rules never depend on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlu import classifier, safety_net
from nlu.classifier import load_rasa_examples, rasa_files, train
from nlu.red_flags import Emergency
from nlu.safety import SafetyKind, Source, assess, scan

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [
    ("I want to book an appointment", "book"),
    ("can I see a doctor next week", "book"),
    ("book me in please", "book"),
    ("我想挂号", "book"),
    ("cancel my appointment", "cancel"),
    ("I can't come, cancel it", "cancel"),
    ("取消预约", "cancel"),
    ("hủy lịch hẹn", "cancel"),
]


def test_it_trains_from_pairs_and_answers_a_label_with_its_probability(tmp_path: Path) -> None:
    model = train(PAIRS, name="t", cache=tmp_path)
    label, p = model.predict("please book an appointment for me")
    assert label == "book" and 0.5 < p <= 1.0
    assert model.predict("cancel it please")[0] == "cancel"
    assert set(model.probabilities("x")) == {"book", "cancel"}
    assert sum(model.probabilities("hello").values()) == pytest.approx(1.0)


def test_training_is_deterministic() -> None:
    a = train(PAIRS, name="t", use_cache=False)
    b = train(PAIRS, name="t", use_cache=False)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.columns, b.columns)


def test_the_model_is_cached_on_disk_by_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = train(PAIRS, name="t", cache=tmp_path)
    assert len(list(tmp_path.glob("t-*.npz"))) == 1

    def no_training(*args: object) -> None:
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(classifier, "_fit", no_training)
    again = train(PAIRS, name="t", cache=tmp_path)
    assert again.labels == first.labels and np.array_equal(again.weights, first.weights)
    with pytest.raises(AssertionError):  # other data: a new key, so it must train
        train([*PAIRS, ("where is the car park", "parking")], name="t", cache=tmp_path)


def test_one_label_is_not_a_classifier() -> None:
    with pytest.raises(ValueError):
        train([("a", "x"), ("b", "x")], name="t", use_cache=False)


def test_rasa_examples_are_read_with_annotations_removed(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: book\n  examples: |\n    - book for [monday](date)\n'
        '    - [周六]{"entity": "date"}能挂号吗\n- regex: phone\n  examples: |\n    - \\d+\n',
        encoding="utf-8",
    )
    assert load_rasa_examples([path]) == [("book for monday", "book"), ("周六能挂号吗", "book")]


def test_the_intent_classifier_trains_from_rasa_data_and_answers() -> None:
    pairs = load_rasa_examples(rasa_files())
    assert {"book", "cancel", "greet", "ask_human"} <= {intent for _, intent in pairs}
    model = train(pairs, name="intents")
    for text in ["I would like to make an appointment", "我想约个号看医生", "cho tôi đặt lịch khám"]:
        label, p = model.predict(text)
        assert label == "book" and p > 0.3, (text, label, p)


def test_the_safety_net_escalates_a_clear_emergency_and_not_a_greeting() -> None:
    net = safety_net.default_net()
    assert net is not None
    emergency, p = net.predict("my chest is crushing and i cant breathe")
    assert emergency is not None and p >= net.threshold
    assert net.predict("hello, thank you for the reminder")[0] is None


def test_long_messages_need_more_confidence_per_piece() -> None:
    net = safety_net.default_net()
    assert net is not None
    assert net.threshold_for(1) == net.threshold
    assert net.threshold < net.threshold_for(2) < net.threshold_for(4) < 1.0
    long = ". ".join(f"the pain in my knee was worse on day {i}" for i in range(40))
    assert len(safety_net._pieces_to_read(long)) == 4  # at most four pieces of a long message are read


class FakeNet:
    threshold = 0.90

    def predict(self, text: str) -> tuple[Emergency | None, float]:
        return Emergency.CHEST_PAIN, 0.97


def test_assess_escalates_what_the_rules_miss_when_the_net_is_sure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety_net, "default_net", lambda: FakeNet())
    result = assess("something the rules do not know")
    assert result.emergency is not None and result.emergency.source is Source.CLASSIFIER
    assert result.emergency.emergency is Emergency.CHEST_PAIN and result.emergency.confidence == 0.97
    ruled = assess("I can't breathe")  # the rules answer first; the net is not asked
    assert ruled.emergency is not None and ruled.emergency.source is Source.RULES


def test_with_every_model_down_assess_is_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety_net, "default_net", lambda: None)
    for text in ["I can't breathe", "hello", "stop", "我想挂号"]:
        result = assess(text)
        assert result.hits == scan(text) and not result.classifier_available


def test_the_rules_load_without_numpy_or_scikit_learn() -> None:
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None\nsys.modules['sklearn'] = None\n"
        "from nlu.safety import assess, SafetyKind\n"
        'r = assess("I can\'t breathe")\n'
        "assert r.emergency is not None and r.emergency.kind is SafetyKind.EMERGENCY\n"
        "assert assess('hello').classifier_available is False\n"
        "assert 'sklearn' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_importing_the_rules_does_not_import_numpy() -> None:
    code = "import sys, nlu.safety\nnlu.safety.check('chest pain')\nassert 'numpy' not in sys.modules\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_classifier_hit_is_an_emergency_hit() -> None:
    hit = assess("tôi khó thở").emergency
    assert hit is not None and hit.kind is SafetyKind.EMERGENCY and hit.advice is not None


def test_pieces_read_together_score_as_each_read_alone() -> None:
    net = safety_net.default_net()
    assert net is not None
    texts = [
        "我胸口痛得厉害",
        "hello, I would like to book",
        "tôi khó thở quá",
        "the wound is red and hot",
        "x",
    ]
    together = net.detector.probabilities_many(texts)
    for text, probs in zip(texts, together, strict=True):
        alone = net.detector.probabilities(text)
        assert probs.keys() == alone.keys()
        for label, p in alone.items():
            assert probs[label] == pytest.approx(p, abs=1e-12), (text, label)

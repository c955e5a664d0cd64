"""The red-flag taxonomy: every category has an urgency and guidance in three languages, is written down
with its sources, and has its line in the hazard log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nlu.red_flags import ADVICE, PRIORITY, AdviceKind, Emergency, Urgency, advice_for
from nlu.safety import SafetyKind, check

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "content" / "dialogues" / "messages"


def test_every_category_has_advice_and_a_priority() -> None:
    assert set(ADVICE) == set(Emergency)
    assert sorted(PRIORITY) == sorted(Emergency) and len(PRIORITY) == len(Emergency)
    assert advice_for(Emergency.SELF_HARM).kind is AdviceKind.CRISIS_LINE
    assert advice_for(Emergency.STROKE) == advice_for(Emergency.CHEST_PAIN)
    assert advice_for(Emergency.STROKE).urgency is Urgency.IMMEDIATE
    assert advice_for(Emergency.INFANT_FEVER).kind is AdviceKind.EMERGENCY_DEPARTMENT


def test_the_original_categories_keep_their_values() -> None:
    original = {
        "self_harm", "chest_pain", "breathing", "stroke", "bleeding", "unconscious", "seizure", "anaphylaxis",
    }
    assert original <= {e.value for e in Emergency}


def test_a_hit_carries_its_advice() -> None:
    hit = check("I want to end my life")
    assert hit is not None and hit.advice == advice_for(Emergency.SELF_HARM)
    assert hit.advice.message_key == "safety.advice.crisis_line"
    human = check("talk to a real person")
    assert human is not None and human.kind is SafetyKind.HUMAN and human.advice is None


@pytest.mark.parametrize("lang", ["en", "vi", "zh-CN"])
def test_guidance_texts_exist_in_every_language_with_their_placeholders(lang: str) -> None:
    table = yaml.safe_load((MESSAGES / f"{lang}.yaml").read_text(encoding="utf-8"))
    for kind in AdviceKind:
        text = table[f"safety.advice.{kind.value}"]
        assert "{emergency_number}" in text
        assert ("{crisis_line}" in text) is (kind is AdviceKind.CRISIS_LINE)
    for emergency in Emergency:
        tip = table[f"safety.tip.{emergency.value}"]
        assert tip and "{" not in tip


def test_the_taxonomy_and_the_hazard_log_name_every_category() -> None:
    taxonomy = (ROOT / "nlu" / "red_flags.md").read_text(encoding="utf-8")
    hazards = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8")
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests" / "nlu").glob("test_*.py"))
    for emergency in Emergency:
        assert f"`{emergency.value}`" in taxonomy, emergency
        row = next((line for line in hazards.splitlines() if f"`{emergency.value}`" in line), "")
        assert row, f"no hazard log row for {emergency.value}"
        for name in re.findall(r"`(test_\w+)`", row):  # the tests a row names exist
            assert f"def {name}(" in tests, name

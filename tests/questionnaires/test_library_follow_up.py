"""The library's follow-up questionnaires: branches and rules of post-discharge, post-operative,
hypertension and diabetes follow-up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from questionnaires.logic import enabled_items, missing_required, prune
from questionnaires.model import AnswerValue, Questionnaire, Severity
from questionnaires.scoring import evaluate
from tests.questionnaires.library import (
    codes,
    q,
)

# --- post-discharge follow-up --------------------------------------------------------------------

CALM: dict[str, AnswerValue] = {
    "overall_recovery": "better",
    "pain": 2,
    "fever": "no",
    "had_surgery": "no",
    "medication": "as_prescribed",
    "instructions_understood": "fully",
    "appointment_booked": "yes",
}


def _enabled(questionnaire: Questionnaire, answers: dict[str, AnswerValue]) -> list[str]:
    return [item.id for item in enabled_items(questionnaire, answers)]


def test_post_discharge_asks_temperature_only_after_a_fever() -> None:
    pd = q("post_discharge")
    assert "temperature" not in _enabled(pd, {})
    assert "temperature" not in _enabled(pd, {"fever": "no"})
    assert "temperature" in _enabled(pd, {"fever": "yes"})
    assert missing_required(pd, CALM | {"fever": "yes"}) == ["temperature"]
    assert missing_required(pd, CALM) == []


def test_post_discharge_drops_a_temperature_when_the_fever_is_withdrawn() -> None:
    pd = q("post_discharge")
    answers = CALM | {"fever": "no", "temperature": Decimal("39.5")}
    assert "temperature" not in prune(pd, answers)
    assert evaluate(pd, answers).findings == ()


def test_post_discharge_asks_about_the_wound_only_after_surgery() -> None:
    pd = q("post_discharge")
    assert "wound" not in _enabled(pd, CALM)
    assert "wound" in _enabled(pd, CALM | {"had_surgery": "yes"})
    assert "appointment_date" in _enabled(pd, CALM)
    assert "appointment_date" not in _enabled(pd, CALM | {"appointment_booked": "no"})


def test_a_calm_post_discharge_response_raises_nothing() -> None:
    assert evaluate(q("post_discharge"), CALM | {"other": "谢谢"}).findings == ()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pain": 6}, {}),
        ({"pain": 7}, {"pain_severe": Severity.HIGH}),
        ({"pain": 10}, {"pain_severe": Severity.HIGH}),
        ({"fever": "yes", "temperature": Decimal("38.9")}, {"fever": Severity.HIGH}),
        (
            {"fever": "yes", "temperature": Decimal("39.0")},
            {"fever": Severity.HIGH, "temperature_very_high": Severity.URGENT},
        ),
        ({"fever": "yes"}, {"fever": Severity.HIGH}),
        ({"had_surgery": "yes", "wound": ["none"]}, {}),
        ({"had_surgery": "yes", "wound": ["bleeding"]}, {"wound_bleeding": Severity.URGENT}),
        ({"had_surgery": "yes", "wound": ["redness"]}, {}),
        ({"had_surgery": "yes", "wound": ["redness", "swelling"]}, {"wound_red_and_swollen": Severity.HIGH}),
        (
            {"had_surgery": "yes", "wound": ["discharge", "bleeding"]},
            {"wound_discharge": Severity.HIGH, "wound_bleeding": Severity.URGENT},
        ),
        ({"had_surgery": "no", "wound": ["bleeding"]}, {}),  # a stale answer raises nothing
        ({"medication": "stopped"}, {"medication_stopped": Severity.NORMAL}),
        ({"medication": "some_missed"}, {"medication_missed": Severity.LOW}),
        ({"medication": "none_prescribed"}, {}),
        ({"overall_recovery": "worse"}, {"recovery_worse": Severity.HIGH}),
        ({"instructions_understood": "not_understood"}, {"instructions_not_understood": Severity.LOW}),
        ({"appointment_booked": "no"}, {"no_appointment": Severity.LOW}),
    ],
)
def test_post_discharge_rules(changes: dict[str, AnswerValue], expected: dict[str, Severity]) -> None:
    assert codes(evaluate(q("post_discharge"), CALM | changes)) == expected


# --- the other follow-ups ------------------------------------------------------------------------


def test_post_operative_drain_questions_only_with_a_drain() -> None:
    po = q("post_operative")
    assert "drain_volume" not in _enabled(po, {"has_drain": "no"})
    assert {"drain_volume", "drain_fluid", "drain_problem"} <= set(_enabled(po, {"has_drain": "yes"}))
    with_drain: dict[str, AnswerValue] = {
        "has_drain": "yes",
        "drain_volume": 650,
        "drain_fluid": "bloody",
        "drain_problem": ["dislodged"],
    }
    assert codes(evaluate(po, with_drain)) == {
        "drain_volume_high": Severity.HIGH,
        "drain_bloody": Severity.URGENT,
        "drain_dislodged": Severity.HIGH,
    }
    assert evaluate(po, with_drain | {"has_drain": "no"}).findings == ()


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"breathless": "yes"}, {"breathless_or_chest_pain": Severity.URGENT}),
        ({"calf_pain": "yes"}, {"possible_dvt": Severity.HIGH}),
        ({"wound": ["healing"]}, {}),
        ({"wound": ["opening"]}, {"wound_opening": Severity.URGENT}),
        ({"wound": ["redness", "warmth"]}, {"wound_red_hot": Severity.HIGH}),
        ({"fever": "yes", "temperature": Decimal("38.4")}, {}),
        ({"fever": "yes", "temperature": Decimal("38.5")}, {"fever_high": Severity.HIGH}),
        ({"bowel": "neither"}, {"no_bowel_activity": Severity.HIGH}),
        ({"nausea": "vomiting"}, {"vomiting": Severity.HIGH}),
        ({"mobility": "bedbound"}, {"bedbound": Severity.NORMAL}),
        (
            {"pain": 8, "pain_relief": "not_controlled"},
            {"pain_severe": Severity.HIGH, "pain_uncontrolled": Severity.HIGH},
        ),
    ],
)
def test_post_operative_rules(answers: dict[str, AnswerValue], expected: dict[str, Severity]) -> None:
    assert codes(evaluate(q("post_operative"), answers)) == expected


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (130, 80, {}),
        (159, 99, {}),
        (160, 95, {"systolic_high": Severity.HIGH}),
        (179, 100, {"systolic_high": Severity.HIGH, "diastolic_high": Severity.HIGH}),
        (180, 90, {"systolic_crisis": Severity.URGENT}),
        (150, 110, {"diastolic_crisis": Severity.URGENT}),
        (85, 50, {"systolic_low": Severity.HIGH}),
    ],
)
def test_hypertension_blood_pressure_rules(
    systolic: int, diastolic: int, expected: dict[str, Severity]
) -> None:
    answers: dict[str, AnswerValue] = {"measured": "yes", "systolic": systolic, "diastolic": diastolic}
    assert codes(evaluate(q("hypertension_follow_up"), answers)) == expected


def test_hypertension_symptoms_and_branching() -> None:
    ht = q("hypertension_follow_up")
    assert "systolic" not in _enabled(ht, {"measured": "no"})
    assert {"systolic", "diastolic", "readings_per_week"} <= set(_enabled(ht, {"measured": "yes"}))
    assert codes(evaluate(ht, {"symptoms": ["headache", "chest_pain"]})) == {"chest_pain": Severity.URGENT}
    assert codes(evaluate(ht, {"symptoms": ["one_sided_weakness"]})) == {"stroke_signs": Severity.URGENT}
    assert codes(evaluate(ht, {"symptoms": ["none"]})) == {}
    assert codes(evaluate(ht, {"measured": "no", "systolic": 200})) == {"not_measuring": Severity.LOW}


@pytest.mark.parametrize(
    ("glucose", "expected"),
    [
        ("2.9", {"glucose_very_low": Severity.URGENT}),
        ("3.0", {"glucose_low": Severity.HIGH}),
        ("3.8", {"glucose_low": Severity.HIGH}),
        ("3.9", {}),
        ("7.2", {}),
        ("13.9", {}),
        ("14.0", {"glucose_high": Severity.HIGH}),
        ("16.7", {"glucose_high": Severity.HIGH}),
        ("16.8", {"glucose_very_high": Severity.URGENT}),
    ],
)
def test_diabetes_glucose_rules(glucose: str, expected: dict[str, Severity]) -> None:
    assert codes(evaluate(q("diabetes_follow_up"), {"fasting_glucose": Decimal(glucose)})) == expected


def test_diabetes_branching() -> None:
    dm = q("diabetes_follow_up")
    assert "glucose_date" not in _enabled(dm, {})
    assert "glucose_date" in _enabled(dm, {"fasting_glucose": Decimal("6.1")})
    assert "adherence" not in _enabled(dm, {"treatment": ["diet_only"]})
    assert "adherence" in _enabled(dm, {"treatment": ["tablets"]})
    assert "injection_sites" not in _enabled(dm, {"treatment": ["tablets"]})
    assert "injection_sites" in _enabled(dm, {"treatment": ["tablets", "insulin"]})
    ev = evaluate(
        dm,
        {
            "hypoglycaemia": "severe",
            "feet": ["ulcer", "numbness"],
            "recent_results": {"hba1c": "7.1", "weight": "68"},
        },
    )
    assert codes(ev) == {"severe_hypoglycaemia": Severity.URGENT, "foot_ulcer": Severity.HIGH}

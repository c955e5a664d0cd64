"""The built-in questionnaire library under content/questionnaires: it parses, speaks three languages,
covers every item type, and its screening scores, bands, branches and rules say what they should."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from questionnaires.logic import enabled_items, missing_required, next_item, prune
from questionnaires.model import LANGS, AnswerValue, Item, ItemType, Kind, Questionnaire, Severity
from questionnaires.scoring import Evaluation, evaluate

LIBRARY = Path(__file__).resolve().parents[2] / "content" / "questionnaires"
FILES = sorted(LIBRARY.glob("*.yaml"))  # not subdirectories such as messages/
EXPECTED = {
    "post_discharge",
    "post_operative",
    "hypertension_follow_up",
    "diabetes_follow_up",
    "inpatient_satisfaction",
    "outpatient_satisfaction",
    "physical_exam_satisfaction",
    "staff_satisfaction",
    "department_mutual_evaluation",
    "nps",
    "phq9",
    "gad7",
}
NATIONAL_DIMENSIONS = {"environment", "attitude", "communication", "waiting", "cost_transparency", "overall"}
PATIENT_SURVEYS = ("inpatient_satisfaction", "outpatient_satisfaction", "physical_exam_satisfaction")
FREQUENCY = ("not_at_all", "several_days", "more_than_half", "nearly_every_day")  # PHQ/GAD codes, 0-3


def _raw(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def library() -> dict[str, Questionnaire]:
    from questionnaires.loader import parse_questionnaire

    parsed = [parse_questionnaire(_raw(path)) for path in FILES]
    return {q.id: q for q in parsed}


def q(questionnaire_id: str) -> Questionnaire:
    return library()[questionnaire_id]


def codes(ev: Evaluation) -> dict[str, Severity]:
    return {f.code: f.severity for f in ev.findings}


# --- the files themselves ------------------------------------------------------------------------


def test_the_expected_questionnaires_exist() -> None:
    assert set(library()) >= EXPECTED


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_parses_and_is_named_after_its_id(path: Path) -> None:
    from questionnaires.loader import parse_questionnaire

    parsed = parse_questionnaire(_raw(path))
    assert path.name == f"{parsed.id}.yaml"
    assert parsed.version >= 1


def _text_mappings(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        if set(node) & set(LANGS):
            yield where, node
        for key, value in node.items():
            if key != "words":  # synonyms: language -> list, checked below
                yield from _text_mappings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _text_mappings(value, f"{where}[{n}]")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_text_has_exactly_the_three_languages(path: Path) -> None:
    # A flow mapping like {vi: Có, đúng hẹn, en: ...} silently gains a stray key and loses text.
    for where, texts in _text_mappings(_raw(path), path.stem):
        assert set(texts) == set(LANGS), where
        assert all(isinstance(t, str) and t.strip() for t in texts.values()), where


def _all_texts(questionnaire: Questionnaire) -> Iterator[tuple[str, dict[str, str]]]:
    yield "title", dict(questionnaire.title)
    for item in questionnaire.walk():
        yield item.id, dict(item.text)
        for name in ("hint", "unit", "min_label", "max_label"):
            extra = getattr(item, name)
            if extra is not None:
                yield f"{item.id}/{name}", dict(extra)
        for option in item.options:
            yield f"{item.id}/{option.code}", dict(option.text)
        for blank in item.blanks:
            yield f"{item.id}/{blank.id}", dict(blank.text)
    for score in questionnaire.scores:
        yield f"score {score.id}", dict(score.text)
        for band in score.bands:
            yield f"score {score.id}/{band.code}", dict(band.text)
    for rule in questionnaire.rules:
        yield f"rule {rule.id}", dict(rule.text)


@pytest.mark.parametrize("questionnaire_id", sorted(EXPECTED))
def test_every_item_option_and_finding_speaks_three_languages(questionnaire_id: str) -> None:
    for where, texts in _all_texts(q(questionnaire_id)):
        assert {lang for lang, text in texts.items() if text.strip()} == set(LANGS), where
        # the three texts are translations, not copies (units and scale labels may share digits)
        if not where.endswith("/unit") and not where.startswith("score") and len(texts["en"]) > 6:
            assert texts["zh-CN"] != texts["en"] and texts["vi"] != texts["en"], where


def test_chinese_texts_are_chinese_and_vietnamese_texts_carry_diacritics() -> None:
    for questionnaire in library().values():
        for where, texts in _all_texts(questionnaire):
            if where.endswith("/unit"):
                continue
            assert (
                any("\u4e00" <= ch <= "\u9fff" for ch in texts["zh-CN"]) or texts["zh-CN"] == texts["en"]
            ), where
        vietnamese = " ".join(texts["vi"] for _, texts in _all_texts(questionnaire))
        assert set("ơưăđ") & set(vietnamese.lower()), questionnaire.id


def test_every_item_type_is_used_by_real_content() -> None:
    used = {item.type for questionnaire in library().values() for item in questionnaire.walk()}
    assert used == set(ItemType)


def test_choice_items_fit_a_phone_keypad() -> None:
    # Voice offers one DTMF digit per option; ten or more would not fit keys 1-9.
    for questionnaire in library().values():
        for item in questionnaire.walk():
            assert len(item.options) <= 9, f"{questionnaire.id}/{item.id}"


def test_kinds() -> None:
    assert {i for i, x in library().items() if x.kind is Kind.STAFF} >= {
        "staff_satisfaction",
        "department_mutual_evaluation",
    }
    assert q("phq9").kind is q("gad7").kind is Kind.SCREENING
    assert q("post_discharge").kind is Kind.FOLLOW_UP
    assert all(q(i).kind is Kind.SATISFACTION for i in (*PATIENT_SURVEYS, "nps"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_published_copy_parses_to_the_same_questionnaire(path: Path) -> None:
    from questionnaires.loader import parse_questionnaire

    # publishing stores the definition as JSON (backend.followup.catalog); nothing may change on the way
    raw = _raw(path)
    assert parse_questionnaire(json.loads(json.dumps(raw))) == parse_questionnaire(raw)


def _answer(item: Item, pick: int) -> AnswerValue:
    """A plausible answer: the first (pick=0) or last (pick=-1) option, the low or high end of a range."""
    if item.type is ItemType.MULTIPLE_CHOICE:
        return [item.options[pick].code]
    if item.type.has_options:
        return item.options[pick].code
    if item.type.is_numeric:
        end = item.minimum if pick == 0 else item.maximum
        number = end if end is not None else Decimal(1)
        return number if item.type is ItemType.DECIMAL else int(number)
    if item.type is ItemType.DATE:
        return date(2026, 12, 1)
    if item.type is ItemType.MULTI_BLANK:
        return {blank.id: "1" for blank in item.blanks}
    return "好的"


@pytest.mark.parametrize("pick", [0, -1], ids=["first", "last"])
@pytest.mark.parametrize("questionnaire_id", sorted(EXPECTED))
def test_a_conversation_can_walk_every_questionnaire_to_the_end(questionnaire_id: str, pick: int) -> None:
    survey = q(questionnaire_id)
    answers: dict[str, AnswerValue] = {}
    while (item := next_item(survey, answers)) is not None:
        answers[item.id] = _answer(item, pick)
        assert len(answers) <= len(survey.answerable())
    assert missing_required(survey, answers) == []
    assert prune(survey, answers) == answers
    evaluate(survey, answers)


def test_option_synonyms_are_lists_of_text_per_language() -> None:
    fever = q("post_discharge").item("fever")
    yes = fever.option("yes")
    assert yes is not None and "有发烧" in yes.words["zh-CN"]
    for questionnaire in library().values():
        for item in questionnaire.walk():
            for option in item.options:
                assert set(option.words) <= set(LANGS), f"{item.id}/{option.code}"


# --- satisfaction --------------------------------------------------------------------------------


@pytest.mark.parametrize("questionnaire_id", PATIENT_SURVEYS)
def test_patient_satisfaction_covers_the_six_national_dimensions(questionnaire_id: str) -> None:
    rated = [item for item in q(questionnaire_id).answerable() if item.dimension]
    assert {item.dimension for item in rated} == NATIONAL_DIMENSIONS
    for item in rated:
        if item.type is ItemType.STAR_RATING:
            assert item.maximum == 5
        else:
            scores = {o.code: o.score for o in item.options}
            assert scores == {
                "very_satisfied": 5,
                "satisfied": 4,
                "neutral": 3,
                "dissatisfied": 2,
                "very_dissatisfied": 1,
            }, item.id
    free_text = [i for i in q(questionnaire_id).answerable() if i.type is ItemType.LONG_TEXT]
    assert free_text and not any(i.required for i in free_text)


def test_staff_surveys_keep_their_dimensions_apart_from_the_patient_ones() -> None:
    for questionnaire in library().values():
        if questionnaire.kind is Kind.STAFF:
            dims = {i.dimension for i in questionnaire.walk() if i.dimension}
            assert dims and not dims & NATIONAL_DIMENSIONS, questionnaire.id


@pytest.mark.parametrize("questionnaire_id", ["inpatient_satisfaction", "outpatient_satisfaction"])
def test_very_dissatisfied_overall_asks_for_a_complaint_follow_up(questionnaire_id: str) -> None:
    survey = q(questionnaire_id)
    ev = evaluate(survey, {"overall": "very_dissatisfied", "doctor_attitude": "very_dissatisfied"})
    assert codes(ev) == {"overall_very_dissatisfied": Severity.NORMAL}
    assert ev.findings[0].items == ("overall",)
    assert evaluate(survey, {"overall": "satisfied", "doctor_attitude": "very_dissatisfied"}).findings == ()


def test_one_star_health_check_is_a_complaint() -> None:
    assert codes(evaluate(q("physical_exam_satisfaction"), {"overall_stars": 1})) == {
        "overall_one_star": Severity.NORMAL
    }
    assert evaluate(q("physical_exam_satisfaction"), {"overall_stars": 2}).findings == ()


@pytest.mark.parametrize(
    ("stars", "band", "finding"),
    [
        ((1, 1, 1, 1), "poor", True),
        ((2, 2, 2, 3), "poor", True),
        ((3, 3, 2, 2), "fair", False),
        ((4, 4, 4, 3), "fair", False),
        ((4, 4, 4, 4), "good", False),
        ((5, 5, 5, 5), "good", False),
    ],
)
def test_department_cooperation_index(stars: tuple[int, ...], band: str, finding: bool) -> None:
    survey = q("department_mutual_evaluation")
    ids = ("cooperation", "responsiveness", "communication", "professionalism")
    ev = evaluate(survey, {"rated_department": "放射科", **dict(zip(ids, stars, strict=True))})
    assert ev.scores["cooperation_index"] == sum(stars)
    assert ev.bands["cooperation_index"].code == band
    assert (ev.worst is Severity.LOW) is finding


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0, "detractor"),
        (3, "detractor"),
        (6, "detractor"),
        (7, "passive"),
        (8, "passive"),
        (9, "promoter"),
        (10, "promoter"),
    ],
)
def test_nps_bands(value: int, band: str) -> None:
    ev = evaluate(q("nps"), {"recommend": value})
    assert ev.scores == {"nps": value}
    assert ev.bands["nps"].code == band
    assert ev.findings == ()


def test_nps_band_codes_are_what_the_statistics_count() -> None:
    assert [b.code for b in q("nps").scores[0].bands] == ["detractor", "passive", "promoter"]


# --- PHQ-9 and GAD-7 -----------------------------------------------------------------------------


def frequency_answers(
    prefix: str, count: int, total: int, *, last: int | None = None
) -> dict[str, AnswerValue]:
    """Answers for items prefix_1..count adding up to total, filling the earlier items first; `last`
    fixes the last item's score (PHQ-9 item 9) and the rest is spread over the others."""
    points = [0] * count
    remaining = total - (last or 0)
    for n in range(count - (0 if last is None else 1)):
        points[n] = min(3, remaining)
        remaining -= points[n]
    if last is not None:
        points[-1] = last
    assert remaining == 0 and sum(points) == total
    return {f"{prefix}_{n + 1}": FREQUENCY[p] for n, p in enumerate(points)}


def test_phq9_has_the_nine_standard_items_and_answers() -> None:
    phq9 = q("phq9")
    assert [s.items for s in phq9.scores] == [tuple(f"phq9_{n}" for n in range(1, 10))]
    for n in range(1, 10):
        item = phq9.item(f"phq9_{n}")
        assert item.required
        assert [(o.code, o.score) for o in item.options] == list(zip(FREQUENCY, range(4), strict=True))
        assert [o.text["zh-CN"] for o in item.options] == ["完全不会", "好几天", "一半以上的天数", "几乎每天"]
        assert [o.text["en"] for o in item.options] == [
            "Not at all",
            "Several days",
            "More than half the days",
            "Nearly every day",
        ]
    assert phq9.item("phq9_9").text["en"] == (
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    assert phq9.item("phq9_9").text["zh-CN"] == "有不如死掉或用某种方式伤害自己的念头"


@pytest.mark.parametrize(
    ("total", "band", "severity"),
    [
        (0, "minimal", None),
        (4, "minimal", None),
        (5, "mild", None),
        (9, "mild", None),
        (10, "moderate", Severity.NORMAL),
        (14, "moderate", Severity.NORMAL),
        (15, "moderately_severe", Severity.HIGH),
        (19, "moderately_severe", Severity.HIGH),
        (20, "severe", Severity.URGENT),
        (24, "severe", Severity.URGENT),
    ],
)
def test_phq9_totals_and_bands_at_the_thresholds(total: int, band: str, severity: Severity | None) -> None:
    answers = frequency_answers("phq9", 9, total, last=0)
    ev = evaluate(q("phq9"), answers)
    assert ev.scores == {"phq9_total": total}
    assert ev.bands["phq9_total"].code == band
    expected = {} if severity is None else {f"phq9_total:{band}": severity}
    assert codes(ev) == expected
    assert ev.worst is severity


def test_phq9_maximum_is_severe_and_urgent_twice() -> None:
    ev = evaluate(q("phq9"), {f"phq9_{n}": "nearly_every_day" for n in range(1, 10)})
    assert ev.scores["phq9_total"] == 27
    assert codes(ev) == {"phq9_total:severe": Severity.URGENT, "self_harm_thoughts": Severity.URGENT}


@pytest.mark.parametrize("item9", ["several_days", "more_than_half", "nearly_every_day"])
def test_phq9_item_9_is_urgent_whatever_the_total(item9: str) -> None:
    answers = frequency_answers("phq9", 9, 0, last=0) | {"phq9_9": item9}
    ev = evaluate(q("phq9"), answers)
    assert ev.bands["phq9_total"].code == "minimal"
    assert codes(ev) == {"self_harm_thoughts": Severity.URGENT}
    assert ev.findings[0].items == ("phq9_9",)
    assert ev.worst is Severity.URGENT


def test_phq9_item_9_one_with_total_one() -> None:
    ev = evaluate(q("phq9"), frequency_answers("phq9", 9, 1, last=1))
    assert ev.scores["phq9_total"] == 1
    assert ev.worst is Severity.URGENT


def test_phq9_item_9_unanswered_raises_nothing() -> None:
    answers = frequency_answers("phq9", 9, 3, last=0)
    del answers["phq9_9"]
    assert evaluate(q("phq9"), answers).findings == ()
    assert missing_required(q("phq9"), answers) == ["phq9_9"]


def test_phq9_difficulty_question_only_follows_a_problem() -> None:
    phq9 = q("phq9")
    none = frequency_answers("phq9", 9, 0, last=0)
    assert "difficulty" not in [i.id for i in enabled_items(phq9, none)]
    one = none | {"phq9_5": "several_days"}
    assert "difficulty" in [i.id for i in enabled_items(phq9, one)]
    assert evaluate(phq9, one | {"difficulty": "very_difficult"}).scores["phq9_total"] == 1


@pytest.mark.parametrize(
    ("total", "band", "severity"),
    [
        (0, "minimal", None),
        (4, "minimal", None),
        (5, "mild", None),
        (9, "mild", None),
        (10, "moderate", Severity.NORMAL),
        (14, "moderate", Severity.NORMAL),
        (15, "severe", Severity.HIGH),
        (21, "severe", Severity.HIGH),
    ],
)
def test_gad7_bands(total: int, band: str, severity: Severity | None) -> None:
    ev = evaluate(q("gad7"), frequency_answers("gad7", 7, total))
    assert ev.scores == {"gad7_total": total}
    assert ev.bands["gad7_total"].code == band
    assert ev.worst is severity


def test_gad7_items() -> None:
    gad7 = q("gad7")
    assert [i.id for i in gad7.answerable()] == [f"gad7_{n}" for n in range(1, 8)]
    assert gad7.item("gad7_1").text["en"] == "Feeling nervous, anxious, or on edge"
    assert gad7.item("gad7_1").text["zh-CN"] == "感觉紧张、焦虑或急切"


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


def test_phq9_intent_to_act_after_item_9_is_an_emergency() -> None:
    phq9 = q("phq9")
    assert phq9.item("phq9_9_intent").enable_when  # asked only after a positive item 9
    answers = frequency_answers("phq9", 9, 1, last=1) | {"phq9_9_intent": "yes"}
    ev = evaluate(phq9, answers)
    assert codes(ev) == {"self_harm_thoughts": Severity.URGENT, "active_suicidal_intent": Severity.EMERGENCY}
    assert ev.worst is Severity.EMERGENCY
    assert ev.scores["phq9_total"] == 1  # the safety question is not scored
    assert codes(evaluate(phq9, answers | {"phq9_9_intent": "no"})) == {"self_harm_thoughts": Severity.URGENT}

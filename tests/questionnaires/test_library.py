"""The built-in questionnaire library under content/questionnaires: it parses, speaks three languages,
covers every item type, and the satisfaction surveys cover their dimensions and bands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from questionnaires.logic import missing_required, next_item, prune
from questionnaires.model import LANGS, AnswerValue, Item, ItemType, Kind, Questionnaire, Severity
from questionnaires.scoring import evaluate
from tests.questionnaires.library import (
    EXPECTED,
    FILES,
    NATIONAL_DIMENSIONS,
    PATIENT_SURVEYS,
    _raw,
    codes,
    library,
    q,
)

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

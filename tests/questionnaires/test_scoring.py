"""Scoring: what each answer adds, totals over partly answered forms, band edges, band and rule findings
with the items that raised them, and the worst severity of an evaluation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from questionnaires.loader import parse_questionnaire
from questionnaires.model import AnswerValue, Questionnaire, Severity
from questionnaires.scoring import Evaluation, Finding, evaluate, item_points


def texts(en: str) -> dict[str, str]:
    return {"zh-CN": f"{en}（中文）", "vi": f"{en} (tiếng Việt)", "en": en}


def option(code: str, score: int | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"code": code, "text": texts(code)}
    if score is not None:
        raw["score"] = score
    return raw


def form() -> Questionnaire:
    return parse_questionnaire(
        {
            "id": "scored",
            "version": 1,
            "title": texts("Scored"),
            "items": [
                {
                    "id": "gate",
                    "type": "single_choice",
                    "text": texts("Gate"),
                    "options": [option("open"), option("shut")],
                },
                {
                    "id": "multi",
                    "type": "multiple_choice",
                    "text": texts("Multi"),
                    "options": [option("none"), option("a", 1), option("b", 2), option("c", 4)],
                },
                {
                    "id": "single",
                    "type": "dropdown",
                    "text": texts("Single"),
                    "options": [option("s0", 0), option("s1", 1), option("s3", 3), option("unsure")],
                },
                {
                    "id": "count",
                    "type": "integer",
                    "text": texts("Count"),
                    "enable_when": [{"item": "gate", "op": "=", "value": "open"}],
                },
                {"id": "stars", "type": "star_rating", "max": 5, "text": texts("Stars")},
                {"id": "level", "type": "decimal", "text": texts("Level")},
                {"id": "note", "type": "short_text", "text": texts("Note")},
            ],
            "scores": [
                {
                    "id": "total",
                    "items": ["multi", "single", "count"],
                    "text": texts("Total"),
                    "bands": [
                        {"code": "low", "min": 0, "max": 3, "text": texts("Low")},
                        {"code": "mid", "min": 4, "max": 7, "severity": "normal", "text": texts("Mid")},
                        {"code": "top", "min": 8, "max": 20, "severity": "urgent", "text": texts("Top")},
                    ],
                },
                {"id": "rating", "items": ["stars"], "text": texts("Rating")},
            ],
            "rules": [
                {
                    "id": "many",
                    "when": {"item": "count", "op": ">=", "value": 10},
                    "severity": "high",
                    "text": texts("Many"),
                },
                {
                    "id": "c_and_low_stars",
                    "when": [
                        {"item": "multi", "op": "contains", "value": "c"},
                        {"item": "stars", "op": "<=", "value": 2},
                    ],
                    "severity": "low",
                    "text": texts("C and low stars"),
                },
                {
                    "id": "total_and_count",
                    "when": [
                        {"score": "total", "op": ">=", "value": 8},
                        {"item": "count", "op": "exists", "value": True},
                    ],
                    "severity": "normal",
                    "text": texts("Total with count"),
                },
                {
                    "id": "no_stars",
                    "when": {"item": "stars", "op": "exists", "value": False},
                    "severity": "low",
                    "text": texts("No stars"),
                },
            ],
        }
    )


STARS: dict[str, AnswerValue] = {"stars": 4}  # keeps the no_stars rule quiet


def findings(ev: Evaluation) -> dict[str, tuple[Severity, tuple[str, ...]]]:
    return {f.code: (f.severity, f.items) for f in ev.findings}


# --- item_points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_id", "value", "points"),
    [
        ("multi", ["a"], 1),
        ("multi", ["a", "c"], 5),
        ("multi", ["a", "b", "c"], 7),
        ("multi", ["none", "b"], 2),  # an option without a score adds nothing
        ("multi", ["none"], None),  # ... and alone gives no points at all
        ("multi", [], None),
        ("multi", ["zzz"], None),
        ("single", "s0", 0),
        ("single", "s3", 3),
        ("single", "unsure", None),
        ("single", "zzz", None),
        ("count", 12, 12),
        ("count", 0, 0),
        ("stars", 5, 5),
        ("level", Decimal("2.9"), 2),  # scores are whole numbers: decimals are truncated
        ("level", Decimal("-0.5"), 0),
        ("count", True, None),
        ("count", "12", None),  # text is not a number answer
        ("note", "7", None),
        ("gate", "open", None),
    ],
)
def test_item_points(item_id: str, value: object, points: int | None) -> None:
    assert item_points(form().item(item_id), value) == points


# --- totals and bands ----------------------------------------------------------------------------


def test_nothing_answered_gives_no_score_and_no_band() -> None:
    ev = evaluate(form(), STARS)
    assert "total" not in ev.scores and "total" not in ev.bands
    assert ev.findings == ()


def test_answers_that_add_nothing_give_no_score() -> None:
    ev = evaluate(form(), {"multi": ["none"], "single": "unsure", **STARS})
    assert "total" not in ev.scores


def test_a_partly_answered_form_sums_what_is_there() -> None:
    ev = evaluate(form(), {"multi": ["a", "c"], **STARS})
    assert ev.scores["total"] == 5
    ev = evaluate(form(), {"multi": ["none"], "single": "s1", **STARS})
    assert ev.scores["total"] == 1 and ev.bands["total"].code == "low"


def test_multiple_choice_single_choice_and_numbers_add_up() -> None:
    ev = evaluate(form(), {"gate": "open", "multi": ["a", "b"], "single": "s3", "count": 2, **STARS})
    assert ev.scores == {"total": 8, "rating": 4}


def test_answers_to_disabled_items_do_not_count() -> None:
    ev = evaluate(form(), {"gate": "shut", "multi": ["a"], "count": 9, **STARS})
    assert ev.scores["total"] == 1
    assert "many" not in findings(ev)


@pytest.mark.parametrize(
    ("count", "band", "severity"),
    [
        (0, "low", None),
        (3, "low", None),
        (4, "mid", Severity.NORMAL),
        (7, "mid", Severity.NORMAL),
        (8, "top", Severity.URGENT),
        (9, "top", Severity.URGENT),
        (20, "top", Severity.URGENT),
        (21, None, None),
    ],
)
def test_band_edges_are_inclusive(count: int, band: str | None, severity: Severity | None) -> None:
    ev = evaluate(form(), {"gate": "open", "count": count, **STARS})
    assert ev.scores["total"] == count
    assert (ev.bands["total"].code if "total" in ev.bands else None) == band
    band_findings = [f for f in ev.findings if f.code.startswith("total:")]
    if band is None or severity is None:
        assert band_findings == []
    else:
        assert band_findings == [
            Finding(f"total:{band}", severity, texts(band.title()), ("multi", "single", "count"))
        ]


def test_a_score_without_bands_has_no_band() -> None:
    ev = evaluate(form(), {"stars": 1})
    assert ev.scores["rating"] == 1 and "rating" not in ev.bands


# --- rules and findings --------------------------------------------------------------------------


def test_rule_findings_carry_the_items_that_raised_them() -> None:
    ev = evaluate(form(), {"gate": "open", "count": 10, "multi": ["c"], "stars": 2})
    assert findings(ev) == {
        "total:top": (Severity.URGENT, ("multi", "single", "count")),  # 4 + 10 = 14
        "many": (Severity.HIGH, ("count",)),
        "c_and_low_stars": (Severity.LOW, ("multi", "stars")),
        "total_and_count": (Severity.NORMAL, ("multi", "single", "count")),  # the score's items, once each
    }
    many = next(f for f in ev.findings if f.code == "many")
    assert many.text == texts("Many")


def test_every_condition_of_a_rule_must_hold() -> None:
    assert "c_and_low_stars" not in findings(evaluate(form(), {"multi": ["c"], "stars": 3}))
    assert "c_and_low_stars" not in findings(evaluate(form(), {"multi": ["a"], "stars": 1}))
    assert "c_and_low_stars" not in findings(evaluate(form(), {"multi": ["c"]}))
    # the score is high enough but count was not answered
    assert "total_and_count" not in findings(
        evaluate(form(), {"multi": ["a", "b", "c"], "single": "s1", **STARS})
    )


def test_a_rule_on_an_unanswered_item() -> None:
    assert findings(evaluate(form(), {})) == {"no_stars": (Severity.LOW, ("stars",))}


def test_findings_come_in_definition_order_bands_first() -> None:
    ev = evaluate(form(), {"gate": "open", "count": 12, "multi": ["c"], "stars": 1})
    assert [f.code for f in ev.findings] == ["total:top", "many", "c_and_low_stars", "total_and_count"]


def test_evaluate_does_not_change_the_answers() -> None:
    answers: dict[str, AnswerValue] = {"gate": "shut", "count": 12, "multi": ["c"]}
    evaluate(form(), answers)
    assert answers == {"gate": "shut", "count": 12, "multi": ["c"]}


# --- worst ---------------------------------------------------------------------------------------


def finding(severity: Severity) -> Finding:
    return Finding(severity.value, severity, texts(severity.value), ())


def test_worst_of_no_findings_is_none() -> None:
    assert Evaluation({}, {}, ()).worst is None


@pytest.mark.parametrize(
    ("severities", "worst"),
    [
        ([Severity.LOW], Severity.LOW),
        ([Severity.LOW, Severity.NORMAL], Severity.NORMAL),
        ([Severity.HIGH, Severity.NORMAL, Severity.LOW], Severity.HIGH),
        ([Severity.URGENT, Severity.HIGH], Severity.URGENT),
        ([Severity.LOW, Severity.URGENT, Severity.NORMAL], Severity.URGENT),
        ([Severity.NORMAL, Severity.NORMAL], Severity.NORMAL),
    ],
)
def test_worst_orders_by_urgency_not_by_name(severities: list[Severity], worst: Severity) -> None:
    # alphabetically "urgent" > "normal" > "low" > "high": the order must come from the enum
    assert Evaluation({}, {}, tuple(finding(s) for s in severities)).worst is worst


def test_worst_of_an_evaluation() -> None:
    assert evaluate(form(), {"gate": "open", "count": 5, **STARS}).worst is Severity.NORMAL
    assert evaluate(form(), {"gate": "open", "count": 10, **STARS}).worst is Severity.URGENT
    assert evaluate(form(), STARS).worst is None
